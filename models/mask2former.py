"""Mask2Former (transformers ``Mask2FormerForUniversalSegmentation``): MaskFormer, refined (2021).

The same mask classification (each query: one mask, one class) serves semantic, instance and
panoptic segmentation, with two changes that matter: the transformer decoder's cross-attention
is masked to each query's current mask (masked attention), and a multi-scale deformable-attention
pixel decoder feeds it high-resolution features in turn. The processor API is MaskFormer's, so
`MaskFormerAdapter` does the work (raw-output cache, the library's three post-processings).

Checkpoint: ``facebook/mask2former-swin-tiny-coco-panoptic``, the smallest COCO panoptic one
(Swin-T, about 47 M parameters): the playground runs on CPUs too, and Swin-B/L cost several times
the time for a few PQ points.
"""

from __future__ import annotations

import dataclasses

import torch
from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, Mask2FormerImageProcessor
from transformers.models.mask2former.modeling_mask2former import Mask2FormerForUniversalSegmentationOutput

from models.layers.deformable_attention import SAMPLED, use_sampling_function
from models.maskformer import MaskFormerAdapter
from playground.core.patches import Patch

PIXEL_DECODER_SAMPLED = dataclasses.replace(
    SAMPLED,
    replaced="transformers multi_scale_deformable_attention, as Mask2FormerPixelDecoderEncoderMultiscaleDeformable"
    "Attention.forward calls it (those layers' own copy of the forward; the library's module is unchanged)",
    by="models.layers.deformable_attention.deformable_sample",
)


class Mask2FormerAdapter(MaskFormerAdapter):
    """``facebook/mask2former-swin-tiny-coco-panoptic`` (COCO panoptic, 133 classes) for three tasks."""

    model_class = Mask2FormerForUniversalSegmentation
    processor_class = Mask2FormerImageProcessor
    output_class = Mask2FormerForUniversalSegmentationOutput

    def use_faster_layers(self, model: torch.nn.Module) -> list[Patch]:
        """The pixel decoder's deformable attention samples with one ``embedding_bag``."""
        layer = "Mask2FormerPixelDecoderEncoderMultiscaleDeformableAttention"
        sampled = self.faster(
            PIXEL_DECODER_SAMPLED, use_sampling_function, model, layer, "multi_scale_deformable_attention"
        )
        return [*super().use_faster_layers(model), sampled]

    def tiny_config(self, id2label: dict[int, str]) -> Mask2FormerConfig:
        """transformers' own test layout: one block per Swin stage, width 64, 10 queries."""
        config = Mask2FormerConfig(
            hidden_size=64,
            num_queries=10,
            encoder_feedforward_dim=64,
            dim_feedforward=128,
            hidden_dim=64,
            mask_feature_size=64,
            feature_size=64,
            id2label=id2label,
        )
        config.backbone_config.depths = [1, 1, 1, 1]
        return config

    def random_config(self, id2label: dict[int, str]) -> Mask2FormerConfig:
        """The checkpoint's layout: a Swin-T backbone (depths 2, 2, 6, 2) under the default heads."""
        config = Mask2FormerConfig(id2label=id2label)
        config.backbone_config.depths = [2, 2, 6, 2]
        return config
