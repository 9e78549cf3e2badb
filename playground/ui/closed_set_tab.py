"""A tab for a closed-set task (semantic, detection, instance, panoptic): layout and its events.

Run runs the selected models once per image (through `Playground`'s result cache); every other
control re-renders the stored outcomes, so sliders and class toggles never run a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np

from playground.core.errors import PlaygroundError
from playground.core.images import load_image
from playground.core.registry import TASKS, models_for_task
from playground.export import export_files
from playground.service import Outcome, Playground
from playground.ui.common import (
    MODEL_EVENTS,
    example_paths,
    image_input,
    new_output_path,
    on_gpu,
    panel_updates,
    run_progress,
)
from playground.ui.deep_links import TabControls, add_link_button
from playground.ui.explain_panel import add_explain, outcome_predictions
from playground.views import ViewOptions, found_labels, make_panel, shown_prediction, table_rows

MASK_TASKS = ("instance", "panoptic")


@dataclass
class TabResult:
    """What a tab keeps per browser session between events: the image and each model's outcome."""

    image: np.ndarray
    outcomes: list[Outcome]
    notice: str = ""


def create_tab(task: str, playground: Playground) -> TabControls:
    """Lay out ``task``'s tab inside the current `gr.Blocks`, wire its events, return its controls."""
    specs = models_for_task(task)
    built = [(spec.title, spec.key) for spec in specs]
    with gr.Tab(TASKS[task], id=task):
        with gr.Row():
            image = image_input(task, scale=1)
            with gr.Column(scale=1):
                models = gr.CheckboxGroup(
                    choices=built,
                    value=[key for _, key in built[:2]],
                    label="Models",
                    elem_id=f"{task}-models",
                )
                run = gr.Button("Run", variant="primary", elem_id=f"{task}-run")
                gr.Examples(example_paths(), inputs=[image], label="Examples", elem_id=f"{task}-examples")
        with gr.Row(equal_height=True):
            panels = [
                gr.Image(visible=False, interactive=False, format="png", height=440, elem_id=f"{task}-panel-{index}")
                for index in range(len(built))
            ]
        summary = gr.Markdown(elem_id=f"{task}-summary")
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
        with gr.Accordion("Download (overlays, masks, COCO results)", open=False, elem_id=f"{task}-download"):
            prepare = gr.Button("Prepare files for what is shown", size="sm", elem_id=f"{task}-prepare")
            downloads = gr.File(file_count="multiple", label="Files", elem_id=f"{task}-downloads")
        controls = TabControls(task, image, models, {"score": score, "mask": mask, "opacity": opacity})
        add_link_button(controls)
        state = gr.State()
        add_explain(task, state, outcome_predictions)  # Explain views (issue 12)

    view_inputs = [score, mask, opacity, classes]
    view_outputs = [*panels, summary, table, result_json]

    @on_gpu
    def run_models(
        image_path, keys, score_value, mask_value, opacity_value, shown_classes, progress=gr.Progress(track_tqdm=True)
    ):
        if not image_path:
            raise gr.Error("Upload an image or pick an example first.")
        if not keys:
            raise gr.Error("Pick at least one model.")
        try:
            loaded = load_image(image_path)
        except PlaygroundError as error:
            raise gr.Error(str(error)) from None
        outcomes = playground.predict_many(
            list(keys), loaded.pixels, task=task, on_start=run_progress(progress, keys, playground)
        )
        result = TabResult(loaded.pixels, outcomes, loaded.notice)
        labels = found_labels(outcomes)
        options = view_options(score_value, mask_value, opacity_value, labels, labels)
        rendered = render_result(result, options, len(panels))
        return (*rendered, gr.CheckboxGroup(choices=labels, value=labels), result)

    def rerender(result, score_value, mask_value, opacity_value, shown_classes):
        if result is None:
            return tuple(gr.skip() for _ in view_outputs)
        options = view_options(score_value, mask_value, opacity_value, found_labels(result.outcomes), shown_classes)
        return render_result(result, options, len(panels))

    run.click(
        run_models,
        inputs=[image, models, *view_inputs],
        outputs=[*view_outputs, classes, state],
        api_visibility="private",  # the public API is playground.ui.api's typed endpoint of the same name
        **MODEL_EVENTS,
    )
    for control in (score, mask, opacity):
        control.change(rerender, inputs=[state, *view_inputs], outputs=view_outputs, api_visibility="private")
    classes.input(rerender, inputs=[state, *view_inputs], outputs=view_outputs, api_visibility="private")

    def prepare_downloads(result, score_value, mask_value, opacity_value, shown_classes):
        if result is None:
            raise gr.Error("Run the models first.")
        labels = found_labels(result.outcomes)
        return download_files(result, view_options(score_value, mask_value, opacity_value, labels, shown_classes))

    prepare.click(
        prepare_downloads,
        inputs=[state, *view_inputs],
        outputs=downloads,
        api_visibility="private",
    )
    return controls


def download_files(result: TabResult, options: ViewOptions) -> list[str]:
    """Each successful panel's overlay PNG, COCO results JSON and masks, as shown now."""
    folder = new_output_path("files").parent
    paths: list[str] = []
    for outcome in result.outcomes:
        if outcome.prediction is not None:
            panel = make_panel(result.image, outcome, options)
            shown = shown_prediction(outcome.prediction, options)
            paths += [str(path) for path in export_files(shown, panel.overlay, folder)]
    return paths


def view_options(
    score: float, mask: float, opacity: float, all_labels: list[str], shown: list[str] | None
) -> ViewOptions:
    hidden = frozenset(all_labels) - frozenset(shown or [])
    return ViewOptions(score_threshold=score, mask_threshold=mask, opacity=opacity, hidden_labels=hidden)


def render_result(result: TabResult, options: ViewOptions, slots: int) -> tuple:
    """(each panel slot, summary markdown, table rows, JSON) for the stored result."""
    panels = [make_panel(result.image, outcome, options) for outcome in result.outcomes]
    images = panel_updates(panels, slots)
    summary = "\n".join(f"- {panel.caption}" for panel in panels)
    if result.notice:
        summary = f"{result.notice}\n\n{summary}"
    return (*images, summary, table_rows(panels), [panel.result for panel in panels])
