"""The Compare tab: one image against any models across tasks, a summary table, and A-versus-B.

Models run in order with progress, and each model's panel appears as soon as that model is done
(the Run event is a generator); one that fails shows its error in its own panel while the others
render. The sliders re-draw the panels already there while later models run. Results come from
the shared cache, so re-running after a slider move or a different A/B pair runs no model, and a
new image (an example clicked) shows its results at once when every chosen model's are cached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import gradio as gr
import numpy as np

from playground.core.errors import PlaygroundError
from playground.core.images import image_problem, load_image
from playground.core.registry import REGISTRY, get_spec
from playground.render.compare import (
    BOTH,
    ONLY_A,
    ONLY_B,
    SUMMARY_HEADERS,
    agreement,
    difference_overlay,
    error_row,
    found_counts,
    summary_row,
)
from playground.render.views import ViewOptions, make_panel, shown_prediction
from playground.runtime.service import Outcome, Playground
from playground.ui.closed_set_tab import readable_image
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
from playground.ui.panels import PanelSlots, panel_slots, panel_updates
from playground.ui.score_panel import add_score_panel
from playground.ui.tables import column_widths

PANELS_PER_ROW = 3
DEFAULT_MODELS = ("detr", "retinanet", "faster-rcnn", "mask-rcnn", "grounding-dino")
DEFAULT_PROMPT = "person, dog"
"""What the open-vocabulary models look for until the user types something else."""
STALE = "**Out of date:** these results are for the previous image. Press **Compare** for this one."


def comparable_keys() -> list[str]:
    """Built models that need no click prompt (SAM needs points, so it lives in its own tab) and take
    one image (the video models track clips, in the Video tab), oldest first, so the list reads as a
    timeline."""
    return [
        spec.key
        for spec in sorted(REGISTRY.values(), key=lambda spec: spec.year)
        if spec.tasks != ("prompt",) and "video" not in spec.tasks
    ]


def needs_text(key: str) -> bool:
    return "text" in get_spec(key).tasks


@dataclass
class CompareResult:
    """One session's comparison; the Run generator and the slider events share this object (a
    `gr.State` value is passed by reference), so a panel that arrives after a slider moved is drawn
    at the slider's value."""

    image: np.ndarray
    outcomes: list[Outcome]
    source: str
    """The image path the models ran on: another path in the image box makes the result stale."""
    threshold: float | None = None
    """The score threshold the panels are drawn at (None: each model's own)."""


def compare_outcomes(
    playground: Playground,
    keys: list[str],
    pixels: np.ndarray,
    prompt: str,
    on_start: Callable[[int, str], None] | None = None,
) -> Iterator[Outcome]:
    """Each model's outcome on ``pixels`` (H, W, 3 uint8) as soon as it is done, the text models
    given ``prompt``: what the Compare tab streams (and the bench times)."""
    return playground.predict_each(keys, pixels, on_start=on_start, params_for=prompt_params(prompt))


def prompt_params(prompt: str) -> Callable[[str], dict[str, object]]:
    """Each model's params in Compare: ``prompt`` as the text models' ``text``, nothing for the others."""

    def params_for(key: str) -> dict[str, object]:
        return {"text": prompt} if needs_text(key) else {}

    return params_for


