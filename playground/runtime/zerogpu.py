"""ZeroGPU (Hugging Face Spaces): models in the main process, model work in ``spaces.GPU`` calls,
every cache in the main process.

On a ZeroGPU Space (``SPACES_ZERO_GPU=true``, as the ``spaces`` package identifies one), a
``@spaces.GPU`` function runs in a forked worker that may be fresh on every call, with pickled
arguments and results; what it creates dies with it, and CUDA must not start in the main process
(``spaces`` emulates ``.to("cuda")`` there). So:

- models load in the main process, the preload list at start-up and any other before its first
  GPU call, so every fork inherits them loaded;
- a GPU call runs only `ModelManager.predict` for one model (the API endpoints and every tab go
  through it), with an estimated ``duration``;
- the result cache stays in the main process (`Playground`), so a repeated request takes no GPU
  call; the adapters' own caches (SAM's embeddings, raw outputs) come back from each call as CPU
  tensors and are merged into the main process's adapters, so a fresh fork finds them (an
  adapter's cache hands an entry back on its model's device);
- nothing that crosses holds a CUDA tensor, and everything that crosses pickles.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Hashable, Iterable
from contextlib import ExitStack
from typing import Any

import numpy as np

from playground.core.errors import PlaygroundError
from playground.core.registry import get_spec
from playground.core.tensors import to_cpu
from playground.core.types import Prediction

log = logging.getLogger(__name__)

SPACE_PRELOAD = ("sam", "grounding-dino", "detr", "fcn", "mask2former", "sam2-video")
"""What a Space preloads unless told otherwise (``--preload``, ``PLAYGROUND_PRELOAD``): the prompt,
text, detection, semantic, panoptic and video tabs' first models."""
SECONDS_PER_MEGAPIXEL = {"sam": 4.0, "sam2": 3.0, "sam3": 8.0, "grounding-dino": 5.0, "owlv2": 3.0}
"""A GPU call's expected seconds per megapixel of input, where above the default of 2."""
MIN_DURATION_S, MAX_DURATION_S = 10, 120

CacheEntries = list[list[tuple[Hashable, Any]]]
"""Per cache of an adapter (in `Adapter.caches` order), the entries one call added."""


def on_zero_gpu() -> bool:
    """True on a ZeroGPU Space, read as ``spaces`` reads it (``SPACES_ZERO_GPU``)."""
    return os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true", "y", "yes", "on")


def preload_keys(asked: str | None) -> list[str]:
    """The models to load at start-up: ``asked`` ("KEY,KEY", or ``PLAYGROUND_PRELOAD``), else on a
    ZeroGPU Space `SPACE_PRELOAD`, else none. Unknown keys raise `UnknownModelError`."""
    text = asked if asked is not None else os.environ.get("PLAYGROUND_PRELOAD")
    if text is None:
        return list(SPACE_PRELOAD) if on_zero_gpu() else []
    keys = [key.strip() for key in text.split(",") if key.strip()]
    for key in keys:
        get_spec(key)
    return keys


def models_for_this_host(manager: Any, preload: Iterable[str]) -> Any:
    """``manager`` with the ``preload`` models loaded now, in this (the main) process, so no request
    waits for them; on a ZeroGPU Space wrapped in `ZeroGPUModels`. A model that cannot load (its
    weights missing) is logged and left for its first request to report."""
    for key in preload:
        try:
            with manager.use(key):
                log.info("preloaded %s on %s", key, manager.device)
        except PlaygroundError as error:
            log.warning("not preloaded: %s", error)
    return ZeroGPUModels(manager) if on_zero_gpu() else manager


def duration_s(key: str, image: np.ndarray, params: dict[str, Any]) -> int:
    """Seconds a GPU call for ``key`` on ``image`` is expected to take, for ``spaces.GPU(duration=)``."""
    megapixels = image.shape[0] * image.shape[1] / 1e6
    seconds = 5 + SECONDS_PER_MEGAPIXEL.get(key, 2.0) * max(megapixels, 1.0)
    if params.get("everything"):
        seconds *= 4  # a grid of point prompts over the whole image
    return int(min(MAX_DURATION_S, max(MIN_DURATION_S, seconds)))


