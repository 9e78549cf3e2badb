"""DETR for panoptic segmentation (transformers ``DetrForSegmentation``).

The detection DETR plus a mask head: each object query's decoder embedding attends over the
encoder's feature map, and a small FPN-style convolutional head turns that attention into a mask
at 1/4 resolution. Things and stuff are both just queries with a class; the processor's
``post_process_panoptic_segmentation`` assigns every pixel to the best-scoring query.

Checkpoint: ``facebook/detr-resnet-50-panoptic`` at its main revision, whose config names a timm
ResNet backbone, so pretrained weights need ``pip install timm``. We found no ``no_timm`` revision
for it (``facebook/detr-resnet-50`` has one; transformers' own tests load the panoptic checkpoint
only with timm). Random and tiny builds use transformers' ResNet.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import DetrConfig, DetrForSegmentation, DetrImageProcessor, ResNetConfig

from models.base import ProcessorAdapter
from models.detr import TINY_SIZE, tiny_detr_config
from models.explain.detr import DETRPanopticExplainer
from models.panoptic import panoptic_fields
from playground.core.errors import PlaygroundError
from playground.core.labels import coco_detection_labels
from playground.core.types import Prediction
from playground.core.weights import hf_from_pretrained

PANOPTIC_THRESHOLD = 0.85
"""Query score a panoptic segment needs: the DETR authors' ``PostProcessPanoptic`` setting."""
LAST_THING_ID = 90
"""COCO panoptic category ids up to 90 are things (COCO detection's ids), 92-200 are stuff: the
DETR authors' ``is_thing_map = {i: i <= 90}``. DETR predicts those raw ids (250 slots)."""
NUM_CLASSES = 250
"""Class slots of the checkpoint's classifier (before "no object")."""


class DETRPanopticAdapter(ProcessorAdapter):
    """``facebook/detr-resnet-50-panoptic`` (COCO panoptic), or a random build of its layout.

    The forward gives logits (1, Q, classes + 1), pred_boxes (1, Q, 4) and pred_masks (1, Q, h/4, w/4).
    """

    channels_last = True
    half_precision_regions = ("detr.model.backbone", "detr.model.encoder", "detr.model.decoder", "mask_head")
    """The ResNet backbone, the transformer and the convolutional mask head (``DetrForSegmentation``
    calls the parts of ``detr.model`` one by one); the class and box heads stay float32."""
    explainer = DETRPanopticExplainer

    def build(self) -> torch.nn.Module:
        if self.weights == "pretrained":
            load = {"local_path": self.checkpoint}
            self.processor = hf_from_pretrained(self.spec, DetrImageProcessor.from_pretrained, **load)
            try:
                model = hf_from_pretrained(self.spec, DetrForSegmentation.from_pretrained, **load)
            except ImportError as error:
                raise PlaygroundError(
                    f"{self.spec.title}: its checkpoint uses a timm ResNet backbone; `pip install timm` ({error})."
                ) from None
        else:
            labels = coco_panoptic_id_labels()
            if self.weights == "tiny":
                self.processor = DetrImageProcessor(size=TINY_SIZE)
                config = tiny_detr_config(labels)
                # The mask head's GroupNorm(8) sees d_model + heads channels: 32 + 8.
                config.encoder_attention_heads = config.decoder_attention_heads = 8
            else:
                self.processor = DetrImageProcessor()
                backbone = ResNetConfig(out_features=["stage1", "stage2", "stage3", "stage4"])
                config = DetrConfig(backbone_config=backbone, id2label=labels)
            model = DetrForSegmentation(config)
        self.label_names = {int(k): v for k, v in model.config.id2label.items()}
        self.thing_ids = frozenset(i for i in self.label_names if i <= LAST_THING_ID)
        self.stuff_ids = frozenset(self.label_names) - self.thing_ids
        return model

    def postprocess(self, outputs: Any, image: np.ndarray, task: str) -> Prediction:
        """The processor's ``post_process_panoptic_segmentation`` at the image's size; stuff is fused."""
        return self.new_prediction(image, "panoptic", **panoptic_fields(self, outputs, image, PANOPTIC_THRESHOLD))


def coco_panoptic_id_labels() -> dict[int, str]:
    """Label names for random builds, indexed like the checkpoint's 250 COCO panoptic id slots.

    Ids 0-90 take COCO's detection names from torchvision's metadata (things); no installed library
    lists the stuff names, so ids 91-249 are named "stuff 91" ... (COCO uses 92-200).
    """
    detection = coco_detection_labels()
    return {i: detection[i] if i <= LAST_THING_ID else f"stuff {i}" for i in range(NUM_CLASSES)}
