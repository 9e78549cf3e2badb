"""The Compare tab: one image against any models across tasks, a summary table, and A-versus-B.

Models run in order with progress; one that fails shows its error in its own panel while the
others render. Results come from the shared cache, so re-running after a slider move or a
different A/B pair runs no model.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np

from playground.compare import SUMMARY_HEADERS, agreement, difference_overlay, summary_row
from playground.core.errors import PlaygroundError
from playground.core.images import load_image
from playground.core.registry import REGISTRY, get_spec
from playground.service import Outcome, Playground
from playground.ui.common import MODEL_EVENTS, example_paths, image_input, on_gpu, panel_updates, run_progress
from playground.ui.deep_links import TabControls, add_link_button
from playground.views import ViewOptions, make_panel, shown_prediction

PANELS_PER_ROW = 3
DEFAULT_MODELS = ("detr", "retinanet", "faster-rcnn", "mask-rcnn", "grounding-dino")


def comparable_keys() -> list[str]:
    """Built models that need no click prompt (SAM needs points, so it lives in its own tab) and take
    one image (the video models track clips, in the Video tab)."""
    return [spec.key for spec in REGISTRY.values() if spec.tasks != ("prompt",) and "video" not in spec.tasks]


def needs_text(key: str) -> bool:
    return "text" in get_spec(key).tasks


@dataclass
class CompareResult:
    image: np.ndarray
    outcomes: list[Outcome]


def create_compare_tab(playground: Playground) -> TabControls:
    keys = comparable_keys()
    with gr.Tab("Compare", id="compare"):
        with gr.Row():
            image = image_input("compare")
            with gr.Column():
                models = gr.CheckboxGroup(
                    choices=[(get_spec(key).title, key) for key in keys],
                    value=[key for key in DEFAULT_MODELS if key in keys],
                    label="Models (any task)",
                    elem_id="compare-models",
                )
                text = gr.Textbox(
                    label="Text prompt, for open-vocabulary models",
                    value="person, dog",
                    elem_id="compare-text",
                )
                score = gr.Slider(0, 1, value=0.5, step=0.01, label="Score threshold", elem_id="compare-score")
                run = gr.Button("Compare", variant="primary", elem_id="compare-run")
                gr.Examples(example_paths(), inputs=[image], label="Examples", elem_id="compare-examples")
        panels = []
        for start in range(0, len(keys), PANELS_PER_ROW):
            with gr.Row(equal_height=True):
                panels += [
                    gr.Image(visible=False, interactive=False, height=360, elem_id=f"compare-panel-{index}")
                    for index in range(start, min(start + PANELS_PER_ROW, len(keys)))
                ]
        summary = gr.Dataframe(headers=SUMMARY_HEADERS, label="Summary", wrap=True, elem_id="compare-summary")
        with gr.Accordion("What only A, only B, or both found", open=True):
            with gr.Row():
                model_a = gr.Dropdown(label="Model A", elem_id="compare-a")
                model_b = gr.Dropdown(label="Model B", elem_id="compare-b")
                diff_button = gr.Button("Show difference", elem_id="compare-diff-button")
            diff_image = gr.Image(label="red: only A · blue: only B · green: both", interactive=False, height=420)
            diff_counts = gr.Markdown(elem_id="compare-diff-counts")
        state = gr.State()
        controls = TabControls("compare", image, models, {"score": score}, {"text": text})
        add_link_button(controls)

    @on_gpu
    def run_compare(image_path, chosen, prompt, threshold, progress=gr.Progress(track_tqdm=True)):
        if not image_path:
            raise gr.Error("Upload an image or pick an example first.")
        if not chosen:
            raise gr.Error("Pick at least one model.")
        if any(needs_text(key) for key in chosen) and not (prompt or "").strip():
            raise gr.Error("Type what to find (e.g. 'person, dog') for the open-vocabulary models.")
        try:
            loaded = load_image(image_path)
        except PlaygroundError as error:
            raise gr.Error(str(error)) from None
        outcomes = playground.predict_many(
            list(chosen),
            loaded.pixels,
            on_start=run_progress(progress, chosen, playground),
            params_for=lambda key: {"text": prompt} if needs_text(key) else {},
        )
        result = CompareResult(loaded.pixels, outcomes)
        ran = [(get_spec(o.key).title, o.key) for o in outcomes if o.prediction is not None]
        first, second = (ran + [(None, None)] * 2)[:2]
        return (
            *render(result, threshold, len(panels)),
            gr.Dropdown(choices=ran, value=first[1]),
            gr.Dropdown(choices=ran, value=second[1]),
            result,
        )

    def rerender(result, threshold):
        if result is None:
            return tuple(gr.skip() for _ in range(len(panels) + 1))
        return render(result, threshold, len(panels))

    def show_difference(result, key_a, key_b, threshold):
        if result is None or not key_a or not key_b:
            raise gr.Error("Run a comparison first, then pick two models.")
        by_key = {o.key: o.prediction for o in result.outcomes if o.prediction is not None}
        options = ViewOptions(score_threshold=threshold)
        a, b = (shown_prediction(by_key[key], options) for key in (key_a, key_b))
        counts = agreement(a, b)
        text = (
            f"**Objects** (same label, box IoU ≥ 0.5): both **{counts.both}**, "
            f"only {get_spec(key_a).title} **{counts.only_a}**, only {get_spec(key_b).title} **{counts.only_b}**."
        )
        return difference_overlay(result.image, a, b), text

    run.click(
        run_compare,
        inputs=[image, models, text, score],
        outputs=[*panels, summary, model_a, model_b, state],
        api_visibility="private",
        **MODEL_EVENTS,
    )
    score.change(rerender, inputs=[state, score], outputs=[*panels, summary], api_visibility="private")
    diff_button.click(
        show_difference,
        inputs=[state, model_a, model_b, score],
        outputs=[diff_image, diff_counts],
        api_visibility="private",
    )
    return controls


def render(result: CompareResult, threshold: float, slots: int) -> tuple:
    """(each panel slot, summary rows) for the stored comparison at ``threshold``."""
    options = ViewOptions(score_threshold=threshold)
    panels = [make_panel(result.image, outcome, options) for outcome in result.outcomes]
    images = panel_updates(panels, slots)
    rows = []
    for outcome in result.outcomes:
        if outcome.prediction is None:
            rows.append([get_spec(outcome.key).title, "", "", 0, None, f"error: {outcome.error}", None, ""])
        else:
            rows.append(summary_row(shown_prediction(outcome.prediction, options)))
    return (*images, rows)
