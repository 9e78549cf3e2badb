"""Work on stacks of full-image masks inside each mask's extent, not over the whole image.

A (N, H, W) stack of instance masks at 1024 px holds N MB, but each mask usually covers a small part
of the image. Re-thresholding, selecting and measuring stored masks (every slider move) touch only
each mask's extent: the box outside which its mask and soft mask are all zero. numpy has no sparse
or cropped mask type, and supervision's `Detections` keeps full masks too, hence these helpers.

Extents are (N, 4) int64 rows ``y0, x0, y1, x1``, end-exclusive pixels; an empty mask has
``y0 == y1``.
"""

from __future__ import annotations

import numpy as np


def extents_of(*stacks: np.ndarray | None) -> np.ndarray:
    """(N, 4) extent of each instance over every given (N, H, W) stack (bool or uint8; None skipped)."""
    import cv2  # on first use: the app imports this module before it serves its page

    present = [stack for stack in stacks if stack is not None]
    count = len(present[0]) if present else 0
    extents = np.zeros((count, 4), np.int64)
    for index in range(count):
        rows = np.zeros(present[0].shape[1], bool)
        cols = np.zeros(present[0].shape[2], bool)
        for stack in present:
            plane = stack[index].view(np.uint8)
            rows |= cv2.reduce(plane, 1, cv2.REDUCE_MAX).ravel() > 0
            cols |= cv2.reduce(plane, 0, cv2.REDUCE_MAX).ravel() > 0
        row_ids, col_ids = np.flatnonzero(rows), np.flatnonzero(cols)
        if len(row_ids):
            extents[index] = (row_ids[0], col_ids[0], row_ids[-1] + 1, col_ids[-1] + 1)
    return extents


def take(stack: np.ndarray, indices: np.ndarray, extents: np.ndarray) -> np.ndarray:
    """``stack[indices]`` ((K, H, W)), copying only each mask's extent; ``extents`` is of ``stack``.

    The zeroed output comes from calloc, so pages outside every extent are never touched.
    """
    out = np.zeros((len(indices), *stack.shape[1:]), stack.dtype)
    for position, index in enumerate(indices.tolist()):
        y0, x0, y1, x1 = extents[index].tolist()
        out[position, y0:y1, x0:x1] = stack[index, y0:y1, x0:x1]
    return out


def binarise(probs: np.ndarray, extents: np.ndarray, threshold: float) -> np.ndarray:
    """(N, H, W) bool ``probs >= threshold * 255`` for uint8 soft masks; ``threshold`` in (0, 1]."""
    masks = np.zeros(probs.shape, bool)
    cutoff = threshold * 255
    for index, (y0, x0, y1, x1) in enumerate(extents.tolist()):
        masks[index, y0:y1, x0:x1] = probs[index, y0:y1, x0:x1] >= cutoff
    return masks


def areas(masks: np.ndarray, extents: np.ndarray) -> np.ndarray:
    """(N,) int64 pixels set in each (H, W) mask of ``masks``."""
    return np.array(
        [np.count_nonzero(masks[i, y0:y1, x0:x1]) for i, (y0, x0, y1, x1) in enumerate(extents.tolist())], np.int64
    )
