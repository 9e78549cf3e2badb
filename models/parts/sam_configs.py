"""SAM configurations: the layouts of the published checkpoints (for random builds) and a tiny one for tests."""

from __future__ import annotations

from typing import Any

from transformers import SamConfig

CHECKPOINTS: dict[str, dict[str, Any]] = {
    "facebook/sam-vit-base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12},
    "facebook/sam-vit-large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16},
    "facebook/sam-vit-huge": {"hidden_size": 1280, "num_hidden_layers": 32, "num_attention_heads": 16},
}
"""Hub ids a ``--checkpoint sam=ID`` may name, with their vision encoder's layout (random builds)."""
TINY_SIZE = 256
"""Input side (pixels) of the tiny test build; the real models use 1024."""


RANDOM_INIT_STD = 0.02
"""Weight init std of random full-size builds (transformers' usual ``initializer_range``)."""


def random_sam_config(checkpoint: str) -> SamConfig:
    """The full-size layout of ``checkpoint`` (a key of `CHECKPOINTS`), with SAM's 4 global-attention
    blocks, initialised as a ViT usually is (std 0.02): ``SamVisionConfig``'s default of 1e-10 makes a
    random encoder's embedding about 1e-17, too small for the bench to measure its agreement."""
    layout = CHECKPOINTS[checkpoint]
    depth = layout["num_hidden_layers"]
    global_attn = list(range(depth // 4 - 1, depth, depth // 4))
    vision = {**layout, "global_attn_indexes": global_attn, "initializer_range": RANDOM_INIT_STD}
    return SamConfig(vision_config=vision)


def tiny_sam_config() -> SamConfig:
    """A SAM small enough for tests: a 2-layer ViT of width 32 on 256-pixel inputs."""
    vision = {
        "image_size": TINY_SIZE,
        "hidden_size": 32,
        "output_channels": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "mlp_dim": 64,
        "global_attn_indexes": [1],
        "num_pos_feats": 16,
        "window_size": 8,
    }
    prompt = {"image_size": TINY_SIZE, "hidden_size": 32}
    decoder = {"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 2, "iou_head_hidden_dim": 32}
    return SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
