"""Score one model's `Prediction` against `GroundTruth` on the same image.

- Detection and instance (and text, whose phrases are its classes): pycocotools' ``COCOeval`` on the
  single image gives AP@[.5:.95], AP@0.5 and AP@0.75 (iouType ``segm`` when prediction and truth both
  have masks, else ``bbox``). As in COCO, AP averages over the classes that have truth, so a class
  only predicted does not lower AP; it does lower precision. ``tp``/``fp``/``fn`` match predictions
  scoring at least the threshold, best score first, to an unmatched truth object of the same class at
  IoU >= 0.5 (the IoU COCOeval uses); precision = tp / (tp + fp), recall = tp / (tp + fn).
- Semantic: IoU per class and their mean (mIoU) over the classes present in truth or prediction,
  background included.
- Panoptic: PQ, SQ and RQ as defined by Kirillov et al., "Panoptic Segmentation", CVPR 2019: per
  class, segments match when their IoU > 0.5 (unique by construction); SQ = mean IoU of the matches,
  RQ = TP / (TP + FP/2 + FN/2), PQ = SQ x RQ; each averaged over the classes present in truth or
  prediction, as panopticapi does. Void and crowd regions are not treated specially here.
- Prompt (SAM): mask IoU of the best mask against the truth object under the click or the box.
Labels match by `canonical_label` (VOC names mapped to COCO's; open-vocabulary phrases exactly).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from playground.core.errors import UnknownModelError
from playground.core.registry import get_spec
from playground.core.types import Prediction
from playground.scoring.truth import BACKGROUND, BadTruthError, GroundTruth, canonical_label, object_mask

IOU = 0.5
HEADLINE = {
    "detection": "ap",
    "instance": "ap",
    "text": "ap",
    "semantic": "miou",
    "panoptic": "pq",
    "prompt": "mask_iou",
}
"""The metric each task's table is sorted by, best first."""


@dataclass(frozen=True)
class Published:
    """A model's own published score: ``value`` in percent, as its source prints it."""

    value: float
    metric: str
    dataset: str
    source: str

    def __str__(self) -> str:
        return f"{self.value:g} {self.metric} on {self.dataset}"


MODEL_CARD_SCORES = {
    ("detr", "detection"): Published(42.0, "box AP", "COCO val2017", "facebook/detr-resnet-50 model card"),
    ("detr-panoptic", "panoptic"): Published(43.4, "PQ", "COCO val2017", "facebook/detr-resnet-50-panoptic model card"),
    ("grounding-dino", "detection"): Published(
        48.4, "box AP (zero-shot)", "COCO val2017", "Grounding DINO paper (arXiv:2303.05499), Table 2, Swin-T"
    ),
}
"""Numbers for checkpoints without metrics in their metadata. Kept here until `ModelSpec.published`
lands; torchvision checkpoints are read from their weights enum at run time instead."""
TORCHVISION_METRICS = {
    "detection": ("box_map", "box AP"),
    "instance": ("mask_map", "mask AP"),
    "semantic": ("miou", "mIoU"),
}


def published(key: str, task: str) -> Published | None:
    """The checkpoint's published score for ``task``: torchvision's ``meta["_metrics"]``, or the
    model-card table above; None when neither has one."""
    spec = get_spec(key)
    if spec.source == "torchvision" and task in TORCHVISION_METRICS:
        import torchvision.models.detection
        import torchvision.models.segmentation

        enum_name, member = spec.checkpoint.split(".")
        for module in (torchvision.models.detection, torchvision.models.segmentation):
            if hasattr(module, enum_name):
                for dataset, metrics in getattr(module, enum_name)[member].meta.get("_metrics", {}).items():
                    name, label = TORCHVISION_METRICS[task]
                    if name in metrics:
                        return Published(
                            metrics[name], label, dataset.replace("-", " "), f"torchvision {spec.checkpoint} meta"
                        )
    return MODEL_CARD_SCORES.get((key, task))


