"""Multi-scale deformable attention (Deformable DETR's sampling step) as one ``embedding_bag``.

transformers' CPU path samples each level with ``grid_sample``, whose CPU kernel pays a fixed cost
per sampled element whatever the map size and is not vectorised over channels, then stacks and
weights the samples in three more passes; it is a large share of Grounding DINO's and
Mask2Former's forward, and it runs no faster in bf16.

Here each level's value map gets a zero border, each sampling point's four bilinear corners
become row indices into the flattened maps with weight corner x attention, and
``torch.nn.functional.embedding_bag(mode="sum", per_sample_weights=...)`` gathers whole channel
rows and sums them in one fused pass. The border replaces ``grid_sample``'s zero padding: a point
outside the map is clamped onto it, where every corner it reads is zero. In float32 it matches
the library to about 1e-6 relative (tests/test_deformable_attention.py).
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F

from models.layers.forward_swap import replace_forwards
from playground.core.patches import Patch

SAMPLED = Patch(
    replaced="transformers MultiScaleDeformableAttention.forward",
    by="models.layers.deformable_attention.deformable_sample (one embedding_bag over zero-bordered maps)",
    why="grid_sample's CPU kernel is not vectorised over channels and gains nothing from bf16",
    devices=("cpu",),  # measured on CPUs only: CUDA and MPS keep the library's grid_sample kernels
)

BORDER = (1, 2)
"""Zero rows/columns before and after each map: a corner index runs from -1 to size + 1."""


def deformable_sample(
    value: torch.Tensor,
    spatial_shapes: list[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """The attention-weighted bilinear samples of ``value`` at ``sampling_locations``.

    Args:
        value: (B, S, M, D), S = the sum of h * w over ``spatial_shapes``, M heads of D channels.
        spatial_shapes: (h, w) of each of the L levels, in the order they are concatenated in S.
        sampling_locations: (B, Q, M, L, P, 2) as (x, y) in [0, 1] of each level's map.
        attention_weights: (B, Q, M, L, P).

    Returns:
        (B, Q, M * D) in ``value``'s dtype, as transformers' ``multi_scale_deformable_attention``.
        A half-precision ``value`` is gathered in float32, as autocast runs ``grid_sample``.
    """
    dtype, value = value.dtype, value.float()
    batch, _, heads, channels = value.shape
    _, queries, _, levels, points, _ = sampling_locations.shape
    table, starts, heights, widths = _bordered_table(value, spatial_shapes)
    # Pixel coordinates (align_corners=False), clamped onto the border: a point beyond it reads
    # only zeros, as grid_sample's zero padding gives.
    locations = sampling_locations.float()
    x = torch.minimum((locations[..., 0] * widths - 0.5).clamp(min=-1), widths)
    y = torch.minimum((locations[..., 1] * heights - 0.5).clamp(min=-1), heights)
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0  # NaN for a NaN location: its sample is NaN, as grid_sample gives,
    x0, y0 = x0.nan_to_num(-1.0), y0.nan_to_num(-1.0)  # and its rows are valid indices (the border)
    stride = widths + sum(BORDER)  # (L, 1): a bordered row
    top_left = (starts + (y0 + BORDER[0]) * stride + x0 + BORDER[0]).long()  # (B, Q, M, L, P)
    rows_per_head = table.shape[0] // (batch * heads)
    top_left += torch.arange(batch * heads, device=value.device).view(batch, 1, heads, 1, 1) * rows_per_head
    below = stride.long()
    rows = torch.stack((top_left, top_left + 1, top_left + below, top_left + below + 1), dim=-1)
    attention = attention_weights.float()
    weights = torch.stack(
        ((1 - fx) * (1 - fy) * attention, fx * (1 - fy) * attention, (1 - fx) * fy * attention, fx * fy * attention),
        dim=-1,
    )
    bags = rows.view(batch * queries * heads, levels * points * 4)
    sampled = F.embedding_bag(bags, table, mode="sum", per_sample_weights=weights.view(bags.shape))
    return sampled.view(batch, queries, heads * channels).to(dtype)


def use_deformable_sampling(model: torch.nn.Module) -> int:
    """Give every transformers ``MultiScaleDeformableAttention`` of ``model`` `deformable_sample`
    as its forward; returns how many."""
    return replace_forwards(model, "MultiScaleDeformableAttention", _sampling_forward)


def _sampling_forward(
    self: torch.nn.Module,
    value: torch.Tensor,
    value_spatial_shapes: torch.Tensor,
    value_spatial_shapes_list: list[tuple[int, int]],
    level_start_index: torch.Tensor,
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
    im2col_step: int | None = None,
) -> torch.Tensor:
    """The library kernel's signature; `deformable_sample` needs only the levels' shapes as a list."""
    return deformable_sample(value, value_spatial_shapes_list, sampling_locations, attention_weights)


def use_sampling_function(model: torch.nn.Module, class_name: str, function_name: str) -> int:
    """Give every ``class_name`` layer of ``model`` a copy of its class's forward that calls
    `deformable_sample` where the library's calls its module global ``function_name`` (a
    ``(value, shapes, locations, weights)`` function such as Mask2Former's
    ``multi_scale_deformable_attention``); returns how many layers.

    The copy is the library's code object with its own globals, bound to these layers only: the
    library's module, and every other model built from it (the bench's float32 reference among
    them), keep the library's function."""
    layer = next((m for m in model.modules() if any(c.__name__ == class_name for c in type(m).__mro__)), None)
    if layer is None:
        return 0
    library = type(layer).forward
    forward = types.FunctionType(
        library.__code__,
        {**library.__globals__, function_name: deformable_sample},
        library.__name__,
        library.__defaults__,
        library.__closure__,
    )
    forward.__kwdefaults__ = library.__kwdefaults__
    return replace_forwards(model, class_name, forward)


def _bordered_table(
    value: torch.Tensor, spatial_shapes: list[tuple[int, int]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(table (B * M * S', D): each (batch, head)'s maps, every level with its zero border, one
    row per pixel; then per level, as (L, 1) float32: its first row, its height and width)."""
    batch, _, heads, channels = value.shape
    maps, starts, start = [], [], 0
    for level, (height, width) in zip(value.split([h * w for h, w in spatial_shapes], dim=1), spatial_shapes):
        grid = level.permute(0, 2, 1, 3).reshape(batch, heads, height, width, channels)
        maps.append(F.pad(grid, (0, 0, *BORDER, *BORDER)).flatten(2, 3))  # (B, M, (h + 3) * (w + 3), D)
        starts.append(start)
        start += (height + sum(BORDER)) * (width + sum(BORDER))
    table = torch.cat(maps, dim=2).reshape(-1, channels)

    def column(values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32, device=value.device).view(-1, 1)

    return table, column(starts), column([h for h, _ in spatial_shapes]), column([w for _, w in spatial_shapes])
