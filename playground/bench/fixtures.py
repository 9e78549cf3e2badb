"""Synthetic inputs: a Mask R-CNN-shaped blob prediction, a noise image, and the prompts each task needs."""

from __future__ import annotations

import numpy as np

from playground.core.types import Prediction

OVERLAY_SIDE = 1024
"""Side in pixels of the synthetic image the overlay and re-filter figures use."""
OVERLAY_MASKS = 100


def prompt_params(task: str, image: np.ndarray) -> dict[str, object]:
    """The preprocessing params a model of ``task`` needs: a centre point for SAM, a phrase for text models."""
    height, width = image.shape[:2]
    if task == "prompt":
        return {"points": ((width / 2, height / 2, 1),)}
    if task == "text":
        return {"text": "person"}
    return {}


def blob_prediction(side: int = OVERLAY_SIDE, count: int = OVERLAY_MASKS, seed: int = 0) -> Prediction:
    """A Mask R-CNN-shaped prediction on a ``side`` x ``side`` image: ``count`` elliptic blobs
    (20..200 px across) with boxes, uniform scores, COCO-like class ids and soft masks."""
    import cv2

    rng = np.random.default_rng(seed)
    probs = np.zeros((count, side, side), np.uint8)
    boxes = np.zeros((count, 4), np.float32)
    for index in range(count):
        width, height = rng.integers(20, 200, 2)
        x, y = rng.integers(0, side - 200, 2)
        center, axes = (int(x + width // 2), int(y + height // 2)), (int(width // 2), int(height // 2))
        cv2.ellipse(probs[index], center, axes, 0, 0, 360, int(rng.integers(64, 256)), -1)
        boxes[index] = (x, y, x + width, y + height)
    return Prediction(
        model="mask-rcnn",
        task="instance",
        weights="random",
        image_size=(side, side),
        label_names={i: f"class {i}" for i in range(91)},
        boxes=boxes,
        scores=rng.random(count),
        class_ids=rng.integers(1, 91, count),
        masks=probs >= 128,
        mask_probs=probs,
    )


def noise_image(side: int = OVERLAY_SIDE) -> np.ndarray:
    """(side, side, 3) uint8 random RGB."""
    return np.random.default_rng(1).integers(0, 256, (side, side, 3), np.uint8)
