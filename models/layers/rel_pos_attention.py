"""SAM's ViT attention with decomposed relative positions, one chunk of queries at a time.

transformers' SDPA path adds SAM's position bias ``rel_h[q, kh] + rel_w[q, kw]`` as a dense
(B, heads, N, N) mask: in each global block (N = 4096 tokens for a 1024 px image) that is 201 M
numbers, 805 MB in float32, written from two non-contiguous einsum outputs, copied by a reshape,
then read again by the attention kernel: building and reading the mask costs about as much as
the attention itself.

Here the bias is never made dense. For each chunk of queries, one ``bmm`` gives the scores
(B*heads, chunk, N), the two bias terms are added in place by broadcasting over the key grid
(kh, kw), then softmax and a second ``bmm`` with the values: plain matmuls, which run in bf16 on
the CPU's bf16 units, and a chunk's scores (about 6 M numbers) stay small. The arithmetic is the
library's eager attention (``SamVisionAttention.forward``), so in float32 it matches the library
to about 1e-6 (tests/test_rel_pos_attention.py).
"""

from __future__ import annotations

import torch

from models.layers.forward_swap import replace_forwards
from playground.core.patches import Patch

CHUNKED = Patch(
    replaced="transformers SamVisionAttention.forward (the global-attention blocks)",
    by="models.layers.rel_pos_attention.rel_pos_attention (relative positions added per chunk of queries)",
    why="transformers builds a dense (heads, 4096, 4096) position mask per global block",
    devices=("cpu",),  # measured on CPUs only: CUDA and MPS keep the library's SDPA attention
)

SCORES_PER_CHUNK = 128 * 12 * 4096
"""Attention scores computed at once: 128 queries of a global ViT-B block (12 heads x 4096 keys), the
fastest of the chunk sizes tried (64 to 512 queries; docs/performance.md)."""
MIN_TOKENS = 1024
"""Blocks of fewer tokens keep the library's attention: in SAM's 14 x 14 windows (196 tokens) its
masked flash attention was faster than the chunked path (the dense mask is small there)."""


def rel_pos_attention(module: torch.nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    """The attention block ``module`` (transformers' ``SamVisionAttention`` or a subclass) on
    ``hidden_states`` (B, H, W, C) tokens; returns (B, H, W, C), the library's output."""
    batch, height, width, _ = hidden_states.shape
    heads, tokens = module.num_attention_heads, height * width
    qkv = module.qkv(hidden_states).reshape(batch, tokens, 3, heads, -1).permute(2, 0, 3, 1, 4)
    query, key, value = qkv.reshape(3, batch * heads, tokens, -1).unbind(0)
    if module.use_rel_pos:
        grid_query = query.reshape(batch * heads, height, width, -1)
        pos_h = module.get_rel_pos(height, height, module.rel_pos_h)
        pos_w = module.get_rel_pos(width, width, module.rel_pos_w)
        rel_h = torch.einsum("bhwc,hkc->bhwk", grid_query, pos_h).reshape(batch * heads, tokens, height, 1)
        rel_w = torch.einsum("bhwc,wkc->bhwk", grid_query, pos_w).reshape(batch * heads, tokens, 1, width)
    query = query * module.scale
    keys_t, value = key.transpose(1, 2).contiguous(), value.contiguous()  # else each bmm copies them
    output = torch.empty_like(query)
    chunk = max(1, SCORES_PER_CHUNK // (batch * heads * tokens))
    for start in range(0, tokens, chunk):
        rows = slice(start, start + chunk)
        scores = torch.bmm(query[:, rows], keys_t)
        if module.use_rel_pos:
            grid = scores.view(batch * heads, -1, height, width)
            grid.add_(rel_h[:, rows]).add_(rel_w[:, rows])
        probs = torch.softmax(scores, dim=-1)
        output[:, rows] = torch.bmm(probs, value)
    output = output.view(batch, heads, height, width, -1).permute(0, 2, 3, 1, 4).reshape(batch, height, width, -1)
    return module.proj(output)


def use_rel_pos_attention(model: torch.nn.Module) -> int:
    """Route every ``SamVisionAttention`` of ``model`` through `rel_pos_attention` when its input has
    `MIN_TOKENS` or more (the global blocks); returns how many layers."""
    return replace_forwards(model, "SamVisionAttention", _global_blocks_forward)


def _global_blocks_forward(
    self: torch.nn.Module, hidden_states: torch.Tensor, output_attentions: bool = False
) -> tuple[torch.Tensor, None]:
    """`rel_pos_attention` on (B, H, W, C) tokens, returning ``(output, None)`` as the library's SDPA
    attention does; fewer than `MIN_TOKENS` (a window) take the library's forward."""
    if hidden_states.shape[1] * hidden_states.shape[2] < MIN_TOKENS:
        return type(self).forward(self, hidden_states, output_attentions)
    return rel_pos_attention(self, hidden_states), None