@dataclass(frozen=True)
class Matches:
    """What to draw: XYXY boxes of true positives, false positives and missed truth objects, and,
    for dense tasks, (H, W) bool masks of the same three kinds of pixels."""

    tp: list[tuple[float, float, float, float]] = field(default_factory=list)
    fp: list[tuple[float, float, float, float]] = field(default_factory=list)
    fn: list[tuple[float, float, float, float]] = field(default_factory=list)
    pixels: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


@dataclass(frozen=True)
class Score:
    """One model's metrics on one image, what to draw, and its published number."""

    model: str
    task: str
    metrics: dict[str, Any]
    matches: Matches
    published: Published | None = None

    @property
    def headline(self) -> float | None:
        return self.metrics.get(HEADLINE.get(self.task, "ap"))

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"model": self.model, "task": self.task, "metrics": self.metrics}
        if self.published is not None:
            result["published"] = {"value": self.published.value, "metric": self.published.metric}
            result["published"] |= {"dataset": self.published.dataset, "source": self.published.source}
        return result


def score(
    prediction: Prediction,
    truth: GroundTruth,
    threshold: float = 0.0,
    point: tuple[float, float] | None = None,
    box: tuple[float, float, float, float] | None = None,
) -> Score:
    """Score ``prediction`` by its task. AP uses every prediction; tp/fp/fn those scoring at least
    ``threshold``. ``point`` / ``box`` are the prompt of a SAM prediction."""
    if tuple(prediction.image_size) != tuple(truth.image_size):
        h, w = truth.image_size
        raise BadTruthError(f"the truth is for a {w}x{h} image; {prediction.model}'s result is for another size.")
    task = prediction.task
    if task == "semantic" or prediction.semantic_map is not None:
        metrics, matches = semantic_metrics(prediction, truth)
        task = "semantic"
    elif task == "panoptic":
        metrics, matches = panoptic_metrics(prediction, truth)
    elif task == "prompt":
        metrics, matches = prompt_metrics(prediction, truth, point, box)
    else:
        metrics, matches = instance_metrics(prediction, truth, threshold)
    return Score(prediction.model, task, metrics, matches, published_or_none(prediction.model, task))


def published_or_none(key: str, task: str) -> Published | None:
    try:
        return published(key, task)
    except UnknownModelError:  # a model outside the registry (a COCO file from elsewhere) has no card
        return None


def objects_of(truth: GroundTruth) -> list:
    if not truth.objects:
        raise BadTruthError(f"{truth.source} is a label map: it can score semantic models only.")
    return list(truth.objects)


def instance_metrics(prediction: Prediction, truth: GroundTruth, threshold: float) -> tuple[dict, Matches]:
    """AP from COCOeval, and greedy tp/fp/fn at IoU 0.5 (see the module docstring)."""
    from pycocotools import mask as mask_utils

    objects = objects_of(truth)
    use_masks = prediction.masks is not None and truth.has_masks
    iou_type = "segm" if use_masks else "bbox"
    labels = [canonical_label(name) for name in prediction.labels]
    names = sorted({obj.label for obj in objects} | set(labels))
    category = {name: index + 1 for index, name in enumerate(names)}

    def geometry(box, mask):
        if use_masks:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            return rle
        x1, y1, x2, y2 = (float(v) for v in box)
        return [x1, y1, x2 - x1, y2 - y1]

    truth_geoms = [geometry(obj.box, obj.mask) for obj in objects]
    masks = prediction.masks if use_masks else [None] * len(prediction)
    pred_geoms = [geometry(b, m) for b, m in zip(prediction.boxes, masks)]
    ap = coco_ap(prediction, labels, pred_geoms, objects, truth_geoms, category, truth.image_size, iou_type)

    keep = [i for i in np.argsort(-prediction.scores, kind="stable") if prediction.scores[i] >= threshold]
    crowd = [obj.crowd for obj in objects]
    ious = np.asarray(mask_utils.iou([pred_geoms[i] for i in keep], truth_geoms, crowd)) if keep else np.zeros((0, 0))
    matched: set[int] = set()
    matches = Matches()
    for row, index in enumerate(keep):
        candidates = [
            (ious[row, j], j)
            for j, obj in enumerate(objects)
            if obj.label == labels[index] and j not in matched and ious[row, j] >= IOU
        ]
        best = max(candidates, default=None, key=lambda c: (not objects[c[1]].crowd, c[0]))
        box = tuple(float(v) for v in prediction.boxes[index])
        if best is None:
            matches.fp.append(box)
        elif not objects[best[1]].crowd:
            matched.add(best[1])
            matches.tp.append(box)
    matches.fn.extend(obj.box for j, obj in enumerate(objects) if j not in matched and not obj.crowd)
    tp, fp, fn = len(matches.tp), len(matches.fp), len(matches.fn)
    metrics = ap | {
        "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "iou_type": iou_type,
    }
    if prediction.task == "text" and use_masks:
        metrics["mask_iou"] = phrase_mask_iou(prediction, labels, objects)
    return metrics, matches


