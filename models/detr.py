"""DETR (transformers ``DetrForObjectDetection``): a CNN, a transformer and learned object queries.

Each query predicts one box and a class (or "no object"); training matches queries to objects by
bipartite matching, so inference needs no NMS. Pre- and post-processing are the library's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor, ResNetConfig

from models.base import ProcessorAdapter
from models.explain.detr import DETRExplainer
from playground.core.labels import coco_detection_labels
from playground.core.types import Prediction
from playground.core.weights import hf_model, hf_processor

TINY_SIZE = {"shortest_edge": 64, "longest_edge": 96}
"""Image size (pixels) of the tiny test build; the real processor uses 800 / 1333."""


class DETRAdapter(ProcessorAdapter):
    """``facebook/detr-resnet-50`` (COCO, 91 category ids), or a random build of its layout.

    The forward gives logits (1, Q, classes + 1) and pred_boxes (1, Q, 4) as normalised cxcywh.
    """

    channels_last = True
    half_precision_regions = ("model",)
    """The ResNet backbone and the transformer; the class and box heads stay float32."""
    explainer = DETRExplainer

    def build(self) -> torch.nn.Module:
        if self.weights == "pretrained":
            self.processor = hf_processor(self.spec, DetrImageProcessor, self.checkpoint)
            model = hf_model(self.spec, DetrForObjectDetection, self.checkpoint)
            self.label_names = {int(k): v for k, v in model.config.id2label.items()}
            return model
        self.label_names = coco_detection_labels()
        if self.weights == "tiny":
            self.processor = DetrImageProcessor(size=TINY_SIZE)
            return DetrForObjectDetection(tiny_detr_config(self.label_names))
        self.processor = DetrImageProcessor()
        backbone = ResNetConfig(out_features=["stage1", "stage2", "stage3", "stage4"])
        return DetrForObjectDetection(DetrConfig(backbone_config=backbone, id2label=self.label_names))

    def postprocess(self, outputs: Any, image: np.ndarray, task: str) -> Prediction:
        """The processor's ``post_process_object_detection`` at the image's size."""
        result = self.processor.post_process_object_detection(
            outputs, threshold=self.floor(), target_sizes=[image.shape[:2]]
        )[0]
        return self.new_prediction(
            image,
            "detection",
            boxes=result["boxes"].float().cpu().numpy(),
            scores=result["scores"].float().cpu().numpy(),
            class_ids=result["labels"].cpu().numpy(),
        )


def tiny_detr_config(id2label: dict[int, str]) -> DetrConfig:
    """A DETR small enough for tests: 4 one-block ResNet stages, d_model 32, 10 queries."""
    backbone = ResNetConfig(
        embedding_size=16,
        hidden_sizes=[16, 32, 64, 128],
        depths=[1, 1, 1, 1],
        layer_type="basic",
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    return DetrConfig(
        backbone_config=backbone,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_queries=10,
        id2label=id2label,
    )
