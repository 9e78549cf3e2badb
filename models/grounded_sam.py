"""Grounded-SAM: Grounding DINO turns text into boxes, SAM turns the boxes into masks.

Not a model of its own: both parts run through the `ModelManager`, so the SAM here is the same
instance, with the same image-embedding cache, as the prompt tab's, and the manager never holds
two SAMs. Params: ``text``, ``box_threshold`` (0.35) and ``text_threshold`` (0.25). A threshold
change re-runs neither heavy forward: Grounding DINO re-applies its post-processing to cached raw
outputs, and SAM decodes the surviving boxes on its cached image embedding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from playground.registry import ModelSpec
from playground.text_prompts import BOX_THRESHOLD, TEXT_THRESHOLD
from playground.types import TIMING_STAGES, Prediction

if TYPE_CHECKING:
    from playground.manager import ModelManager

MAX_BOXES = 100
"""Most boxes SAM segments in one call (the best-scoring): a low box threshold can pass hundreds."""


class GroundedSAM:
    """The ``grounded-sam`` composite: ``spec.components`` is (detector key, SAM key)."""

    def __init__(self, spec: ModelSpec, manager: ModelManager) -> None:
        self.spec = spec
        self.manager = manager

    def predict(
        self,
        image: np.ndarray,
        task: str | None = None,
        text: str = "",
        box_threshold: float = BOX_THRESHOLD,
        text_threshold: float = TEXT_THRESHOLD,
        **params: object,
    ) -> Prediction:
        """Masks (N, H, W) for the boxes Grounding DINO finds for ``text`` in ``image`` (H, W, 3 uint8).

        Boxes, scores and labels are Grounding DINO's (labels are the user's class names); masks
        are SAM's for exactly those boxes, in the same order. Timings are summed per stage;
        ``meta`` splits them per model and says whether SAM's embedding was cached. Other
        ``params`` are ignored, as the adapters ignore theirs.
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
        warnings = [str(boxes.meta["warning"])] if "warning" in boxes.meta else []
        if len(boxes) > MAX_BOXES:
            warnings.append(f"Segmented the {MAX_BOXES} best of {len(boxes)} boxes; raise the box threshold.")
            boxes = boxes[np.sort(np.argsort(-boxes.scores, kind="stable")[:MAX_BOXES])]
        masks = np.zeros((0, *image.shape[:2]), bool)
        mask_probs = np.zeros((0, *image.shape[:2]), np.uint8)
        if len(boxes):
            segments = self.manager.predict(sam_key, image, boxes=tuple(map(tuple, boxes.boxes.tolist())))
            masks, mask_probs = segments.masks, segments.mask_probs
            parts.append(segments)
        meta: dict[str, object] = {
            k: v for k, v in boxes.meta.items() if k in ("text", "tokens", "raw_outputs", "checkpoint")
        }
        if warnings:
            meta["warning"] = " ".join(warnings)
        meta["embedding"] = parts[-1].meta["embedding"] if len(parts) > 1 else "not needed (no boxes)"
        meta["cold"] = any(part.meta.get("cold") for part in parts)
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
            meta=meta,
        )
