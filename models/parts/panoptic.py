"""Helpers shared by the panoptic adapters (MaskFormer, DETR): things vs stuff, segments -> instances.

A panoptic result gives every pixel one segment. Countable "things" (person, car) get one segment
per object; amorphous "stuff" (sky, road) gets one segment per class. transformers'
``post_process_panoptic_segmentation`` returns a segment-id map and a list of segment dicts
(``id``, ``label_id``, ``score``, ``was_fused``); `segments_to_fields` turns them into
`Prediction` instances with one (H, W) mask each.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from playground.core.labels import coco_thing_names
from playground.core.types import boxes_from_masks

MASK_THRESHOLD = 0.5
"""Mask probability at which a query's pixels count towards its area (the library default)."""
OVERLAP_THRESHOLD = 0.8
"""Fraction of its mask a query must keep after overlaps to stay a panoptic segment (the
transformers post-processing default, as in MaskFormer's and DETR's own code)."""


def thing_ids_by_name(id2label: dict[int, str]) -> frozenset[int]:
    """Class ids whose label name is a COCO thing category (for configs with only ``id2label``)."""
    things = coco_thing_names()
    return frozenset(i for i, name in id2label.items() if name in things)


def segments_to_fields(
    segmentation: torch.Tensor, segments: list[dict[str, Any]], thing_ids: frozenset[int]
) -> dict[str, np.ndarray]:
    """A segment-id map (H, W) and its segment dicts -> `Prediction` fields, one instance a segment.

    Returns `masks_to_fields`' fields plus ``is_thing`` (N,) bool.
    """
    seg_map = segmentation.to(torch.int64).cpu().numpy()
    masks = np.stack([seg_map == s["id"] for s in segments]) if segments else np.zeros((0, *seg_map.shape), bool)
    fields = masks_to_fields(masks, segments)
    fields["is_thing"] = np.array([int(c) in thing_ids for c in fields["class_ids"]], bool)
    return fields


def masks_to_fields(masks: np.ndarray, segments: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Masks (N, H, W) bool and their segment dicts -> ``masks``, ``class_ids`` (N,), ``scores`` (N,)
    and ``boxes`` (N, 4): the tight XYXY pixel box of each mask (`boxes_from_masks`).
    """
    return {
        "masks": masks,
        "class_ids": np.array([s["label_id"] for s in segments], np.int64),
        "scores": np.array([s["score"] for s in segments], np.float32),
        "boxes": boxes_from_masks(masks),
    }


def panoptic_fields(adapter: Any, outputs: Any, image: np.ndarray, threshold: float) -> dict[str, Any]:
    """`Prediction` fields from the processor's ``post_process_panoptic_segmentation`` at the size
    of ``image`` (H, W, 3), stuff fused. ``adapter`` is a panoptic adapter: it has ``processor``,
    ``thing_ids``, ``stuff_ids`` and ``floor``; ``threshold`` is its query-score threshold."""
    result = adapter.processor.post_process_panoptic_segmentation(
        outputs,
        threshold=adapter.floor(threshold),
        mask_threshold=adapter.floor(MASK_THRESHOLD),
        overlap_mask_area_threshold=adapter.floor(OVERLAP_THRESHOLD),
        label_ids_to_fuse=set(adapter.stuff_ids),
        target_sizes=[image.shape[:2]],
    )[0]
    return segments_to_fields(result["segmentation"], result["segments_info"], adapter.thing_ids)
