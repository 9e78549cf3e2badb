"""OWLv2 (transformers ``Owlv2ForObjectDetection``): open-vocabulary detection from text (2023).

A CLIP ViT-B/16 sees the image padded to a 960-pixel square; every output patch token predicts one
box and an embedding, and each class name, encoded by CLIP's text tower, scores every box by
similarity. OWLv2 is OWL-ViT self-trained on web-scale pseudo-boxes, with an objectness head.

Params: ``text`` (class names split on , ; . and newlines, each its own query; for the
``detection`` task an empty text means COCO's 80 names) and ``box_threshold`` (0.1, the library
default). The raw outputs (logits (1, P, classes), boxes (1, P, 4)) are cached per (image, text),
so moving the threshold re-runs only ``post_process_grounded_object_detection``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor
from transformers.models.owlv2.modeling_owlv2 import Owlv2ObjectDetectionOutput

from models.base import Adapter
from playground.core.cache import MB, Lookup
from playground.core.devices import synchronize
from playground.core.errors import BadPromptError
from playground.core.images import image_digest
from playground.core.labels import coco_detection_labels
from playground.core.text_prompts import split_classes
from playground.core.types import Prediction
from playground.core.weights import hf_model, hf_processor

BOX_THRESHOLD = 0.1
"""Default score a box needs (``post_process_grounded_object_detection``'s own default)."""
MAX_CLASSES = 100
"""Most class names in one prompt (each is one text query)."""
TEXT_PADDING = {"padding": "max_length", "max_length": 16, "truncation": True}
"""Each class name padded or cut to 16 tokens, OWL-ViT's text length (``max_position_embeddings``)."""
TINY_SIZE = {"height": 32, "width": 32}
"""Input side (pixels) of the tiny test build (transformers' own test size); the real one is 960."""


@dataclass(frozen=True)
class OwlInputs:
    key: tuple[str, tuple[str, ...]]
    classes: tuple[str, ...]
    image: np.ndarray


class OWLv2Adapter(Adapter):
    """``google/owlv2-base-patch16-ensemble``, or a random build (tiny: transformers' test layout)."""

    half_precision_regions = ("owlv2.vision_model", "owlv2.text_model")
    """The two CLIP towers; the box, class and objectness heads stay float32."""

    preprocess_params = frozenset({"text"})
    postprocess_params = frozenset({"box_threshold"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raw_outputs = self.new_cache(max_items=16, max_bytes=64 * MB)

    def build(self) -> torch.nn.Module:
        if self.weights == "pretrained":
            self.processor = hf_processor(self.spec, Owlv2Processor, self.checkpoint)
            return hf_model(self.spec, Owlv2ForObjectDetection, self.checkpoint)
        tokenizer = stand_in_clip_tokenizer()
        ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id, "pad_token_id": 0}
        if self.weights == "tiny":
            self.processor = Owlv2Processor(Owlv2ImageProcessor(size=TINY_SIZE), tokenizer)
            text = {"vocab_size": len(tokenizer), "hidden_size": 64, "num_hidden_layers": 12, "num_attention_heads": 4}
            text.update(intermediate_size=37, max_position_embeddings=16, **ids)
            vision = {"image_size": 32, "patch_size": 2, "hidden_size": 32, "num_hidden_layers": 2}
            vision.update(num_attention_heads=4, intermediate_size=37)
            return Owlv2ForObjectDetection(Owlv2Config(text_config=text, vision_config=vision, projection_dim=64))
        self.processor = Owlv2Processor(Owlv2ImageProcessor(), tokenizer)
        config = Owlv2Config(text_config={"vocab_size": len(tokenizer), **ids}, vision_config={"image_size": 960})
        return Owlv2ForObjectDetection(config)

    def preprocess(self, image: np.ndarray, task: str, text: str = "") -> OwlInputs:
        """Split ``text`` into class names (`split_classes`); the image is processed on a cache miss."""
        if task == "detection" and not text.strip():
            text = ", ".join(name for name in coco_detection_labels().values() if name not in ("N/A", "__background__"))
        classes = tuple(split_classes(text))
        if not classes:
            raise BadPromptError("OWLv2 needs text: type what to find, e.g. 'cat, dog'.")
        if len(classes) > MAX_CLASSES:
            raise BadPromptError(f"{len(classes)} class names: OWLv2 here takes at most {MAX_CLASSES}.")
        return OwlInputs((image_digest(image), classes), classes, image)

    def forward(self, inputs: OwlInputs) -> tuple[Lookup[dict[str, torch.Tensor]], tuple[str, ...]]:
        """-> cached or fresh raw outputs: logits (1, P, classes), pred_boxes (1, P, 4) cxcywh in 0..1."""
        lookup = self.raw_outputs.get_or_compute(inputs.key, lambda: self._run(inputs.image, inputs.classes))
        return lookup, inputs.classes

    def _run(self, image: np.ndarray, classes: tuple[str, ...]) -> dict[str, torch.Tensor]:
        encoded = self.processor(text=[list(classes)], images=image, return_tensors="pt", **TEXT_PADDING)
        outputs = self.model(**encoded.to(self.device))
        synchronize(self.device)  # the cache times this call ("OWLv2 ran in X s")
        return {"logits": outputs.logits, "pred_boxes": outputs.pred_boxes}

    def postprocess(
        self,
        outputs: tuple[Lookup[dict[str, torch.Tensor]], tuple[str, ...]],
        image: np.ndarray,
        task: str,
        box_threshold: float = BOX_THRESHOLD,
    ) -> Prediction:
        """Boxes scoring above ``box_threshold`` (and the floor), each named by its best class,
        from ``post_process_grounded_object_detection``; clipped to the image (OWLv2 sees it padded)."""
        if not 0.0 <= box_threshold <= 1.0:
            raise BadPromptError(f"box_threshold {box_threshold}: expected a number in 0..1.")
        lookup, classes = outputs
        raw = Owlv2ObjectDetectionOutput(logits=lookup.value["logits"], pred_boxes=lookup.value["pred_boxes"])
        result = self.processor.post_process_grounded_object_detection(
            raw, threshold=max(box_threshold, self.floor()), target_sizes=[image.shape[:2]]
        )[0]
        height, width = image.shape[:2]
        boxes = np.clip(result["boxes"].float().cpu().numpy(), 0, [width, height, width, height])
        prediction = self.new_prediction(
            image,
            task,
            boxes=boxes.astype(np.float32),
            scores=result["scores"].float().cpu().numpy(),
            class_ids=result["labels"].cpu().numpy().astype(np.int64),
        )
        prediction.label_names = dict(enumerate(classes))
        prediction.meta.update(text=", ".join(classes), box_threshold=box_threshold)
        prediction.reuse = lookup.describe("OWLv2 ran")
        return prediction


def stand_in_clip_tokenizer() -> CLIPTokenizer:
    """A lower-case CLIP BPE tokenizer built in memory, for random-weight builds (no hub here).

    Its vocabulary is single characters (with and without CLIP's ``</w>`` word end) and no merges,
    so every ASCII word tokenizes letter by letter; "!" is id 0, OWLv2's padding token.
    """
    symbols = string.ascii_lowercase + string.digits + string.punctuation.replace("!", "")
    vocab = {"!": 0, "!</w>": 1}
    for token in [*symbols, *(f"{c}</w>" for c in symbols), "<|startoftext|>", "<|endoftext|>"]:
        vocab.setdefault(token, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], pad_token="!")
