"""Grounding DINO: which words produced which box. Each kept box's sigmoid score for every token
of the prompt, from the raw logits (1, Q, 256) the adapter already keeps; no hooks."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.explain.capture import Explainer, Records, numpy
from playground.core.text_prompts import assign_classes


class GroundingDINOExplainer(Explainer):
    """``token_scores`` (N, T) float32 for the N boxes of the prediction and the prompt's T tokens
    (``tokens``, the tokenizer's strings, [CLS] and [SEP] included)."""

    def capture(
        self, records: Records, adapter: Any, inputs: Any, outputs: Any, prediction: Any
    ) -> dict[str, np.ndarray]:
        lookup, prompt = outputs
        raw = lookup.value
        input_ids = raw["input_ids"][0]
        probs = raw["logits"][0].float().sigmoid()
        # The adapter's own selection: boxes above the box threshold, then those a class names.
        kept = numpy(probs[probs.max(dim=-1).values > float(prediction.meta["box_threshold"])])
        class_ids, _ = assign_classes(kept, prompt.spans, float(prediction.meta["text_threshold"]))
        return {
            "token_scores": kept[class_ids >= 0][:, : len(input_ids)],
            "tokens": np.array(adapter.processor.tokenizer.convert_ids_to_tokens(input_ids.tolist()), dtype=str),
        }
