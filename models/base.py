"""The adapter contract: one small class per model family, and nothing about the UI.

An adapter splits inference the way transformers pipelines do:

- `preprocess`: RGB uint8 HWC image -> model inputs (the library's own processor or transform);
- `forward`: the only step on the device, under ``torch.inference_mode()``;
- `postprocess`: raw outputs -> `Prediction` (the library's own post-processing).

Adapters keep every result above a low score floor (`Adapter.floor`); the UI filters, so moving
a threshold slider never re-runs a model.

Parameters are declared, the idea of transformers' ``Pipeline._sanitize_parameters``:
``preprocess_params`` reach `preprocess` (they change what the model computes, and so enter the
result-cache key); ``postprocess_params`` reach `postprocess` only. Any other name is refused.

Caches are declared too (`new_cache`): `nbytes`, `unload` and `clear_caches` count and drop them.
"""

from __future__ import annotations

import contextlib
import copy
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import torch

from models.explain.capture import Explainer
from models.layers.batch_norm_folding import FOLDED, fold_batch_norms
from models.layers.half_precision import created_in, use_half_precision
from playground.core.cache import LRUCache, deep_nbytes
from playground.core.devices import synchronize
from playground.core.params import split_params
from playground.core.patches import Patch
from playground.core.precision import Precision
from playground.core.registry import ModelSpec
from playground.core.tensors import to_device
from playground.core.types import SCORE_FLOOR, Prediction, WeightsMode

__all__ = ["SCORE_FLOOR", "Adapter", "ProcessorAdapter"]


