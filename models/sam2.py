"""SAM 2.1 (transformers ``Sam2Model``) on single images: a hierarchical Hiera encoder, SAM's
prompt encoder and a mask decoder that also reads the encoder's high-resolution features (2024).

SAM 2 is built for video (a memory of past frames conditions each new one); on one image it is
a faster, more accurate SAM. The prompts and the embedding cache are SAM's (`SAMAdapter`): the
image is encoded once (a list of 3 feature maps, finest first) and each click runs only the
prompt encoder and decoder. Coordinates go through ``Sam2Processor`` (points and boxes scaled to
its square 1024 input) and masks back through its ``post_process_masks``. Params: ``points``,
``box``, ``mask_input`` (``Sam2Model`` takes ``input_masks`` as SAM does: each click refines the
last best mask), ``boxes`` or ``encode`` (as `SAMAdapter`; no "segment everything" here).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import Sam2Config, Sam2ImageProcessor, Sam2Model, Sam2Processor
from transformers.models.sam2.configuration_sam2 import (
    Sam2HieraDetConfig,
    Sam2MaskDecoderConfig,
    Sam2PromptEncoderConfig,
    Sam2VisionConfig,
)

from models.sam import LABEL_NAMES, SAMAdapter
from playground.core.cache import Lookup
from playground.core.devices import synchronize
from playground.core.weights import hf_model, hf_processor

TINY_SIZE = 128
"""Input side (pixels) of the tiny test build (transformers' own test size); the real one is 1024."""


class SAM2Adapter(SAMAdapter):
    """``facebook/sam2.1-hiera-tiny`` (or ``-small`` / ``-base-plus`` / ``-large`` via ``--checkpoint sam2=ID``)."""

    preprocess_params = frozenset({"points", "box", "boxes", "mask_input", "encode"})

    def build(self) -> torch.nn.Module:
        self.label_names = LABEL_NAMES
        if self.weights == "pretrained":
            self.processor = hf_processor(self.spec, Sam2Processor, self.checkpoint)
            return hf_model(self.spec, Sam2Model, self.checkpoint)
        if self.weights == "tiny":
            size = {"height": TINY_SIZE, "width": TINY_SIZE}
            self.processor = Sam2Processor(Sam2ImageProcessor(size=size))
            return Sam2Model(tiny_sam2_config())
        self.processor = Sam2Processor(Sam2ImageProcessor())
        return Sam2Model(Sam2Config())  # the library default is the Hiera-T layout

    def prompt_tensors(
        self, lookup: Lookup[dict[str, Any]], image: np.ndarray, arrays: tuple[np.ndarray, np.ndarray, np.ndarray]
    ) -> dict[str, torch.Tensor]:
        """The prompt encoder's inputs, on the CPU, for ``arrays`` (points, labels and boxes in image
        pixels, as in `SAMAdapter`) as ``Sam2Processor`` scales them to its square input."""
        points, labels, boxes = arrays
        given: dict[str, Any] = {}
        if len(points):
            given["input_points"] = [[points.tolist()]]
            given["input_labels"] = [[labels.tolist()]]
        if len(boxes):
            given["input_boxes"] = [boxes.tolist()]
        encoded = self.processor(original_sizes=[list(image.shape[:2])], return_tensors="pt", **given)
        return {name: encoded[name] for name in given}

    def mask_sizes(self) -> dict[str, dict[str, int]]:
        """The image processor's ``mask_size`` for this model's low-res logits (SAM 2 resizes to a square)."""
        height, width = self.model.prompt_encoder.mask_input_size
        return {"mask_size": {"height": height, "width": width}}

    def _encode(self, image: np.ndarray) -> dict[str, list[torch.Tensor]]:
        """The vision encoder on the processed image: 3 feature maps (1, C, h, w), finest first."""
        processed = self.processor(images=image, return_tensors="pt")
        embeddings = self.model.get_image_embeddings(processed["pixel_values"].to(self.device))
        synchronize(self.device)  # the cache times this call: "image encoded in X s" is the device's work
        return {"image_embeddings": embeddings}

    def _upscale(self, low_res: torch.Tensor, lookup: Lookup[dict[str, Any]], image: np.ndarray) -> torch.Tensor:
        """(n, h, w) low-res mask logits -> (n, H, W) logits at the image's size (``post_process_masks``)."""
        return self.processor.post_process_masks([low_res[:, None]], [image.shape[:2]], binarize=False)[0][:, 0]


def tiny_sam2_config() -> Sam2Config:
    """transformers' own SAM 2 test layout: a 4-stage Hiera of width 12 on 128-pixel inputs."""
    backbone = Sam2HieraDetConfig(
        hidden_size=12,
        image_size=TINY_SIZE,
        blocks_per_stage=[1, 2, 7, 2],
        embed_dim_per_stage=[12, 24, 48, 96],
    )
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=[96, 48, 24, 12],
        backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]],
        fpn_hidden_size=32,
    )
    return Sam2Config(
        vision_config=vision,
        prompt_encoder_config=Sam2PromptEncoderConfig(image_size=TINY_SIZE, hidden_size=32, mask_input_channels=8),
        mask_decoder_config=Sam2MaskDecoderConfig(
            hidden_size=32, mlp_dim=64, num_attention_heads=4, iou_head_hidden_dim=32
        ),
        memory_attention_hidden_size=12,
        memory_encoder_hidden_size=32,
        image_size=TINY_SIZE,
        mask_downsampler_embed_dim=32,
        memory_fuser_embed_dim=32,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=32,
    )
