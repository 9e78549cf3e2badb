"""Composites: models made of other models, run through the `ModelManager` (they sit above it).

Grounded-SAM: Grounding DINO turns text into boxes, SAM turns the boxes into masks. Not a model
of its own: both parts run through the manager, so the SAM here is the same instance, with the
same image-embedding cache, as the prompt tab's, and the manager never holds two SAMs.
Params: ``text``, ``box_threshold`` (0.35) and ``text_threshold`` (0.25). A threshold
change re-runs neither heavy forward: Grounding DINO re-applies its post-processing to cached raw
outputs, and SAM decodes the surviving boxes on its cached image embedding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from playground.core.params import split_params
from playground.core.protocols import Models
from playground.core.registry import ModelSpec
from playground.core.text_prompts import BOX_THRESHOLD, TEXT_THRESHOLD
from playground.core.types import TIMING_STAGES, Prediction

MAX_BOXES = 100
"""Most boxes SAM segments in one call (the best-scoring): a low box threshold can pass hundreds."""


class GroundedSAM:
    """The ``grounded-sam`` composite: ``spec.components`` is (detector key, SAM key)."""

    forward_params: ClassVar[frozenset[str]] = frozenset({"text"})
    postprocess_params: ClassVar[frozenset[str]] = frozenset({"box_threshold", "text_threshold"})

    def __init__(self, spec: ModelSpec, manager: Models) -> None:
        self.spec = spec
        self.manager = manager

    @classmethod
    def split_params(cls, title: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``params`` split into (forward, postprocess); unknown names raise `UnknownParameterError`."""
        return split_params(title, cls.forward_params, cls.postprocess_params, params)

    def predict(
        self,
        image: np.ndarray,
        task: str | None = None,
        text: str = "",
        box_threshold: float = BOX_THRESHOLD,
        text_threshold: float = TEXT_THRESHOLD,
    ) -> Prediction:
        """Masks (N, H, W) for the boxes Grounding DINO finds for ``text`` in ``image`` (H, W, 3 uint8).

        Boxes, scores and labels are Grounding DINO's (labels are the user's class names); masks
        are SAM's for exactly those boxes, in the same order. Timings are summed per stage;
        ``meta`` splits them per model; ``reuse`` says whether SAM's embedding was cached.
        """
        detector_key, sam_key = self.spec.components
        boxes = self.manager.predict(
            detector_key,
            image,
            task="text",
            text=text,
            box_threshold=box_threshold,
            text_threshold=text_threshold,
        )
        parts = [boxes]
        warnings = [boxes.warning] if boxes.warning else []
        if len(boxes) > MAX_BOXES:
            warnings.append(f"Segmented the {MAX_BOXES} best of {len(boxes)} boxes; raise the box threshold.")
            boxes = boxes[np.sort(np.argsort(-boxes.scores, kind="stable")[:MAX_BOXES])]
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
        )
