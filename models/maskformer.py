"""MaskFormer (transformers ``MaskFormerForInstanceSegmentation``): segmentation as mask classification.

Each of its 100 queries predicts one binary mask and one class (or "no object"). The same raw
outputs answer all three tasks, only the post-processing differs:

- semantic: every pixel takes the class with the highest sum over queries of p(class) x p(mask);
- instance: the best (query, class) pairs, each a scored binary mask (masks may overlap);
- panoptic: queries above a score threshold claim pixels; stuff of one class is fused.

So the adapter keeps a small LRU of raw outputs keyed by image content: switching task (or a
post-processing threshold) on the same image runs no second forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from transformers import MaskFormerConfig, MaskFormerForInstanceSegmentation, MaskFormerImageProcessor, SwinConfig
from transformers.models.maskformer.modeling_maskformer import MaskFormerForInstanceSegmentationOutput

from models.base import Adapter
from models.explain.maskformer import MaskFormerExplainer
from models.layers.image_masks import upsampled_argmax
from models.parts.panoptic import masks_to_fields, panoptic_fields, thing_ids_by_name
from playground.core.cache import MB
from playground.core.errors import BadPromptError
from playground.core.images import image_digest
from playground.core.labels import coco_detection_labels, coco_thing_names
from playground.core.types import Prediction
from playground.core.weights import hf_model, hf_processor

TINY_SIZE = {"shortest_edge": 64, "longest_edge": 96}
"""Image size (pixels) of the tiny test build; the real processor uses 800 / 1333."""
PANOPTIC_THRESHOLD = 0.8
"""Query score a panoptic segment needs (MaskFormer's COCO panoptic test setting,
``OBJECT_MASK_THRESHOLD``). Panoptic output is a partition, so this shapes the segments
themselves rather than filtering them; changing it re-runs only the post-processing."""
RAW_OUTPUTS_KEPT = 4
"""Images whose raw outputs the adapter keeps (about 25 MB each at 800 x 1066), within 128 MB."""


@dataclass(frozen=True)
class _Prepared:
    """Preprocessed inputs, or the raw outputs already computed for this image."""

    digest: str
    inputs: dict[str, torch.Tensor] | None
    cached: Any


@dataclass(frozen=True)
class _Raw:
    outputs: Any
    reused: bool


class MaskFormerAdapter(Adapter):
    """``facebook/maskformer-swin-base-coco`` (COCO panoptic, 133 classes) for three tasks.

    Things vs stuff: the checkpoint's config carries only ``id2label`` (no thing/stuff flags), so
    a class is a thing when its name is one of COCO's 80 object categories (torchvision's weights
    metadata); COCO panoptic lists those 80 first (ids 0-79), then 53 stuff classes.

    Mask2Former shares this adapter: subclasses name their model, processor and output classes
    and their configs (`tiny_config`, `random_config`).
    """

    half_precision_regions = ("model",)
    """The Swin backbone, pixel decoder and transformer; the class and mask-embedding heads stay float32."""
    model_class: ClassVar[type] = MaskFormerForInstanceSegmentation
    processor_class: ClassVar[type] = MaskFormerImageProcessor
    output_class: ClassVar[type] = MaskFormerForInstanceSegmentationOutput
    explainer = MaskFormerExplainer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raw_outputs = self.new_cache(max_items=RAW_OUTPUTS_KEPT, max_bytes=128 * MB)

    def build(self) -> torch.nn.Module:
        if self.weights == "pretrained":
            self.processor = hf_processor(self.spec, self.processor_class, self.checkpoint)
            model = hf_model(self.spec, self.model_class, self.checkpoint)
        else:
            labels = coco_panoptic_placeholder_labels()
            tiny = self.weights == "tiny"
            self.processor = self.new_processor(tiny)
            model = self.model_class(self.tiny_config(labels) if tiny else self.random_config(labels))
        self.label_names = {int(k): v for k, v in model.config.id2label.items()}
        self.thing_ids = thing_ids_by_name(self.label_names)
        self.stuff_ids = frozenset(self.label_names) - self.thing_ids
        return model

    def new_processor(self, tiny: bool) -> Any:
        """The image processor of a random build: small inputs for tiny builds, else the library default."""
        return self.processor_class(size=TINY_SIZE) if tiny else self.processor_class()

    def tiny_config(self, id2label: dict[int, str]) -> Any:
        return tiny_maskformer_config(id2label)

    def random_config(self, id2label: dict[int, str]) -> Any:
        """The default config: the Swin-B layout of the checkpoint."""
        return MaskFormerConfig(id2label=id2label)

    def preprocess(self, image: np.ndarray, task: str) -> _Prepared:
        """(H, W, 3) uint8 -> ``pixel_values`` (1, 3, h, w) and ``pixel_mask`` (1, h, w), unless cached."""
        digest = image_digest(image)
        cached = self.raw_outputs.get(digest)
        if cached is not None:
            return _Prepared(digest, None, cached)
        inputs = self.processor(images=image, return_tensors="pt")
        tensors = {name: t.to(self.device) for name, t in inputs.items() if isinstance(t, torch.Tensor)}
        return _Prepared(digest, tensors, None)

    def forward(self, prepared: _Prepared) -> _Raw:
        """-> class_queries_logits (1, Q, classes + 1) and masks_queries_logits (1, Q, h/4, w/4)."""
        if prepared.cached is not None:
            return _Raw(prepared.cached, reused=True)
        out = self.model(**prepared.inputs)
        raw = self.output_class(
            class_queries_logits=out.class_queries_logits, masks_queries_logits=out.masks_queries_logits
        )
        self.raw_outputs.put(prepared.digest, raw)
        return _Raw(raw, reused=False)

    def postprocess(
        self,
        raw: _Raw,
        image: np.ndarray,
        task: str,
    ) -> Prediction:
        """The processor's ``post_process_{task}_segmentation`` at the image's size (semantic and
        instance: at the masks' own size, then brought to the image's without the float32 stacks).

        Instance masks are kept above ``self.floor()``; panoptic segments form above
        ``self.floor(PANOPTIC_THRESHOLD)`` (the library's 0.8 for real weights).
        """
        outputs = raw.outputs
        if task == "semantic":
            low_res = self.processor.post_process_semantic_segmentation(outputs, return_segmentation_scores=True)[0]
            label_map = upsampled_argmax(low_res["segmentation_scores"], image.shape[:2])
            fields: dict[str, Any] = {"semantic_map": label_map.to(torch.int32).cpu().numpy()}
        elif task == "instance":
            fields = instance_fields(self.processor, outputs, self.floor(), image.shape[:2])
        elif task == "panoptic":
            fields = panoptic_fields(self, outputs, image, PANOPTIC_THRESHOLD)
        else:
            raise BadPromptError(f"{self.spec.title} does task semantic, instance or panoptic, not {task!r}.")
        prediction = self.new_prediction(image, task, **fields)
        prediction.reuse = "raw outputs cached" if raw.reused else ""
        return prediction


def instance_fields(processor: Any, outputs: Any, threshold: float, size: tuple[int, int]) -> dict[str, Any]:
    """`Prediction` fields of the processor's ``post_process_instance_segmentation`` for an image of
    ``size`` (H, W), without its float32 stack of every top-k mask at that size (100 or 200 maps:
    1.6-3.2 GB at 2048 px).

    The processor runs at its own mask resolution, then only the kept binary maps are upsampled,
    one at a time, by the same nearest interpolation. Upsampled by nearest, every source pixel is
    read, so a map is empty at the image's size exactly when it is at its own, and the kept maps
    are the library's. An image smaller than the mask resolution takes the library's own path.
    """

    def post_process(**target: Any) -> dict[str, Any]:
        return processor.post_process_instance_segmentation(
            outputs, threshold=threshold, return_binary_maps=True, **target
        )[0]

    result, at_image_size = post_process(), False
    low_res = result["segmentation"]  # (K, h, w) float 0/1 when segments were kept
    if result["segments_info"] and (low_res.shape[1] > size[0] or low_res.shape[2] > size[1]):
        result, at_image_size = post_process(target_sizes=[size]), True  # nearest down-sampling skips pixels
    segments = result["segments_info"]
    masks = np.zeros((len(segments), *size), bool)
    for index, plane in enumerate(result["segmentation"] if segments else []):
        if not at_image_size:
            plane = F.interpolate(plane[None, None], size=size, mode="nearest")[0, 0]
        masks[index] = plane.bool().cpu().numpy()
    return masks_to_fields(masks, segments)


def coco_panoptic_placeholder_labels() -> dict[int, str]:
    """Label names for random builds, laid out like the checkpoint's 133 COCO panoptic classes.

    Ids 0-79 are COCO's things, named from torchvision's metadata in COCO id order; no installed
    library lists the 53 stuff names, so ids 80-132 are named "stuff 80" ... "stuff 132".
    """
    things = coco_thing_names()
    names = [name for name in coco_detection_labels().values() if name in things]
    names += [f"stuff {i}" for i in range(len(names), 133)]
    return dict(enumerate(names))


def tiny_maskformer_config(id2label: dict[int, str]) -> MaskFormerConfig:
    """A MaskFormer small enough for tests: 4 one-block Swin stages (dim 16), 1 decoder layer, 10 queries."""
    backbone = SwinConfig(
        embed_dim=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 2, 2],
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    decoder = {
        "model_type": "detr",
        "d_model": 32,
        "decoder_layers": 1,
        "decoder_attention_heads": 2,
        "decoder_ffn_dim": 32,
        "num_queries": 10,
    }
    return MaskFormerConfig(
        backbone_config=backbone,
        decoder_config=decoder,
        fpn_feature_size=32,
        mask_feature_size=32,
        id2label=id2label,
    )
