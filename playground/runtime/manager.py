"""`ModelManager`: loads models lazily, keeps them under a memory budget, evicts the least recently used.

torch is imported on first use, not at import time, so the app serves its page before torch loads.

Thread safety: one lock guards the table of loaded models, held only for moments. A load holds
its own model's lock (two requests for one model load it once) and reserves its size in the budget
before it starts, so loads of different models never race past the budget, and a slow load (or a
download) never holds up a model that is already loaded. Forward passes run outside every lock, so
Gradio events from different tabs run in parallel. A model is pinned while it runs and is never
evicted then.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from playground.core.devices import DEVICE_CHOICES, check_device, mps_available
from playground.core.errors import ModelRunError, PlaygroundError
from playground.core.forks import fork_safe
from playground.core.precision import Precision, resolve_precision
from playground.core.registry import get_spec
from playground.core.types import Prediction, WeightsMode
from playground.core.weights import ensure_available
from playground.runtime import heap

if TYPE_CHECKING:
    import torch

    from playground.core.protocols import LoadedAdapter

log = logging.getLogger(__name__)

MB = 1024 * 1024


def pick_device(requested: str | None = None) -> torch.device:
    """``requested`` if given (``cpu``, ``cuda``, ``cuda:1``, ``mps``), checked to be here; else
    (None or ``auto``) CUDA when present, then MPS, then the CPU."""
    import torch

    if requested and requested != "auto":
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise PlaygroundError(f"--device {requested}: use {DEVICE_CHOICES}.") from None
        return check_device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("mps" if mps_available() else "cpu")


def default_budget_bytes(device: torch.device) -> int:
    """70% of the GPU's memory, or 40% of the machine's RAM, for model weights."""
    if device.type == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(device).total_memory * 0.7)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.4)


@dataclass
class _Entry:
    adapter: LoadedAdapter
    pins: int = 0
    runs: int = 0


@dataclass(frozen=True)
class LoadedModel:
    """One row of `ModelManager.loaded`: what is in memory, and how big."""

    key: str
    weights: WeightsMode
    megabytes: float
    running: int
    runs: int


class ModelManager:
    """Owns every loaded model.

    It runs `concurrent_requests` predictions at once (the app's queue sees to it): two, so that one
    tab's long forward does not hold up another's, and no more, so a hosted GPU is never
    oversubscribed.

    Args:
        weights: weights mode for every model: ``pretrained``, ``random`` or ``tiny``.
        device: where models run (``auto``/None: CUDA when present, then MPS, then the CPU), resolved
            when first needed.
        budget_bytes: most bytes of weights kept loaded; None picks `default_budget_bytes`.
        checkpoints: registry key -> local checkpoint path overriding the default checkpoint.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` (`resolve_precision`), for every model
            whose spec allows half precision; the others run in fp32.
        library_kernels: run each library's own layers only, without the adapters' faster
            equivalents (`Adapter.use_faster_layers`): the bench's reference.
    """

    concurrent_requests = 2

    def __init__(
        self,
        weights: WeightsMode = "pretrained",
        device: str | torch.device | None = None,
        budget_bytes: int | None = None,
        checkpoints: dict[str, str] | None = None,
        precision: str = "auto",
        library_kernels: bool = False,
    ) -> None:
        self.weights = weights
        self.library_kernels = library_kernels
        self._requested_precision = precision
        self._requested_device = device
        self._budget_bytes = budget_bytes
        self.checkpoints = dict(checkpoints or {})
        self.evictions = 0
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = fork_safe(threading.RLock())
        self._load_locks: dict[str, threading.Lock] = {}
        self._loading: dict[str, int] = {}
        """Bytes reserved in the budget by each load in progress."""

    @cached_property
    def device(self) -> torch.device:
        """Where models run (imports torch on first access)."""
        requested = self._requested_device
        return requested if not isinstance(requested, str | None) else pick_device(requested)

    @cached_property
    def precision(self) -> Precision:
        """What ``precision`` resolves to on this manager's device (imports torch on first access); with
        ``auto``, for the models whose fp16 agreement was measured (`precision_for` says per model)."""
        return resolve_precision(self._requested_precision, self.device)

    def precision_for(self, key: str) -> Precision:
        """The precision model ``key`` runs in: the manager's, or fp32 where its spec says half
        precision gains nothing or breaks it, and where ``auto`` picked fp16 (an older CUDA card,
        MPS) for a model whose fp16 agreement was not measured (its adapter's ``fp16_agrees``)."""
        spec = get_spec(key)
        if not spec.half_precision:
            return "fp32"
        if self._requested_precision == "auto" and self.precision == "fp16":
            fp16_agrees = getattr(spec.load_class(), "fp16_agrees", False)
            return resolve_precision("auto", self.device, fp16_agrees=fp16_agrees)
        return self.precision

    @cached_property
    def budget_bytes(self) -> int:
        return self._budget_bytes or default_budget_bytes(self.device)

    # -- public API --------------------------------------------------------------------------

    def predict(self, key: str, image: np.ndarray, **params: object) -> Prediction:
        """Run model ``key`` on ``image`` (H, W, 3 uint8); loads it first if needed.

        The prediction's ``timings_ms["load"]`` is the load time when this call loaded the model
        (``cold`` True), else 0. An out-of-memory error evicts every idle model and retries once;
        a second one becomes a `ModelRunError`. Composites (``spec.components``) are not models:
        `playground.runtime.service.Playground` runs them, and they run their parts through here.
        """
        with self.use(key) as (adapter, cold):
            try:
                prediction = self._run_with_oom_retry(adapter, image, params)
            except PlaygroundError:
                raise
            except Exception as error:
                log.exception("model %s failed", key)
                raise ModelRunError(f"{adapter.spec.title} failed: {type(error).__name__}: {error}") from None
        # The forward's activations are freed now, but glibc keeps them: hand them back, so resident
        # memory falls to the models and caches between requests (see docs/architecture.md, Memory).
        heap.trim()
        prediction.timings_ms["load"] = adapter.load_ms if cold else 0.0
        prediction.cold = cold
        return prediction

    def ensure_available(self, key: str) -> None:
        """Raise `MissingWeightsError` at once for pretrained weights that are not here and cannot be
        fetched (offline), before any model code is imported."""
        if self.weights == "pretrained":
            ensure_available(get_spec(key), self.checkpoints.get(key))

    @contextmanager
    def use(self, key: str) -> Iterator[tuple[LoadedAdapter, bool]]:
        """Yield (adapter, cold) with the model loaded and pinned; cold is True if this call loaded it."""
        entry, cold = self._acquire(key)
        try:
            yield entry.adapter, cold
        finally:
            with self._lock:
                entry.pins -= 1
                entry.runs += 1
                self._evict_to_fit(0)

    @property
    def loaded(self) -> list[LoadedModel]:
        """Models in memory, least recently used first."""
        with self._lock:
            return [
                LoadedModel(key, e.adapter.weights, e.adapter.nbytes / MB, e.pins, e.runs)
                for key, e in self._entries.items()
            ]

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(e.adapter.nbytes for e in self._entries.values())

    def is_loaded(self, key: str) -> bool:
        with self._lock:
            return key in self._entries

    def unload(self, key: str) -> bool:
        """Drop model ``key`` unless it is running; True if it was dropped."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.pins:
                return False
            self._drop(key)
            return True

    # -- internals ---------------------------------------------------------------------------

    def _acquire(self, key: str) -> tuple[_Entry, bool]:
        spec = get_spec(key)
        if spec.components:
            raise TypeError(f"{key} is a composite: run it through playground.runtime.service.Playground")
        with self._lock:
            entry = self._pinned(key)
            if entry is not None:
                return entry, False
            load_lock = self._load_locks.setdefault(key, fork_safe(threading.Lock()))
        with load_lock:  # this model's loads only: the table stays free for the others
            with self._lock:
                entry = self._pinned(key)  # another request loaded it while this one waited
                if entry is not None:
                    return entry, False
            self.ensure_available(key)
            # Make room first, so peak memory stays near the budget; tiny builds are ~free.
            incoming = 0 if self.weights == "tiny" else int(spec.size_mb * MB)
            with self._lock:
                self._evict_to_fit(incoming)
                self._loading[key] = incoming
            try:
                adapter = spec.load_class()(
                    spec,
                    self.weights,
                    self.device,
                    self.checkpoints.get(key),
                    self.precision_for(key),
                    library_kernels=self.library_kernels,
                )
                log.info("loading %s (%s weights, %s) on %s", key, self.weights, adapter.precision, self.device)
                adapter.load()
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            with self._lock:
                entry = self._entries[key] = _Entry(adapter, pins=1)
                self._evict_to_fit(0)
                return entry, True

    def _pinned(self, key: str) -> _Entry | None:
        """The loaded entry for ``key``, pinned and made most recently used; None if not loaded.
        Call with the table lock held."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.pins += 1
            self._entries.move_to_end(key)
        return entry

    def _evict_to_fit(self, incoming_bytes: int) -> None:
        """Drop idle models, least recently used first, until used + incoming (and what the loads in
        progress reserved) fits the budget."""
        used = sum(e.adapter.nbytes for e in self._entries.values()) + sum(self._loading.values())
        for key in list(self._entries):
            if used + incoming_bytes <= self.budget_bytes:
                return
            entry = self._entries[key]
            if entry.pins:
                continue
            used -= entry.adapter.nbytes
            self._drop(key)
            self.evictions += 1
            log.info("evicted %s to stay under the %.0f MB budget", key, self.budget_bytes / MB)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        entry.adapter.unload()
        gc.collect()
        heap.trim()
        if self.device.type in ("cuda", "mps"):
            import torch

            getattr(torch, self.device.type).empty_cache()  # the freed blocks go back to the device

    def _run_with_oom_retry(self, adapter: LoadedAdapter, image: np.ndarray, params: dict) -> Prediction:
        import torch

        try:
            return adapter.predict(image, **params)
        except torch.OutOfMemoryError:
            log.warning("out of memory in %s: evicting idle models and retrying once", adapter.spec.key)
            with self._lock:
                for key in [k for k, e in self._entries.items() if not e.pins]:
                    self._drop(key)
                    self.evictions += 1
            try:
                return adapter.predict(image, **params)
            except torch.OutOfMemoryError:
                raise ModelRunError(
                    f"{adapter.spec.title} ran out of memory on {adapter.device} even after freeing "
                    f"the other models; try a smaller image."
                ) from None
