"""MaskFormer: mask classification. Each query is one binary mask plus one class distribution;
the raw outputs are everything the views need, so there are no hooks."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.explain.capture import Explainer, Records, numpy, shrink

QUERIES_KEPT = 8
"""The best queries (highest class probability other than "no object") kept for the views."""
CLASSES_KEPT = 3
"""Most probable classes kept per query."""
LONGEST = 160
"""Longest side (pixels) a query's mask is kept at (the model's own masks are 1/4 of its input)."""


class MaskFormerExplainer(Explainer):
    """``query_masks`` (k, h, w) float16 mask probabilities; ``query_classes`` / ``query_probs``
    (k, `CLASSES_KEPT`) their best classes; ``queries`` (k,); ``no_object`` and ``num_queries``."""

    def capture(self, records: Records, adapter: Any, inputs: Any, raw: Any, prediction: Any) -> dict[str, np.ndarray]:
        outputs = raw.outputs
        probs = outputs.class_queries_logits[0].float().softmax(-1)
        real = probs[:, :-1]
        queries = real.max(-1).values.argsort(descending=True)[:QUERIES_KEPT]
        top = real[queries].topk(CLASSES_KEPT, dim=-1)
        masks = outputs.masks_queries_logits[0][queries].float().sigmoid()
        return {
            "query_masks": numpy(shrink(masks, LONGEST), np.float16),
            "query_classes": top.indices.cpu().numpy().astype(np.int64),
            "query_probs": numpy(top.values),
            "queries": queries.cpu().numpy().astype(np.int64),
            "no_object": np.array(int((probs.argmax(-1) == probs.shape[-1] - 1).sum()), np.int64),
            "num_queries": np.array(len(probs), np.int64),
        }
