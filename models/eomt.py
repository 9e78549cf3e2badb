"""EoMT (transformers ``EomtForUniversalSegmentation``): "your ViT is secretly a segmenter" (2025).

A plain DINOv2-style ViT with register tokens; learned mask queries join the patch tokens for the
last few blocks, and a small head turns each query into a class and a mask. No adapter, no pixel
decoder, no separate transformer decoder, so it is fast for its accuracy. Its raw outputs are
MaskFormer's (class and mask logits per query), so `MaskFormerAdapter` keeps them per image; the
post-processing is EoMT's own processor's (inputs are resized and padded to a square, and the
masks un-padded back).

Checkpoint: ``tue-mps/coco_panoptic_eomt_base_640_2x`` (ViT-B, 640 px), the smallest COCO panoptic
one, for CPU speed; ``tue-mps/coco_panoptic_eomt_large_640`` (ViT-L) is the one transformers tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import EomtConfig, EomtForUniversalSegmentation, EomtImageProcessor
from transformers.models.eomt.modeling_eomt import EomtForUniversalSegmentationOutput

from models.maskformer import PANOPTIC_THRESHOLD, MaskFormerAdapter, _Raw
from models.parts.panoptic import MASK_THRESHOLD, OVERLAP_THRESHOLD, segments_to_fields
from playground.core.errors import BadPromptError
from playground.core.types import Prediction

TINY_SIDE = 40
"""Input side (pixels) of the tiny test build (transformers' own test size); the real one uses 640."""


class EoMTAdapter(MaskFormerAdapter):
    """``tue-mps/coco_panoptic_eomt_base_640_2x`` (COCO panoptic, 133 classes), panoptic only."""

    half_precision_regions = ("",)
    """The whole ViT (queries ride in its last blocks); logits are cast back before post-processing."""

    model_class = EomtForUniversalSegmentation
    processor_class = EomtImageProcessor
    output_class = EomtForUniversalSegmentationOutput

    def build(self) -> torch.nn.Module:
        """The model; a random build runs as the released checkpoints do, without masked attention.

        EoMT trains with masked attention in its last blocks and anneals each block's masking
        probability (``attn_mask_probs``, a saved buffer) from 1 to 0, so a trained checkpoint
        runs plain attention, with one mask prediction at the end. transformers initialises the
        buffer at 1, where training starts: a random build left there would run 4 extra mask
        predictions and a (1, heads, tokens, tokens) float mask per masked block, which no
        checkpoint does."""
        model = super().build()
        if self.weights != "pretrained":
            model.attn_mask_probs.zero_()
        return model

    def new_processor(self, tiny: bool) -> EomtImageProcessor:
        """Resize the longer side and pad to a square, as the COCO panoptic checkpoints do."""
        side = TINY_SIDE if tiny else 640
        return EomtImageProcessor(size={"shortest_edge": side, "longest_edge": side}, do_pad=True)

    def tiny_config(self, id2label: dict[int, str]) -> EomtConfig:
        """transformers' own test layout: 4 blocks of width 8, patch 2, 5 queries in the last block."""
        return EomtConfig(
            image_size=TINY_SIDE,
            patch_size=2,
            hidden_size=8,
            num_attention_heads=2,
            num_hidden_layers=4,
            num_register_tokens=19,
            num_queries=5,
            num_blocks=1,
            id2label=id2label,
        )

    def random_config(self, id2label: dict[int, str]) -> EomtConfig:
        """A ViT-B layout at 640 px with 200 queries (the checkpoint's own config is on the hub)."""
        return EomtConfig(
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            image_size=640,
            num_queries=200,
            id2label=id2label,
        )

    def postprocess(self, raw: _Raw, image: np.ndarray, task: str) -> Prediction:
        """The processor's ``post_process_panoptic_segmentation`` at the image's size, stuff fused;
        segments form above ``self.floor(PANOPTIC_THRESHOLD)``."""
        if task != "panoptic":
            raise BadPromptError(f"{self.spec.title} does panoptic segmentation only, not {task!r}.")
        threshold = self.floor(PANOPTIC_THRESHOLD)
        result: dict[str, Any] = self.processor.post_process_panoptic_segmentation(
            queries_it_keeps(raw.outputs, threshold),
            target_sizes=[image.shape[:2]],
            threshold=threshold,
            mask_threshold=self.floor(MASK_THRESHOLD),
            overlap_mask_area_threshold=self.floor(OVERLAP_THRESHOLD),
            stuff_classes=sorted(self.stuff_ids),
        )[0]
        fields = segments_to_fields(result["segmentation"], result["segments_info"], self.thing_ids)
        prediction = self.new_prediction(image, task, **fields)
        prediction.reuse = "raw outputs cached" if raw.reused else ""
        return prediction


def queries_it_keeps(
    outputs: EomtForUniversalSegmentationOutput, threshold: float
) -> EomtForUniversalSegmentationOutput:
    """``outputs`` (batch 1) cut to the queries EoMT's panoptic post-processing keeps: its best class
    is not "no object" and scores above ``threshold``. The processor upsamples every query's mask
    logits to the image size before it drops the others (200 float32 maps: 3.2 GB at 2048 px); each
    query is upsampled and kept on its own, so the cut changes nothing. The processor cannot take
    zero queries, so with none kept the best one stays, for it to drop."""
    class_logits, mask_logits = outputs.class_queries_logits, outputs.masks_queries_logits
    scores, labels = class_logits[0].softmax(dim=-1).max(dim=-1)
    keep = (labels != class_logits.shape[-1] - 1) & (scores > threshold)
    keep[scores.argmax()] = True
    return EomtForUniversalSegmentationOutput(
        class_queries_logits=class_logits[:, keep], masks_queries_logits=mask_logits[:, keep]
    )
