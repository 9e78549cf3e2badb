"""Grounding DINO (transformers ``GroundingDinoForObjectDetection``): open-set detection from text.

A Swin image backbone and a BERT text encoder are fused by cross-attention; each of the 900
queries predicts a box and a score for every text token. Text in, boxes out; Grounded-SAM turns
the boxes into masks.

Params: ``text`` (the user's classes, e.g. "cat, dog"; for the ``detection`` task an empty text
means COCO's 80 names, so it compares with DETR), ``box_threshold`` (0.35) and ``text_threshold``
(0.25). The thresholds are post-processing only: the raw outputs (logits (1, 900, 256) and boxes
(1, 900, 4), about 1 MB) are cached per (image, text), so moving a threshold re-runs only
``post_process_grounded_object_detection`` and the label mapping, never the model.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import (
    BertTokenizer,
    GroundingDinoConfig,
    GroundingDinoForObjectDetection,
    GroundingDinoImageProcessor,
    GroundingDinoProcessor,
    SwinConfig,
)
from transformers.models.grounding_dino.modeling_grounding_dino import (
    SPECIAL_TOKENS,
    GroundingDinoObjectDetectionOutput,
)

from models.base import Adapter
from models.explain.grounding_dino import GroundingDINOExplainer
from models.layers.deformable_attention import SAMPLED, use_deformable_sampling
from playground.core.cache import MB, Lookup
from playground.core.devices import synchronize
from playground.core.errors import BadPromptError
from playground.core.images import image_digest
from playground.core.labels import coco_detection_labels
from playground.core.patches import Patch
from playground.core.text_prompts import BOX_THRESHOLD, TEXT_THRESHOLD, TextPrompt, assign_classes, build_prompt
from playground.core.types import Prediction
from playground.core.weights import hf_model, hf_processor

TINY_SIZE = {"shortest_edge": 96, "longest_edge": 128}
"""Image size (pixels) of the tiny test build; the real processor uses 800 / 1333."""
UNUSED_TEXT_THRESHOLD = 1.0
"""The text threshold given to the processor, whose text labels go unused: no sigmoid exceeds it."""


@dataclass(frozen=True)
class DinoInputs:
    """What `GroundingDINOAdapter.forward` needs: the raw-output cache key, the prompt, the image."""

    key: tuple[str, str]
    prompt: TextPrompt
    image: np.ndarray


class GroundingDINOAdapter(Adapter):
    """``IDEA-Research/grounding-dino-tiny`` (or ``-base``), or a random build of the tiny layout."""

    half_precision_regions = ("model.backbone", "model.text_backbone", "model.encoder")
    """Swin, BERT and the fusion encoder; the decoder, whose layers refine boxes, stays float32."""
    explainer = GroundingDINOExplainer

    preprocess_params = frozenset({"text"})
    postprocess_params = frozenset({"box_threshold", "text_threshold"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raw_outputs = self.new_cache(max_items=16, max_bytes=64 * MB)

    def use_faster_layers(self, model: torch.nn.Module) -> list[Patch]:
        """The encoder's and decoder's deformable attention sample with one ``embedding_bag``."""
        return [*super().use_faster_layers(model), self.faster(SAMPLED, use_deformable_sampling, model)]

    def build(self) -> torch.nn.Module:
        if self.weights == "pretrained":
            self.processor = hf_processor(self.spec, GroundingDinoProcessor, self.checkpoint)
            return hf_model(self.spec, GroundingDinoForObjectDetection, self.checkpoint)
        tokenizer = stand_in_tokenizer()
        if self.weights == "tiny":
            self.processor = GroundingDinoProcessor(GroundingDinoImageProcessor(size=TINY_SIZE), tokenizer)
            return GroundingDinoForObjectDetection(tiny_grounding_dino_config(max(tokenizer.vocab.values()) + 1))
        self.processor = GroundingDinoProcessor(GroundingDinoImageProcessor(), tokenizer)
        return GroundingDinoForObjectDetection(GroundingDinoConfig())

    def preprocess(
        self,
        image: np.ndarray,
        task: str,
        text: str = "",
    ) -> DinoInputs:
        """Parse ``text`` (`build_prompt`); the image is processed in `forward`, only on a cache miss."""
        if task == "detection" and not text.strip():
            text = ", ".join(name for name in coco_detection_labels().values() if name not in ("N/A", "__background__"))
        prompt = build_prompt(text, self.processor.tokenizer)
        return DinoInputs((image_digest(image), prompt.text), prompt, image)

    def forward(self, inputs: DinoInputs) -> tuple[Lookup[dict[str, torch.Tensor]], TextPrompt]:
        """-> cached or fresh raw outputs: logits (1, Q, 256), pred_boxes (1, Q, 4) cxcywh in 0..1."""
        lookup = self.raw_outputs.get_or_compute(inputs.key, lambda: self._run(inputs.image, inputs.prompt.text))
        return lookup, inputs.prompt

    def _run(self, image: np.ndarray, text: str) -> dict[str, torch.Tensor]:
        encoded = self.processor(images=image, text=text, return_tensors="pt").to(self.device)
        outputs = self.model(**encoded)
        synchronize(self.device)  # the cache times this call ("Grounding DINO ran in X s")
        return {"logits": outputs.logits, "pred_boxes": outputs.pred_boxes, "input_ids": encoded["input_ids"]}

    def postprocess(
        self,
        outputs: tuple[Lookup[dict[str, torch.Tensor]], TextPrompt],
        image: np.ndarray,
        task: str,
        box_threshold: float = BOX_THRESHOLD,
        text_threshold: float = TEXT_THRESHOLD,
    ) -> Prediction:
        """Boxes (clipped to the image) scoring above ``box_threshold``, each named by its best class.

        Boxes and scores come from the processor's ``post_process_grounded_object_detection``; the
        label is the user's class whose tokens score highest (`assign_classes`), and boxes whose
        best class scores at most ``text_threshold`` are dropped.
        """
        for name, value in (("box_threshold", box_threshold), ("text_threshold", text_threshold)):
            if not 0.0 <= value <= 1.0:
                raise BadPromptError(f"{name} {value}: expected a number in 0..1.")
        lookup, prompt = outputs
        raw = lookup.value
        # The processor's text labels go unused (`assign_classes` names each box), and it decodes one
        # per kept box: no token clears a threshold of 1, so each decode is empty and quick.
        result = self.processor.post_process_grounded_object_detection(
            GroundingDinoObjectDetectionOutput(logits=raw["logits"], pred_boxes=raw["pred_boxes"]),
            raw["input_ids"],
            threshold=box_threshold,
            text_threshold=UNUSED_TEXT_THRESHOLD,
            target_sizes=[image.shape[:2]],
        )[0]
        probs = raw["logits"][0].sigmoid()
        kept_probs = probs[probs.max(dim=-1).values > box_threshold]  # the processor's own selection
        class_ids, _ = assign_classes(kept_probs.float().cpu().numpy(), prompt.spans, text_threshold)
        named = class_ids >= 0
        height, width = image.shape[:2]
        boxes = result["boxes"].float().cpu().numpy()
        boxes = np.clip(boxes, 0, [width, height, width, height])
        prediction = self.new_prediction(
            image,
            task,
            boxes=boxes[named],
            scores=result["scores"].float().cpu().numpy()[named],
            class_ids=class_ids[named],
        )
        prediction.label_names = dict(enumerate(prompt.classes))
        prediction.meta.update(
            text=prompt.text,
            tokens=prompt.n_tokens,
            box_threshold=box_threshold,
            text_threshold=text_threshold,
        )
        prediction.reuse = lookup.describe("Grounding DINO ran")
        prediction.warning = prompt.warning
        return prediction


def stand_in_tokenizer(extra_words: Iterable[str] = ()) -> BertTokenizer:
    """A lower-case WordPiece tokenizer built in memory, for random-weight builds (no hub here).

    [CLS], [SEP], "." and "?" keep bert-base-uncased's ids, which Grounding DINO hard-codes as its
    phrase separators (``SPECIAL_TOKENS``). Every lower-case ASCII word tokenizes: COCO's words
    whole, others letter by letter ("h ##u ##s ##k ##y"), so token counts are close to, not equal
    to, the real vocabulary's. ``extra_words`` adds entries, e.g. sub-words such as ``"##sky"``.
    """
    cls_id, sep_id, period_id, question_id = SPECIAL_TOKENS
    vocab = {"[PAD]": 0, "[UNK]": 100, "[CLS]": cls_id, "[SEP]": sep_id, "[MASK]": 103, ".": period_id}
    vocab["?"] = question_id
    coco_words = (word for name in coco_detection_labels().values() for word in name.lower().split())
    symbols = string.ascii_lowercase + string.digits
    words = [*symbols, *(f"##{c}" for c in symbols), *string.punctuation, *coco_words, *extra_words]
    free_ids = itertools.count(max(vocab.values()) + 1)
    for word in dict.fromkeys(words):
        if word not in vocab:
            vocab[word] = next(free_ids)
    return BertTokenizer(vocab=vocab)


def tiny_grounding_dino_config(vocab_size: int) -> GroundingDinoConfig:
    """A Grounding DINO small enough for tests: 4 one-block Swin stages, d_model 32, 10 queries.

    ``decoder_layers`` must be at least 2 (1 fails when the box heads are tied).
    """
    backbone = SwinConfig(
        embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], out_features=["stage2", "stage3", "stage4"]
    )
    text = {
        "model_type": "bert",
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "vocab_size": vocab_size,
    }
    return GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=32,
        num_queries=10,
        num_feature_levels=4,
        encoder_layers=1,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
    )
