"""SAM 3's ViT attention with its 2-D rotary positions applied as one complex multiplication.

transformers' ``apply_rotary_pos_emb_2d`` rotates each (even, odd) pair of a head's channels in
float32 as ``x * cos + rotate_pairwise(x) * sin``: a cast, a stack of two strided halves, two
broadcast products, a sum and a cast back, for the queries and again for the keys. Read as complex
numbers, the pair is ``x_even + i x_odd`` and the rotation is a product with ``cos + i sin``, so
``torch.view_as_complex`` does it in one vectorised pass: the same float32 products, equal to the
library's to float32 rounding (in bf16 every output was the same on the bench's shapes). It runs
in each of the ViT's 32 blocks, on queries and keys of a 72 x 72 grid or of 9 windows of 24 x 24
(16 heads).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.layers.forward_swap import replace_forwards
from playground.core.patches import Patch

COMPLEX_ROTATION = Patch(
    replaced="transformers Sam3ViTRoPEAttention.forward",
    by="models.layers.rope_attention.rope_attention (rotary positions as one complex product)",
    why="transformers casts, stacks strided halves and sums two broadcast products per query and key",
    devices=("cpu",),  # measured on CPUs only: CUDA and MPS keep the library's rotation
)


def rotate_pairs(tensor: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """``tensor`` (..., tokens, head_dim) with each channel pair rotated by ``rotation`` (tokens,
    head_dim / 2) complex64 ``cos + i sin``, computed in float32 and returned in its own dtype."""
    pairs = torch.view_as_complex(tensor.float().unflatten(-1, (-1, 2)))
    return torch.view_as_real(pairs * rotation).flatten(-2).type_as(tensor)


def rope_attention(
    module: torch.nn.Module, hidden_states: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """transformers' ``Sam3ViTRoPEAttention`` ``module`` on ``hidden_states`` (B, H, W, C) with its
    ``(cos, sin)`` (1, H * W, head_dim), each value repeated for the two channels of a pair; returns
    (B, H, W, C) through the same SDPA call as the library's."""
    batch, height, width, _ = hidden_states.shape
    shape = (batch, height * width, module.num_attention_heads, module.head_dim)
    query, key, value = (
        projection(hidden_states).view(shape).transpose(1, 2)
        for projection in (module.q_proj, module.k_proj, module.v_proj)
    )
    cos, sin = position_embeddings
    rotation = torch.complex(cos[..., ::2].float(), sin[..., ::2].float())
    output = F.scaled_dot_product_attention(
        rotate_pairs(query, rotation), rotate_pairs(key, rotation), value, scale=module.scaling
    )
    return module.o_proj(output.transpose(1, 2).reshape(batch, height, width, -1))


def use_rope_attention(model: torch.nn.Module) -> int:
    """Give every ``Sam3ViTRoPEAttention`` of ``model`` `rope_attention` as its forward; returns how many."""
    return replace_forwards(model, "Sam3ViTRoPEAttention", _rope_forward)


def _rope_forward(
    self: torch.nn.Module, hidden_states: torch.Tensor, position_embeddings: tuple, **_: object
) -> tuple[torch.Tensor, None]:
    """`rope_attention`, returning ``(output, None)`` as the library's forward does."""
    return rope_attention(self, hidden_states, position_embeddings), None
