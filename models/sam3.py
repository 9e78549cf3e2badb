"""SAM 3 (transformers ``Sam3Model``): promptable concept segmentation (2025).

Where SAM segments the one object under a click, SAM 3 segments every instance of a concept: a
short noun phrase ("cat") or an example box. A ViT image encoder and a CLIP-style text encoder
feed a DETR-like detector whose queries each predict a box, a mask and a match score, gated by a
global "is the concept present at all" score. Pre- and post-processing are ``Sam3Processor``'s.

Params: ``text`` (class names split on , ; . and newlines; the model runs once per name on one
cached image encoding) or, for the ``prompt`` task, ``box=(x1, y1, x2, y2)`` as a positive
example (SAM 3 takes no points); ``encode=True`` only encodes the image (an empty prediction: the
app encodes each image on arrival). The image encoding is cached per image, like SAM's embedding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import Sam3Model, Sam3Processor
from transformers.models.sam3.configuration_sam3 import (
    Sam3Config,
    Sam3DETRDecoderConfig,
    Sam3DETREncoderConfig,
    Sam3GeometryEncoderConfig,
    Sam3MaskDecoderConfig,
    Sam3VisionConfig,
    Sam3ViTConfig,
)
from transformers.models.sam3.image_processing_sam3 import Sam3ImageProcessor

from models.base import Adapter
from models.layers.rope_attention import COMPLEX_ROTATION, use_rope_attention
from models.owlv2 import stand_in_clip_tokenizer
from playground.core.cache import MB
from playground.core.devices import synchronize
from playground.core.errors import BadPromptError
from playground.core.images import image_digest
from playground.core.patches import Patch
from playground.core.prompts import check_box
from playground.core.text_prompts import split_classes
from playground.core.types import Prediction
from playground.core.weights import hf_model, hf_processor

MASK_THRESHOLD = 0.5
"""Mask probability at which a pixel joins an instance (the processor's default)."""
MAX_CLASSES = 16
"""Most class names in one prompt: SAM 3 runs its detector once per name."""
TINY_SIZE = 224
"""Input side (pixels) of the tiny test build (transformers' own test size); the real one is 1008."""


class SAM3Adapter(Adapter):
    """``facebook/sam3`` (gated: see the README), or a random build (tiny: transformers' test layout)."""

    half_precision_regions = ("vision_encoder", "text_encoder")
    """The image and text encoders; the DETR-style decoder and the mask decoder stay float32."""

    preprocess_params = frozenset({"text", "box", "encode"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.encodings = self.new_cache(max_items=8, max_bytes=256 * MB)

    def use_faster_layers(self, model: torch.nn.Module) -> list[Patch]:
        """The ViT's rotary positions turn each channel pair as one complex product."""
        return [*super().use_faster_layers(model), self.faster(COMPLEX_ROTATION, use_rope_attention, model)]

    def build(self) -> torch.nn.Module:
        self.label_names = {0: "object"}
        if self.weights == "pretrained":
            self.processor = hf_processor(self.spec, Sam3Processor, self.checkpoint)
            return hf_model(self.spec, Sam3Model, self.checkpoint)
        tokenizer = stand_in_clip_tokenizer()
        if self.weights == "tiny":
            size = {"height": TINY_SIZE, "width": TINY_SIZE}
            self.processor = Sam3Processor(image_processor=Sam3ImageProcessor(size=size), tokenizer=tokenizer)
            return Sam3Model(tiny_sam3_config(len(tokenizer)))
        self.processor = Sam3Processor(image_processor=Sam3ImageProcessor(), tokenizer=tokenizer)
        return Sam3Model(Sam3Config(text_config={"vocab_size": len(tokenizer)}))

    def preprocess(
        self, image: np.ndarray, task: str, text: str = "", box: Any = None, encode: bool = False
    ) -> dict[str, Any]:
        """Check the prompt: class names (`split_classes`) or one example box in image pixels."""
        if encode:
            return {"image": image, "classes": [], "box": None}
        classes = split_classes(text or "")
        if box is not None:
            if classes:
                raise BadPromptError("SAM 3 takes text or a box here, not both.")
            height, width = image.shape[:2]
            return {"image": image, "classes": ["object"], "box": check_box(box, width, height)}
        if not classes:
            raise BadPromptError("SAM 3 needs something to find: type it, e.g. 'cat'.")
        if len(classes) > MAX_CLASSES:
            raise BadPromptError(f"{len(classes)} class names: SAM 3 here takes at most {MAX_CLASSES}.")
        return {"image": image, "classes": classes, "box": None}

    def forward(self, prompt: dict[str, Any]) -> dict[str, Any]:
        """The cached image encoding, then the detector and mask decoder once per class name."""
        image = prompt["image"]
        key = (image_digest(image), self.checkpoint or self.spec.checkpoint, self.weights)
        lookup = self.encodings.get_or_compute(key, lambda: self._encode(image))
        size = [list(image.shape[:2])]
        outputs = []
        for name in prompt["classes"]:
            if prompt["box"] is None:
                given: dict[str, Any] = {"text": name}
            else:
                given = {"input_boxes": [[list(prompt["box"])]], "input_boxes_labels": [[1]]}
            encoded = self.processor(original_sizes=size, return_tensors="pt", **given)
            inputs = {k: v.to(self.device) for k, v in encoded.items() if k != "original_sizes"}
            outputs.append(self.model(vision_embeds=lookup.value, **inputs))
        return {"outputs": outputs, "classes": prompt["classes"], "lookup": lookup}

    def _encode(self, image: np.ndarray) -> Any:
        pixels = self.processor(images=image, return_tensors="pt")["pixel_values"].to(self.device)
        features = self.model.get_vision_features(pixel_values=pixels)
        synchronize(self.device)  # the cache times this call: "image encoded in X s" is the device's work
        return features

    def postprocess(self, outputs: dict[str, Any], image: np.ndarray, task: str) -> Prediction:
        """Each class's instances from ``post_process_instance_segmentation`` (scores above the
        floor, masks at `MASK_THRESHOLD`, at the image's size), class by class."""
        height, width = image.shape[:2]
        fields: dict[str, list[np.ndarray]] = {
            "boxes": [np.zeros((0, 4), np.float32)],
            "scores": [np.zeros(0, np.float32)],
            "class_ids": [np.zeros(0, np.int64)],
            "masks": [np.zeros((0, height, width), bool)],
        }
        for class_id, output in enumerate(outputs["outputs"]):
            result = self.processor.post_process_instance_segmentation(
                output, threshold=self.floor(), mask_threshold=MASK_THRESHOLD, target_sizes=[image.shape[:2]]
            )[0]
            fields["boxes"].append(result["boxes"].float().cpu().numpy().reshape(-1, 4))
            fields["scores"].append(result["scores"].float().cpu().numpy())
            fields["class_ids"].append(np.full(len(result["scores"]), class_id, np.int64))
            fields["masks"].append(result["masks"].bool().cpu().numpy().reshape(-1, *image.shape[:2]))
        boxes = np.clip(np.concatenate(fields["boxes"]), 0, [width, height, width, height]).astype(np.float32)
        prediction = self.new_prediction(
            image,
            task,
            boxes=boxes,
            scores=np.concatenate(fields["scores"]),
            class_ids=np.concatenate(fields["class_ids"]),
            masks=np.concatenate(fields["masks"]),
        )
        prediction.label_names = dict(enumerate(outputs["classes"]))
        prediction.reuse = outputs["lookup"].describe("image encoded")
        return prediction


def tiny_sam3_config(vocab_size: int, width: int = 32, scale_factors: tuple[float, ...] = (2.0, 1.0)) -> Sam3Config:
    """transformers' own SAM 3 test layout: a 2-layer ViT of width 32 on 224-pixel inputs, 5 queries.

    ``width`` is the FPN's and the detector's (the video build needs 128: its tracker reads the FPN
    and keeps 64-channel memories); ``scale_factors`` the FPN levels (the video tracker needs 4)."""
    backbone = Sam3ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        image_size=TINY_SIZE,
        patch_size=14,
        window_size=8,
        global_attn_indexes=[0, 1],
    )
    text = {"vocab_size": vocab_size, "hidden_size": 32, "intermediate_size": 64, "projection_dim": width}
    text.update(num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=32, hidden_act="gelu")
    small = {"num_attention_heads": 4, "intermediate_size": 64}
    return Sam3Config(
        vision_config=Sam3VisionConfig(
            backbone_config=backbone, fpn_hidden_size=width, scale_factors=list(scale_factors)
        ),
        text_config=text,
        geometry_encoder_config=Sam3GeometryEncoderConfig(
            hidden_size=width, num_layers=1, mask_fuser_hidden_size=width, mask_fuser_num_layers=1, **small
        ),
        detr_encoder_config=Sam3DETREncoderConfig(hidden_size=width, num_layers=1, **small),
        detr_decoder_config=Sam3DETRDecoderConfig(hidden_size=width, num_layers=1, num_queries=5, **small),
        mask_decoder_config=Sam3MaskDecoderConfig(hidden_size=width, num_upsampling_stages=2),
    )
