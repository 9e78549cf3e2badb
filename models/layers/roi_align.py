"""RoIAlign over every FPN level (Faster and Mask R-CNN's ``MultiScaleRoIAlign``) as one ``embedding_bag``.

torchvision's CPU ``roi_align`` runs one scalar loop per output bin and channel, one call per level,
and is not vectorised over channels: a large share of Mask R-CNN's bf16 forward, run in float32
whatever the precision (it runs after the backbone's outputs are cast back).

Here every level's map is one block of rows, a row being one pixel's C channels, and each output
bin's samples (``sampling_ratio``² of them, four bilinear corners each) become row indices with
weight corner x 1 / samples. ``torch.nn.functional.embedding_bag(mode="sum", per_sample_weights=...)``
gathers whole channel rows and sums them in one pass, for all levels at once. The weights are
separable in y and x, and follow torchvision's rules exactly (``aligned=False``): a sample more
than one pixel outside the map reads zero, one on the edge is clamped onto it. In float32 it
matches the library to about 1e-5 relative, and in float64 to 1e-13 (tests/test_roi_align.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torchvision.ops import poolers

from playground.core.patches import Patch

POOLED = Patch(
    replaced="torchvision MultiScaleRoIAlign.forward",
    by="models.layers.roi_align.roi_align_levels (every FPN level in one embedding_bag)",
    why="torchvision's CPU roi_align runs a scalar loop per bin and channel",
    devices=("cpu",),  # measured on CPUs only: CUDA and MPS keep torchvision's roi_align kernels
)


def roi_align_levels(
    features: list[torch.Tensor],
    rois: torch.Tensor,
    levels: torch.Tensor,
    scales: list[float],
    output_size: tuple[int, int],
    sampling_ratio: int,
) -> torch.Tensor:
    """What ``torchvision.ops.roi_align(features[level], ..., aligned=False)`` gives for each RoI.

    Args:
        features: L maps, level l (N, C, H_l, W_l), all of one dtype.
        rois: (K, 5) as (image index, x1, y1, x2, y2), in input-image pixels.
        levels: (K,) integer level of each RoI.
        scales: map pixels per image pixel of each level.
        output_size: (ph, pw) bins per RoI.
        sampling_ratio: samples per bin along each axis (> 0).

    Returns:
        (K, C, ph, pw) in the maps' dtype (channels-last strides), computed in float32 (float64
        for float64 maps).
    """
    channels, dtype = features[0].shape[1], features[0].dtype
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    count, (bins_h, bins_w) = len(rois), output_size
    if count == 0:
        return features[0].new_zeros((0, channels, bins_h, bins_w))
    table = torch.cat([level.permute(0, 2, 3, 1).reshape(-1, channels) for level in features]).to(compute)
    sizes = torch.tensor([level.shape[-2:] for level in features], dtype=compute, device=rois.device)
    starts = torch.tensor([0] + [level.numel() // channels for level in features[:-1]], device=rois.device).cumsum(0)
    levels = levels.long()
    height, width = sizes[levels, 0:1], sizes[levels, 1:2]  # (K, 1) each
    scale = torch.tensor(scales, dtype=compute, device=rois.device)[levels].unsqueeze(1)
    boxes = rois[:, 1:].to(compute) * scale  # (K, 4) in map pixels
    ys, y_weights = _axis_samples(boxes[:, 1:2], boxes[:, 3:4], height, bins_h, sampling_ratio)
    xs, x_weights = _axis_samples(boxes[:, 0:1], boxes[:, 2:3], width, bins_w, sampling_ratio)
    first = starts[levels] + rois[:, 0].long() * (height * width).squeeze(1).long()  # (K,)
    # (K, bins_h, bins_w, samples_y x 2 corners, samples_x x 2 corners): row and weight of each read
    rows = first.view(-1, 1, 1, 1, 1) + (ys * width.view(-1, 1, 1).long()).view(count, bins_h, 1, -1, 1)
    rows = rows + xs.view(count, 1, bins_w, 1, -1)
    weights = y_weights.view(count, bins_h, 1, -1, 1) * x_weights.view(count, 1, bins_w, 1, -1)
    weights = weights / sampling_ratio**2
    bags = rows.view(count * bins_h * bins_w, -1)
    pooled = F.embedding_bag(bags, table, mode="sum", per_sample_weights=weights.view(bags.shape))
    return pooled.view(count, bins_h, bins_w, channels).permute(0, 3, 1, 2).to(dtype)


def _axis_samples(
    low: torch.Tensor, high: torch.Tensor, size: torch.Tensor, bins: int, sampling_ratio: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Along one axis, each RoI's (K, 1) extent ``low``..``high`` in a map of ``size`` pixels: the
    (K, bins, sampling_ratio * 2) pixel index and bilinear weight of every sample's two corners."""
    length = (high - low).clamp(min=1.0)
    steps = torch.arange(bins, dtype=low.dtype, device=low.device).view(1, -1, 1)
    offsets = (torch.arange(sampling_ratio, dtype=low.dtype, device=low.device) + 0.5) / sampling_ratio
    bin_size = (length / bins).unsqueeze(-1)  # (K, 1, 1)
    at = low.unsqueeze(-1) + (steps + offsets.view(1, 1, -1)) * bin_size  # (K, bins, samples)
    inside = ((at >= -1.0) & (at <= size.unsqueeze(-1))).to(at.dtype)
    at = torch.minimum(at.clamp(min=0.0), size.unsqueeze(-1) - 1)
    lower = at.floor()
    upper = torch.minimum(lower + 1, size.unsqueeze(-1) - 1)
    fraction = at - lower
    index = torch.stack((lower, upper), dim=-1).long()
    weight = torch.stack((1 - fraction, fraction), dim=-1) * inside.unsqueeze(-1)
    return index.flatten(2), weight.flatten(2)


def replace_multiscale_roi_align(model: torch.nn.Module) -> int:
    """Give every ``MultiScaleRoIAlign`` in ``model`` a forward that pools with `roi_align_levels`
    (same level assignment and scales as torchvision's); returns how many were replaced."""
    pools = [module for module in model.modules() if isinstance(module, poolers.MultiScaleRoIAlign)]
    for pool in pools:
        pool.forward = _pooling_forward(pool)
    return len(pools)


def _pooling_forward(pool: poolers.MultiScaleRoIAlign) -> Callable[..., torch.Tensor]:
    """``pool``'s forward with `roi_align_levels`: (K, C, ph, pw) for the K boxes of all images."""
    library_forward = pool.forward

    def forward(
        x: dict[str, torch.Tensor], boxes: list[torch.Tensor], image_shapes: list[tuple[int, int]]
    ) -> torch.Tensor:
        if pool.sampling_ratio <= 0:  # an adaptive sample grid per RoI: the library's
            return library_forward(x, boxes, image_shapes)
        features = poolers._filter_input(x, pool.featmap_names)
        if pool.scales is None or pool.map_levels is None:
            pool.scales, pool.map_levels = poolers._setup_scales(
                features, image_shapes, pool.canonical_scale, pool.canonical_level
            )
        rois = poolers._convert_to_roi_format(boxes)
        levels = (
            pool.map_levels(boxes)
            if len(features) > 1
            else torch.zeros(len(rois), dtype=torch.int64, device=rois.device)
        )
        return roi_align_levels(features, rois, levels, pool.scales, pool.output_size, pool.sampling_ratio)

    return forward
