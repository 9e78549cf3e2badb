"""`Prediction`: the one result type every adapter returns.

Images are RGB uint8 HWC numpy arrays at every boundary. A prediction holds up to two kinds of
output, always in the pixel space of the input image:

- instances: ``boxes`` (N, 4) float32 XYXY pixels, ``scores`` (N,) float32, ``class_ids`` (N,)
  int64, and optional ``masks`` (N, H, W) bool;
- a dense ``semantic_map`` (H, W) int32 of class ids, for semantic models.

Boolean or integer indexing filters the instances (``pred[pred.scores > 0.5]``), the way
supervision's ``Detections`` does; the semantic map is kept as it is.

Box convention: XYXY in pixels, with the right and bottom edges inclusive, as supervision's
``mask_to_xyxy`` gives them: a mask covering columns 3..7 has x1 = 3 and x2 = 7. A box from a
model's regression head is kept as the model gives it. `boxes_from_masks` makes boxes from masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from playground.core import mask_extents

WeightsMode = Literal["pretrained", "random", "tiny"]
WEIGHT_MODES: tuple[WeightsMode, ...] = ("pretrained", "random", "tiny")
TIMING_STAGES = ("load", "preprocess", "forward", "postprocess")
BACKGROUND_LABELS = frozenset({"__background__", "background", "N/A"})
"""Class names that mean "nothing here": left undrawn and out of comparisons."""
SCORE_FLOOR = 0.05
"""Adapters drop detections scoring below this; the UI's thresholds filter above it."""


