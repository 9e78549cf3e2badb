"""D-FINE (transformers ``DFineForObjectDetection``): a real-time DETR (2024).

An HGNetV2 backbone and a hybrid encoder feed a DETR decoder whose queries predict, for each box
edge, a probability distribution over offsets; every decoder layer refines the last one's
distributions (Fine-grained Distribution Refinement), and training distils the final layer's into
the earlier ones. Like DETR there is no NMS. Pre- and post-processing are the checkpoint's own
``RTDetrImageProcessor`` (a plain 640 x 640 resize, no normalisation; sigmoid scores, top-k).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import DFineConfig, DFineForObjectDetection, HGNetV2Config, RTDetrImageProcessor

from models.base import ProcessorAdapter
from playground.core.labels import coco_detection_labels
from playground.core.types import Prediction
from playground.core.weights import hf_model, hf_processor

TINY_SIZE = {"height": 64, "width": 64}
"""Input size (pixels) of the tiny test build; the real processor uses 640 x 640."""


def coco80_labels() -> dict[int, str]:
    """COCO's 80 category names with contiguous ids 0-79, as D-FINE's checkpoints number them."""
    names = [name for name in coco_detection_labels().values() if name not in ("__background__", "N/A")]
    return dict(enumerate(names))


class DFineAdapter(ProcessorAdapter):
    """``ustc-community/dfine-small-coco`` (or a local copy), or a random build of its layout.

    The forward gives logits (1, Q, 80) and pred_boxes (1, Q, 4) as normalised cxcywh.
    """

    channels_last = True
    half_precision_regions = ("model.backbone",)
    """The HGNet backbone. The hybrid encoder stays float32: in bf16 its output drifted far from fp32
    on the tiny build (tests/test_precision.py), and the decoder refines boxes."""

    def build(self) -> torch.nn.Module:
        if self.weights == "pretrained":
            self.processor = hf_processor(self.spec, RTDetrImageProcessor, self.checkpoint)
            model = hf_model(self.spec, DFineForObjectDetection, self.checkpoint)
            self.label_names = {int(k): v for k, v in model.config.id2label.items()}
            return model
        self.label_names = coco80_labels()
        if self.weights == "tiny":
            self.processor = RTDetrImageProcessor(size=TINY_SIZE)
            return DFineForObjectDetection(tiny_d_fine_config(self.label_names))
        self.processor = RTDetrImageProcessor(size={"height": 640, "width": 640})
        # The library's default D-FINE layout, not the S checkpoint's (its config is on the hub).
        return DFineForObjectDetection(DFineConfig(id2label=self.label_names))

    def postprocess(self, outputs: Any, image: np.ndarray, task: str) -> Prediction:
        """The processor's ``post_process_object_detection`` at the image's size, clipped to it."""
        result = self.processor.post_process_object_detection(
            outputs, threshold=self.floor(), target_sizes=[image.shape[:2]]
        )[0]
        height, width = image.shape[:2]
        boxes = np.clip(result["boxes"].float().cpu().numpy(), 0, [width, height, width, height])
        return self.new_prediction(
            image,
            "detection",
            boxes=boxes.astype(np.float32),
            scores=result["scores"].float().cpu().numpy(),
            class_ids=result["labels"].cpu().numpy().astype(np.int64),
        )


def tiny_d_fine_config(id2label: dict[int, str]) -> DFineConfig:
    """transformers' own D-FINE test layout: a 4-stage HGNetV2 (widths 64-512), d_model 32, 30 queries."""
    backbone = HGNetV2Config(
        stage_in_channels=[16, 64, 128, 256],
        stage_mid_channels=[16, 32, 64, 128],
        stage_out_channels=[64, 128, 256, 512],
        stage_num_blocks=[1, 1, 2, 1],
        stage_downsample=[False, True, True, True],
        stage_light_block=[False, False, True, True],
        stage_kernel_size=[3, 3, 5, 5],
        stage_numb_of_layers=[3, 3, 3, 3],
        embeddings_size=10,
        hidden_sizes=[64, 128, 256, 512],
        depths=[1, 1, 2, 1],
        out_features=["stage2", "stage3", "stage4"],
        out_indices=[2, 3, 4],
        stem_channels=[3, 16, 16],
        use_lab=True,
    )
    return DFineConfig(
        backbone_config=backbone,
        encoder_hidden_dim=32,
        encoder_in_channels=[128, 256, 512],
        feat_strides=[8, 16, 32],
        encoder_layers=1,
        encoder_ffn_dim=64,
        encoder_attention_heads=2,
        encode_proj_layers=[2],
        d_model=32,
        num_queries=30,
        decoder_in_channels=[32, 32, 32],
        decoder_ffn_dim=64,
        num_feature_levels=3,
        decoder_n_points=[3, 6, 3],
        decoder_n_levels=3,
        decoder_layers=2,
        decoder_attention_heads=2,
        num_denoising=0,
        depth_mult=0.34,
        hidden_expansion=0.5,
        image_size=64,
        disable_custom_kernels=True,
        id2label=id2label,
    )
