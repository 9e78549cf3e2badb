"""The Explain toggle every tab shares: a gallery of the views of what is already on screen.

`add_explain` puts a checkbox and a gallery under a tab's results. Ticking it, or a new result
arriving while it is ticked, draws the views of the predictions the tab already holds in its
`gr.State` (`playground.explain.views`): no model runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr
import numpy as np

from playground.core.registry import get_spec
from playground.core.types import Prediction

Unpack = Callable[[Any], tuple[np.ndarray, list[Prediction]]]
"""A tab's state value -> (the image, the predictions it shows)."""


def gallery_items(image: np.ndarray, predictions: list[Prediction]) -> list[tuple[np.ndarray, str]]:
    """(view image, "Model · title: caption") for every view of every prediction, in order."""
    from playground.explain.views import explain_views  # supervision (slow to import) waits for the first click

    items = []
    for prediction in predictions:
        title = get_spec(prediction.model).title
        items += [(v.image, f"{title} · {v.title}: {v.caption}") for v in explain_views(prediction, image)]
    return items


def add_explain(
    tab: str, state: gr.State, unpack: Unpack, updated_by: gr.components.Component | None = None
) -> gr.Gallery:
    """The Explain checkbox and gallery of ``tab``, drawn from ``state`` through ``unpack``, again
    whenever ``updated_by`` (default: ``state``) changes. Gradio hashes a listened-to state, so a
    state holding a hashable value with arrays inside (a frozen dataclass) needs another trigger."""
    with gr.Group():
        toggle = gr.Checkbox(
            value=False,
            label="Explain: show how each model reached its answer (from the same run, no new forward pass)",
            elem_id=f"{tab}-explain",
        )
        gallery = gr.Gallery(
            label="Explain",
            visible=False,
            columns=2,
            height="auto",
            object_fit="contain",
            elem_id=f"{tab}-explain-views",
            elem_classes=["explain-gallery"],  # see style.CSS: large views, no scroll of its own
        )

    def show(value: Any, on: bool):
        if not on:
            return gr.Gallery(visible=False)
        if value is None:
            return gr.Gallery(value=None, visible=True, label="Explain: run a model first")
        image, predictions = unpack(value)
        items = gallery_items(image, [p for p in predictions if p is not None])
        return gr.Gallery(value=items or None, visible=True, label=f"Explain: {len(items)} views")

    toggle.change(show, inputs=[state, toggle], outputs=gallery, api_visibility="private")
    (updated_by or state).change(show, inputs=[state, toggle], outputs=gallery, api_visibility="private")
    return gallery


def outcome_predictions(value: Any) -> tuple[np.ndarray, list[Prediction]]:
    """For a state holding ``image`` and ``outcomes`` (the closed-set tabs, Compare)."""
    return value.image, [o.prediction for o in value.outcomes]