def coco_ap(prediction, labels, pred_geoms, objects, truth_geoms, category, image_size, iou_type) -> dict:
    """{"ap", "ap50", "ap75"} from pycocotools' COCOeval on this one image (0 when nothing is predicted)."""
    if not len(prediction):
        return {"ap": 0.0, "ap50": 0.0, "ap75": 0.0}
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    height, width = image_size
    key = "segmentation" if iou_type == "segm" else "bbox"
    annotations = []
    for index, (obj, geom) in enumerate(zip(objects, truth_geoms)):
        x1, y1, x2, y2 = obj.box
        ann = {"id": index + 1, "image_id": 1, "category_id": category[obj.label], "iscrowd": int(obj.crowd)}
        ann |= {"bbox": [x1, y1, x2 - x1, y2 - y1], "area": float((x2 - x1) * (y2 - y1))}
        if iou_type == "segm":
            ann |= {"segmentation": geom, "area": float(obj.mask.sum())}
        annotations.append(ann)
    results = [
        {"image_id": 1, "category_id": category[label], key: geom, "score": float(s)}
        for label, geom, s in zip(labels, pred_geoms, prediction.scores)
    ]
    gt = COCO()
    gt.dataset = {
        "images": [{"id": 1, "height": height, "width": width}],
        "annotations": annotations,
        "categories": [{"id": i, "name": n} for n, i in category.items()],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(results), iou_type)
        evaluation.params.imgIds = [1]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    ap, ap50, ap75 = (float(v) for v in evaluation.stats[:3])
    return {k: round(max(v, 0.0), 4) for k, v in (("ap", ap), ("ap50", ap50), ("ap75", ap75))}


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0


def phrase_mask_iou(prediction: Prediction, labels: list[str], objects: list) -> float:
    """Mean over the truth labels a phrase names: IoU of all its masks against all truth masks of it."""
    shared = sorted({obj.label for obj in objects} & set(labels))
    if not shared:
        return 0.0
    ious = []
    for name in shared:
        predicted = prediction.masks[[label == name for label in labels]].any(axis=0)
        true = np.any([o.mask for o in objects if o.label == name], axis=0)
        ious.append(mask_iou(predicted, true))
    return round(float(np.mean(ious)), 4)


def semantic_metrics(prediction: Prediction, truth: GroundTruth) -> tuple[dict, Matches]:
    """IoU per class name and mIoU over classes present in truth or prediction."""
    if prediction.semantic_map is None:
        raise BadTruthError(f"{prediction.model} gave no semantic map to score.")
    names = {i: canonical_label(prediction.label_name(i)) for i in np.unique(prediction.semantic_map).tolist()}
    true_ids, true_names = truth.semantic(prediction.label_names)
    predicted = name_map(prediction.semantic_map, names)
    actual = name_map(true_ids, true_names)
    per_class = {}
    for name in sorted(set(names.values()) | set(true_names.values())):
        per_class[name] = round(mask_iou(predicted == name, actual == name), 4)
    found, real = predicted != BACKGROUND, actual != BACKGROUND
    pixels = (found & (predicted == actual), found & (predicted != actual), real & (predicted != actual))
    miou = round(float(np.mean(list(per_class.values()))), 4)
    return {"miou": miou, "per_class_iou": per_class}, Matches(pixels=pixels)


