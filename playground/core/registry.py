"""The model registry: one `ModelSpec` per stable key, and the tasks that show them.

Adapters are named as ``"module:Class"`` strings and imported only when a model is first used,
so listing models or starting the app imports no model code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from playground.core.errors import UnknownModelError

TASKS: dict[str, str] = {
    "semantic": "Semantic segmentation",
    "detection": "Object detection",
    "instance": "Instance segmentation",
    "panoptic": "Panoptic segmentation",
    "prompt": "Prompt segmentation (points, box)",
    "text": "Text to segment (open vocabulary)",
    "video": "Video (track objects through a clip)",
}
CLOSED_SET_TASKS = ("semantic", "detection", "instance", "panoptic")
"""Tasks whose models need no prompt: one shared tab layout serves them all."""


@dataclass(frozen=True)
class ModelSpec:
    """What the playground knows about a model before loading it.

    Attributes:
        key: stable registry key used by the UI, the API and the CLI.
        title: human name.
        tasks: the tabs it appears in.
        source: where the checkpoint lives: ``torchvision`` (a weights enum), ``huggingface``
            (a hub id), ``torchhub`` (a URL) or ``composite`` (made of other keys).
        checkpoint: the default real checkpoint: ``"FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1"``
            or a hub id such as ``"facebook/detr-resnet-50"``.
        revision: hub revision (branch or commit) for huggingface checkpoints.
        licence: licence of the weights.
        size_mb: approximate download size in MB.
        adapter: ``"module:Class"`` of the adapter (in ``models/``), or of the composite (above the
            manager, in ``playground/composites.py``) when ``components`` is set.
        summary: one line on what makes the model worth comparing.
        labels: where its label names come from.
        year: the year the model (its paper) was published, for timelines.
        published: its published COCO score and where it is stated ("model card", a README, a
            paper); empty for torchvision checkpoints, whose score is read from the weights enum's
            ``meta["_metrics"]`` at runtime (`playground.core.weights.published_score`).
        components: registry keys a composite model is made of.
        half_precision: False for a model that gains nothing in bf16/fp16 or breaks there: it
            then runs in fp32 whatever ``--precision`` says (``precision_note`` says why).
        gated: the hub asks users to request access first (the missing-weights message says how).
    """

    key: str
    title: str
    tasks: tuple[str, ...]
    source: str
    checkpoint: str
    licence: str
    size_mb: float
    adapter: str
    summary: str
    labels: str
    year: int
    published: str
    revision: str | None = None
    components: tuple[str, ...] = field(default_factory=tuple)
    half_precision: bool = True
    precision_note: str = ""
    gated: bool = False

    def load_class(self) -> type:
        """Import and return the class named by ``adapter`` (the first call imports the model code)."""
        module_name, class_name = self.adapter.split(":")
        return getattr(importlib.import_module(module_name), class_name)


_SPECS = [
    ModelSpec(
        key="fcn",
        title="FCN ResNet-50",
        tasks=("semantic",),
        source="torchvision",
        checkpoint="FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1",
        licence="BSD-3-Clause (torchvision)",
        size_mb=135.0,
        adapter="models.fcn:FCNAdapter",
        summary="Fully convolutional: 1x1 convs instead of FC layers, upsampled score map.",
        labels="21 Pascal VOC classes, from the weights enum's meta['categories']",
        year=2015,
        published="",
    ),
    ModelSpec(
        key="unet",
        title="U-Net (Carvana)",
        tasks=("semantic",),
        source="torchhub",
        checkpoint="https://github.com/milesial/Pytorch-UNet/releases/download/v3.0/unet_carvana_scale0.5_epoch2.pth",
        licence="GPL-3.0 (milesial/Pytorch-UNet code and weights)",
        size_mb=124.0,
        adapter="models.unet:UNetAdapter",
        summary=(
            "Contracting and expanding paths joined by skip concatenations. The only public checkpoint "
            "of the classic U-Net itself (no pretrained encoder): milesial/Pytorch-UNet's torch hub "
            "release, trained on Kaggle Carvana car masks at input scale 0.5 (images are halved, /255)."
        ),
        labels="background, car (2 classes; the checkpoint stores mask_values [0, 1], no names)",
        year=2015,
        published="none: no COCO checkpoint (Carvana car masks only)",
    ),
    ModelSpec(
        key="retinanet",
        title="RetinaNet ResNet-50 FPN v2",
        tasks=("detection",),
        source="torchvision",
        checkpoint="RetinaNet_ResNet50_FPN_V2_Weights.COCO_V1",
        licence="BSD-3-Clause (torchvision)",
        size_mb=146.0,
        adapter="models.torchvision_detection:RetinaNetAdapter",
        summary="One-stage detector trained with focal loss.",
        labels="COCO, from the weights enum's meta['categories']",
        year=2017,
        published="",
    ),
    ModelSpec(
        key="faster-rcnn",
        title="Faster R-CNN ResNet-50 FPN v2",
        tasks=("detection",),
        source="torchvision",
        checkpoint="FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1",
        licence="BSD-3-Clause (torchvision)",
        size_mb=167.0,
        adapter="models.torchvision_detection:FasterRCNNAdapter",
        summary="Two-stage detector: region proposals, then RoI classification.",
        labels="COCO, from the weights enum's meta['categories']",
        year=2015,
        published="",
    ),
    ModelSpec(
        key="mask-rcnn",
        title="Mask R-CNN ResNet-50 FPN v2",
        tasks=("instance",),
        source="torchvision",
        checkpoint="MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1",
        licence="BSD-3-Clause (torchvision)",
        size_mb=177.0,
        adapter="models.torchvision_detection:MaskRCNNAdapter",
        summary="Faster R-CNN plus a mask head on RoIAlign features.",
        labels="COCO, from the weights enum's meta['categories']",
        year=2017,
        published="",
    ),
    ModelSpec(
        key="detr",
        title="DETR ResNet-50",
        tasks=("detection",),
        source="huggingface",
        checkpoint="facebook/detr-resnet-50",
        revision="no_timm",
        licence="Apache-2.0",
        size_mb=167.0,
        adapter="models.detr:DETRAdapter",
        summary="Set prediction: object queries, bipartite matching, no NMS.",
        labels="COCO, from the checkpoint config's id2label",
        year=2020,
        published="box AP 42.0, COCO 2017 val (model card)",
    ),
    ModelSpec(
        key="detr-panoptic",
        title="DETR ResNet-50 (panoptic)",
        tasks=("panoptic",),
        source="huggingface",
        checkpoint="facebook/detr-resnet-50-panoptic",
        licence="Apache-2.0",
        size_mb=172.0,
        adapter="models.detr_panoptic:DETRPanopticAdapter",
        summary=(
            "DETR plus a mask head: each object query's attention map becomes a mask. The checkpoint "
            "has no no_timm revision, so its pretrained weights need timm installed."
        ),
        labels="COCO panoptic category ids, from the checkpoint config's id2label; ids <= 90 are things",
        year=2020,
        published="PQ 43.4, COCO 2017 val (model card)",
    ),
    ModelSpec(
        key="maskformer",
        title="MaskFormer Swin-B",
        tasks=("panoptic", "semantic", "instance"),
        source="huggingface",
        checkpoint="facebook/maskformer-swin-base-coco",
        licence="see the model card",
        size_mb=410.0,
        adapter="models.maskformer:MaskFormerAdapter",
        summary="Mask classification: one model for semantic, instance and panoptic.",
        labels=(
            "133 COCO panoptic classes, from the checkpoint config's id2label; things are the names "
            "among COCO's 80 object categories (the config has no thing/stuff flags)"
        ),
        year=2021,
        published="unconfirmed: no model-card number found",
    ),
    ModelSpec(
        key="sam",
        title="Segment Anything ViT-B",
        tasks=("prompt",),
        source="huggingface",
        checkpoint="facebook/sam-vit-base",
        licence="Apache-2.0",
        size_mb=375.0,
        adapter="models.sam:SAMAdapter",
        summary="Promptable masks: heavy image encoder once, light decoder per prompt.",
        labels="none (class-agnostic masks)",
        year=2023,
        published="none: class-agnostic, no COCO score on the model card",
    ),
    ModelSpec(
        key="grounding-dino",
        title="Grounding DINO Tiny",
        tasks=("detection", "text"),
        source="huggingface",
        checkpoint="IDEA-Research/grounding-dino-tiny",
        licence="Apache-2.0",
        size_mb=690.0,
        adapter="models.grounding_dino:GroundingDINOAdapter",
        summary="Open-set detection: text phrases in, boxes out (BERT text fused with a Swin image backbone).",
        labels="the phrases you type (COCO's 80 names when the detection tab gives no text)",
        year=2023,
        published="unconfirmed: no model-card number found",
    ),
    ModelSpec(
        key="grounded-sam",
        title="Grounded-SAM",
        tasks=("text",),
        source="composite",
        checkpoint="IDEA-Research/grounding-dino-tiny + facebook/sam-vit-base",
        licence="Apache-2.0",
        size_mb=690.0 + 375.0,
        adapter="playground.composites:GroundedSAM",
        summary="Grounding DINO turns text into boxes, SAM turns boxes into masks.",
        labels="the phrases you type",
        components=("grounding-dino", "sam"),
        year=2023,
        published="none: its parts' scores only (Grounding DINO, SAM)",
    ),
    ModelSpec(
        key="ssdlite",
        title="SSDLite320 MobileNetV3-Large",
        tasks=("detection",),
        source="torchvision",
        checkpoint="SSDLite320_MobileNet_V3_Large_Weights.COCO_V1",
        licence="BSD-3-Clause (torchvision)",
        size_mb=13.4,
        adapter="models.torchvision_detection:SSDLiteAdapter",
        summary="Mobile one-stage detector: SSD heads of depthwise-separable convs on MobileNetV3, 320 px input.",
        labels="COCO, from the weights enum's meta['categories']",
        year=2019,
        published="",
    ),
    ModelSpec(
        key="d-fine",
        title="D-FINE S",
        tasks=("detection",),
        source="huggingface",
        checkpoint="ustc-community/dfine-small-coco",
        licence="Apache-2.0",
        size_mb=41.5,
        adapter="models.d_fine:DFineAdapter",
        summary="Real-time DETR: each box edge is a distribution refined layer by layer; no NMS.",
        labels="COCO's 80 classes, from the checkpoint config's id2label",
        year=2024,
        published="box AP 48.5, COCO val2017 (D-FINE README model zoo; model card not confirmed)",
    ),
    ModelSpec(
        key="mask2former",
        title="Mask2Former Swin-T",
        tasks=("panoptic", "semantic", "instance"),
        source="huggingface",
        checkpoint="facebook/mask2former-swin-tiny-coco-panoptic",
        licence="other (see the model card)",
        size_mb=190.0,
        adapter="models.mask2former:Mask2FormerAdapter",
        summary="MaskFormer with masked cross-attention and a multi-scale deformable pixel decoder.",
        labels="133 COCO panoptic classes, from the checkpoint config's id2label",
        year=2021,
        published="unconfirmed: no model-card number found",
    ),
    ModelSpec(
        key="eomt",
        title="EoMT ViT-B (COCO panoptic)",
        tasks=("panoptic",),
        source="huggingface",
        checkpoint="tue-mps/coco_panoptic_eomt_base_640_2x",
        licence="unconfirmed (see the model card)",
        size_mb=400.0,
        adapter="models.eomt:EoMTAdapter",
        summary="Encoder-only: a plain ViT whose last blocks also carry mask queries; no pixel decoder.",
        labels="133 COCO panoptic classes, from the checkpoint config's id2label",
        year=2025,
        published="unconfirmed: no model-card number found",
    ),
    ModelSpec(
        key="sam2",
        title="SAM 2.1 Hiera-T",
        tasks=("prompt",),
        source="huggingface",
        checkpoint="facebook/sam2.1-hiera-tiny",
        licence="Apache-2.0",
        size_mb=156.0,
        adapter="models.sam2:SAM2Adapter",
        summary="SAM with a hierarchical (Hiera) image encoder and multi-scale features; built for video too.",
        labels="none (class-agnostic masks)",
        year=2024,
        published="none: class-agnostic, no COCO score on the model card",
    ),
    ModelSpec(
        key="owlv2",
        title="OWLv2 ViT-B/16",
        tasks=("detection", "text"),
        source="huggingface",
        checkpoint="google/owlv2-base-patch16-ensemble",
        licence="Apache-2.0",
        size_mb=620.0,
        adapter="models.owlv2:OWLv2Adapter",
        summary="Open-vocabulary detection: CLIP text embeddings score a box for every ViT patch.",
        labels="the phrases you type (COCO's 80 names when the detection tab gives no text)",
        year=2023,
        published="unconfirmed: no model-card number found",
    ),
    ModelSpec(
        key="owlv2-sam",
        title="OWLv2 + SAM",
        tasks=("text",),
        source="composite",
        checkpoint="google/owlv2-base-patch16-ensemble + facebook/sam-vit-base",
        licence="Apache-2.0",
        size_mb=620.0 + 375.0,
        adapter="playground.composites:OwlSAM",
        summary="OWLv2 turns text into boxes, SAM turns the boxes into masks.",
        labels="the phrases you type",
        year=2023,
        published="none: its parts' scores only (OWLv2, SAM)",
        components=("owlv2", "sam"),
    ),
    ModelSpec(
        key="sam3",
        title="SAM 3",
        tasks=("text", "prompt"),
        source="huggingface",
        checkpoint="facebook/sam3",
        licence="SAM License (custom; gated)",
        size_mb=3450.0,
        adapter="models.sam3:SAM3Adapter",
        summary="Promptable concept segmentation: a noun phrase in, a mask for every matching instance out.",
        labels="the phrase you type",
        year=2025,
        published="unconfirmed: no model-card number found",
        gated=True,
    ),
    ModelSpec(
        key="sam2-video",
        title="SAM 2.1 Hiera-Tiny (video)",
        tasks=("video",),
        source="huggingface",
        checkpoint="facebook/sam2.1-hiera-tiny",
        licence="Apache-2.0",
        size_mb=156.0,
        adapter="models.sam2_video:Sam2VideoAdapter",
        summary="Streaming memory: clicks or a box on one frame, the object's mask on every frame.",
        labels="none (object ids you give)",
        year=2024,
        published="video: J&F on SA-V and DAVIS in the SAM 2 paper; no COCO score",
    ),
    ModelSpec(
        key="grounded-sam2",
        title="Grounded-SAM 2 (video)",
        tasks=("video",),
        source="composite",
        checkpoint="IDEA-Research/grounding-dino-tiny + facebook/sam2.1-hiera-tiny",
        licence="Apache-2.0",
        size_mb=690.0 + 156.0,
        adapter="playground.video.tracker:GroundedSam2",
        summary="Grounding DINO finds the text on the prompt frame; its boxes prompt SAM 2 video.",
        labels="the phrases you type",
        year=2024,
        published="none (a composite)",
        components=("grounding-dino", "sam2-video"),
    ),
]

REGISTRY: dict[str, ModelSpec] = {spec.key: spec for spec in _SPECS}


def get_spec(key: str) -> ModelSpec:
    """The spec for ``key``; raises `UnknownModelError` naming the known keys."""
    try:
        return REGISTRY[key]
    except KeyError:
        raise UnknownModelError(f"Unknown model '{key}'. Known models: {', '.join(REGISTRY)}.") from None


def models_for_task(task: str) -> list[ModelSpec]:
    """Every spec that appears in ``task``'s tab, in registry order."""
    return [spec for spec in _SPECS if task in spec.tasks]
