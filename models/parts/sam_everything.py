"""SAM's automatic mask generation ("segment everything") on a cached image embedding.

The ``mask-generation`` pipeline's steps, with the image processor's own ``generate_crop_boxes``,
``filter_masks`` and ``post_process_for_mask_generation``, on one crop layer: a
``points_per_side`` grid of point prompts, decoded ``points_per_batch`` at a time, filtered by
``pred_iou_thresh`` and ``stability_score_thresh``, then box NMS at ``nms_thresh``. The
pipeline itself cannot be used: it re-runs the image encoder, and ours is cached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from transformers import SamModel, SamProcessor

from playground.core.errors import BadPromptError

MASK_CHUNK = 16
"""Masks upsampled to image size at once: bounds the (chunk, 1024, 1024) float intermediate."""


@dataclass(frozen=True)
class Everything:
    """Settings of automatic mask generation (the defaults are SAM's own)."""

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    nms_thresh: float = 0.7


def check_everything(settings: Everything) -> None:
    """Raise `BadPromptError` for grid or threshold settings out of range."""
    if not 1 <= settings.points_per_side <= 128 or settings.points_per_batch < 1:
        raise BadPromptError("points_per_side must be 1..128 and points_per_batch at least 1.")
    for name in ("pred_iou_thresh", "stability_score_thresh", "nms_thresh"):
        value = getattr(settings, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1):
            raise BadPromptError(f"{name} {value!r}: expected a number in 0..1.")


def segment_everything(
    model: SamModel,
    processor: SamProcessor,
    embedding: dict[str, torch.Tensor],
    image: np.ndarray,
    settings: Everything,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Automatic mask generation on the cached embedding (the ``mask-generation`` pipeline's steps).

    ``embedding`` holds ``image_embeddings`` (1, C, h, w) and ``reshaped_input_sizes`` (2,).
    Returns scores (N,), masks (N, H, W) bool and boxes (N, 4) XYXY pixels.

    Masks failing ``pred_iou_thresh`` are dropped before upscaling, and the rest are upscaled
    ``MASK_CHUNK`` at a time, so a batch never holds (points_per_batch * 3, 1024, 1024) floats.
    """
    image_processor = processor.image_processor
    crop_boxes, grid, _, grid_labels = image_processor.generate_crop_boxes(
        image, processor.target_size, points_per_crop=settings.points_per_side, device=model.device
    )
    sizes = ([image.shape[:2]], [embedding["reshaped_input_sizes"].tolist()])
    rle_masks, scores, boxes = [], [], []
    for start in range(0, grid.shape[1], settings.points_per_batch):
        stop = start + settings.points_per_batch
        out = model(
            image_embeddings=embedding["image_embeddings"],
            input_points=grid[:, start:stop],
            input_labels=grid_labels[:, start:stop],
            multimask_output=True,
        )
        iou, low_res = out.iou_scores[0].flatten(), out.pred_masks[0].flatten(0, 1)  # (b * 3,), (b * 3, h, w)
        if settings.pred_iou_thresh > 0:  # filter_masks' first test, done before the costly upscaling
            keep = iou > settings.pred_iou_thresh
            iou, low_res = iou[keep], low_res[keep]
        for chunk_iou, chunk in zip(iou.split(MASK_CHUNK), low_res.split(MASK_CHUNK)):
            logits = image_processor.post_process_masks([chunk[:, None]], *sizes, binarize=False)[0]
            kept = image_processor.filter_masks(
                logits,
                chunk_iou[:, None],
                image.shape[:2],
                crop_boxes[0],
                settings.pred_iou_thresh,
                settings.stability_score_thresh,
            )
            rle_masks.extend(kept[0])
            scores.append(kept[1])
            boxes.append(kept[2])
    height, width = image.shape[:2]
    if not rle_masks:
        empty = torch.zeros((0, height, width), dtype=torch.bool)  # on the host, as the RLE-decoded masks are
        return torch.zeros(0, device=model.device), empty, torch.zeros((0, 4), device=model.device)
    masks, scores, _, boxes = image_processor.post_process_for_mask_generation(
        rle_masks, torch.cat(scores), torch.cat(boxes), settings.nms_thresh
    )
    return scores, torch.stack(masks), boxes
