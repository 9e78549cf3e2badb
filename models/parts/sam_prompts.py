"""What SAM's and SAM 2's adapters pass between their stages (`SamInputs`, `SamOutputs`), the
dense prompt (``mask_input``) in the decoder's low-resolution logit space, and their one prompt
encoder and mask decoder call (`decode`, `decode_boxes`; each adapter scales the prompt its own way,
``prompt_tensors``).

SAM's predictor feeds the previous prediction's best low-resolution logits back with the next
click, so clicks refine one mask. A brushed mask is brought to the same space by the image
processor's own rule for segmentation maps (SAM: longest side resized, then padded; SAM 2: resized
to the square), then turned into logits as SAM 2 turns a given mask into its own output
(``_use_mask_as_output``: 20 * mask - 10, so sigmoid gives 1 - 4.5e-5 inside and 4.5e-5 outside).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from models.parts.sam_everything import Everything
from playground.core.cache import Lookup
from playground.core.prompts import BrushedMask, EarlierPrompt

BRUSH_SCALE, BRUSH_BIAS = 20.0, -10.0
"""A binary mask as logits, SAM 2's own constants (``out_scale, out_bias`` in ``_use_mask_as_output``)."""

Mode = Literal["prompt", "boxes", "everything", "encode"]

NO_POINTS, NO_LABELS = np.zeros((0, 2), np.float32), np.zeros((0,), np.int64)
"""A prompt's points (0, 2) and labels (0,) when it has none (a prompt of boxes only); read-only."""
NO_POINTS.flags.writeable = NO_LABELS.flags.writeable = False


@dataclass(frozen=True)
class SamInputs:
    """A validated prompt in image pixels, and the embedding cache key of its image.

    Attributes:
        points: (n, 2) float32 x, y; labels: (n,) int64 1/0 (empty without points).
        boxes: (b, 4) float32 XYXY (one box for ``prompt`` mode, any number for ``boxes``).
        prompt: ``prompt`` mode's points, box and dense prompt, checked: the key of its best logits.
    """

    key: tuple[str, ...]
    image: np.ndarray
    mode: Mode
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    everything: Everything = field(default_factory=Everything)
    prompt: EarlierPrompt = field(default_factory=EarlierPrompt)


@dataclass
class SamOutputs:
    """Decoder outputs: ``low_res`` (N, 256, 256) mask logits with ``scores`` (N,) predicted IoU,
    or, for ``everything``, final ``masks`` (N, H, W) bool with ``scores`` and ``boxes`` (N, 4)."""

    lookup: Lookup[dict[str, torch.Tensor]]
    mode: Mode
    scores: torch.Tensor
    low_res: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    boxes: torch.Tensor | None = None


def brushed_logits(image_processor: Any, image: np.ndarray, brushed: BrushedMask, **mask_sizes: Any) -> torch.Tensor:
    """(1, 1, h, w) float32 logits of ``brushed`` on ``image`` (H, W, 3 uint8), at the low-res size the
    processor's ``mask_size`` / ``mask_pad_size`` give (``mask_sizes``)."""
    mask = brushed.mask().astype(np.uint8)
    labels = image_processor(images=image, segmentation_maps=mask, return_tensors="pt", **mask_sizes)["labels"]
    return (labels.reshape(1, 1, *labels.shape[-2:]).float() * BRUSH_SCALE + BRUSH_BIAS).contiguous()


def prompt_arrays(prompt: EarlierPrompt) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``prompt``'s points (n, 2) float32 x, y, labels (n,) int64 and boxes (0 or 1, 4) float32, in pixels."""
    points = np.array([p[:2] for p in prompt.points], np.float32).reshape(-1, 2)
    labels = np.array([p[2] for p in prompt.points], np.int64)
    boxes = np.array([prompt.box] if prompt.box is not None else [], np.float32).reshape(-1, 4)
    return points, labels, boxes


def refine(
    adapter: Any, key: tuple[str, ...], lookup: Lookup[dict[str, Any]], image: np.ndarray, prompt: EarlierPrompt
) -> tuple[torch.Tensor, torch.Tensor]:
    """``adapter``'s (a SAM or SAM 2) scores (3,) and low-res logits (3, h, w) for ``prompt`` with its
    dense prompt; the best logits are kept in ``adapter.best_logits`` for the next click. An earlier
    prompt whose logits are gone (evicted, or a link opened in a fresh app) is decoded first."""
    dense = None
    if isinstance(prompt.mask_input, BrushedMask):
        dense = brushed_logits(adapter.processor.image_processor, image, prompt.mask_input, **adapter.mask_sizes())
    elif prompt.mask_input is not None:
        dense = adapter.best_logits.get((key, prompt.mask_input))
        if dense is None:
            scores, low_res = refine(adapter, key, lookup, image, prompt.mask_input)
            dense = low_res[scores.argmax()][None, None]
    scores, low_res = decode(adapter, lookup, image, prompt, dense)
    adapter.best_logits.put((key, prompt), low_res[scores.argmax()][None, None])
    return scores, low_res


def decode(
    adapter: Any, lookup: Lookup[dict[str, Any]], image: np.ndarray, prompt: EarlierPrompt, dense: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``adapter``'s prompt encoder and mask decoder on ``prompt`` and its dense logits (1, 1, h, w):
    scores (3,) and low-res logits (3, h, w)."""
    given = adapter.prompt_tensors(lookup, image, prompt_arrays(prompt))
    if dense is not None:
        given["input_masks"] = dense
    tensors = {name: tensor.to(adapter.device) for name, tensor in given.items()}
    out = adapter.model(image_embeddings=lookup.value["image_embeddings"], multimask_output=True, **tensors)
    return out.iou_scores[0, 0], out.pred_masks[0, 0]


def decode_boxes(
    adapter: Any, lookup: Lookup[dict[str, Any]], image: np.ndarray, boxes: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """``adapter``'s mask decoder on one mask per box (b, 4) pixels: scores (b,) and low-res logits (b, h, w)."""
    given = adapter.prompt_tensors(lookup, image, (NO_POINTS, NO_LABELS, boxes))
    out = adapter.model(
        image_embeddings=lookup.value["image_embeddings"],
        input_boxes=given["input_boxes"].to(adapter.device),
        multimask_output=False,
    )
    return out.iou_scores[0, :, 0], out.pred_masks[0, :, 0]
