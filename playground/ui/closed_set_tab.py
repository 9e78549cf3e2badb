"""A tab for a closed-set task (semantic, detection, instance, panoptic): layout and its events.

Run runs the selected models once per image (through `Playground`'s result cache), and each model's
panel appears as soon as it is done (the Run event is a generator); every other control re-renders
the stored outcomes, so sliders and class toggles never run a model, and they re-draw the panels
already there while later models run. A new image (an example clicked) shows its results at once
when every selected model's are cached (`Playground.peek`: memory, or the examples' disk cache);
else nothing runs until Run. Each tab shows only the view controls that act on its models' outputs.
Each model opens at its own score threshold (`ModelSpec.default_score_threshold`); moving the
slider sets one threshold for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np

from playground.core.errors import PlaygroundError
from playground.core.images import LoadedImage, image_problem, load_image
from playground.core.registry import TASKS, models_for_task
from playground.render.views import ViewOptions, make_panel, present_labels, table_rows
from playground.runtime.service import Outcome, Playground
from playground.ui.common import (
    REFUSED,
    TAB_LABELS,
    download_files,
    download_panel,
    example_paths,
    image_input,
    model_choices,
    model_events,
    refused,
    run_progress,
    user_error,
)
from playground.ui.deep_links import TabControls, add_link_button
from playground.ui.explain_panel import add_explain, outcome_predictions
from playground.ui.panels import panel_slots, panel_updates
from playground.ui.score_panel import add_score_panel
from playground.ui.tables import column_widths

VIEW_CONTROLS = {
    "semantic": ("opacity",),  # a class map: no score, no soft masks
    "detection": ("score",),  # boxes only
    "instance": ("score", "mask", "opacity"),
    "panoptic": ("score", "opacity"),  # segments come binarised: no soft masks to re-threshold
}
"""The view controls each task's tab shows: only those that act on its models' outputs."""
HIDDEN_SEPARATOR = ";"
"""Between the unticked class names kept in the hidden box (class names may hold commas)."""
TABLE_HEADERS = ["model", "label", "score", "box (x1, y1, x2, y2) or area"]
"""The columns of "What each model found" (`table_rows`)."""
STALE = "**Out of date:** these results are for the previous image. Press **Run** for this one."


@dataclass
class TabResult:
    """What a tab keeps per browser session between events: the image and each model's outcome.

    ``source`` is the image path the models ran on: another path in the image box makes it stale.
    The Run generator and the view controls' events share this object (a `gr.State` value is
    passed by reference), so a panel that arrives after a slider moved is drawn at its value.
    """

    image: np.ndarray
    outcomes: list[Outcome]
    source: str
    notice: str = ""
    view: tuple = ()
    """The view controls' values the panels are drawn at: score, mask, opacity, hidden, own."""


