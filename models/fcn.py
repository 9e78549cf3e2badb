"""FCN (torchvision ``fcn_resnet50``): a ResNet whose FC layers became convolutions.

The coarse score map (stride 8) is upsampled bilinearly back to the image, and each pixel takes
its arg-max class among the 21 Pascal VOC classes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models import resnet
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation import fcn_resnet50
from torchvision.models.segmentation.fcn import FCN, FCNHead
from torchvision.transforms._presets import SemanticSegmentation

from models.base import Adapter
from models.explain.fcn import FCNExplainer
from playground.core.types import Prediction
from playground.core.weights import load_fitting, torchvision_state_dict, torchvision_weights

TINY_RESIZE = 64
"""Shorter side (pixels) the tiny test build resizes to; the real weights use 520."""


class FCNAdapter(Adapter):
    """torchvision FCN-ResNet50 with COCO-with-VOC-labels weights (21 classes)."""

    channels_last = True
    explainer = FCNExplainer

    def build(self) -> torch.nn.Module:
        weights = torchvision_weights(self.spec)
        categories = weights.meta["categories"]
        self.label_names = dict(enumerate(categories))
        if self.weights == "tiny":
            self.transform = SemanticSegmentation(resize_size=TINY_RESIZE)
            return tiny_fcn(len(categories))
        self.transform = weights.transforms()
        model = fcn_resnet50(weights=None, weights_backbone=None, num_classes=len(categories), aux_loss=True)
        if self.weights == "pretrained":
            load_fitting(self.spec, model, torchvision_state_dict(self.spec, self.checkpoint), self.checkpoint)
        # The auxiliary head only helps training; dropping it saves a head's compute per image.
        model.aux_classifier = None
        return model

    def preprocess(self, image: np.ndarray, task: str) -> torch.Tensor:
        """(H, W, 3) uint8 -> (1, 3, h, w) float, resized and normalised by the weights' transform."""
        tensor = torch.from_numpy(image).permute(2, 0, 1)
        return self.transform(tensor).unsqueeze(0).to(self.device)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(1, 3, h, w) -> (1, C, h, w) class logits."""
        return self.model(inputs)["out"]

    def postprocess(self, outputs: torch.Tensor, image: np.ndarray, task: str) -> Prediction:
        """Logits -> per-pixel arg-max at the image's size."""
        logits = F.interpolate(outputs, size=image.shape[:2], mode="bilinear", align_corners=False)
        label_map = logits[0].argmax(dim=0).to(torch.int32).cpu().numpy()
        return self.new_prediction(image, "semantic", semantic_map=label_map)


def tiny_fcn(num_classes: int) -> FCN:
    """The same FCN layout (dilated ResNet with Bottleneck blocks, FCN head) at one block a stage."""
    backbone = resnet.ResNet(
        resnet.Bottleneck, [1, 1, 1, 1], width_per_group=16, replace_stride_with_dilation=[False, True, True]
    )
    return FCN(IntermediateLayerGetter(backbone, {"layer4": "out"}), FCNHead(2048, num_classes))
