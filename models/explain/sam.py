"""SAM: the three candidate masks, their predicted IoU, the decoder's 256x256 low-resolution
logits, the prompt, and what the image-embedding cache held. No hooks: the adapter's own
`SamOutputs` and `SamInputs` carry all of it."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.explain.capture import Explainer, Records, numpy

LOW_RES_KEPT = 3
"""Most low-resolution logit maps kept (a prompt gives 3; a box list may give many)."""


class SAMExplainer(Explainer):
    """``low_res_logits`` (k, 256, 256) float16 in the prediction's order (best IoU first);
    ``iou`` (k,); ``points`` (n, 2), ``point_labels`` (n,), ``boxes`` (b, 4) image pixels;
    ``embedding_shape`` (4,); ``embedding_cached`` (1 when this call found the embedding cached)."""

    def capture(
        self, records: Records, adapter: Any, inputs: Any, outputs: Any, prediction: Any
    ) -> dict[str, np.ndarray]:
        embedding = outputs.lookup.value["image_embeddings"]
        if isinstance(embedding, list | tuple):  # SAM 2: a feature pyramid, coarsest last
            embedding = embedding[-1]
        captured = {
            "points": inputs.points,
            "point_labels": inputs.labels,
            "boxes": inputs.boxes,
            "embedding_shape": np.array(embedding.shape, np.int64),
            "embedding_cached": np.array(int(not outputs.lookup.computed), np.int64),
        }
        if outputs.low_res is not None:
            order = outputs.scores.argsort(descending=True) if outputs.mode == "prompt" else slice(None)
            captured["low_res_logits"] = numpy(outputs.low_res[order][:LOW_RES_KEPT], np.float16)
            captured["iou"] = numpy(outputs.scores[order][:LOW_RES_KEPT])
        return captured
