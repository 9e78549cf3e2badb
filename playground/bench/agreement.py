"""How closely a build under test (bf16, fp16) agrees with an fp32 build of the same weights.

- `pixel_agreement`: the share of pixels whose semantic class is the same.
- `instance_agreement`: the share of fp32 instances (above the score floor) that the other
  prediction has too, with the same label and box IoU >= 0.9; and the mean mask IoU of those.
- `raw_relative_errors`: the relative L2 error of what each half-precision region returns when
  both builds are fed the same region inputs (captured from the fp32 build with forward pre-hooks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils._pytree import tree_map

from playground.core.types import Prediction

MIN_BOX_IOU = 0.9
"""Box IoU at which two instances of the same label count as the same instance."""
RegionCall = tuple[tuple, dict]


def pixel_agreement(reference: Prediction, other: Prediction) -> float | None:
    """Share of pixels whose class in ``other.semantic_map`` equals ``reference``'s; None when
    ``reference`` has no semantic map."""
    if reference.semantic_map is None or other.semantic_map is None:
        return None
    return float(np.mean(reference.semantic_map == other.semantic_map))


def box_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) XYXY boxes -> (N, M) intersection over union. Two equal boxes of zero area
    (a line or a point, which random weights and clipping to the image produce) have IoU 1: they are
    the same box, though the ratio is 0/0."""
    top_left = np.maximum(first[:, None, :2], second[None, :, :2])
    bottom_right = np.minimum(first[:, None, 2:], second[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area = lambda boxes: np.clip(boxes[:, 2:] - boxes[:, :2], 0, None).prod(axis=1)  # noqa: E731
    union = area(first)[:, None] + area(second)[None, :] - inter
    same = np.all(first[:, None, :] == second[None, :, :], axis=2)
    return np.where(union > 0, inter / np.where(union > 0, union, 1), same.astype(np.float64))


def match_instances(reference: Prediction, other: Prediction, floor: float = 0.0) -> tuple[list[int], list[int]]:
    """Greedy one-to-one matches, best-scoring reference instance first: (reference indices, other
    indices) of pairs with the same class id and box IoU >= `MIN_BOX_IOU`, the highest IoU first and,
    among equal ones (SAM's three masks often share a box), the first in order. Only reference
    instances scoring at least ``floor`` take part."""
    ious = box_iou(np.asarray(reference.boxes, np.float64), np.asarray(other.boxes, np.float64))
    ious[np.asarray(reference.class_ids)[:, None] != np.asarray(other.class_ids)[None, :]] = 0.0
    taken: set[int] = set()
    matched: tuple[list[int], list[int]] = ([], [])
    for index in np.argsort(-np.asarray(reference.scores), kind="stable"):
        if reference.scores[index] < floor:
            continue
        candidates = [(iou, j) for j, iou in enumerate(ious[index]) if j not in taken and iou >= MIN_BOX_IOU]
        if candidates:
            j = max(candidates, key=lambda candidate: (candidate[0], -candidate[1]))[1]  # a tie: the first
            taken.add(j)
            matched[0].append(int(index))
            matched[1].append(j)
    return matched


def instance_agreement(
    reference: Prediction, other: Prediction, floor: float = 0.0
) -> tuple[float | None, float | None]:
    """(match rate over the reference instances scoring >= ``floor``, mean mask IoU of the matched
    pairs); each None when there is nothing to measure (no reference instances, no masks)."""
    count = int(np.sum(np.asarray(reference.scores) >= floor))
    if count == 0:
        return None, None
    ours, theirs = match_instances(reference, other, floor)
    if reference.masks is None or other.masks is None or not ours:
        return len(ours) / count, None
    first, second = reference.masks[ours], other.masks[theirs]
    inter = np.logical_and(first, second).sum(axis=(1, 2))
    union = np.logical_or(first, second).sum(axis=(1, 2))
    return len(ours) / count, float(np.mean(np.where(union > 0, inter / np.maximum(union, 1), 1.0)))


def collect_tensors(value: Any, found: list[torch.Tensor]) -> list[torch.Tensor]:
    """Append every floating-point tensor in ``value`` (a tensor, dict, list, tuple or object with
    attributes, such as a transformers ModelOutput) to ``found``, in a fixed order; return it."""
    if isinstance(value, torch.Tensor):
        if value.is_floating_point():
            found.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            collect_tensors(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            collect_tensors(item, found)
    elif hasattr(value, "__dict__"):
        for item in vars(value).values():
            collect_tensors(item, found)
    return found


def relative_error(reference: list[torch.Tensor], other: list[torch.Tensor]) -> float:
    """||other - reference|| / ||reference|| over all the tensors, flattened and concatenated."""
    ref = torch.cat([t.float().flatten() for t in reference])
    out = torch.cat([t.float().flatten() for t in other])
    return float((out - ref).norm() / ref.norm().clamp_min(1e-12))


def region_calls(adapter: Any, run: Callable[[], object]) -> dict[str, RegionCall]:
    """The (args, kwargs) each of ``adapter.half_precision_regions`` is first called with while
    ``run()`` runs (forward pre-hooks on ``adapter.model``)."""
    calls: dict[str, RegionCall] = {}

    def capture(region: str) -> Callable[..., None]:
        def hook(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:  # None: the call is unchanged
            calls.setdefault(region, (args, kwargs))

        return hook

    modules = [adapter.model.get_submodule(region) for region in adapter.half_precision_regions]
    handles = [
        module.register_forward_pre_hook(capture(region), with_kwargs=True)
        for module, region in zip(modules, adapter.half_precision_regions)
    ]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return calls


def region_outputs(adapter: Any, region: str, call: RegionCall) -> list[torch.Tensor]:
    """The floating-point tensors region ``region`` of ``adapter.model`` returns for ``call`` (its
    tensors moved to the adapter's device first: the call may come from a CPU build), on the CPU."""
    args, kwargs = tree_map(lambda value: value.to(adapter.device) if isinstance(value, torch.Tensor) else value, call)
    with torch.inference_mode():
        outputs = collect_tensors(adapter.model.get_submodule(region)(*args, **kwargs), [])
    return [tensor.cpu() for tensor in outputs]


def raw_relative_errors(
    reference: Any, other: Any, calls: dict[str, RegionCall], expected: dict[str, list[torch.Tensor]] | None = None
) -> dict[str, float]:
    """Region -> relative L2 error of what ``other``'s region returns against the fp32 ``reference``'s,
    both called with ``calls`` (`region_calls` on the reference); ``expected``: the reference's
    outputs (`region_outputs`) where already computed."""
    expected = expected or {region: region_outputs(reference, region, call) for region, call in calls.items()}
    return {
        region: relative_error(expected[region], region_outputs(other, region, call)) for region, call in calls.items()
    }