class Adapter(ABC):
    """Wraps one model: build or load it, then run images through it.

    Args:
        spec: the registry entry.
        weights: ``pretrained`` (the checkpoint), ``random`` (full size, random init) or ``tiny`` (small; tests).
        device: where the model runs.
        checkpoint: optional local path that replaces the default checkpoint.
        precision: ``fp32``, or ``bf16`` / ``fp16`` for the `half_precision_regions`.
        library_kernels: skip `use_faster_layers` and run the library's own layers only.

    Class attributes:
        preprocess_params: names `preprocess` takes (besides ``task``); they enter the result-cache key.
        postprocess_params: names `postprocess` takes (besides ``task``).
        half_precision_regions: submodules run in half precision when ``precision`` asks ("" is the
            whole model): the heavy backbone or encoder, not the heads that decode boxes and masks.
        channels_last: a convolutional network, kept channels-last in half precision.
        fp16_agrees: fp16 was measured to agree with fp32 (the bench), so ``--precision auto`` may pick it.
        explainer: the `Explainer` that records what Explain draws during the same forward pass.
    """

    preprocess_params: ClassVar[frozenset[str]] = frozenset()
    postprocess_params: ClassVar[frozenset[str]] = frozenset()
    half_precision_regions: ClassVar[tuple[str, ...]] = ("",)
    channels_last: ClassVar[bool] = False
    fp16_agrees: ClassVar[bool] = False
    explainer: ClassVar[type[Explainer] | None] = None

    def __init__(
        self,
        spec: ModelSpec,
        weights: WeightsMode,
        device: torch.device,
        checkpoint: str | None = None,
        precision: Precision = "fp32",
        library_kernels: bool = False,
    ) -> None:
        self.spec = spec
        self.library_kernels = library_kernels
        self.weights = weights
        self.device = device
        self.checkpoint = checkpoint
        self.precision = precision
        self.model: torch.nn.Module | None = None
        self._model_bytes = 0
        self.label_names: dict[int, str] = {}
        self.load_ms = 0.0
        self.caches: list[LRUCache] = []
        self.explain = True  # record ``prediction.explain`` (False only to measure what recording costs)
        self._explainer: Explainer | None = None
        self.patches: list[Patch] = []  # each swap or wrap `_prepare` made (``models --layers KEY``)

    def new_cache(self, max_items: int, max_bytes: int) -> LRUCache:
        """A cache this adapter owns (counted in `nbytes`, emptied by `unload`); hits come back on its device."""
        self.caches.append(LRUCache(max_items, max_bytes, restore=lambda value: to_device(value, self.device)))
        return self.caches[-1]

    @classmethod
    def split_params(cls, title: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``params`` split into (preprocess, postprocess); unknown names raise `UnknownParameterError`."""
        return split_params(title, cls.preprocess_params, cls.postprocess_params, params)

    def floor(self, pretrained_floor: float = SCORE_FLOOR) -> float:
        """The score below which results are dropped: ``pretrained_floor``, except 0 for tiny test builds (scores
        near chance: every post-processing path still has work); full-size random builds keep the real floors."""
        return 0.0 if self.weights == "tiny" else pretrained_floor

    # -- lifecycle ---------------------------------------------------------------------------

    def load(self) -> None:
        """Build the model for ``self.weights`` and move it to ``self.device`` in eval mode."""
        start = time.perf_counter()
        # A checkpoint's float32 weights load as they are (created_in would round them to bf16).
        with created_in("fp32" if self.weights == "pretrained" else self.precision):
            model = self.build().to(self.device).eval()
        self._prepare(model)
        self.load_ms = (time.perf_counter() - start) * 1000

    def adopt(self, library_model: torch.nn.Module) -> None:
        """Run a copy of ``library_model`` (this model in the library's layout and float32, e.g. a ``library_kernels``
        build), prepared as `load` prepares its own: how the bench and tests compare the two on the same weights."""
        self._prepare(copy.deepcopy(library_model).to(self.device).eval())

    def _prepare(self, model: torch.nn.Module) -> None:
        """Faster layers for this device, half precision, explainer hooks; sets ``self.model`` and ``self.patches``."""
        patches = [] if self.library_kernels else [p for p in self.use_faster_layers(model) if p.count]
        if wrong := [p.replaced for p in patches if not p.runs_on(self.device.type)]:
            raise RuntimeError(f"{self.spec.key}: not measured faster on {self.device.type}, yet applied: {wrong}")
        if self.precision != "fp32":
            model, halved = use_half_precision(model, self.half_precision_regions, self.precision, self.channels_last)
            patches += halved
        self._explainer = self.explainer(model) if self.explainer is not None else None
        if self._explainer is not None:
            patches += self._explainer.patches
        self.patches = patches
        self.model = model
        self._model_bytes = deep_nbytes([*model.parameters(), *model.buffers()])

    def use_faster_layers(self, model: torch.nn.Module) -> list[Patch]:
        """Swap library layers for faster ones computing the same (float32: to ~1e-6), each through `faster` (by
        default: every certain conv -> batch norm pair folded). One `Patch` per kind; a count of 0 is dropped."""
        return [self.faster(FOLDED, fold_batch_norms, model)]

    def faster(self, patch: Patch, swap: Callable[..., int], *args: Any) -> Patch:
        """``patch`` applied by ``swap(*args)`` (-> layers changed) on its ``devices`` only; elsewhere a count of 0."""
        return patch.applied(swap(*args) if patch.runs_on(self.device.type) else 0)

    @abstractmethod
    def build(self) -> torch.nn.Module:
        """Return the model on the CPU, and set ``self.label_names`` (may raise MissingWeights)."""

    def unload(self) -> None:
        """Drop the model and every cache entry so their memory can be freed."""
        self.model = None
        self._model_bytes = 0
        self._explainer = None
        self.clear_caches()

    def clear_caches(self) -> None:
        """Empty every cache this adapter declared (`new_cache`)."""
        for cache in self.caches:
            cache.clear()

    @property
    def nbytes(self) -> int:
        """Bytes held: the model's tensors (counted once, at load; 0 unloaded) plus every cache entry."""
        return self._model_bytes + sum(cache.nbytes for cache in self.caches)

    # -- inference ---------------------------------------------------------------------------

    @abstractmethod
    def preprocess(self, image: np.ndarray, task: str, **preprocess_params: Any) -> Any:
        """(H, W, 3) uint8 RGB -> model inputs on ``self.device``."""

    @abstractmethod
    def forward(self, inputs: Any) -> Any:
        """Run the model on prepared inputs (called under ``torch.inference_mode()``)."""

    @abstractmethod
    def postprocess(self, outputs: Any, image: np.ndarray, task: str, **postprocess_params: Any) -> Prediction:
        """Raw outputs -> `Prediction` in the image's pixel space."""

    def predict(self, image: np.ndarray, task: str | None = None, **params: Any) -> Prediction:
        """Run the three stages on ``image`` (H, W, 3 uint8) and record their timings in ms.

        ``task`` (default: the spec's first task) reaches both `preprocess` and `postprocess`, so a model that
        serves several tasks picks its post-processing by task; each of ``params`` goes where it is declared
        (`preprocess_params`, `postprocess_params`); an unknown one raises `UnknownParameterError` first.
        """
        if self.model is None:
            raise RuntimeError(f"{self.spec.key} is not loaded")
        preprocess_params, postprocess_params = self.split_params(self.spec.title, params)
        task = task or self.spec.tasks[0]
        start = time.perf_counter()
        explainer = self._explainer if self.explain else None
        with torch.inference_mode():
            inputs = self.preprocess(image, task, **preprocess_params)
            prepared = self._sync_clock()
            with explainer.recording() if explainer else contextlib.nullcontext() as records:
                outputs = self.forward(inputs)
            forwarded = self._sync_clock()
            prediction = self.postprocess(outputs, image, task, **postprocess_params)
            if explainer is not None:
                prediction.explain = explainer.capture(records, self, inputs, outputs, prediction)
        done = time.perf_counter()
        prediction.timings_ms.update(
            preprocess=(prepared - start) * 1000,
            forward=(forwarded - prepared) * 1000,
            postprocess=(done - forwarded) * 1000,
        )
        prediction.checkpoint = prediction.checkpoint or self.checkpoint or self.spec.checkpoint
        prediction.device = str(self.device)
        prediction.precision = self.precision
        return prediction

    def _sync_clock(self) -> float:
        """perf_counter after the device (CUDA, MPS) has finished its queued work."""
        synchronize(self.device)
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
    """An adapter whose ``self.processor`` (a transformers image processor, set in `build`) makes keyword inputs."""

    processor: Any

    def preprocess(self, image: np.ndarray, task: str) -> dict[str, torch.Tensor]:
        """(H, W, 3) uint8 -> ``pixel_values`` (1, 3, h, w) and ``pixel_mask`` (1, h, w) on the device."""
        inputs = self.processor(images=image, return_tensors="pt")
        return {name: tensor.to(self.device) for name, tensor in inputs.items()}

    def forward(self, inputs: dict[str, torch.Tensor]) -> Any:
        """The model's own output object for ``inputs``."""
        return self.model(**inputs)
