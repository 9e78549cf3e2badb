"""`rel_pos_attention` computes what transformers' SAM attention computes, and the SAM adapter routes
only its global blocks through it (the windows, and the bench's library reference, keep the library's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import count_calls
from transformers import SamVisionConfig
from transformers.models.sam.modeling_sam import SamVisionAttention, SamVisionSdpaAttention

from models.layers import rel_pos_attention
from models.layers.rel_pos_attention import rel_pos_attention as chunked_attention
from playground.runtime.manager import ModelManager


def attention_block(window_size: int, attention: type = SamVisionSdpaAttention) -> torch.nn.Module:
    """A SAM attention block of width 32 (4 heads) with random relative-position tables (a fresh
    build holds zeros, which would hide a wrong bias)."""
    torch.manual_seed(0)
    config = SamVisionConfig(hidden_size=32, num_attention_heads=4, image_size=256, patch_size=16)
    block = attention(config, window_size).eval()
    torch.nn.init.normal_(block.rel_pos_h)
    torch.nn.init.normal_(block.rel_pos_w)
    return block


@pytest.mark.parametrize("attention", [SamVisionSdpaAttention, SamVisionAttention])
@pytest.mark.parametrize(("window_size", "tokens"), [(0, (1, 16, 16)), (5, (3, 5, 5))])
def test_it_matches_the_library_in_float32(attention: type, window_size: int, tokens: tuple[int, int, int]) -> None:
    block = attention_block(window_size, attention)
    hidden_states = torch.randn(*tokens, 32)
    with torch.inference_mode():
        expected = block(hidden_states)[0]
        found = chunked_attention(block, hidden_states)
    assert found.shape == expected.shape == (*tokens, 32)
    torch.testing.assert_close(found, expected, rtol=1e-5, atol=1e-5)


def test_chunks_cover_every_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk of 10 queries (256 = 25 x 10 + 6) gives the same as one chunk of all of them."""
    block = attention_block(0)
    hidden_states = torch.randn(1, 16, 16, 32)
    with torch.inference_mode():
        whole = chunked_attention(block, hidden_states)
        monkeypatch.setattr(rel_pos_attention, "SCORES_PER_CHUNK", 10 * 4 * 256)
        calls = count_calls(monkeypatch, torch, "softmax")
        chunked = chunked_attention(block, hidden_states)
    assert len(calls) == 26
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-6)


def test_a_block_without_relative_positions_matches_too() -> None:
    config = SamVisionConfig(hidden_size=32, num_attention_heads=4, image_size=256, use_rel_pos=False)
    block = SamVisionSdpaAttention(config, 0).eval()
    hidden_states = torch.randn(2, 8, 8, 32)
    with torch.inference_mode():
        torch.testing.assert_close(chunked_attention(block, hidden_states), block(hidden_states)[0])


def test_bf16_agrees_with_float32() -> None:
    block = attention_block(0)
    hidden_states = torch.randn(1, 16, 16, 32)
    with torch.inference_mode():
        expected = block(hidden_states)[0]
        block.to(torch.bfloat16)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            found = chunked_attention(block, hidden_states)
    assert found.dtype == torch.bfloat16
    assert ((found.float() - expected).norm() / expected.norm()).item() < 0.02


def test_sam_routes_global_blocks_only_and_the_reference_keeps_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny SAM has one windowed block (8 x 8 = 64 tokens) and one global block (16 x 16)."""
    monkeypatch.setattr(rel_pos_attention, "MIN_TOKENS", 100)
    calls = count_calls(monkeypatch, rel_pos_attention, "rel_pos_attention")
    image = torch.randint(0, 255, (96, 128, 3), dtype=torch.uint8).numpy()
    reference = ModelManager(weights="tiny", device="cpu", precision="fp32", library_kernels=True)
    manager = ModelManager(weights="tiny", device="cpu", precision="fp32")
    with reference.use("sam") as (library, _), manager.use("sam") as (adapter, _):
        for module in library.model.modules():
            if isinstance(module, SamVisionAttention):
                torch.nn.init.normal_(module.rel_pos_h, std=0.5)
                torch.nn.init.normal_(module.rel_pos_w, std=0.5)
        adapter.adopt(library.model)
        expected = library.predict(image, "prompt", points=((40, 30, 1),))
        assert calls == []
        found = adapter.predict(image, "prompt", points=((40, 30, 1),))
    assert len(calls) == 1
    np.testing.assert_allclose(found.scores, expected.scores, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(found.mask_probs, expected.mask_probs, rtol=1e-4, atol=1e-4)