def name_map(ids: np.ndarray, names: dict[int, str]) -> np.ndarray:
    """(H, W) array of class names for a map of ids."""
    keys = sorted(names)
    table = np.array([names[k] for k in keys], dtype=object)
    return table[np.searchsorted(keys, ids)]


def panoptic_metrics(prediction: Prediction, truth: GroundTruth) -> tuple[dict, Matches]:
    """PQ, SQ and RQ (Kirillov et al. 2019) over classes in truth or prediction, and per class."""
    if prediction.masks is None:
        raise BadTruthError(f"{prediction.model}'s result has no segment masks: PQ needs them.")
    objects = [obj for obj in objects_of(truth) if not obj.crowd]
    true_masks = [object_mask(obj, truth.image_size) for obj in objects]
    labels = [canonical_label(name) for name in prediction.labels]
    matches = Matches()
    per_class: dict[str, dict[str, float]] = {}
    for name in sorted({obj.label for obj in objects} | set(labels)):
        preds = [i for i, label in enumerate(labels) if label == name]
        trues = [j for j, obj in enumerate(objects) if obj.label == name]
        iou_sum, matched_p, matched_t = 0.0, set(), set()
        for i in preds:
            for j in trues:
                iou = mask_iou(prediction.masks[i], true_masks[j])
                if iou > IOU:  # > 0.5 makes the match unique (the paper's Theorem 1)
                    iou_sum, matched_p, matched_t = iou_sum + iou, matched_p | {i}, matched_t | {j}
        tp, fp, fn = len(matched_p), len(preds) - len(matched_p), len(trues) - len(matched_t)
        sq = iou_sum / tp if tp else 0.0
        rq = tp / (tp + fp / 2 + fn / 2)
        per_class[name] = {
            "pq": round(sq * rq, 4),
            "sq": round(sq, 4),
            "rq": round(rq, 4),
            "tp": tp,
            "fp": fp,
            "fn": fn,
        }
        matches.tp.extend(tuple(map(float, prediction.boxes[i])) for i in sorted(matched_p))
        matches.fp.extend(tuple(map(float, prediction.boxes[i])) for i in preds if i not in matched_p)
        matches.fn.extend(objects[j].box for j in trues if j not in matched_t)
    metrics = {k: round(float(np.mean([c[k] for c in per_class.values()])), 4) for k in ("pq", "sq", "rq")}
    return metrics | {"per_class": per_class}, matches


def prompt_metrics(prediction: Prediction, truth: GroundTruth, point, box) -> tuple[dict, Matches]:
    """IoU of the best mask (the first) with the truth object the prompt points at: the one best
    overlapping the prompt box, else the smallest one under the first point, else the best match."""
    if prediction.masks is None or not len(prediction):
        raise BadTruthError(f"{prediction.model} gave no mask to score.")
    objects = objects_of(truth)
    best = prediction.masks[0]
    true_masks = [object_mask(obj, truth.image_size) for obj in objects]
    if box is not None:
        target = max(range(len(objects)), key=lambda j: box_iou(objects[j].box, box))
    elif point is not None:
        x, y = (int(v) for v in point)
        under = [j for j, m in enumerate(true_masks) if 0 <= y < m.shape[0] and 0 <= x < m.shape[1] and m[y, x]]
        if not under:
            raise BadTruthError(f"no truth object lies under the point ({x}, {y}).")
        target = min(under, key=lambda j: true_masks[j].sum())
    else:
        target = max(range(len(objects)), key=lambda j: mask_iou(best, true_masks[j]))
    true = true_masks[target]
    metrics = {"mask_iou": round(mask_iou(best, true), 4), "object": objects[target].label}
    return metrics, Matches(pixels=(best & true, best & ~true, true & ~best))


def box_iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