def create_tab(task: str, playground: Playground) -> TabControls:
    """Lay out ``task``'s tab inside the current `gr.Blocks`, wire its events, return its controls."""
    specs = models_for_task(task)
    shown = VIEW_CONTROLS[task]
    with gr.Tab(TAB_LABELS[task], id=task):
        gr.Markdown(f"**{TASKS[task]}**: pick an image and models, then press Run.")
        with gr.Row():
            image = image_input(task, scale=1)
            with gr.Column(scale=1):
                models = gr.CheckboxGroup(
                    choices=model_choices(specs, playground),
                    value=[spec.key for spec in specs[:2]],
                    label="Models",
                    elem_id=f"{task}-models",
                )
                run = gr.Button("Run", variant="primary", elem_id=f"{task}-run")
                gr.Examples(example_paths(), inputs=[image], label="Examples", elem_id=f"{task}-examples")
        stale = gr.Markdown(elem_id=f"{task}-stale", elem_classes=["stale-mark"])
        slots = panel_slots(task, len(specs), height=440)
        summary = gr.Markdown(elem_id=f"{task}-summary")
        with gr.Row(elem_classes=["controls-row"]):
            own = gr.Checkbox(
                value=True,
                label="Each model's own score threshold (moving the slider sets one for all)",
                visible="score" in shown,
                elem_id=f"{task}-own-score",
            )
            score = gr.Slider(
                0, 1, value=0.5, step=0.01, label="Score threshold", visible="score" in shown, elem_id=f"{task}-score"
            )
            mask = gr.Slider(
                0.05,
                0.95,
                value=0.5,
                step=0.05,
                label="Mask threshold (soft masks: Mask R-CNN)",
                visible="mask" in shown,
                elem_id=f"{task}-mask",
            )
            opacity = gr.Slider(
                0, 1, value=0.5, step=0.05, label="Mask opacity", visible="opacity" in shown, elem_id=f"{task}-opacity"
            )
        with gr.Row(equal_height=False):
            classes = gr.CheckboxGroup(label="Classes shown", elem_id=f"{task}-classes", scale=8)
            all_classes = gr.Button("All", size="sm", scale=0, min_width=60, elem_id=f"{task}-classes-all")
            no_classes = gr.Button("None", size="sm", scale=0, min_width=60, elem_id=f"{task}-classes-none")
        hidden = gr.Textbox(visible="hidden", elem_id=f"{task}-hidden")
        table = gr.Dataframe(
            headers=TABLE_HEADERS,
            label="What each model found",
            wrap=True,
            column_widths=column_widths(TABLE_HEADERS, []),
            elem_id=f"{task}-table",
        )
        with gr.Accordion("JSON (same as the CLI)", open=False):
            result_json = gr.JSON(label="Results")
        prepare, downloads = download_panel(task)
        sliders = {"score": score, "mask": mask, "opacity": opacity}
        checkboxes = {"own": own} if "score" in shown else {}
        controls = TabControls(
            task, image, models, {name: sliders[name] for name in shown}, {"hide": hidden}, checkboxes=checkboxes
        )
        add_link_button(controls)
        state = gr.State()
        add_score_panel(task, image, state, score, own)  # scoring against ground truth (issue 15)
        add_explain(task, state, outcome_predictions)  # Explain views (issue 12)

    view_inputs = [score, mask, opacity, hidden, own]
    view_outputs = [*slots.outputs, summary, table, result_json, classes]

    def render(result: TabResult, rest: str) -> tuple:
        """Every view output for ``result`` at its ``view``; the panel slots past its outcomes ``rest``
        ("hide" for a run, "skip" for a re-draw while a run may be adding panels)."""
        options = view_options(*result.view)
        outcomes = result.outcomes
        panels = [make_panel(result.image, outcome, options, legend=False) for outcome in outcomes]
        present = present_labels(outcomes, options.score_threshold)
        ticked = [name for name in present if name not in options.hidden_labels]
        notice = result.notice or ""
        rows = table_rows(panels)
        return (
            *panel_updates(panels, slots, rest),
            notice,
            gr.Dataframe(value=rows, headers=TABLE_HEADERS, column_widths=column_widths(TABLE_HEADERS, rows)),
            [panel.result for panel in panels],
            gr.CheckboxGroup(choices=present, value=ticked),
        )

    def checked_image(image_path, keys) -> LoadedImage:
        if not image_path:
            raise user_error("Upload an image or pick an example first.")
        if not keys:
            raise user_error("Pick at least one model.")
        try:
            return load_image(image_path)
        except PlaygroundError as error:
            raise user_error(str(error)) from None

    def run_models(
        image_path,
        keys,
        score_value,
        mask_value,
        opacity_value,
        hidden_text,
        own_value,
        previous=None,
        progress=gr.Progress(track_tqdm=True),
    ):
        """A generator: every output again each time one more model is done."""
        try:
            loaded = checked_image(image_path, keys)
        except gr.Error as error:  # a refused input: the results shown stay, and the line says why
            yield (*(gr.skip() for _ in view_outputs), gr.skip(), refused(error.message, previous is not None))
            return
        view = (score_value, mask_value, opacity_value, hidden_text, own_value)
        result = TabResult(loaded.pixels, [], image_path, loaded.notice, view)
        on_start = run_progress(progress, keys, playground)
        for outcome in playground.predict_each(list(keys), loaded.pixels, task=task, on_start=on_start):
            result.outcomes = [*result.outcomes, outcome]  # a new list: a slider event may be reading the old one
            yield (*render(result, "hide"), result, "")

    def restore_results(image_path, keys, *view_values, progress=gr.Progress(track_tqdm=True)):
        """A deep link's results: from the cache, or computed now with progress, each panel as it is done."""
        if not image_path or not keys:
            yield (*(gr.skip() for _ in view_outputs), gr.skip(), gr.skip())
            return
        yield from run_models(image_path, keys, *view_values, progress=progress)

    def rerender(result, *view_values):
        if result is None:
            return tuple(gr.skip() for _ in view_outputs)
        result.view = view_values  # what a panel still to come is drawn at
        return render(result, "skip")

    def score_moved(result, score_value, mask_value, opacity_value, hidden_text, own_value):
        """The slider moved: one threshold for every model from now on ("each model's own" unticked)."""
        return (False, *rerender(result, score_value, mask_value, opacity_value, hidden_text, False))

    def toggle(result, ticked, score_value, mask_value, opacity_value, hidden_text, own_value, which: str):
        """New hidden classes after the class boxes (``which`` "ticked"), All or None changed, and the re-render."""
        if result is None:
            return (gr.skip(), *(gr.skip() for _ in view_outputs))
        options = view_options(score_value, mask_value, opacity_value, hidden_text, own_value)
        old = options.hidden_labels
        present = frozenset(present_labels(result.outcomes, options.score_threshold))
        new = {"ticked": (old - present) | (present - set(ticked or [])), "all": old - present, "none": old | present}
        hidden_value = HIDDEN_SEPARATOR.join(sorted(new[which]))
        return (hidden_value, *rerender(result, score_value, mask_value, opacity_value, hidden_value, own_value))

    def mark_stale(image_path, result, shown):
        problem = image_problem(image_path) if image_path else ""
        if problem:
            return refused(problem, result is not None)
        if result is None:
            return "" if (shown or "").startswith(REFUSED) else gr.skip()
        return "" if image_path == result.source else STALE

    def show_cached(image_path, keys, *values):
        """A new image: every selected model's results at once when all are cached (in memory, or
        on disk for an example), else the line above the panels as before. Never runs a model."""
        *view, result, shown = values
        line = mark_stale(image_path, result, shown)
        loaded = readable_image(image_path) if keys else None
        outcomes = playground.peek_all(list(keys), loaded.pixels, task=task) if loaded else None
        if outcomes is None:
            return (*(gr.skip() for _ in view_outputs), gr.skip(), line)
        cached = TabResult(loaded.pixels, outcomes, image_path, loaded.notice, tuple(view))
        return (*render(cached, "hide"), cached, "")

    # The progress goes on the line above the panels, so the panels already done stay uncovered.
    events = {**model_events(playground), "show_progress_on": stale}
    run.click(
        run_models,
        inputs=[image, models, *view_inputs, state],
        outputs=[*view_outputs, state, stale],
        api_visibility="private",  # the public API is playground.ui.api's typed endpoint of the same name
        **events,
    )
    controls.restore = (restore_results, [image, models, *view_inputs], [*view_outputs, state, stale])
    controls.events = events
    image.change(
        show_cached,
        inputs=[image, models, *view_inputs, state, stale],
        outputs=[*view_outputs, state, stale],
        api_visibility="private",
        show_progress="hidden",
    )
    for control in (mask, opacity):
        control.change(rerender, inputs=[state, *view_inputs], outputs=view_outputs, api_visibility="private")
    own.input(rerender, inputs=[state, *view_inputs], outputs=view_outputs, api_visibility="private")
    score.input(score_moved, inputs=[state, *view_inputs], outputs=[own, *view_outputs], api_visibility="private")
    # Unticked in the browser at once too, so a Run pressed right after the slider moved sends it unticked.
    score.input(None, js="() => false", outputs=own, api_visibility="private", queue=False)
    for trigger, which in ((classes.input, "ticked"), (all_classes.click, "all"), (no_classes.click, "none")):
        trigger(
            lambda *values, which=which: toggle(*values, which=which),
            inputs=[state, classes, *view_inputs],
            outputs=[hidden, *view_outputs],
            api_visibility="private",
        )

    def prepare_downloads(result, *view_values):
        if result is None:
            raise user_error("Run the models first.")
        return download_files(result.image, result.outcomes, view_options(*view_values))

    prepare.click(prepare_downloads, inputs=[state, *view_inputs], outputs=downloads, api_visibility="private")
    return controls


def readable_image(image_path: str | None) -> LoadedImage | None:
    """The image at ``image_path``; None when there is none or it cannot be used (a line says why)."""
    if not image_path or image_problem(image_path):  # the header alone: an oversized image is never decoded
        return None
    try:
        return load_image(image_path)
    except PlaygroundError:
        return None


def view_options(score: float, mask: float, opacity: float, hidden_text: str | None, own: bool = False) -> ViewOptions:
    """The view the controls ask for; ``own``: each model at its own score threshold, not ``score``."""
    hidden = frozenset(name for name in (hidden_text or "").split(HIDDEN_SEPARATOR) if name)
    threshold = None if own else score
    return ViewOptions(score_threshold=threshold, mask_threshold=mask, opacity=opacity, hidden_labels=hidden)
