"""torchvision's detectors: RetinaNet's dense anchor scores; Faster and Mask R-CNN's two stages.

- RetinaNet: the classification head scores every anchor of every FPN level, (1, A_total, K)
  logits; each anchor keeps its best class probability (sigmoid, as the model's own
  post-processing does), per level as an (H, W) map (max over the anchors of a location) and,
  for all anchors, as a histogram.
- Faster / Mask R-CNN: the RPN's proposals (already NMS-ed, best objectness first), in image pixels.
- Mask R-CNN: the mask head's per-detection 28x28 probabilities, as the adapter's forward returns
  them (it pastes them into the image later, in `postprocess`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchvision.models.detection.transform import resize_boxes

from models.explain.capture import Explainer, Records, numpy

HISTOGRAM_BINS = 50
"""Equal-width bins of anchor scores over 0..1."""
PROPOSALS_KEPT = 100
"""Top RPN proposals kept for drawing (all of them are counted)."""


def image_sizes(records: Records, prediction: Any) -> dict[str, np.ndarray]:
    """The network input's resized (h, w) and padded (h, w), from the ``transform`` hook."""
    images = records["transform"][0]
    return {
        "resized_size": np.array(images.image_sizes[0], np.int32),
        "padded_size": np.array(images.tensors.shape[-2:], np.int32),
    }


class RetinaNetExplainer(Explainer):
    """Per FPN level ``level_scores.i`` (H, W) float32; ``anchor_histogram`` (bins,) int64;
    ``anchor_counts`` [scored, above the floor]; ``score_floor``."""

    hooks = ("transform", "backbone", "head.classification_head")

    def reduce(self, name: str, module: torch.nn.Module, output: Any) -> Any:
        if name == "backbone":
            return [tuple(feature.shape[-2:]) for feature in output.values()]
        if name == "head.classification_head":
            return output[0].float().sigmoid().amax(dim=-1)  # (A_total,) best class per anchor
        return output

    def capture(
        self, records: Records, adapter: Any, inputs: Any, outputs: Any, prediction: Any
    ) -> dict[str, np.ndarray]:
        best = records["head.classification_head"]
        levels = records["backbone"]
        per_location = adapter.model.head.classification_head.num_anchors
        floor = float(adapter.model.score_thresh)
        captured = image_sizes(records, prediction)
        for index, scores in enumerate(best.split([h * w * per_location for h, w in levels])):
            height, width = levels[index]
            captured[f"level_scores.{index}"] = numpy(scores.reshape(height, width, per_location).amax(dim=-1))
        histogram = torch.histc(best, bins=HISTOGRAM_BINS, min=0.0, max=1.0)
        captured["anchor_histogram"] = numpy(histogram, np.int64)
        captured["anchor_counts"] = np.array([best.numel(), int((best > floor).sum())], np.int64)
        captured["score_floor"] = np.array(floor, np.float32)
        return captured


class TwoStageExplainer(Explainer):
    """``proposals`` (P, 4) float32 XYXY image pixels, best first (at most `PROPOSALS_KEPT`);
    ``proposal_count`` (the RPN's output length) and ``anchor_count`` (boxes the RPN scored)."""

    hooks = ("transform", "rpn.head", "rpn")

    def reduce(self, name: str, module: torch.nn.Module, output: Any) -> Any:
        if name == "rpn.head":
            return sum(level.numel() for level in output[0])  # objectness: one logit per anchor
        if name == "rpn":
            return output[0][0]
        return output

    def capture(
        self, records: Records, adapter: Any, inputs: Any, outputs: Any, prediction: Any
    ) -> dict[str, np.ndarray]:
        captured = image_sizes(records, prediction)
        proposals = records["rpn"]
        kept = resize_boxes(proposals[:PROPOSALS_KEPT], captured["resized_size"].tolist(), list(prediction.image_size))
        captured["proposals"] = numpy(kept)
        captured["proposal_count"] = np.array(len(proposals), np.int64)
        captured["anchor_count"] = np.array(records["rpn.head"], np.int64)
        return captured


class MaskRCNNExplainer(TwoStageExplainer):
    """The two stages, plus ``roi_masks`` (N, 28, 28) float32: the mask head's probability for each
    detection's class at RoIAlign's resolution, in the prediction's order."""

    def capture(
        self, records: Records, adapter: Any, inputs: Any, outputs: Any, prediction: Any
    ) -> dict[str, np.ndarray]:
        captured = super().capture(records, adapter, inputs, outputs, prediction)
        keep = (outputs["scores"] >= adapter.floor()).cpu()
        captured["roi_masks"] = numpy(outputs["masks"][:, 0].cpu()[keep])
        return captured
