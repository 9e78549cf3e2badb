"""Masks and class scores brought to the image's size a few at a time, straight into what is stored.

A `Prediction` stores ``masks`` (N, H, W) bool and ``mask_probs`` (N, H, W) uint8. The libraries
bring all N masks to the image's size at once, in float32: 16 MB a mask at 2048 px, so 1.6 GB for
100 masks, and as much again for each elementwise step after. Here each chunk of masks is made by
the library's own function and converted before the next one is made.

- Mask R-CNN: torchvision's ``GeneralizedRCNNTransform.postprocess`` pastes all N masks as one
  float32 (N, 1, H, W) stack and stacks it again.
- SAM and SAM 2: their processors' ``post_process_masks`` upsample the low-res logits (see
  `masks_from_logits`) for every box at once, as float32 at the image's size.
- MaskFormer and Mask2Former's semantic maps: their processors upsample all 133 class score maps
  before the per-pixel argmax (`upsampled_argmax`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import paste_masks_in_image

from playground.core.mask_extents import extents_of

CLASSES_PER_CHUNK = 16
"""Class score maps upsampled at once by `upsampled_argmax`: 256 MB of float32 at 2048 px."""
ONE_AT_A_TIME = ("cpu",)
"""Devices `pasted_masks` pastes one mask per call on: measured on CPUs (docs/architecture.md, Memory).
Elsewhere (CUDA, MPS) it pastes `MASKS_PER_PASTE` at once on the device, as torchvision's one call
for all of them does, and copies each chunk to the host once: a host copy per mask stalls a GPU."""
MASKS_PER_PASTE = 16
"""Masks pasted at once off the CPU: 256 MB of float32 at 2048 px."""


def pasted_masks(
    roi_masks: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``mask_probs`` (N, H, W) uint8 round(p * 255) and ``masks`` (N, H, W) p >= 0.5 from the mask
    head's (N, 1, 28, 28) probabilities in their ``boxes`` (N, 4) XYXY pixels of an image of ``size``,
    and their (N, 4) extents (`Prediction.mask_extents`).

    On a CPU (`ONE_AT_A_TIME`), torchvision's `paste_masks_in_image` pastes each mask alone: the float32 plane
    (H, W) lives only while it is converted, and only the rows and columns where it is non-zero are
    written, so the rest of the two zeroed (calloc) stacks is never touched, nor read again to find
    the extents (a first read of each untouched page costs a page fault, which drawing would pay
    for every page of every mask).
    """
    probs = np.zeros((len(roi_masks), *size), np.uint8)
    masks = np.zeros((len(roi_masks), *size), bool)
    if roi_masks.device.type not in ONE_AT_A_TIME:
        for start in range(0, len(roi_masks), MASKS_PER_PASTE):
            chunk = slice(start, start + MASKS_PER_PASTE)
            planes = paste_masks_in_image(roi_masks[chunk], boxes[chunk], size)[:, 0]
            probs[chunk] = (planes * 255).round().to(torch.uint8).cpu().numpy()
            masks[chunk] = (planes >= 0.5).cpu().numpy()
        return {"mask_probs": probs, "masks": masks}, extents_of(probs)
    extents = np.zeros((len(roi_masks), 4), np.int64)
    for index in range(len(roi_masks)):
        plane = paste_masks_in_image(roi_masks[index : index + 1], boxes[index : index + 1], size)[0, 0]
        ((y0, x0, y1, x1),) = extents_of((plane > 0).cpu().numpy()[None]).tolist()
        if y1 > y0:
            crop = plane[y0:y1, x0:x1]
            crop_probs = (crop * 255).round().to(torch.uint8).cpu().numpy()
            probs[index, y0:y1, x0:x1] = crop_probs
            masks[index, y0:y1, x0:x1] = (crop >= 0.5).cpu().numpy()
            extents[index] = extents_of(crop_probs[None])[0] + (y0, x0, y0, x0)  # mask pixels have probs > 0
    return {"mask_probs": probs, "masks": masks}, extents


def masks_from_logits(chunks: Iterable[torch.Tensor], count: int, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """``masks`` (count, H, W) bool, logit > 0, and ``mask_probs`` (count, H, W) uint8 round(sigmoid x
    255) from ``chunks``: (n, H, W) mask logits at the image's ``size``, in order, ``count`` in all."""
    masks = np.zeros((count, *size), bool)
    probs = np.zeros((count, *size), np.uint8)
    start = 0
    for logits in chunks:
        chunk = slice(start, start + len(logits))
        masks[chunk] = (logits > 0).cpu().numpy()
        probs[chunk] = logits.sigmoid_().mul_(255).round_().to(torch.uint8).cpu().numpy()
        start += len(logits)
    return {"masks": masks, "mask_probs": probs}


def upsampled_argmax(scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(H, W) int64: at each pixel, the class whose score in ``scores`` (C, h, w), upsampled bilinearly
    (``align_corners=False``) to ``size``, is highest; the first such class on a tie, as ``argmax``
    over the whole upsampled (C, H, W) stack gives. Upsampling treats each class on its own, so
    `CLASSES_PER_CHUNK` classes at a time give the same scores."""
    best = labels = None
    for start in range(0, len(scores), CLASSES_PER_CHUNK):
        chunk = F.interpolate(scores[None, start : start + CLASSES_PER_CHUNK], size=size, mode="bilinear")[0]
        chunk_best, chunk_labels = chunk.max(dim=0)  # the first maximum's index, as argmax, and faster
        if best is None:
            best, labels = chunk_best, chunk_labels
        else:
            better = chunk_best > best  # strictly: a tie keeps the earlier class
            best = torch.where(better, chunk_best, best)
            labels = torch.where(better, chunk_labels + start, labels)
    return labels
