"""`Playground`: the one entry point the UI, the API and the CLI share.

It turns an image and model keys into predictions through its `Models` (a `ModelManager`, or a remote
backend such as `playground.backends.ray_client.RayModels`; composites such as
Grounded-SAM through their class in `playground.runtime.composites`), and keeps predictions in an
`LRUCache`, so a model runs once per image and preprocessing parameters however often the user flips
tabs or moves sliders.

The result-cache key is (image digest, model, task, preprocessing parameters): only what changes the
forward. A post-processing parameter (a Grounding DINO threshold) is stored beside the cached
prediction; asking with another value re-runs only the post-processing, on the raw outputs the
adapter keeps, and replaces the entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace

import numpy as np

from playground.core.cache import MB, LRUCache
from playground.core.errors import PlaygroundError, unexpected_error_line
from playground.core.images import image_digest
from playground.core.protocols import Models
from playground.core.registry import get_spec
from playground.core.types import Prediction
from playground.core.weights import is_cached

log = logging.getLogger(__name__)

RESULTS_KEPT = 64
"""Predictions the result cache keeps, within `RESULT_BYTES`."""
RESULT_BYTES = 1024 * MB


@dataclass(frozen=True)
class Outcome:
    """One model's answer for one image: a prediction, or the clear error that stopped it."""

    key: str
    prediction: Prediction | None = None
    error: str | None = None


@dataclass(frozen=True)
class CachedResult:
    """A cached prediction and the post-processing parameters it was made with."""

    postprocess: Hashable
    prediction: Prediction


def failed(key: str, error: Exception) -> Outcome:
    """``key``'s error `Outcome`: a `PlaygroundError`'s own line; for anything else (a library bug,
    a device fault), a line naming the id its traceback is logged under."""
    if isinstance(error, PlaygroundError):
        return Outcome(key, error=str(error))
    return Outcome(key, error=unexpected_error_line(error, get_spec(key).title))


def new_result_cache() -> LRUCache[CachedResult]:
    return LRUCache(RESULTS_KEPT, RESULT_BYTES)


class Playground:
    """Shared by every user of a running app: thread-safe through its manager and cache."""

    def __init__(self, manager: Models, cache: LRUCache[CachedResult] | None = None) -> None:
        self.manager = manager
        self.cache = cache if cache is not None else new_result_cache()
        self.forward_count = 0
        """Model runs so far: tests and the log use it to prove a re-render ran no model."""

    def predict(self, key: str, image: np.ndarray, task: str | None = None, **params: object) -> Prediction:
        """Model ``key`` on ``image`` (H, W, 3 uint8) for ``task``, from the cache when it already ran.

        ``params`` must be hashable (tuples, not lists) and declared by the model; an unknown name
        raises `UnknownParameterError`. A cached prediction comes back with ``cached`` True and its
        original timings.
        """
        spec = get_spec(key)
        self.manager.ensure_available(key)  # fails fast offline, before the model code is imported
        model_class = spec.load_class()
        pre, post = model_class.split_params(spec.title, params)
        cache_key = (image_digest(image), key, task, tuple(sorted(pre.items())))
        frozen_post = tuple(sorted(post.items()))
        entry = self.cache.get(cache_key)
        if entry is not None and entry.postprocess == frozen_post:
            return replace(entry.prediction, cached=True, meta=dict(entry.prediction.meta))
        if spec.components:
            prediction = model_class(spec, self.manager).predict(image, task=task, **params)
        else:
            prediction = self.manager.predict(key, image, task=task, **params)
        self.forward_count += 1
        log.info(
            "forward %s on %dx%d: %.0f ms (load %.0f ms)",
            key,
            image.shape[1],
            image.shape[0],
            prediction.timings_ms.get("forward", 0.0),
            prediction.timings_ms.get("load", 0.0),
        )
        self.cache.put(cache_key, CachedResult(frozen_post, prediction))
        return prediction

    def peek(self, key: str, image: np.ndarray, task: str | None = None, **params: object) -> Prediction | None:
        """The cached prediction `predict` would return, or None: never runs or loads a model
        (a deep link shows results at once when they are cached, and waits for Run otherwise)."""
        pre, post = get_spec(key).load_class().split_params(get_spec(key).title, params) if params else ({}, {})
        entry = self.cache.get((image_digest(image), key, task, tuple(sorted(pre.items()))))
        if entry is None or entry.postprocess != tuple(sorted(post.items())):
            return None
        return replace(entry.prediction, cached=True, meta=dict(entry.prediction.meta))

    def weights_local(self, key: str) -> bool:
        """False when ``key`` would need pretrained weights that are neither cached nor given locally."""
        manager = self.manager
        return manager.weights != "pretrained" or is_cached(get_spec(key), manager.checkpoints.get(key))

    def predict_many(
        self,
        keys: list[str],
        image: np.ndarray,
        task: str | None = None,
        on_start: Callable[[int, str], None] | None = None,
        params_for: Callable[[str], dict[str, object]] | None = None,
    ) -> list[Outcome]:
        """Each model in order; a failing model becomes an error `Outcome` (any exception: an
        unexpected one is logged once, and its line names the log's id), the others still run.

        ``task`` None runs each model's own first task. ``on_start(index, key)`` is called before
        each model (for progress bars); ``params_for(key)`` gives that model's params.
        """
        outcomes = []
        for index, key in enumerate(keys):
            if on_start is not None:
                on_start(index, key)
            params = params_for(key) if params_for else {}
            try:
                outcomes.append(Outcome(key, prediction=self.predict(key, image, task=task, **params)))
            except Exception as error:  # any failure stays in this model's panel
                outcomes.append(failed(key, error))
        return outcomes
