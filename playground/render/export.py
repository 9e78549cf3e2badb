"""A `Prediction` as files: the JSON the CLI writes and the API returns, COCO results with RLE masks,
a PNG label map, and a zip of binary mask PNGs."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from playground.core.coco_categories import coco_category_ids
from playground.core.types import Prediction

RANDOM_WEIGHTS_NOTE = "random weights: these outputs show the architecture running, not what it learned"


def to_json(
    prediction: Prediction, mask_areas: np.ndarray | None = None, score_threshold: float | None = None
) -> dict[str, Any]:
    """JSON-ready dict of an (already filtered) prediction.

    Keys: model, task, weights, precision, checkpoint, image_size ([width, height] in pixels),
    score_threshold (the one ``prediction`` was filtered at, or None when no score filtered it),
    timings_ms, instances (label, class_id, score, box as XYXY pixels, mask_area in pixels when there
    are masks, or given by ``mask_areas`` ((N,) pixels)), semantic (label -> fraction of the image, for
    semantic models), meta.
    """
    height, width = prediction.image_size
    areas = prediction.mask_areas() if mask_areas is None else mask_areas
    instances = []
    for index, (label, class_id, score, box) in enumerate(
        zip(prediction.labels, prediction.class_ids.tolist(), prediction.scores.tolist(), prediction.boxes.tolist())
    ):
        instance: dict[str, Any] = {
            "label": label,
            "class_id": class_id,
            "score": round(score, 4),
            "box": [round(v, 2) for v in box],
        }
        if prediction.masks is not None or mask_areas is not None:
            instance["mask_area"] = int(areas[index])
        instances.append(instance)
    typed = {"device": prediction.device, "cold": prediction.cold, "cached": prediction.cached}
    typed |= {
        k: v for k, v in (("mode", prediction.mode), ("reuse", prediction.reuse), ("warning", prediction.warning)) if v
    }
    meta = typed | {k: v for k, v in prediction.meta.items() if isinstance(v, (str, int, float, bool))}
    result: dict[str, Any] = {
        "model": prediction.model,
        "task": prediction.task,
        "weights": prediction.weights,
        "precision": prediction.precision,
        "checkpoint": prediction.checkpoint or None,
        "image_size": [width, height],
        "score_threshold": score_threshold,
        "timings_ms": {k: round(v, 2) for k, v in prediction.timings_ms.items()},
        "instances": instances,
        "meta": meta,
    }
    if prediction.semantic_map is not None:
        result["semantic"] = {label: round(area, 5) for label, area in prediction.semantic_areas().items()}
    if prediction.weights != "pretrained":
        result["note"] = RANDOM_WEIGHTS_NOTE
    return result


def to_coco(prediction: Prediction, image_id: int = 0) -> list[dict[str, Any]] | dict[str, Any]:
    """The ``--coco`` file: COCO results entries (bbox as XYWH pixels, score, category id and name,
    and the mask as COCO RLE via pycocotools where there is one). Semantic maps give one entry per
    class, in the COCO-stuff results form (no bbox or score).

    Category ids are COCO's own (`coco_category_ids`): D-FINE's 0-79 and the panoptic models' 0-132
    become COCO's detection ids (1-90) and panoptic stuff ids (92-200); classes COCO lacks
    (background, "N/A") are left out. For labels that are not COCO's (VOC, U-Net's car, typed
    phrases, SAM's "object") the ids are the model's own and the file is self-describing:
    ``{"categories": [{"id", "name"}, ...], "annotations": [entries]}`` instead of the bare list.
    """
    coco_ids = coco_category_ids(prediction.label_names)
    entries = [
        entry for entry in coco_entries(prediction, image_id) if coco_ids is None or entry["category_id"] in coco_ids
    ]
    if coco_ids is not None:
        for entry in entries:
            entry["category_id"] = coco_ids[entry["category_id"]]
        return entries
    used = sorted({entry["category_id"] for entry in entries})
    categories = [{"id": class_id, "name": prediction.label_name(class_id)} for class_id in used]
    return {"categories": categories, "annotations": entries}


def coco_entries(prediction: Prediction, image_id: int) -> list[dict[str, Any]]:
    """`to_coco`'s entries with the model's own class ids as ``category_id``."""
    from pycocotools import mask as mask_utils

    def rle(binary: np.ndarray) -> dict[str, Any]:
        encoded = mask_utils.encode(np.asfortranarray(binary.astype(np.uint8)))
        return {"size": list(encoded["size"]), "counts": encoded["counts"].decode("ascii")}

    entries = []
    for index, (label, class_id, score, box) in enumerate(
        zip(prediction.labels, prediction.class_ids.tolist(), prediction.scores.tolist(), prediction.boxes.tolist())
    ):
        x1, y1, x2, y2 = box
        entry: dict[str, Any] = {
            "image_id": image_id,
            "category_id": class_id,
            "category_name": label,
            "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
            "score": round(score, 5),
        }
        if prediction.masks is not None:
            entry["segmentation"] = rle(prediction.masks[index])
        entries.append(entry)
    if prediction.semantic_map is not None:
        for class_id in np.unique(prediction.semantic_map).tolist():
            entries.append(
                {
                    "image_id": image_id,
                    "category_id": class_id,
                    "category_name": prediction.label_name(class_id),
                    "segmentation": rle(prediction.semantic_map == class_id),
                }
            )
    return entries


def label_map_png(prediction: Prediction) -> bytes:
    """The semantic map as a PNG of class ids: 8-bit when ids fit, else 16-bit."""
    if prediction.semantic_map is None:
        raise ValueError(f"{prediction.model} gave no semantic map")
    ids = prediction.semantic_map
    image = Image.fromarray(ids.astype(np.uint8)) if ids.max() < 256 else Image.fromarray(ids.astype(np.uint16))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def masks_zip(prediction: Prediction) -> bytes:
    """A zip of one binary PNG (0 or 255) per instance mask, named ``000_person_0.98.png``."""
    if prediction.masks is None:
        raise ValueError(f"{prediction.model} gave no instance masks")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, (mask, label, score) in enumerate(zip(prediction.masks, prediction.labels, prediction.scores)):
            png = io.BytesIO()
            Image.fromarray(mask.astype(np.uint8) * 255).save(png, "PNG")
            safe_label = "".join(c if c.isalnum() else "-" for c in label)
            archive.writestr(f"{index:03d}_{safe_label}_{score:.2f}.png", png.getvalue())
    return buffer.getvalue()


def export_files(prediction: Prediction, overlay: np.ndarray, folder: Path) -> list[Path]:
    """Write a panel's downloads into ``folder``: the overlay PNG, COCO results JSON, and the masks
    (a label-map PNG for semantic maps, a zip of binary PNGs for instance masks)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = prediction.model
    paths = [folder / f"{stem}_overlay.png", folder / f"{stem}_coco.json"]
    Image.fromarray(overlay).save(paths[0])
    paths[1].write_text(json.dumps(to_coco(prediction)))
    if prediction.semantic_map is not None:
        paths.append(folder / f"{stem}_labels.png")
        paths[-1].write_bytes(label_map_png(prediction))
    if prediction.masks is not None and len(prediction):
        paths.append(folder / f"{stem}_masks.zip")
        paths[-1].write_bytes(masks_zip(prediction))
    return paths
