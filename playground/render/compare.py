"""Compare models on one image: a summary row per model, and what only A, only B, or both found.

supervision is imported where it is used: it takes over a second to import, and the app imports
this module before it serves its first page.

Pixel-level differences are drawn with supervision's `ComparisonAnnotator` (masks when both
models give masks, else boxes). Object-level agreement matches instances of the same label
greedily by box IoU, highest scores first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from playground.core.registry import get_spec
from playground.core.types import BACKGROUND_LABELS, Prediction, boxes_from_masks

if TYPE_CHECKING:
    import supervision as sv

ONLY_A, ONLY_B, BOTH = "#e63c3c", "#2878f0", "#28c85a"
SUMMARY_HEADERS = ["model", "task", "count", "mean score", "latency ms", "state", "weights", "found"]
"""The long "found" column comes last, so it wraps instead of pushing the others off the table."""


@dataclass(frozen=True)
class Agreement:
    """Instances matched between two models (same label, IoU >= the threshold), and the rest."""

    both: int
    only_a: int
    only_b: int


def found_counts(prediction: Prediction) -> Counter[str]:
    """Instances per class name, and 1 per class of a semantic map covering at least 1% of the
    image; background and "N/A" left out."""
    counts = Counter(label for label in prediction.labels if label not in BACKGROUND_LABELS)
    if prediction.semantic_map is not None:
        areas = prediction.semantic_areas().items()
        counts.update({label: 1 for label, area in areas if area >= 0.01 and label not in BACKGROUND_LABELS})
    return counts


def summary_row(prediction: Prediction) -> list[object]:
    """One row of the compare table for an already filtered prediction; "count" counts what
    "found" lists (see `found_counts`)."""
    counts = found_counts(prediction)
    found = ", ".join(f"{label} x{n}" for label, n in counts.most_common(6)) or "nothing"
    mean_score = round(float(prediction.scores.mean()), 3) if len(prediction) else None
    return [
        get_spec(prediction.model).title,
        prediction.task,
        sum(counts.values()),
        mean_score,
        round(sum(prediction.timings_ms.values())),
        prediction.state,
        prediction.weights,
        found,
    ]


def error_row(title: str) -> list[object]:
    """The compare table's row for a model that failed (its panel shows the message, once)."""
    return [title, "", 0, None, None, "error", "", "see its panel"]


def detections_of(prediction: Prediction) -> sv.Detections:
    """Instances, or else the semantic map's non-background classes, as supervision detections."""
    import supervision as sv

    from playground.render.overlay import to_detections

    if len(prediction):
        return to_detections(prediction)
    if prediction.semantic_map is None:
        return sv.Detections.empty()
    ids = [c for c in np.unique(prediction.semantic_map).tolist() if prediction.label_name(c) not in BACKGROUND_LABELS]
    if not ids:
        return sv.Detections.empty()
    masks = np.stack([prediction.semantic_map == c for c in ids])
    return sv.Detections(xyxy=boxes_from_masks(masks), mask=masks, class_id=np.array(ids))


def difference_overlay(image: np.ndarray, a: Prediction, b: Prediction) -> np.ndarray:
    """(H, W, 3) uint8: red where only A found something, blue only B, green both."""
    import supervision as sv

    annotator = sv.ComparisonAnnotator(
        color_1=sv.Color.from_hex(ONLY_A),
        color_2=sv.Color.from_hex(ONLY_B),
        color_overlap=sv.Color.from_hex(BOTH),
        opacity=0.55,
    )  # no labels baked in: the page shows the legend as text, which wraps and follows the theme
    detections_a, detections_b = detections_of(a), detections_of(b)
    if (detections_a.mask is None) != (detections_b.mask is None):  # compare like with like: boxes
        detections_a.mask = detections_b.mask = None
    scene = np.ascontiguousarray(image[..., ::-1])
    return np.ascontiguousarray(annotator.annotate(scene, detections_a, detections_b)[..., ::-1])


def agreement(a: Prediction, b: Prediction, iou_threshold: float = 0.5) -> Agreement:
    """Greedy one-to-one matching of same-label instances by box IoU, best scores first."""
    import supervision as sv

    if not len(a) or not len(b):
        return Agreement(0, len(a), len(b))
    iou = sv.box_iou_batch(a.boxes, b.boxes)
    same_label = np.array(a.labels)[:, None] == np.array(b.labels)[None, :]
    iou = np.where(same_label, iou, 0.0)
    matched_b: set[int] = set()
    both = 0
    for i in np.argsort(-a.scores):
        candidates = [j for j in np.argsort(-iou[i]) if iou[i, j] >= iou_threshold and j not in matched_b]
        if candidates:
            matched_b.add(int(candidates[0]))
            both += 1
    return Agreement(both, len(a) - both, len(b) - both)
