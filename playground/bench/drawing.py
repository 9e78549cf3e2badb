"""The drawing figures: an overlay of 100 masks, and a panel re-drawn at new thresholds."""

from __future__ import annotations

import numpy as np

from playground.bench.fixtures import blob_prediction, noise_image
from playground.bench.timing import median_ms
from playground.core.types import Prediction

MIN_CHEAP_RUNS = 5
"""Timed runs of the cheap figures (overlay, re-filter), whatever ``--repeat`` says."""


def draw(image: np.ndarray, prediction: Prediction) -> np.ndarray:
    """The overlay the UI shows first: default thresholds, every class."""
    from playground.render.overlay import render
    from playground.render.views import ViewOptions, shown_prediction

    return render(image, shown_prediction(prediction, ViewOptions()))


def bench_overlay(repeat: int) -> float:
    """Median ms of `render` for 100 blob masks, boxes and tags at 1024x1024 (legend included)."""
    from playground.render.overlay import render

    image, prediction = noise_image(), blob_prediction()
    return median_ms(lambda: render(image, prediction), max(repeat, MIN_CHEAP_RUNS))


def bench_refilter(repeat: int) -> float:
    """Median ms to re-draw one stored 100-instance panel at a new score and mask threshold."""
    from playground.render.views import ViewOptions, make_panel
    from playground.runtime.service import Outcome

    image, outcome = noise_image(), Outcome("mask-rcnn", blob_prediction())
    thresholds = iter(np.resize([0.3, 0.6], 2 * (max(repeat, MIN_CHEAP_RUNS) + 1)).tolist())

    def refilter() -> None:
        value = next(thresholds)
        make_panel(image, outcome, ViewOptions(score_threshold=value, mask_threshold=value))

    return median_ms(refilter, max(repeat, MIN_CHEAP_RUNS))
