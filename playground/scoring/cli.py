"""``python -m playground score RESULT TRUTH``: score a saved result against ground truth.

RESULT is what ``predict`` wrote: its ``--json`` (boxes only: instance results are scored by box), its
``--coco`` results (RLE masks: instance and panoptic results are scored by mask; a semantic model's
entries become its label map again), or a label-map PNG (the panel's download) for semantic models.
TRUTH is a COCO instances JSON or, for semantic results, a label-map PNG.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from playground.core.types import Prediction
from playground.scoring.truth import BadTruthError, GroundTruth, decode_segmentation, load_label_map, load_truth

EPILOG = """RESULT: a `predict --json` file (scored by box), a `predict --coco` file (masks as RLE; image ids
other than 0 must be in TRUTH), or a label-map PNG for semantic models (pass --model for its class names, e.g.
--model fcn, or --labels). TRUTH: a COCO instances JSON (boxes, polygons or RLE), or a label-map PNG in
the model's own class ids."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.splitlines()[0]
    parser.epilog = EPILOG
    parser.add_argument("result", type=Path, help="predict --json or --coco output, or a label-map PNG")
    parser.add_argument("truth", type=Path, help="COCO instances JSON, or a label-map PNG (semantic)")
    parser.add_argument("--json", type=Path, help="write {model, task, metrics} here")
    parser.add_argument("--threshold", type=float, default=0.0, help="lowest score counted in tp/fp (AP uses all)")
    parser.add_argument("--task", help="override the task: detection, instance, panoptic, semantic")
    parser.add_argument("--model", help="the model key, for a COCO results file or a label-map PNG")
    parser.add_argument("--labels", help="class names of a label-map PNG, comma-separated in id order")
    parser.set_defaults(run=run_score)


def run_score(args: argparse.Namespace) -> int:
    from playground.scoring.metrics import score

    start = time.perf_counter()
    prediction, truth = read_inputs(args)
    result = score(prediction, truth, threshold=args.threshold).to_json()
    result["seconds"] = round(time.perf_counter() - start, 3)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


def read_inputs(args: argparse.Namespace) -> tuple[Prediction, GroundTruth]:
    raw = read_bytes(args.result)
    if raw.startswith(b"\x89PNG"):
        mapped = load_label_map(raw, None, args.result.name)
        prediction = Prediction(
            model=args.model or args.result.stem,
            task="semantic",
            weights="pretrained",
            image_size=mapped.image_size,
            label_names=label_names(args, mapped.label_map),
            semantic_map=mapped.label_map,
        )
        return prediction, load_truth(args.truth, prediction.image_size)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadTruthError(f"{args.result.name} is neither JSON nor a PNG label map ({error}).") from None
    if isinstance(data, dict) and "instances" in data:
        width, height = data["image_size"]
        truth = load_truth(args.truth, (height, width))
        return from_result_json(data, args.task), truth
    if isinstance(data, dict) and isinstance(data.get("annotations"), list) and "images" not in data:
        data = with_category_names(data)  # a --coco file of labels that are not COCO's: its own categories
    if isinstance(data, list):
        ids = {entry.get("image_id") for entry in data if isinstance(entry, dict)}
        if len(ids) > 1:
            raise BadTruthError(f"{args.result.name} holds results for {len(ids)} images; score one at a time.")
        image_id = next(iter(ids), 0)
        truth = load_truth(args.truth, image_id=image_id or None)  # predict --coco writes image id 0: any image
        if truth.label_map is not None:
            raise BadTruthError("score a COCO results file against a COCO instances JSON, not a PNG.")
        return from_coco_results(data, truth.image_size, args.model or args.result.stem, args.task), truth
    raise BadTruthError(f"{args.result.name}: expected a predict --json object or a --coco results list.")


def with_category_names(data: dict[str, Any]) -> list[dict]:
    """The ``annotations`` of a self-describing ``--coco`` file, each named from its ``categories``."""
    names = {c.get("id"): c.get("name") for c in data.get("categories", []) if isinstance(c, dict)}
    entries = [entry for entry in data["annotations"] if isinstance(entry, dict)]
    return [{"category_name": names.get(e.get("category_id"), e.get("category_id")), **e} for e in entries]


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise BadTruthError(f"{path}: cannot read it ({error.strerror}).") from None


def label_names(args: argparse.Namespace, ids: np.ndarray) -> dict[int, str]:
    """Class names of a label-map PNG: --labels, or the torchvision checkpoint's categories, or "class N"."""
    if args.labels:
        return dict(enumerate(name.strip() for name in args.labels.split(",")))
    if args.model:
        from playground.core.registry import get_spec

        spec = get_spec(args.model)
        if spec.source == "torchvision":
            import torchvision.models.segmentation

            enum_name, member = spec.checkpoint.split(".")
            return dict(enumerate(getattr(torchvision.models.segmentation, enum_name)[member].meta["categories"]))
    return {int(i): f"class {int(i)}" for i in np.unique(ids)}


def from_result_json(data: dict[str, Any], task: str | None) -> Prediction:
    """A box-only `Prediction` from ``predict --json`` output (masks are not in that file)."""
    instances = data["instances"]
    names = {int(item.get("class_id", index)): item["label"] for index, item in enumerate(instances)}
    if (task or data["task"]) == "semantic":
        raise BadTruthError("predict --json holds only area fractions for semantic models: score its label-map PNG.")
    width, height = data["image_size"]
    return Prediction(
        model=data["model"],
        task=task or data["task"],
        weights=data.get("weights", "pretrained"),
        image_size=(height, width),
        label_names=names,
        boxes=[item["box"] for item in instances],
        scores=[item["score"] for item in instances],
        class_ids=[int(item.get("class_id", index)) for index, item in enumerate(instances)],
    )


def from_coco_results(entries: list[dict], image_size: tuple[int, int], model: str, task: str | None) -> Prediction:
    """A `Prediction` from COCO results: boxes and RLE masks, or (entries without a score, as
    ``predict --coco`` writes for semantic models) a label map."""
    names = {int(e["category_id"]): str(e.get("category_name", e["category_id"])) for e in entries}
    masks = [decode_segmentation(e.get("segmentation"), image_size, f"result {i}") for i, e in enumerate(entries)]
    common: dict[str, Any] = {"model": model, "weights": "pretrained", "image_size": image_size, "label_names": names}
    if entries and all("score" not in e for e in entries):
        semantic = np.zeros(image_size, np.int32)
        for entry, mask in zip(entries, masks):
            semantic[mask] = entry["category_id"]
        return Prediction(task="semantic", semantic_map=semantic, **common)
    boxes = [[x, y, x + w, y + h] for x, y, w, h in (e["bbox"] for e in entries)]
    has_masks = bool(entries) and all(mask is not None for mask in masks)
    return Prediction(
        task=task or ("instance" if has_masks else "detection"),
        boxes=boxes,
        scores=[e["score"] for e in entries],
        class_ids=[e["category_id"] for e in entries],
        masks=np.stack(masks) if has_masks else None,
        **common,
    )
