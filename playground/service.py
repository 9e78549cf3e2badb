"""`Playground`: the one entry point the UI, the API and the CLI share.

It turns an image and model keys into predictions through the `ModelManager`, and keeps raw
predictions in a `ResultCache`, so a model runs once per image and parameters however often the
user flips tabs or moves sliders.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from playground.errors import PlaygroundError
from playground.images import image_digest
from playground.manager import ModelManager
from playground.results import ResultCache
from playground.types import Prediction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """One model's answer for one image: a prediction, or the clear error that stopped it."""

    key: str
    prediction: Prediction | None = None
    error: str | None = None


class Playground:
    """Shared by every user of a running app: thread-safe through its manager and cache."""

    def __init__(self, manager: ModelManager, cache: ResultCache | None = None) -> None:
        self.manager = manager
        self.cache = cache or ResultCache()
        self.forward_count = 0
        """Forward passes run so far: tests and the log use it to prove a re-render ran no model."""

    def predict(self, key: str, image: np.ndarray, task: str | None = None, **forward_params: object) -> Prediction:
        """Model ``key`` on ``image`` (H, W, 3 uint8) for ``task``, from the cache when it already ran.

        ``forward_params`` must be hashable (tuples, not lists): they are part of the cache key.
        A cached prediction comes back with ``meta["cached"] = True`` and its original timings.
        """
        cache_key = (image_digest(image), key, (task, *sorted(forward_params.items())))
        cached = self.cache.get(cache_key)
        if cached is not None:
            return replace(cached, meta={**cached.meta, "cached": True})
        prediction = self.manager.predict(key, image, task=task, **forward_params)
        self.forward_count += 1
        log.info(
            "forward %s on %dx%d: %.0f ms (load %.0f ms)",
            key,
            image.shape[1],
            image.shape[0],
            prediction.timings_ms.get("forward", 0.0),
            prediction.timings_ms.get("load", 0.0),
        )
        prediction.meta["cached"] = False
        self.cache.put(cache_key, prediction)
        return prediction

    def predict_many(
        self,
        keys: list[str],
        image: np.ndarray,
        task: str | None = None,
        on_start: Callable[[int, str], None] | None = None,
        params_for: Callable[[str], dict[str, object]] | None = None,
    ) -> list[Outcome]:
        """Each model in order; a failing model becomes an error `Outcome`, the others still run.

        ``task`` None runs each model's own first task. ``on_start(index, key)`` is called before
        each model (for progress bars); ``params_for(key)`` gives that model's forward params.
        """
        outcomes = []
        for index, key in enumerate(keys):
            if on_start is not None:
                on_start(index, key)
            params = params_for(key) if params_for else {}
            try:
                outcomes.append(Outcome(key, prediction=self.predict(key, image, task=task, **params)))
            except PlaygroundError as error:
                outcomes.append(Outcome(key, error=str(error)))
        return outcomes