def create_compare_tab(playground: Playground) -> TabControls:
    keys = comparable_keys()
    with gr.Tab(TAB_LABELS["compare"], id="compare"):
        gr.Markdown("**Compare** any models across tasks on one image, then what only A, only B or both found.")
        with gr.Row():
            image = image_input("compare")
            with gr.Column():
                models = gr.CheckboxGroup(
                    choices=model_choices([get_spec(key) for key in keys], playground),
                    value=[key for key in DEFAULT_MODELS if key in keys],
                    label="Models (any task)",
                    elem_id="compare-models",
                )
                text = gr.Textbox(
                    label="Text prompt, for open-vocabulary models",
                    value=DEFAULT_PROMPT,
                    elem_id="compare-text",
                )
                own = gr.Checkbox(
                    value=True,
                    label="Each model's own score threshold (moving the slider sets one for all)",
                    elem_id="compare-own-score",
                )
                score = gr.Slider(0, 1, value=0.5, step=0.01, label="Score threshold", elem_id="compare-score")
                run = gr.Button("Compare", variant="primary", elem_id="compare-run")
                gr.Examples(example_paths(), inputs=[image], label="Examples", elem_id="compare-examples")
        stale = gr.Markdown(elem_id="compare-stale", elem_classes=["stale-mark"])
        slots = panel_slots("compare", len(keys), height=360, per_row=PANELS_PER_ROW)
        summary = gr.Dataframe(
            headers=SUMMARY_HEADERS,
            label="Summary",
            wrap=True,
            column_widths=column_widths(SUMMARY_HEADERS, []),
            elem_id="compare-summary",
        )
        with gr.Accordion("What only A, only B, or both found", open=True):
            with gr.Row(elem_classes=["controls-row"]):
                model_a = gr.Dropdown(label="Model A", elem_id="compare-a")
                model_b = gr.Dropdown(label="Model B", elem_id="compare-b")
                diff_button = gr.Button("Show difference", elem_id="compare-diff-button")
            pair = gr.Textbox(visible="hidden", elem_id="compare-pair")  # "A,B" for the link
            diff_image = gr.Image(show_label=False, interactive=False, height=420, elem_id="compare-diff")
            diff_counts = gr.HTML(elem_id="compare-diff-counts", elem_classes=["panel-caption"])
        prepare, downloads = download_panel("compare")
        state = gr.State()
        add_score_panel("compare", image, state, score, own)  # scoring against ground truth (issue 15)
        add_explain("compare", state, outcome_predictions)  # Explain views (issue 12)
        controls = TabControls(
            "compare", image, models, {"score": score}, {"text": text, "ab": pair}, checkboxes={"own": own}
        )
        add_link_button(controls)

    def checked_pixels(image_path, chosen, prompt) -> np.ndarray:
        if not image_path:
            raise user_error("Upload an image or pick an example first.")
        if not chosen:
            raise user_error("Pick at least one model.")
        if any(needs_text(key) for key in chosen) and not (prompt or "").strip():
            raise user_error("Type what to find (e.g. 'person, dog') for the open-vocabulary models.")
        try:
            return load_image(image_path).pixels
        except PlaygroundError as error:
            raise user_error(str(error)) from None

    def ab_choices(result: CompareResult) -> tuple[list[tuple[str, str]], str | None, str | None]:
        """The A and B choices (models that found something first) and the first two of them."""
        options = ViewOptions(score_threshold=result.threshold)
        ran = [o for o in result.outcomes if o.prediction is not None]
        ran.sort(key=lambda o: -int(found_anything(o, options)))  # stable: run order otherwise
        choices = [(get_spec(o.key).title, o.key) for o in ran]
        first, second = ([key for _, key in choices] + [None, None])[:2]
        return choices, first, second

    def shown_outputs(result: CompareResult) -> tuple:
        """Panels (the slots past the models done hidden), summary, the A and B choices, the state."""
        choices, first, second = ab_choices(result)
        return (
            *render(result, slots, rest="hide"),
            gr.Dropdown(choices=choices, value=first),
            gr.Dropdown(choices=choices, value=second),
            result,
            "",
        )

    def run_compare(
        image_path, chosen, prompt, score_value, own_value, previous=None, progress=gr.Progress(track_tqdm=True)
    ):
        """A generator: the outputs again each time one more model is done."""
        try:
            pixels = checked_pixels(image_path, chosen, prompt)
        except gr.Error as error:  # a refused input: the results shown stay, and the line says why
            kept = tuple(gr.skip() for _ in range(len(slots.outputs) + 4))
            yield (*kept, refused(error.message, previous is not None))
            return
        result = CompareResult(pixels, [], image_path, chosen_threshold(score_value, own_value))
        on_start = run_progress(progress, chosen, playground)
        for outcome in compare_outcomes(playground, list(chosen), pixels, prompt, on_start):
            result.outcomes = [*result.outcomes, outcome]  # a new list: a slider event may be reading the old one
            yield shown_outputs(result)

    def restore_results(image_path, chosen, prompt, score_value, own_value, ab, progress=gr.Progress(track_tqdm=True)):
        """A deep link's results (from the cache, or computed now with progress, each panel as it is
        done), then its A/B pair."""
        skipped = tuple(gr.skip() for _ in range(len(slots.outputs) + 7))
        if not image_path or not chosen:
            yield skipped
            return
        result = None
        for shown in run_compare(image_path, chosen, prompt, score_value, own_value, progress=progress):
            result = shown[-2]
            yield (*shown, gr.skip(), gr.skip())
        if not isinstance(result, CompareResult):  # a refused input: its line, nothing else
            return
        kept = tuple(gr.skip() for _ in range(len(slots.outputs) + 1))
        a, b, *difference = kept_pair(result, ab, score_value, own_value)
        yield (*kept, a, b, gr.skip(), gr.skip(), *difference)

    def kept_pair(result: CompareResult, ab: str | None, score_value, own_value) -> tuple:
        """The A and B dropdowns, then the A/B view: the pair ``ab`` ("A,B") when both ran, else the
        first two."""
        choices, first, second = ab_choices(result)
        ran = [key for _, key in choices]
        linked = [key for key in (ab or "").split(",") if key in ran]
        a, b = linked if len(linked) == 2 and linked[0] != linked[1] else (first, second)
        pair = (gr.Dropdown(choices=choices, value=a), gr.Dropdown(choices=choices, value=b))
        return (*pair, *refresh_difference(result, a, b, score_value, own_value))

    def rerender(result, score_value, own_value):
        if result is None:
            return tuple(gr.skip() for _ in range(len(slots.outputs) + 1))
        result.threshold = chosen_threshold(score_value, own_value)  # what a panel still to come is drawn at
        return render(result, slots, rest="skip")

    def score_moved(result, score_value, own_value):
        """The slider moved: one threshold for every model from now on ("each model's own" unticked)."""
        return (False, *rerender(result, score_value, False))

    def show_difference(result, key_a, key_b, score_value, own_value):
        if result is None or not key_a or not key_b:
            raise user_error("Run a comparison first, then pick two models.")
        by_key = {o.key: o.prediction for o in result.outcomes if o.prediction is not None}
        options = ViewOptions(score_threshold=chosen_threshold(score_value, own_value))
        a, b = (shown_prediction(by_key[key], options) for key in (key_a, key_b))
        counts = agreement(a, b)
        title_a, title_b = get_spec(key_a).title, get_spec(key_b).title
        legend = "".join(
            f'<span class="chip"><i style="background:{colour}"></i>{text}</span>'
            for colour, text in ((ONLY_A, f"only {title_a}"), (ONLY_B, f"only {title_b}"), (BOTH, "both"))
        )
        text = (
            f'<div class="panel-legend">{legend}</div><div><b>Objects</b> (same label, box IoU ≥ 0.5): '
            f"both <b>{counts.both}</b>, only {title_a} <b>{counts.only_a}</b>, only {title_b} <b>{counts.only_b}</b>."
            "</div>"
        )
        return difference_overlay(result.image, a, b), text

    def mark_stale(image_path, result, shown):
        problem = image_problem(image_path) if image_path else ""
        if problem:
            return refused(problem, result is not None)
        if result is None:
            return "" if (shown or "").startswith(REFUSED) else gr.skip()
        return "" if image_path == result.source else STALE

    def show_cached(image_path, chosen, prompt, score_value, own_value, ab, result, shown):
        """A new image: every chosen model's results at once when all are cached (in memory, or on
        disk for an example), with the A/B pair kept where it can be; else the line above the panels
        as before. Never runs a model."""
        line = mark_stale(image_path, result, shown)
        loaded = readable_image(image_path) if chosen else None
        outcomes = None
        if loaded:
            outcomes = playground.peek_all(list(chosen), loaded.pixels, params_for=prompt_params(prompt))
        if outcomes is None:
            return (*(gr.skip() for _ in run_outputs[:-1]), line, gr.skip(), gr.skip())
        cached = CompareResult(loaded.pixels, outcomes, image_path, chosen_threshold(score_value, own_value))
        a, b, *difference = kept_pair(cached, ab, score_value, own_value)
        return (*render(cached, slots, rest="hide"), a, b, cached, "", *difference)

    def prepare_downloads(result, score_value, own_value):
        if result is None:
            raise user_error("Run a comparison first.")
        threshold = chosen_threshold(score_value, own_value)
        return download_files(result.image, result.outcomes, ViewOptions(score_threshold=threshold))

    run_outputs = [*slots.outputs, summary, model_a, model_b, state, stale]

    def refresh_difference(result, key_a, key_b, score_value, own_value):
        """The A/B view, again whenever A, B or the results change (no second click on the button)."""
        if result is None or not key_a or not key_b:
            return None, ""
        ran = {o.key for o in result.outcomes if o.prediction is not None}
        if key_a not in ran or key_b not in ran:
            return None, ""
        return show_difference(result, key_a, key_b, score_value, own_value)

    difference_inputs = [state, model_a, model_b, score, own]
    # The progress goes on the line above the panels, so the panels already done stay uncovered.
    events = {**model_events(playground), "show_progress_on": stale}
    run.click(
        run_compare,
        inputs=[image, models, text, score, own, state],
        outputs=run_outputs,
        api_visibility="private",
        **events,
    ).then(refresh_difference, inputs=difference_inputs, outputs=[diff_image, diff_counts], api_visibility="private")
    for pick in (model_a, model_b):
        pick.input(refresh_difference, difference_inputs, [diff_image, diff_counts], api_visibility="private")
    controls.restore = (
        restore_results,
        [image, models, text, score, own, pair],
        [*run_outputs, diff_image, diff_counts],
    )
    controls.events = events
    for pick in (model_a, model_b):
        pick.change(
            lambda a, b: f"{a},{b}" if a and b else "", [model_a, model_b], pair, api_visibility="private", queue=False
        )
    image.change(
        show_cached,
        inputs=[image, models, text, score, own, pair, state, stale],
        outputs=[*run_outputs, diff_image, diff_counts],
        api_visibility="private",
        show_progress="hidden",
    )
    shown = [*slots.outputs, summary]
    score.input(score_moved, inputs=[state, score, own], outputs=[own, *shown], api_visibility="private")
    # Unticked in the browser at once too, so a Run pressed right after the slider moved sends it unticked.
    score.input(None, js="() => false", outputs=own, api_visibility="private", queue=False)
    own.input(rerender, inputs=[state, score, own], outputs=shown, api_visibility="private")
    diff_button.click(
        show_difference,
        inputs=[state, model_a, model_b, score, own],
        outputs=[diff_image, diff_counts],
        api_visibility="private",
    )
    prepare.click(prepare_downloads, inputs=[state, score, own], outputs=downloads, api_visibility="private")
    return controls


