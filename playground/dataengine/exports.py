"""What a job writes from its store: COCO instances JSON, YOLO detection and segmentation labels, report.json.

Exports read the store as it is now, so every edit is in them: removed annotations are left out,
relabelled ones carry their new class, added ones are there, and each image's state (``labelled``,
``edited``, ``accepted``) is in the report and the COCO images. Each distinct image is exported once,
under its first file's name; its duplicates are named in the report.

Category ids: a class whose name (lower case) is a COCO category keeps COCO's own id
(`playground.core.coco_categories.coco_ids_by_name`: ``person`` 1, ``dog`` 18, panoptic stuff
92-200); every other class gets the next id from `FIRST_OTHER_ID` (201, past COCO's last), in the
job's class order and then in the order edits added them. YOLO class indices are the same classes
in that order, from 0.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from playground.core.coco_categories import coco_ids_by_name
from playground.dataengine.labelers import decode_mask
from playground.dataengine.records import Annotation, ImageRecord
from playground.dataengine.store import JobStore

FORMATS = ("coco", "yolo")
FIRST_OTHER_ID = 201
"""The first category id of a class COCO does not have (COCO panoptic's ids end at 200)."""
RANDOM_NOTE = "made with {weights} weights: random-weight models, so these labels are noise (for tests and timing)"


def job_classes(store: JobStore) -> list[str]:
    """The job's classes, then any class an edit introduced, in that order."""
    config = store.config()
    classes = list(config.classes) if config else []
    for annotation in store.annotations():
        if annotation.class_name not in classes:
            classes.append(annotation.class_name)
    return classes


def category_ids(classes: list[str]) -> dict[str, int]:
    """Class name -> COCO category id (see the module docstring)."""
    coco = coco_ids_by_name()
    ids: dict[str, int] = {}
    next_id = FIRST_OTHER_ID
    for name in classes:
        if name.lower() in coco:
            ids[name] = coco[name.lower()]
        else:
            ids[name], next_id = next_id, next_id + 1
    return ids


def weights_note(store: JobStore) -> str:
    config = store.config()
    return RANDOM_NOTE.format(weights=config.weights) if config and config.weights != "pretrained" else ""


def coco_dataset(store: JobStore) -> dict[str, Any]:
    """The COCO instances dict: ``images`` (id from 1, ``file_name``, size, the data engine's
    ``state``), ``annotations`` (XYWH ``bbox``, RLE ``segmentation`` where there is a mask, ``area``,
    ``score``), ``categories``."""
    config = store.config()
    ids = category_ids(job_classes(store))
    images = [record for record in store.images() if record.state != "pending"]
    image_ids = {record.digest: index + 1 for index, record in enumerate(images)}
    annotations = []
    for annotation in store.annotations():
        if annotation.digest not in image_ids:
            continue
        x1, y1, x2, y2 = annotation.box
        entry: dict[str, Any] = {
            "id": annotation.id,
            "image_id": image_ids[annotation.digest],
            "category_id": ids[annotation.class_name],
            "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)],
            "area": round((x2 - x1) * (y2 - y1), 2),
            "iscrowd": 0,
            "score": annotation.score,
            "origin": annotation.origin,
        }
        if annotation.rle is not None:
            entry["segmentation"] = annotation.rle
            entry["area"] = int(decode_mask(annotation.rle).sum())
        annotations.append(entry)
    description = f"Data engine job: {config.model if config else '?'}, classes {', '.join(job_classes(store))}"
    note = weights_note(store)
    return {
        "info": {"description": description + (f"; {note}" if note else "")},
        "images": [
            {"id": image_ids[r.digest], "file_name": r.name, "width": r.width, "height": r.height, "state": r.state}
            for r in images
        ],
        "annotations": annotations,
        "categories": [{"id": i, "name": name, "supercategory": ""} for name, i in ids.items()],
    }


def write_coco(store: JobStore, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(coco_dataset(store)) + "\n")
    return path


def write_yolo(store: JobStore, folder: str | Path, out: str | Path) -> dict[str, Path]:
    """YOLO datasets under ``out``: ``detect/`` (boxes) and ``segment/`` (polygons from the masks; a
    box where an annotation has none), each with ``images/`` (copies of the files in ``folder``),
    ``labels/`` (supervision's ``DetectionDataset.as_yolo``) and ``data.yaml``. Returns their data.yaml paths."""
    import supervision as sv

    classes = job_classes(store)
    index = {name: i for i, name in enumerate(classes)}
    images = [record for record in store.images() if record.state != "pending"]
    written = {}
    for kind in ("detect", "segment"):
        root = Path(out) / kind
        (root / "images").mkdir(parents=True, exist_ok=True)
        paths, detections = [], {}
        for record in images:
            target = root / "images" / flat_name(record.name)
            shutil.copyfile(Path(folder) / record.name, target)
            paths.append(str(target))
            detections[str(target)] = as_detections(store.annotations(record.digest), record, index, kind == "segment")
        dataset = sv.DetectionDataset(classes=classes, images=paths, annotations=detections)
        dataset.as_yolo(annotations_directory_path=str(root / "labels"))
        data = {"path": ".", "train": "images", "val": "images", "nc": len(classes), "names": classes}
        (root / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        written[kind] = root / "data.yaml"
    return written


def flat_name(name: str) -> str:
    """A file's job name as one file name: ``a/b.jpg`` -> ``a__b.jpg``."""
    return name.replace("/", "__")


def as_detections(
    annotations: list[Annotation], record: ImageRecord, index: dict[str, int], masks: bool
):  # -> sv.Detections
    """One image's annotations as supervision ``Detections``, with (N, H, W) masks for segmentation."""
    import supervision as sv

    if not annotations:
        return sv.Detections.empty()
    xyxy = np.array([a.box for a in annotations], np.float32)
    mask = None
    if masks:
        mask = np.zeros((len(annotations), record.height, record.width), bool)
        for i, annotation in enumerate(annotations):
            if annotation.rle is not None:
                mask[i] = decode_mask(annotation.rle)
            else:
                x1, y1, x2, y2 = (round(v) for v in annotation.box)
                mask[i, y1 : y2 + 1, x1 : x2 + 1] = True  # right and bottom edges inclusive
    return sv.Detections(
        xyxy=xyxy,
        mask=mask,
        class_id=np.array([index[a.class_name] for a in annotations], int),
        confidence=np.array([a.score for a in annotations], np.float32),
    )


def report(store: JobStore) -> dict[str, Any]:
    """report.json's content: the job, every file's state (``labelled``, ``edited``, ``accepted``,
    ``pending``, ``skipped`` with its reason, ``duplicate`` naming the first), annotations per class,
    edits per kind, and the timings (ms per image and in all)."""
    config = store.config()
    images = {record.digest: record for record in store.images()}
    per_image = Counter(annotation.digest for annotation in store.annotations())
    files = []
    for record in store.files():
        entry: dict[str, Any] = {"name": record.name}
        if record.state == "skipped":
            entry |= {"state": "skipped", "reason": record.reason}
        elif record.state == "duplicate":
            entry |= {"state": "duplicate", "duplicate_of": images[record.digest].name, "reason": record.reason}
        else:
            image = images[record.digest]
            entry |= {"state": image.state, "annotations": per_image[record.digest]}
            if image.warning:
                entry["warning"] = image.warning
        files.append(entry)
    totals = [record.timings.get("total", 0.0) for record in images.values() if record.timings]
    return {
        "job": {
            "model": config.model if config else None,
            "classes": list(config.classes) if config else [],
            "weights": config.weights if config else None,
            "params": config.params if config else {},
            "note": weights_note(store),
        },
        "files": files,
        "skipped": [{"name": f["name"], "reason": f["reason"]} for f in files if f["state"] == "skipped"],
        "duplicates": [
            {"name": f["name"], "duplicate_of": f["duplicate_of"]} for f in files if f["state"] == "duplicate"
        ],
        "counts": {
            "states": store.counts(),
            "classes": dict(Counter(annotation.class_name for annotation in store.annotations())),
            "edits": dict(Counter(edit.kind for edit in store.edits())),
        },
        "timings": {
            "images_labelled": len(totals),
            "total_ms": round(sum(totals), 1),
            "mean_ms_per_image": round(sum(totals) / len(totals), 1) if totals else None,
            "per_image_ms": {record.name: record.timings for record in images.values() if record.timings},
        },
    }


def write_report(store: JobStore, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(report(store), indent=2) + "\n")
    return path


def export(store: JobStore, folder: str | Path, out: str | Path, formats: tuple[str, ...] = FORMATS) -> dict[str, Path]:
    """Write ``formats`` (``coco``: ``OUT/coco.json``; ``yolo``: ``OUT/yolo/{detect,segment}``) and
    ``OUT/report.json``; returns what was written, by name."""
    out = Path(out)
    written = {"report": write_report(store, out / "report.json")}
    if "coco" in formats:
        written["coco"] = write_coco(store, out / "coco.json")
    if "yolo" in formats:
        written |= {f"yolo-{kind}": path for kind, path in write_yolo(store, folder, out / "yolo").items()}
    return written
