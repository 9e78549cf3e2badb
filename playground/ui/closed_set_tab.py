"""A tab for a closed-set task (semantic, detection, instance, panoptic): layout and its events.

Run runs the selected models once per image (through `Playground`'s result cache); every other
control re-renders the stored outcomes, so sliders and class toggles never run a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np

from playground.errors import PlaygroundError
from playground.images import load_image
from playground.registry import TASKS, get_spec, models_for_task
from playground.service import Outcome, Playground
from playground.ui.common import MODEL_EVENTS, example_paths, run_progress
from playground.views import ViewOptions, found_labels, make_panel, table_rows

MASK_TASKS = ("instance", "panoptic")


@dataclass
class TabResult:
    """What a tab keeps per browser session between events: the image and each model's outcome."""

    image: np.ndarray
    outcomes: list[Outcome]
    notice: str = ""


def create_tab(task: str, playground: Playground) -> None:
    """Lay out ``task``'s tab inside the current `gr.Blocks` and wire its events."""
    specs = models_for_task(task)
    built = [(spec.title, spec.key) for spec in specs if spec.built]
    coming = [spec.title for spec in specs if not spec.built]
    with gr.Tab(TASKS[task], id=task):
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                image = gr.Image(
                    type="filepath", label="Image", sources=["upload", "clipboard"], height=320, elem_id=f"{task}-image"
                )
                models = gr.CheckboxGroup(
                    choices=built,
                    value=[key for _, key in built[:2]],
                    label="Models",
                    info=f"Coming: {', '.join(coming)}" if coming else None,
                    elem_id=f"{task}-models",
                )
                run = gr.Button("Run", variant="primary", elem_id=f"{task}-run")
                gr.Examples(example_paths(), inputs=[image], label="Examples", elem_id=f"{task}-examples")
            with gr.Column(scale=2):
                gallery = gr.Gallery(
                    label="Results (side by side)",
                    columns=2,
                    height="auto",
                    object_fit="contain",
                    preview=False,
                    elem_id=f"{task}-gallery",
                )
                notice = gr.Markdown(elem_id=f"{task}-notice")
                with gr.Row():
                    score = gr.Slider(0, 1, value=0.5, step=0.01, label="Score threshold", elem_id=f"{task}-score")
                    mask = gr.Slider(
                        0.05,
                        0.95,
                        value=0.5,
                        step=0.05,
                        label="Mask threshold",
                        visible=task in MASK_TASKS,
                        elem_id=f"{task}-mask",
                    )
                    opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Mask opacity", elem_id=f"{task}-opacity")
                classes = gr.CheckboxGroup(label="Classes shown", elem_id=f"{task}-classes")
                table = gr.Dataframe(
                    headers=["model", "label", "score", "box (x1, y1, x2, y2) or area"],
                    label="What each model found",
                    wrap=True,
                )
                with gr.Accordion("JSON (same as the CLI)", open=False):
                    result_json = gr.JSON(label="Results")
        state = gr.State()

    view_inputs = [score, mask, opacity, classes]
    view_outputs = [gallery, table, result_json, notice]

    def run_models(image_path, keys, score_value, mask_value, opacity_value, shown_classes, progress=gr.Progress()):
        if not image_path:
            raise gr.Error("Upload an image or pick an example first.")
        if not keys:
            raise gr.Error("Pick at least one model.")
        try:
            loaded = load_image(image_path)
        except PlaygroundError as error:
            raise gr.Error(str(error)) from None
        outcomes = playground.predict_many(list(keys), loaded.pixels, task=task, on_start=run_progress(progress, keys))
        result = TabResult(loaded.pixels, outcomes, loaded.notice)
        labels = found_labels(outcomes)
        options = view_options(score_value, mask_value, opacity_value, labels, labels)
        return (*render_result(result, options), gr.CheckboxGroup(choices=labels, value=labels), result)

    def rerender(result, score_value, mask_value, opacity_value, shown_classes):
        if result is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        options = view_options(score_value, mask_value, opacity_value, found_labels(result.outcomes), shown_classes)
        return render_result(result, options)

    run.click(
        run_models,
        inputs=[image, models, *view_inputs],
        outputs=[*view_outputs, classes, state],
        api_name=task,
        **MODEL_EVENTS,
    )
    for control in (score, mask, opacity):
        control.change(rerender, inputs=[state, *view_inputs], outputs=view_outputs, api_name=False)
    classes.input(rerender, inputs=[state, *view_inputs], outputs=view_outputs, api_name=False)


def view_options(
    score: float, mask: float, opacity: float, all_labels: list[str], shown: list[str] | None
) -> ViewOptions:
    hidden = frozenset(all_labels) - frozenset(shown or [])
    return ViewOptions(score_threshold=score, mask_threshold=mask, opacity=opacity, hidden_labels=hidden)


def render_result(result: TabResult, options: ViewOptions) -> tuple:
    """(gallery items, table rows, JSON, notice markdown) for the stored result."""
    panels = [make_panel(result.image, outcome, options) for outcome in result.outcomes]
    items = [(panel.overlay, panel.caption) for panel in panels]
    gallery = gr.Gallery(value=items, columns=max(1, min(len(items), 3)))
    errors = [f"**{get_spec(o.key).title}**: {o.error}" for o in result.outcomes if o.error]
    notice = "\n\n".join(filter(None, [result.notice, *errors]))
    return gallery, table_rows(panels), [panel.result for panel in panels], notice
