"""torchvision's COCO detectors: RetinaNet, Faster R-CNN, Mask R-CNN (ResNet-50 FPN, v2 weights), SSDLite.

- RetinaNet is one-stage: a dense head classifies every anchor of every FPN level at once,
  trained with focal loss so the easy background anchors do not drown the rest.
- Faster R-CNN is two-stage: a region proposal network proposes boxes, then RoIAlign features of
  each proposal are classified and refined.
- Mask R-CNN adds a small FCN head on the same RoI features that predicts a 28x28 soft mask
  per detection.
- SSDLite is one-stage and mobile: SSD's default boxes on six feature maps of a MobileNetV3,
  with heads of depthwise-separable convs, on a fixed 320 x 320 input (3.4 M parameters).

All four return torchvision's uniform dict (``boxes`` XYXY in image pixels, ``labels``,
``scores``; Mask R-CNN's ``masks`` stay the mask head's (N, 1, 28, 28) probabilities until
`postprocess` pastes them one at a time). Resizing, normalisation and NMS happen inside the model;
the weights' ``transforms()`` only converts uint8 to float.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torchvision.models import resnet
from torchvision.models.detection import (
    FasterRCNN,
    MaskRCNN,
    RetinaNet,
    fasterrcnn_resnet50_fpn_v2,
    maskrcnn_resnet50_fpn_v2,
    retinanet_resnet50_fpn_v2,
    ssdlite320_mobilenet_v3_large,
)
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor, RPNHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

from models.base import Adapter
from models.explain.detection import MaskRCNNExplainer, RetinaNetExplainer, TwoStageExplainer
from models.layers.image_masks import pasted_masks
from models.layers.roi_align import POOLED, replace_multiscale_roi_align
from playground.core.patches import Patch
from playground.core.types import Prediction
from playground.core.weights import load_fitting, torchvision_state_dict, torchvision_weights

TINY_SIZE = {"min_size": 64, "max_size": 96}
"""Shorter / longer side (pixels) the tiny test builds resize to; the real weights use 800 / 1333."""
TINY_CHANNELS = 32
"""FPN and head channels of the tiny builds (the real ones have 256)."""
TINY_ANCHORS = (8, 16, 32, 64, 128)
"""Anchor sizes (pixels) of the tiny builds, one per FPN level, for their small inputs."""


class TorchvisionDetectionAdapter(Adapter):
    """Shared by the three detectors: the weights enum, its transform, and the uniform output dict.

    Subclasses name the torchvision builder, the builder's score-threshold keyword and a tiny
    build of the same classes.
    """

    channels_last = True
    half_precision_regions = ("backbone", "rpn.head", "roi_heads.box_head")
    """Backbone, FPN and the heads' feature layers; box regression, decoding and NMS stay float32."""

    task: ClassVar[str] = "detection"
    builder: ClassVar[Callable[..., nn.Module]]
    score_thresh_kwarg: ClassVar[str] = "box_score_thresh"
    explainer = TwoStageExplainer

    def use_faster_layers(self, model: nn.Module) -> list[Patch]:
        """Batch norms are folded into the convolutions before them; Faster and Mask R-CNN pool
        their RoI features with one ``embedding_bag`` over all levels."""
        return [*super().use_faster_layers(model), self.faster(POOLED, replace_multiscale_roi_align, model)]

    def build(self) -> nn.Module:
        weights = torchvision_weights(self.spec)
        categories = weights.meta["categories"]
        self.label_names = dict(enumerate(categories))
        self.transform = weights.transforms()
        options = {self.score_thresh_kwarg: self.floor()}
        if self.weights == "tiny":
            return self.tiny_model(len(categories), **options)
        # Read the checkpoint first, so missing weights fail before a full-size model is built.
        state = torchvision_state_dict(self.spec, self.checkpoint) if self.weights == "pretrained" else None
        model = type(self).builder(weights=None, weights_backbone=None, num_classes=len(categories), **options)
        if state is not None:
            load_fitting(self.spec, model, state, self.checkpoint)
        return model

    def tiny_model(self, num_classes: int, **options: Any) -> nn.Module:
        raise NotImplementedError

    def preprocess(self, image: np.ndarray, task: str) -> list[torch.Tensor]:
        """(H, W, 3) uint8 -> [(3, H, W) float in [0, 1]]; the model resizes and normalises."""
        tensor = torch.tensor(image).permute(2, 0, 1)  # a copy: uploads may be read-only arrays
        return [self.transform(tensor).to(self.device)]

    def forward(self, inputs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """-> boxes (N, 4) XYXY pixels, labels (N,), scores (N,) [, masks (N, 1, H, W)], NMS applied."""
        return self.model(inputs)[0]

    def postprocess(self, outputs: dict[str, torch.Tensor], image: np.ndarray, task: str) -> Prediction:
        """The model's own output as numpy (it already dropped scores below ``self.floor()``).

        Mask R-CNN's masks become ``mask_probs`` and ``masks`` (`pasted_masks`).
        """
        keep = outputs["scores"] >= self.floor()
        fields: dict[str, Any] = {
            "boxes": outputs["boxes"][keep].float().cpu().numpy(),
            "scores": outputs["scores"][keep].float().cpu().numpy(),
            "class_ids": outputs["labels"][keep].cpu().numpy(),
        }
        if "masks" not in outputs:
            return self.new_prediction(image, self.task, **fields)
        stacks, extents = pasted_masks(outputs["masks"][keep], outputs["boxes"][keep], image.shape[:2])
        prediction = self.new_prediction(image, self.task, **fields, **stacks)
        prediction.seed_extents(extents)
        return prediction


class RetinaNetAdapter(TorchvisionDetectionAdapter):
    """``retinanet_resnet50_fpn_v2`` (COCO): one-stage, focal loss, GroupNorm heads."""

    half_precision_regions = ("backbone", "head.classification_head", "head.regression_head")

    builder = staticmethod(retinanet_resnet50_fpn_v2)
    score_thresh_kwarg = "score_thresh"
    explainer = RetinaNetExplainer

    def tiny_model(self, num_classes: int, **options: Any) -> nn.Module:
        """The v2 layout (C3-C5 + P6/P7 from C5, GroupNorm heads) with few channels."""
        backbone = tiny_fpn_backbone(["layer2", "layer3", "layer4"], LastLevelP6P7(2048, TINY_CHANNELS))
        anchors = tiny_anchor_generator(scales_per_octave=3)
        head = RetinaNetHead(
            TINY_CHANNELS, anchors.num_anchors_per_location()[0], num_classes, norm_layer=partial(nn.GroupNorm, 8)
        )
        head.regression_head._loss_type = "giou"  # as in the v2 builder (training only)
        return RetinaNet(backbone, num_classes, anchor_generator=anchors, head=head, **TINY_SIZE, **options)


class FasterRCNNAdapter(TorchvisionDetectionAdapter):
    """``fasterrcnn_resnet50_fpn_v2`` (COCO): region proposals, then RoI classification."""

    builder = staticmethod(fasterrcnn_resnet50_fpn_v2)

    def tiny_model(self, num_classes: int, **options: Any) -> nn.Module:
        return FasterRCNN(**tiny_two_stage_parts(num_classes), **TINY_SIZE, **options)


class MaskRCNNAdapter(TorchvisionDetectionAdapter):
    """``maskrcnn_resnet50_fpn_v2`` (COCO): Faster R-CNN plus a mask head on RoIAlign features."""

    half_precision_regions = ("backbone", "rpn.head", "roi_heads.box_head", "roi_heads.mask_head")

    task = "instance"
    builder = staticmethod(maskrcnn_resnet50_fpn_v2)
    explainer = MaskRCNNExplainer

    def forward(self, inputs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """torchvision's ``GeneralizedRCNN.forward`` without its last step, which pastes every mask
        into one float32 (N, 1, H, W) stack and copies it (3.2 GB for 100 masks at 2048 px): -> boxes
        (N, 4) XYXY pixels, labels, scores, and ``masks`` (N, 1, 28, 28), each box's probabilities."""
        model, size = self.model, inputs[0].shape[-2:]
        images, _ = model.transform(inputs)
        features = model.backbone(images.tensors)
        proposals, _ = model.rpn(images, features)
        (detections,), _ = model.roi_heads(features, proposals, images.image_sizes)
        detections["boxes"] = resize_boxes(detections["boxes"], images.image_sizes[0], size)
        return detections

    def tiny_model(self, num_classes: int, **options: Any) -> nn.Module:
        c = TINY_CHANNELS
        mask_head = MaskRCNNHeads(c, [c], 1, norm_layer=nn.BatchNorm2d)
        mask_predictor = MaskRCNNPredictor(c, c, num_classes)
        parts = tiny_two_stage_parts(num_classes)
        return MaskRCNN(**parts, mask_head=mask_head, mask_predictor=mask_predictor, **TINY_SIZE, **options)


class SSDLiteAdapter(TorchvisionDetectionAdapter):
    """``ssdlite320_mobilenet_v3_large`` (COCO): SSD on MobileNetV3, 320 px, depthwise heads."""

    half_precision_regions = ("backbone",)
    explainer = None  # one stage without an RPN: the two-stage views do not apply

    builder = staticmethod(ssdlite320_mobilenet_v3_large)
    score_thresh_kwarg = "score_thresh"

    def tiny_model(self, num_classes: int, **options: Any) -> nn.Module:
        """The full layout: at 3.4 M parameters it is already as small as the other tiny builds."""
        return ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes, **options)


# ---- tiny builds: the same model classes with a small ResNet, FPN and heads ---------------------


def tiny_fpn_backbone(
    layers: list[str], extra_blocks: nn.Module, norm_layer: Callable | None = None
) -> BackboneWithFPN:
    """A one-block-per-stage Bottleneck ResNet (inner width 16) under a ``TINY_CHANNELS`` FPN."""
    body = resnet.ResNet(resnet.Bottleneck, [1, 1, 1, 1], width_per_group=16)
    stage_channels = {"layer1": 256, "layer2": 512, "layer3": 1024, "layer4": 2048}
    return BackboneWithFPN(
        body,
        return_layers={name: str(i) for i, name in enumerate(layers)},
        in_channels_list=[stage_channels[name] for name in layers],
        out_channels=TINY_CHANNELS,
        extra_blocks=extra_blocks,
        norm_layer=norm_layer,
    )


def tiny_anchor_generator(scales_per_octave: int = 1) -> AnchorGenerator:
    """Anchors of `TINY_ANCHORS` sizes (x ``scales_per_octave`` scales), aspect ratios 0.5, 1, 2."""
    sizes = tuple(tuple(int(s * 2 ** (i / scales_per_octave)) for i in range(scales_per_octave)) for s in TINY_ANCHORS)
    return AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))


def tiny_two_stage_parts(num_classes: int) -> dict[str, Any]:
    """Backbone, RPN and box head of the v2 two-stage layout (BatchNorm FPN and conv heads), small."""
    c = TINY_CHANNELS
    anchors = tiny_anchor_generator()
    return {
        "backbone": tiny_fpn_backbone(["layer1", "layer2", "layer3", "layer4"], LastLevelMaxPool(), nn.BatchNorm2d),
        "num_classes": None,  # given by box_predictor
        "rpn_anchor_generator": anchors,
        "rpn_head": RPNHead(c, anchors.num_anchors_per_location()[0], conv_depth=2),
        "rpn_pre_nms_top_n_test": 200,
        "rpn_post_nms_top_n_test": 100,
        "box_head": FastRCNNConvFCHead((c, 7, 7), [c], [64], norm_layer=nn.BatchNorm2d),
        "box_predictor": FastRCNNPredictor(64, num_classes),
    }
