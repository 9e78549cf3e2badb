"""`rope_attention` computes what transformers' SAM 3 ViT attention computes, and the SAM 3 adapters
route their ViT through it, image and video (the bench's library reference keeps the library's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import EXAMPLES, count_calls
from transformers.models.sam3.modeling_sam3 import Sam3ViTConfig, Sam3ViTLayer, apply_rotary_pos_emb_2d

from models.layers import rope_attention
from models.layers.rope_attention import rotate_pairs
from playground.core.videos import VideoPrompt
from playground.runtime.manager import ModelManager
from playground.video.clips import open_clip
from playground.video.tracker import VideoTracker


def vit_layer(window_size: int) -> Sam3ViTLayer:
    torch.manual_seed(0)
    config = Sam3ViTConfig(hidden_size=32, num_attention_heads=4, intermediate_size=64, image_size=112, patch_size=14)
    config._attn_implementation = "sdpa"
    return Sam3ViTLayer(config, window_size).eval()


@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float32, 1e-6), (torch.bfloat16, 1e-2)])
def test_the_complex_rotation_is_the_librarys(dtype: torch.dtype, tolerance: float) -> None:
    """Queries in the library's layout: (B, heads, tokens, head_dim), a transposed view; both round
    the same float32 products (bf16: one unit in the last place at most)."""
    query = torch.randn(2, 49, 4, 8).to(dtype).transpose(1, 2)
    key = torch.randn(2, 49, 4, 8).to(dtype).transpose(1, 2)
    angles = torch.rand(49, 4) * 10
    cos, sin = (part.repeat_interleave(2, dim=-1)[None] for part in (angles.cos(), angles.sin()))
    expected_query, expected_key = apply_rotary_pos_emb_2d(query, key, cos=cos, sin=sin)
    rotation = torch.complex(angles.cos(), angles.sin())
    found_query, found_key = rotate_pairs(query, rotation), rotate_pairs(key, rotation)
    assert found_query.dtype == dtype and found_query.shape == expected_query.shape
    torch.testing.assert_close(found_query, expected_query, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(found_key, expected_key, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("window_size", [0, 4])
def test_a_vit_layer_gives_the_librarys_output(window_size: int) -> None:
    layer = vit_layer(window_size)
    hidden_states = torch.randn(1, 8, 8, 32)
    with torch.inference_mode():
        expected = layer(hidden_states)
        assert rope_attention.use_rope_attention(layer) == 1
        found = layer(hidden_states)
    torch.testing.assert_close(found, expected, rtol=1e-5, atol=1e-5)


def test_sam3_routes_its_vit_and_the_reference_keeps_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_calls(monkeypatch, rope_attention, "rope_attention")
    image = torch.randint(0, 255, (96, 128, 3), dtype=torch.uint8).numpy()
    reference = ModelManager(weights="tiny", device="cpu", precision="fp32", library_kernels=True)
    manager = ModelManager(weights="tiny", device="cpu", precision="fp32")
    with reference.use("sam3") as (library, _), manager.use("sam3") as (adapter, _):
        adapter.adopt(library.model)
        expected = library.predict(image, "text", text="cat")
        assert calls == []
        found = adapter.predict(image, "text", text="cat")
    assert len(calls) == 2  # the tiny ViT's two blocks
    np.testing.assert_allclose(found.scores, expected.scores, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(found.boxes, expected.boxes, rtol=1e-4, atol=1e-3)


def test_sam3_video_routes_its_detectors_vit_and_the_reference_keeps_the_library(monkeypatch) -> None:
    calls = count_calls(monkeypatch, rope_attention, "rope_attention")
    clip = open_clip(EXAMPLES / "chelsea_pan.mp4", fps=1)
    prompt = VideoPrompt(0, text="cat")
    reference = ModelManager(weights="tiny", device="cpu", precision="fp32", library_kernels=True)
    VideoTracker(reference, clip).track("sam3", prompt)
    assert calls == []
    VideoTracker(ModelManager(weights="tiny", device="cpu", precision="fp32"), clip).track("sam3", prompt)
    assert calls and len(calls) % 2 == 0  # the tiny ViT's two blocks, on each frame the detector sees