def chosen_threshold(score: float, own: bool) -> float | None:
    """The threshold the controls ask for: None (each model's own) while "own" is ticked, else ``score``."""
    return None if own else float(score)


def found_anything(outcome: Outcome, options: ViewOptions) -> bool:
    """True when the outcome shows an instance or a non-background class at ``options``."""
    return sum(found_counts(shown_prediction(outcome.prediction, options)).values()) > 0


def render(result: CompareResult, slots: PanelSlots, rest: str) -> tuple:
    """(each panel slot's updates, summary rows) for the stored comparison at its ``threshold``; the
    slots past its outcomes ``rest``: "hide" (a run) or "skip" (a re-draw while a run may be adding)."""
    options = ViewOptions(score_threshold=result.threshold)
    outcomes = result.outcomes
    panels = [make_panel(result.image, outcome, options, legend=False) for outcome in outcomes]
    rows = []
    for outcome in outcomes:
        if outcome.prediction is None:
            rows.append(error_row(get_spec(outcome.key).title))
        else:
            rows.append(summary_row(shown_prediction(outcome.prediction, options)))
    table = gr.Dataframe(value=rows, headers=SUMMARY_HEADERS, column_widths=column_widths(SUMMARY_HEADERS, rows))
    return (*panel_updates(panels, slots, rest), table)
