"""The adapter contract: one small class per model family, and nothing about the UI.

An adapter splits inference the way transformers pipelines do:

- `preprocess`: RGB uint8 HWC image -> model inputs (the library's own processor or transform);
- `forward`: the only step on the device, under ``torch.inference_mode()``;
- `postprocess`: raw outputs -> `Prediction` (the library's own post-processing).

Adapters keep every result above a low score floor (`Adapter.floor`); the UI filters, so moving
a threshold slider never re-runs a model.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from playground.registry import ModelSpec
from playground.types import SCORE_FLOOR, Prediction, WeightsMode

__all__ = ["SCORE_FLOOR", "Adapter", "ProcessorAdapter"]


class Adapter(ABC):
    """Wraps one model: build or load it, then run images through it.

    Args:
        spec: the registry entry.
        weights: ``pretrained`` (the real checkpoint), ``random`` (full size, random init) or
            ``tiny`` (a small config, random init; for tests).
        device: where the model runs.
        checkpoint: optional local path that replaces the default checkpoint.
    """

    def __init__(
        self,
        spec: ModelSpec,
        weights: WeightsMode,
        device: torch.device,
        checkpoint: str | None = None,
    ) -> None:
        self.spec = spec
        self.weights = weights
        self.device = device
        self.checkpoint = checkpoint
        self.model: torch.nn.Module | None = None
        self.label_names: dict[int, str] = {}
        self.load_ms = 0.0

    def floor(self, pretrained_floor: float = SCORE_FLOOR) -> float:
        """The score below which results are dropped: ``pretrained_floor``, except 0 for tiny test
        builds, whose scores sit near chance, so every post-processing path still has work to do.
        Full-size random builds keep the real floors: they exist to time the real pipeline."""
        return 0.0 if self.weights == "tiny" else pretrained_floor

    # -- lifecycle ---------------------------------------------------------------------------

    def load(self) -> None:
        """Build the model for ``self.weights`` and move it to ``self.device`` in eval mode."""
        start = time.perf_counter()
        model = self.build()
        self.model = model.to(self.device).eval()
        self.load_ms = (time.perf_counter() - start) * 1000

    @abstractmethod
    def build(self) -> torch.nn.Module:
        """Return the model on the CPU, and set ``self.label_names`` (may raise MissingWeights)."""

    def unload(self) -> None:
        """Drop the model so its memory can be freed."""
        self.model = None

    @property
    def nbytes(self) -> int:
        """Bytes held by the model's parameters and buffers (0 when not loaded)."""
        if self.model is None:
            return 0
        tensors = [*self.model.parameters(), *self.model.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)

    # -- inference ---------------------------------------------------------------------------

    @abstractmethod
    def preprocess(self, image: np.ndarray, **params: Any) -> Any:
        """(H, W, 3) uint8 RGB -> model inputs on ``self.device``."""

    @abstractmethod
    def forward(self, inputs: Any) -> Any:
        """Run the model on prepared inputs (called under ``torch.inference_mode()``)."""

    @abstractmethod
    def postprocess(self, outputs: Any, image: np.ndarray, **params: Any) -> Prediction:
        """Raw outputs -> `Prediction` in the image's pixel space."""

    def predict(self, image: np.ndarray, task: str | None = None, **params: Any) -> Prediction:
        """Run the three stages on ``image`` (H, W, 3 uint8) and record their timings in ms.

        ``task`` (default: the spec's first task) and ``params`` reach both `preprocess` and
        `postprocess`, so a model that serves several tasks picks its post-processing by task.
        """
        if self.model is None:
            raise RuntimeError(f"{self.spec.key} is not loaded")
        params["task"] = task or self.spec.tasks[0]
        start = time.perf_counter()
        with torch.inference_mode():
            inputs = self.preprocess(image, **params)
            prepared = self._sync_clock()
            outputs = self.forward(inputs)
            forwarded = self._sync_clock()
            prediction = self.postprocess(outputs, image, **params)
        done = time.perf_counter()
        prediction.timings_ms.update(
            preprocess=(prepared - start) * 1000,
            forward=(forwarded - prepared) * 1000,
            postprocess=(done - forwarded) * 1000,
        )
        prediction.meta.setdefault("checkpoint", self.checkpoint or self.spec.checkpoint)
        prediction.meta["device"] = str(self.device)
        return prediction

    def _sync_clock(self) -> float:
        """perf_counter after the device has finished its queued work."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def new_prediction(self, image: np.ndarray, task: str, **fields: Any) -> Prediction:
        """A `Prediction` stamped with this adapter's key, weights mode and label names."""
        return Prediction(
            model=self.spec.key,
            task=task,
            weights=self.weights,
            image_size=image.shape[:2],
            label_names=self.label_names,
            **fields,
        )


class ProcessorAdapter(Adapter):
    """An adapter whose ``self.processor`` (a transformers image processor, set in `build`) makes the
    inputs, and whose model takes them as keyword arguments."""

    processor: Any

    def preprocess(self, image: np.ndarray, **params: Any) -> dict[str, torch.Tensor]:
        """(H, W, 3) uint8 -> ``pixel_values`` (1, 3, h, w) and ``pixel_mask`` (1, h, w) on the device."""
        inputs = self.processor(images=image, return_tensors="pt")
        return {name: tensor.to(self.device) for name, tensor in inputs.items()}

    def forward(self, inputs: dict[str, torch.Tensor]) -> Any:
        """The model's own output object for ``inputs``."""
        return self.model(**inputs)