def forwarded(name: str) -> property:
    """A read-only property that is the wrapped ``manager``'s attribute ``name`` (a method comes bound)."""
    return property(lambda self: getattr(self.manager, name))


class ZeroGPUModels:
    """A `ModelManager` (``manager``) whose predictions run in ``spaces.GPU`` calls.

    ``gpu`` is the ``spaces.GPU`` decorator (the ``spaces`` package's by default). Everything else
    (the memory report, the weights mode) is the main process's manager."""

    def __init__(self, manager: Any, gpu: Callable[..., Any] | None = None) -> None:
        if gpu is None:
            import spaces

            gpu = spaces.GPU
        install(manager)
        self.manager = manager
        self.weights = manager.weights
        self.checkpoints = manager.checkpoints
        self.concurrent_requests = manager.concurrent_requests
        self._predict_on_gpu = gpu(duration=lambda key, image, params: duration_s(key, image, params))(_predict)
        self._work_on_gpu = gpu(duration=lambda work, args: MAX_DURATION_S)(_work)
        self.gpu_calls = 0
        """GPU calls made so far (each costs the visitor's quota)."""

    def predict(self, key: str, image: np.ndarray, **params: Any) -> Prediction:
        """Model ``key`` on ``image`` in one GPU call; what the call added to the model's caches is
        kept here."""
        with self.manager.use(key) as (adapter, _):  # loaded here: a fresh fork inherits it
            self.gpu_calls += 1
            prediction, entries = self._predict_on_gpu(key, image, params)
            for cache, added in zip(adapter.caches, entries):
                for cache_key, value in added:
                    cache.put(cache_key, value)
        return prediction

    def run(self, work: Callable[..., Any], *args: Any, models: Iterable[str] = ()) -> Any:
        """``work(manager, *args)`` in one GPU call (a module-level function: the worker finds it by
        name); its arguments and result cross as pickles, so they must hold no CUDA tensor. The
        ``models`` it runs (registry keys) load here first, so the worker inherits them loaded
        instead of loading them on every call; they stay pinned until it ends, as in `predict`."""
        with ExitStack() as pinned:
            for key in models:
                pinned.enter_context(self.manager.use(key))
            self.gpu_calls += 1
            return self._work_on_gpu(work, args)

    # The rest of `Models` is the main process's manager's, read at each use.
    ensure_available = forwarded("ensure_available")
    is_loaded = forwarded("is_loaded")
    device = forwarded("device")
    budget_bytes = forwarded("budget_bytes")
    used_bytes = forwarded("used_bytes")
    evictions = forwarded("evictions")
    loaded = forwarded("loaded")


_MANAGER: Any = None
"""The main process's manager, which every fork inherits (set by `install`)."""


def install(manager: Any) -> None:
    """Make ``manager`` the one `_predict` runs on in the GPU worker."""
    global _MANAGER
    _MANAGER = manager


def _predict(key: str, image: np.ndarray, params: dict[str, Any]) -> tuple[Prediction, CacheEntries]:
    """In the GPU worker: the prediction and the entries it added to the model's caches, on the CPU.

    The worker is a fork of a process whose torch may have started its OpenMP threads (loading
    runs CPU ops), and GNU OpenMP's pool does not survive a fork: the first parallel CPU op would
    hang. So the worker's CPU ops run on one thread (its model work is on the GPU)."""
    import torch

    torch.set_num_threads(1)
    with _MANAGER.use(key) as (adapter, _):
        before = [{cache_key for cache_key, _ in cache.items()} for cache in adapter.caches]
        prediction = _MANAGER.predict(key, image, **params)
        added = [
            [(cache_key, to_cpu(value)) for cache_key, value in cache.items() if cache_key not in seen]
            for cache, seen in zip(adapter.caches, before)
        ]
    return to_cpu(prediction), added


def _work(work: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """In the GPU worker: ``work(manager, *args)``, its result on the CPU."""
    import torch

    torch.set_num_threads(1)  # as in `_predict`
    return to_cpu(work(_MANAGER, *args))
