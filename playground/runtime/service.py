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

With an `ExampleCache`, a prediction on a bundled example is also kept on disk, and a request on a
bundled example looks there first, so an example answers at once after a restart. `peek` reads
both caches without importing a model's code, so a tab shows an example's results on the click.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from playground.core.cache import MB, LRUCache
from playground.core.errors import PlaygroundError, unexpected_error_line
from playground.core.images import image_digest
from playground.core.protocols import Models
from playground.core.registry import get_spec
from playground.core.types import Prediction
from playground.core.weights import is_cached
from playground.runtime.example_cache import ExampleCache, result_key

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


def imported_class(key: str) -> type | None:
    """Model ``key``'s adapter class when its module is already imported, else None (no import)."""
    module_name, class_name = get_spec(key).adapter.split(":")
    return getattr(sys.modules.get(module_name), class_name, None)


def new_result_cache() -> LRUCache[CachedResult]:
    return LRUCache(RESULTS_KEPT, RESULT_BYTES)


class Playground:
    """Shared by every user of a running app: thread-safe through its manager and cache."""

    def __init__(
        self, manager: Models, cache: LRUCache[CachedResult] | None = None, examples: ExampleCache | None = None
    ) -> None:
        self.manager = manager
        self.cache = cache if cache is not None else new_result_cache()
        self.examples = examples
        """Where predictions on the bundled examples are kept across restarts (None: nowhere)."""
        self.forward_count = 0
        """Model runs so far: tests and the log use it to prove a re-render ran no model."""

    def predict(self, key: str, image: np.ndarray, task: str | None = None, **params: object) -> Prediction:
        """Model ``key`` on ``image`` (H, W, 3 uint8) for ``task``, from the cache when it already ran.

        ``params`` must be hashable (tuples, not lists) and declared by the model; an unknown name
        raises `UnknownParameterError`. A cached prediction comes back with ``cached`` True and its
        original timings; one read from the `ExampleCache` also has ``meta["served_from"]`` ``"disk"``.
        """
        spec = get_spec(key)
        digest = image_digest(image)
        # Before the model's code is imported: after a restart, that import alone takes seconds.
        stored_key, stored = self._from_examples(key, digest, task, params)
        if stored is not None:
            return stored
        self.manager.ensure_available(key)  # fails fast offline, before the model code is imported
        model_class = spec.load_class()
        cache_key, frozen_post, cached = self._from_results(model_class, key, digest, task, params)
        if cached is not None:
            return cached
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
        if stored_key is not None:
            self.examples.put(stored_key, prediction)
        return prediction

    def peek(self, key: str, image: np.ndarray, task: str | None = None, **params: object) -> Prediction | None:
        """The cached prediction `predict` would return (the disk's first, for a bundled example), or
        None: never runs or loads a model, nor imports its code (an example shows its results on the
        click when they are cached, and waits for Run otherwise)."""
        digest = image_digest(image)
        _, stored = self._from_examples(key, digest, task, params)
        if stored is not None:
            return stored
        model_class = imported_class(key)
        if model_class is None:  # never imported, so never run: nothing of it is in memory
            return None
        return self._from_results(model_class, key, digest, task, params)[2]

    def _from_examples(
        self, key: str, digest: str, task: str | None, params: dict[str, object]
    ) -> tuple[str | None, Prediction | None]:
        """This request's `ExampleCache` key (None unless ``digest`` is a bundled example's), and the
        prediction stored under it, marked cached (None when there is none)."""
        if self.examples is None or not self.examples.is_example(digest):
            return None, None
        stored_key = result_key(self.manager, key, digest, task, params)
        stored = self.examples.get(stored_key)
        return stored_key, None if stored is None else replace(stored, cached=True)

    def _from_results(
        self, model_class: type, key: str, digest: str, task: str | None, params: dict[str, object]
    ) -> tuple[Hashable, Hashable, Prediction | None]:
        """This request's result-cache key (its preprocessing parameters only), its post-processing
        parameters, and the prediction cached for both, marked cached (None when there is none)."""
        pre, post = model_class.split_params(get_spec(key).title, params)
        cache_key = (digest, key, task, tuple(sorted(pre.items())))
        frozen_post = tuple(sorted(post.items()))
        entry = self.cache.get(cache_key)
        if entry is None or entry.postprocess != frozen_post:
            return cache_key, frozen_post, None
        return cache_key, frozen_post, replace(entry.prediction, cached=True, meta=dict(entry.prediction.meta))

    def peek_all(
        self,
        keys: list[str],
        image: np.ndarray,
        task: str | None = None,
        params_for: Callable[[str], dict[str, object]] | None = None,
    ) -> list[Outcome] | None:
        """Every model's cached `Outcome` (`peek`), in order; None when any one is not cached."""
        outcomes = []
        for key in keys:
            prediction = self.peek(key, image, task, **(params_for(key) if params_for else {}))
            if prediction is None:
                return None
            outcomes.append(Outcome(key, prediction=prediction))
        return outcomes

    def weights_local(self, key: str) -> bool:
        """False when ``key`` would need pretrained weights that are neither cached nor given locally."""
        manager = self.manager
        return manager.weights != "pretrained" or is_cached(get_spec(key), manager.checkpoints.get(key))

    def predict_each(
        self,
        keys: list[str],
        image: np.ndarray,
        task: str | None = None,
        on_start: Callable[[int, str], None] | None = None,
        params_for: Callable[[str], dict[str, object]] | None = None,
    ) -> Iterator[Outcome]:
        """Each model's `Outcome` as soon as that model is done, in order; a failing model becomes
        an error `Outcome` (any exception: an unexpected one is logged once, and its line names the
        log's id), the others still run. Closing the iterator runs no further model.

        ``task`` None runs each model's own first task. ``on_start(index, key)`` is called before
        each model (for progress bars); ``params_for(key)`` gives that model's params.
        """
        for index, key in enumerate(keys):
            if on_start is not None:
                on_start(index, key)
            params = params_for(key) if params_for else {}
            try:
                outcome = Outcome(key, prediction=self.predict(key, image, task=task, **params))
            except Exception as error:  # any failure stays in this model's panel
                outcome = failed(key, error)
            yield outcome

    def predict_many(
        self,
        keys: list[str],
        image: np.ndarray,
        task: str | None = None,
        on_start: Callable[[int, str], None] | None = None,
        params_for: Callable[[str], dict[str, object]] | None = None,
    ) -> list[Outcome]:
        """Every model's `Outcome` at once (`predict_each`, collected)."""
        return list(self.predict_each(keys, image, task, on_start, params_for))
