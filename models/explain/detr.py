"""DETR (detection and panoptic): each object query's cross-attention over the image.

The last decoder layer's cross-attention module is switched to transformers' eager attention
(its own ``config`` copy with ``_attn_implementation="eager"``), so it returns its attention
weights, which the default SDPA path does not; the other layers keep SDPA. Its hook keeps the
weights averaged over heads, (Q, h*w), and the input projection's hook gives the feature grid
(h, w) they cover. The weights are the same as ``output_attentions=True``'s ``cross_attentions[-1]``.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from transformers.image_transforms import center_to_corners_format

from models.explain.capture import Explainer, Records, numpy
from playground.core.patches import Patch

PANOPTIC_QUERIES_KEPT = 20
"""Most queries (best score first, "no object" left out) whose attention a panoptic result keeps."""


class DETRExplainer(Explainer):
    """``attention`` (N, h, w) float16 for the N detections, in the prediction's order; ``queries``
    (N,) their query index; ``no_object`` the number of queries whose best class is "no object";
    ``num_queries``."""

    prefix = "model."

    def __init__(self, model: torch.nn.Module) -> None:
        last = len(model.get_submodule(f"{self.prefix}decoder.layers")) - 1
        self.cross_attention = f"{self.prefix}decoder.layers.{last}.encoder_attn"
        attention = model.get_submodule(self.cross_attention)
        attention.config = copy.copy(attention.config)
        attention.config._attn_implementation = "eager"
        super().__init__(model)
        self.patches.append(
            Patch(
                replaced=f"{self.cross_attention}: the configured attention implementation (SDPA by default)",
                by="transformers' eager attention, on that layer's own copy of the config",
                why="eager attention returns the cross-attention weights Explain draws; the other layers keep SDPA",
                count=1,
            )
        )

    def hook_names(self, model: torch.nn.Module) -> tuple[str, ...]:
        return (f"{self.prefix}input_projection", self.cross_attention)

    def reduce(self, name: str, module: torch.nn.Module, output: Any) -> Any:
        if name.endswith("input_projection"):
            return tuple(output.shape[-2:])
        return output[1][0].float().mean(dim=0)  # (Q, h*w), mean over heads

    def attention_maps(self, records: Records, queries: torch.Tensor) -> np.ndarray:
        grid = next(value for name, value in records.items() if name.endswith("input_projection"))
        weights = next(value for name, value in records.items() if name.endswith("encoder_attn"))
        return numpy(weights[queries].reshape(len(queries), *grid), np.float16)

    def capture(
        self, records: Records, adapter: Any, inputs: Any, outputs: Any, prediction: Any
    ) -> dict[str, np.ndarray]:
        probs = outputs.logits[0].float().softmax(-1)
        scores = probs[:, :-1].max(-1).values
        queries = torch.nonzero(scores > adapter.floor()).flatten().cpu()  # the processor's own selection
        return {
            "attention": self.attention_maps(records, queries),
            "queries": queries.numpy().astype(np.int64),
            "no_object": np.array(int((probs.argmax(-1) == probs.shape[-1] - 1).sum()), np.int64),
            "num_queries": np.array(len(probs), np.int64),
        }


class DETRPanopticExplainer(DETRExplainer):
    """The same for ``DetrForSegmentation`` (its DETR is ``detr.model``): the best queries that are not
    "no object", with ``query_boxes`` (N, 4) XYXY pixels, ``query_classes`` and ``query_scores``."""

    prefix = "detr.model."

    def capture(
        self, records: Records, adapter: Any, inputs: Any, outputs: Any, prediction: Any
    ) -> dict[str, np.ndarray]:
        probs = outputs.logits[0].float().softmax(-1)
        scores, classes = probs.max(-1)
        candidates = torch.nonzero(classes != probs.shape[-1] - 1).flatten()
        queries = candidates[scores[candidates].argsort(descending=True)][:PANOPTIC_QUERIES_KEPT].cpu()
        height, width = prediction.image_size
        scale = torch.tensor([width, height] * 2, device=outputs.pred_boxes.device)  # on the boxes' device
        boxes = center_to_corners_format(outputs.pred_boxes[0].float()[queries]) * scale
        return {
            "attention": self.attention_maps(records, queries),
            "queries": queries.numpy().astype(np.int64),
            "query_boxes": numpy(boxes),
            "query_classes": classes[queries].cpu().numpy().astype(np.int64),
            "query_scores": numpy(scores[queries]),
            "no_object": np.array(int((classes == probs.shape[-1] - 1).sum()), np.int64),
            "num_queries": np.array(len(probs), np.int64),
        }