def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) bool -> (N, 4) float32 XYXY pixel boxes of each mask, right and bottom edges
    inclusive (supervision's ``mask_to_xyxy`` convention); zeros for an empty mask."""
    boxes = np.zeros((len(masks), 4), np.float32)
    for index, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(rows):
            boxes[index] = (cols[0], rows[0], cols[-1], rows[-1])
    return boxes


@dataclass
class Prediction:
    """What one model found in one image.

    Attributes:
        model: registry key of the model, e.g. ``"detr"``.
        task: the task this output answers: semantic, detection, instance, panoptic, prompt, text.
        weights: which weights produced it: ``pretrained``, ``random`` or ``tiny``.
        image_size: (height, width) of the input image in pixels.
        label_names: class id -> name, from the checkpoint's own metadata.
        boxes: (N, 4) float32, XYXY in pixels.
        scores: (N,) float32 in [0, 1].
        class_ids: (N,) int64 keys of ``label_names``.
        masks: (N, H, W) bool instance masks, or None.
        mask_probs: (N, H, W) uint8 soft masks (probability x 255) for models that give them,
            so a mask-threshold slider can re-binarise ``masks`` without a forward pass.
        mask_threshold: the probability in [0, 1] at which ``masks`` were binarised from ``mask_probs``.
        is_thing: (N,) bool for panoptic segments: True for countable "things", False for "stuff".
        semantic_map: (H, W) int32 class id per pixel, or None.
        timings_ms: milliseconds per stage (load, preprocess, forward, postprocess).
        checkpoint: the checkpoint that made it (hub id, weights enum or local path).
        device: where it ran, e.g. ``"cpu"``.
        precision: what its heavy part ran in: ``fp32``, ``bf16`` or ``fp16``.
        cold: True when this call loaded the model.
        cached: True when it was served from the result cache (with its original timings).
        mode: how a prompt model ran: ``"prompt"``, ``"boxes"`` or ``"everything"`` ("" otherwise).
        reuse: what an adapter's own cache saved, e.g. ``"image encoded in 3.1 s"`` or ``"cached"``.
        warning: a sentence the user should read (a text prompt cut short, boxes capped), or "".
        meta: diagnostic extras for the JSON (token lists, per-part timings).
        explain: small arrays captured from the same forward pass for the Explain views (a coarse
            class map, attention maps, anchor-score histograms...), named per model family; kept
            with the cached result and counted in `nbytes`. Empty when the model captures nothing.
    """

    model: str
    task: str
    weights: WeightsMode
    image_size: tuple[int, int]
    label_names: dict[int, str]
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    masks: np.ndarray | None = None
    mask_probs: np.ndarray | None = None
    mask_threshold: float = 0.5
    is_thing: np.ndarray | None = None
    semantic_map: np.ndarray | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    checkpoint: str = ""
    device: str = ""
    precision: str = "fp32"
    cold: bool = False
    cached: bool = False
    mode: str = ""
    reuse: str = ""
    warning: str = ""
    meta: dict[str, object] = field(default_factory=dict)
    explain: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, np.float32).reshape(-1)
        self.class_ids = np.asarray(self.class_ids, np.int64).reshape(-1)
        n = len(self.boxes)
        if len(self.scores) != n or len(self.class_ids) != n:
            raise ValueError(
                f"boxes, scores and class_ids differ in length: {n}, {len(self.scores)}, {len(self.class_ids)}"
            )
        if self.masks is not None:
            self.masks = np.asarray(self.masks, bool)
            if self.masks.shape != (n, *self.image_size):
                raise ValueError(f"masks {self.masks.shape} != {(n, *self.image_size)}")
        if self.mask_probs is not None and self.mask_probs.shape != (n, *self.image_size):
            raise ValueError(f"mask_probs {self.mask_probs.shape} != {(n, *self.image_size)}")
        if self.is_thing is not None:
            self.is_thing = np.asarray(self.is_thing, bool).reshape(-1)
        if self.semantic_map is not None and self.semantic_map.shape != self.image_size:
            raise ValueError(f"semantic_map {self.semantic_map.shape} != {self.image_size}")

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def nbytes(self) -> int:
        """Bytes held by every array: boxes, scores, ids, masks, soft masks, thing flags, semantic map,
        and the Explain captures."""
        arrays = (
            self.boxes,
            self.scores,
            self.class_ids,
            self.masks,
            self.mask_probs,
            self.is_thing,
            self.semantic_map,
        )
        return sum(a.nbytes for a in arrays if a is not None) + sum(a.nbytes for a in self.explain.values())

    def mask_extents(self) -> np.ndarray:
        """(N, 4) int64 ``y0, x0, y1, x1`` (end-exclusive pixels) outside which each instance's mask and
        soft mask are zero (see `mask_extents`); computed once per pair of mask arrays."""
        cached = self.__dict__.get("_extents")
        if cached is not None and cached[0] is self.masks and cached[1] is self.mask_probs:
            return cached[2]
        extents = mask_extents.extents_of(self.masks, self.mask_probs)
        self.seed_extents(extents)
        return extents

    def seed_extents(self, extents: np.ndarray) -> None:
        """Record ``extents`` (N, 4), exactly as `mask_extents` would find them in the current mask
        arrays, so they are never scanned for (for masks written window by window)."""
        self.__dict__["_extents"] = (self.masks, self.mask_probs, extents)

    def mask_areas(self) -> np.ndarray:
        """(N,) int64 pixels in each mask (empty when there are no masks)."""
        if self.masks is None:
            return np.zeros(0, np.int64)
        return mask_extents.areas(self.masks, self.mask_extents())

    def __getitem__(self, index: np.ndarray | slice | list[int]) -> Prediction:
        """Instances selected by a boolean mask or indices; the semantic map is kept. Masks are copied
        within their extents only."""
        chosen = np.arange(len(self))[index]
        has_masks = self.masks is not None or self.mask_probs is not None
        extents = self.mask_extents() if has_masks else None
        selected = replace(
            self,
            boxes=self.boxes[chosen],
            scores=self.scores[chosen],
            class_ids=self.class_ids[chosen],
            masks=None if self.masks is None else mask_extents.take(self.masks, chosen, extents),
            mask_probs=None if self.mask_probs is None else mask_extents.take(self.mask_probs, chosen, extents),
            is_thing=None if self.is_thing is None else self.is_thing[chosen],
            timings_ms=dict(self.timings_ms),
            meta=dict(self.meta),
            explain=dict(self.explain),
        )
        if extents is not None:
            selected.seed_extents(extents[chosen])
        return selected

    def filtered(self, min_score: float = 0.0, labels: frozenset[str] | None = None) -> Prediction:
        """Instances scoring at least ``min_score`` and, if given, named in ``labels``."""
        keep = self.scores >= min_score
        if labels is not None:
            keep &= np.array([name in labels for name in self.labels], bool)
        return self if keep.all() else self[keep]  # no copy of the masks when nothing is dropped

    def with_mask_threshold(self, threshold: float) -> Prediction:
        """``masks`` re-binarised from ``mask_probs`` at ``threshold`` in [0, 1] (same if no probs)."""
        if self.mask_probs is None or (self.masks is not None and threshold == self.mask_threshold):
            return self
        if threshold <= 0:  # every pixel passes: there is no extent to stay inside
            return replace(self, masks=self.mask_probs >= 0, mask_threshold=threshold, meta=dict(self.meta))
        extents = self.mask_extents()
        masks = mask_extents.binarise(self.mask_probs, extents, threshold)
        rethresholded = replace(self, masks=masks, mask_threshold=threshold, meta=dict(self.meta))
        rethresholded.seed_extents(extents)  # the new masks lie inside the soft masks' extents
        return rethresholded

    @property
    def state(self) -> str:
        """``"from disk"`` (a bundled example's result kept on disk: ``meta["served_from"]`` ``"disk"``),
        ``"cached"`` (result cache), ``"cold"`` (this call loaded the model) or ``"warm"``."""
        if self.cached:
            return "from disk" if self.meta.get("served_from") == "disk" else "cached"
        return "cold" if self.cold else "warm"

    @property
    def labels(self) -> list[str]:
        """The name of each instance's class, in order."""
        return [self.label_name(int(c)) for c in self.class_ids]

    def label_name(self, class_id: int) -> str:
        return self.label_names.get(class_id, f"class {class_id}")

    def semantic_areas(self) -> dict[str, float]:
        """Fraction of the image (0..1) covered by each class of the semantic map, largest first."""
        if self.semantic_map is None:
            return {}
        ids, counts = np.unique(self.semantic_map, return_counts=True)
        total = self.semantic_map.size
        order = np.argsort(-counts)
        return {self.label_name(int(ids[i])): float(counts[i] / total) for i in order}
