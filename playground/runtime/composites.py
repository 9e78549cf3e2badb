"""Composites: models made of other models, run through the `ModelManager` (they sit above it).

`BoxesThenSAM`: an open-vocabulary detector turns text into boxes, SAM turns the boxes into masks.
Not a model of its own: both parts run through the manager, so the SAM here is the same instance,
with the same image-embedding cache, as the prompt tab's, and the manager never holds two SAMs.
``spec.components`` names (detector key, SAM key); a subclass declares the detector's
post-processing params, which pass through to it:

- `GroundedSAM` (Grounding DINO): ``text``, ``box_threshold`` (0.35), ``text_threshold`` (0.25);
- `OwlSAM` (OWLv2): ``text``, ``box_threshold`` (0.1).

A threshold change re-runs neither heavy forward: the detector re-applies its post-processing to
cached raw outputs, and SAM decodes the surviving boxes on its cached image embedding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from playground.core.params import split_params
from playground.core.protocols import Models
from playground.core.registry import ModelSpec
from playground.core.types import TIMING_STAGES, Prediction

MAX_BOXES = 100
"""Most boxes SAM segments in one call (the best-scoring): a low box threshold can pass hundreds."""


class BoxesThenSAM:
    """Text -> boxes (``spec.components[0]``) -> masks (``spec.components[1]``, a SAM)."""

    preprocess_params: ClassVar[frozenset[str]] = frozenset({"text"})
    postprocess_params: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, spec: ModelSpec, manager: Models) -> None:
        self.spec = spec
        self.manager = manager

    @classmethod
    def split_params(cls, title: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``params`` split into (preprocess, postprocess); unknown names raise `UnknownParameterError`."""
        return split_params(title, cls.preprocess_params, cls.postprocess_params, params)

    def predict(
        self,
        image: np.ndarray,
        task: str | None = None,
        text: str = "",
        **detector_params: float,
    ) -> Prediction:
        """Masks (N, H, W) for the boxes the detector finds for ``text`` in ``image`` (H, W, 3 uint8).

        Boxes, scores and labels are the detector's (labels are the user's class names); masks
        are SAM's for exactly those boxes, in the same order. ``detector_params`` (thresholds)
        go to the detector. Timings are summed per stage; ``meta`` splits them per model;
        ``reuse`` says whether SAM's embedding was cached.
        """
        detector_key, sam_key = self.spec.components
        boxes = self.manager.predict(detector_key, image, task="text", text=text, **detector_params)
        parts = [boxes]
        warnings = [boxes.warning] if boxes.warning else []
        explain = dict(boxes.explain)  # which words produced which box (Grounding DINO's Explain)
        if len(boxes) > MAX_BOXES:
            warnings.append(f"Segmented the {MAX_BOXES} best of {len(boxes)} boxes; raise the box threshold.")
            best = np.sort(np.argsort(-boxes.scores, kind="stable")[:MAX_BOXES])
            boxes = boxes[best]
            if "token_scores" in explain:
                explain["token_scores"] = explain["token_scores"][best]
        masks = np.zeros((0, *image.shape[:2]), bool)
        mask_probs = np.zeros((0, *image.shape[:2]), np.uint8)
        if len(boxes):
            segments = self.manager.predict(sam_key, image, boxes=tuple(map(tuple, boxes.boxes.tolist())))
            masks, mask_probs = segments.masks, segments.mask_probs
            parts.append(segments)
        meta: dict[str, object] = {k: v for k, v in boxes.meta.items() if k in ("text", "tokens")}
        meta["raw_outputs"] = boxes.reuse
        for part in parts:
            meta[f"{part.model}_ms"] = round(sum(part.timings_ms.values()), 1)
        return Prediction(
            model=self.spec.key,
            task="text",
            weights=boxes.weights,
            image_size=image.shape[:2],
            label_names=boxes.label_names,
            boxes=boxes.boxes,
            scores=boxes.scores,
            class_ids=boxes.class_ids,
            masks=masks,
            mask_probs=mask_probs,
            timings_ms={stage: sum(part.timings_ms.get(stage, 0.0) for part in parts) for stage in TIMING_STAGES},
            checkpoint=self.spec.checkpoint,
            device=boxes.device,
            cold=any(part.cold for part in parts),
            reuse=parts[-1].reuse if len(parts) > 1 else "not needed (no boxes)",
            warning=" ".join(warnings),
            meta=meta,
            explain=explain,
        )


class GroundedSAM(BoxesThenSAM):
    """``grounded-sam``: Grounding DINO's boxes, SAM's masks."""

    postprocess_params = frozenset({"box_threshold", "text_threshold"})


class OwlSAM(BoxesThenSAM):
    """``owlv2-sam``: OWLv2's boxes, SAM's masks."""

    postprocess_params = frozenset({"box_threshold"})
