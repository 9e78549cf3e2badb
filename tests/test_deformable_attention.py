"""`deformable_sample` computes what transformers' multi-scale deformable attention computes, and the
adapters route only their own models through it (the bench's library reference keeps the library's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import count_calls
from transformers.models.grounding_dino.modeling_grounding_dino import MultiScaleDeformableAttention
from transformers.models.mask2former import modeling_mask2former

from models.layers import deformable_attention
from models.layers.deformable_attention import deformable_sample
from playground.runtime.manager import ModelManager

SHAPES = [(9, 13), (5, 7), (3, 4), (1, 2)]


def random_inputs(batch: int = 2, heads: int = 3, channels: int = 5, points: int = 4, queries: int = 17):
    """value (B, S, M, D), locations (B, Q, M, L, P, 2) partly outside [0, 1], softmaxed weights."""
    generator = torch.Generator().manual_seed(0)
    levels, total = len(SHAPES), sum(h * w for h, w in SHAPES)
    value = torch.randn(batch, total, heads, channels, generator=generator)
    locations = torch.rand(batch, queries, heads, levels, points, 2, generator=generator) * 1.4 - 0.2
    locations[0, 0, 0, :, 0] = torch.tensor([0.0, 0.0])  # a corner of every map, exactly
    locations[0, 0, 0, :, 1] = torch.tensor([1.0, 1.0])
    weights = torch.rand(batch, queries, heads, levels, points, generator=generator)
    return value, locations, weights / weights.sum(dim=(-1, -2), keepdim=True)


def test_it_matches_the_library_in_float32_inside_and_outside_the_maps() -> None:
    value, locations, weights = random_inputs()
    expected = MultiScaleDeformableAttention()(value, torch.tensor(SHAPES), SHAPES, None, locations, weights, 64)
    found = deformable_sample(value, SHAPES, locations, weights)
    assert found.shape == expected.shape == (2, 17, 3 * 5)
    torch.testing.assert_close(found, expected, rtol=1e-5, atol=1e-6)
    library = modeling_mask2former.multi_scale_deformable_attention
    torch.testing.assert_close(found, library(value, SHAPES, locations, weights), rtol=1e-5, atol=1e-6)


def test_points_far_outside_read_zeros() -> None:
    value, locations, weights = random_inputs()
    found = deformable_sample(value, SHAPES, torch.full_like(locations, 3.0), weights)
    assert torch.count_nonzero(found) == 0
    assert deformable_sample(value.bfloat16(), SHAPES, locations, weights).dtype == torch.bfloat16


def test_a_nan_location_gives_nan_where_the_library_does_and_nothing_else_changes() -> None:
    """A NaN location (a model that diverged) must not index outside the table: transformers gives
    NaN for the queries that sample it, and the same numbers everywhere else."""
    value, locations, weights = random_inputs()
    locations[1, 3, 2, 1, 0] = torch.tensor([float("nan"), 0.5])
    expected = MultiScaleDeformableAttention()(value, torch.tensor(SHAPES), SHAPES, None, locations, weights, 64)
    found = deformable_sample(value, SHAPES, locations, weights)
    assert torch.equal(found.isnan(), expected.isnan()) and found.isnan().any()
    torch.testing.assert_close(found.nan_to_num(7.0), expected.nan_to_num(7.0), rtol=1e-5, atol=1e-6)


@pytest.fixture
def counted(monkeypatch) -> list[int]:
    """Counts the calls of `deformable_sample` made through the adapters' routing."""
    return count_calls(monkeypatch, deformable_attention, "deformable_sample")


@pytest.mark.parametrize("key", ["grounding-dino", "mask2former"])
def test_the_adapters_route_their_own_models_only(key, astronaut, counted) -> None:
    """A playground build samples with `deformable_sample` and a ``library_kernels`` build with the
    library's own code; both give the same predictions from the same weights. The library's module
    is left as it was: Mask2Former's module function is not replaced for the process."""
    image = astronaut[:96, :128]
    module_function = modeling_mask2former.multi_scale_deformable_attention
    fast = ModelManager(weights="tiny", device="cpu", precision="fp32")
    library = ModelManager(weights="tiny", device="cpu", precision="fp32", library_kernels=True)
    with fast.use(key) as (adapter, _), library.use(key) as (reference, _):
        adapter.adopt(reference.model)
        assert modeling_mask2former.multi_scale_deformable_attention is module_function
        assert any("deformable" in patch.by for patch in adapter.patches), adapter.patches
        assert not any("deformable" in patch.by for patch in reference.patches), reference.patches
        routed = first_logits(adapter, image)
        assert counted, "the playground build did not route its deformable attention"
        del counted[:]
        own = first_logits(reference, image)
        assert not counted, "the library_kernels build was routed"
    torch.testing.assert_close(routed, own, rtol=1e-4, atol=1e-5)


def first_logits(adapter, image: np.ndarray) -> torch.Tensor:
    """The model's class logits for ``image``, straight from the library's processor and model."""
    text = {"text": "a person."} if adapter.spec.key == "grounding-dino" else {}
    encoded = adapter.processor(images=image, return_tensors="pt", **text)
    with torch.inference_mode():
        outputs = adapter.model(**encoded)
    return outputs.logits if adapter.spec.key == "grounding-dino" else outputs.class_queries_logits
