"""The Text tab: type class names; Grounded-SAM, SAM 3 and OWLv2 + SAM find and segment them side by side.

Grounded-SAM: Grounding DINO turns the text into boxes, SAM turns the boxes into masks; moving a
threshold re-applies Grounding DINO's post-processing to its cached raw outputs and decodes the
surviving boxes on SAM's cached image embedding. SAM 3 segments each phrase directly. OWLv2 + SAM
is Grounded-SAM with OWLv2 as the detector. Each model keeps its own threshold (Grounding DINO's box
threshold is the slider, 0.35 to start; OWLv2's 0.1, SAM 3's 0.3) until "each model's own" is
unticked: then the box threshold applies to all three. A model that fails (e.g. SAM 3 without hub
access) shows its error in its own panel; the others still render. SAM's and SAM 3's image
embeddings start computing as soon as the image arrives (`encode_ahead`), before the text is typed.
"""

from __future__ import annotations

import gradio as gr

from playground.core.errors import PlaygroundError
from playground.core.images import load_image
from playground.core.registry import get_spec
from playground.core.text_prompts import BOX_THRESHOLD, TEXT_THRESHOLD
from playground.render.views import ViewOptions, make_panel
from playground.runtime.service import Playground
from playground.ui.common import (
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
    weights_note,
)
from playground.ui.deep_links import TabControls, add_link_button
from playground.ui.encode_ahead import EncodeAhead, encoded_line, encoding_line
from playground.ui.explain_panel import add_explain
from playground.ui.panels import panel_html

TABLE_HEADERS = ["model", "phrase", "score", "box (x1, y1, x2, y2)", "mask area px"]
TEXT_MODELS = ("grounded-sam", "sam3", "owlv2-sam")
"""The models the tab runs on one prompt, side by side (the /text endpoint's default is the first)."""


def explained_predictions(shown: tuple) -> tuple:
    """(image, predictions) of the stored (image, outcomes, box threshold, own), for the Explain views."""
    pixels, outcomes = shown[:2]
    return pixels, [outcome.prediction for outcome in outcomes if outcome.prediction is not None]


def text_params(key: str, text: str, box_threshold: float | None, text_threshold: float) -> dict[str, object]:
    """The params ``key`` takes from the prompt and the thresholds: ``box_threshold`` None keeps the
    model's own (Grounding DINO's 0.35, OWLv2's 0.1); ``text_threshold`` is Grounding DINO's alone."""
    if key == "grounded-sam":
        box = BOX_THRESHOLD if box_threshold is None else box_threshold
        return {"text": text, "box_threshold": box, "text_threshold": text_threshold}
    if key == "owlv2-sam" and box_threshold is not None:
        return {"text": text, "box_threshold": box_threshold}
    return {"text": text}


def box_threshold_for(key: str, box_value: float, own: bool) -> float | None:
    """The tab's box threshold for ``key``: Grounded-SAM's always (the slider is its own threshold);
    the others' only once "each model's own" is unticked (None: the model's own)."""
    return float(box_value) if key == "grounded-sam" or not own else None


def create_text_tab(playground: Playground) -> TabControls:
    with gr.Tab(TAB_LABELS["text"], id="text"):
        titles = ", ".join(f"**{get_spec(key).title}**" for key in TEXT_MODELS)
        gr.Markdown(
            f"**Text to segment** with {titles} side by side: type what to find, "
            "e.g. `cat, dog` or `a red car; person`. The thresholds "
            "are Grounding DINO's; SAM 3 and OWLv2 keep their own unless you untick the box below."
        )
        gr.Markdown(weights_note(TEXT_MODELS, playground), elem_id="text-weights")
        with gr.Row():
            with gr.Column(scale=1):
                image = image_input("text")
                encoding = gr.Markdown(elem_id="text-encoding")
            with gr.Column(scale=1):
                text = gr.Textbox(label="What to find", placeholder="cat, dog", elem_id="text-prompt")
                models = gr.CheckboxGroup(
                    choices=model_choices([get_spec(key) for key in TEXT_MODELS], playground),
                    value=list(TEXT_MODELS),
                    label="Models",
                    elem_id="text-models",
                )
                with gr.Row():
                    box_threshold = gr.Slider(
                        0.05, 0.95, value=BOX_THRESHOLD, step=0.01, label="Box threshold", elem_id="text-box-threshold"
                    )
                    text_threshold = gr.Slider(
                        0.05,
                        0.95,
                        value=TEXT_THRESHOLD,
                        step=0.01,
                        label="Text threshold",
                        elem_id="text-text-threshold",
                    )
                own = gr.Checkbox(
                    value=True,
                    label="SAM 3 and OWLv2 at their own thresholds (0.3, 0.1); untick: the box threshold for all",
                    elem_id="text-own-score",
                )
                run = gr.Button("Find and segment", variant="primary", elem_id="text-run")
                gr.Examples(example_paths(), inputs=[image], label="Examples", elem_id="text-examples")
        panels, captions = [], []
        with gr.Row(equal_height=True):
            for i in range(len(TEXT_MODELS)):
                with gr.Column(min_width=240):
                    panels.append(
                        gr.Image(
                            show_label=False, interactive=False, format="png", height=420, elem_id=f"text-panel-{i}"
                        )
                    )
                    captions.append(gr.HTML(elem_id=f"text-caption-{i}", elem_classes=["panel-caption"]))
        status = gr.Markdown(elem_id="text-status")
        table = gr.Dataframe(headers=TABLE_HEADERS, label="What was found", wrap=True, elem_id="text-table")
        with gr.Accordion("JSON (same as the CLI)", open=False):
            result_json = gr.JSON()
        prepare, downloads = download_panel("text")
        shown_outcomes = gr.State()  # (image, outcomes, box threshold, own): downloads and Explain (issue 12)
        last_inputs = gr.State()  # what the shown results ran on: a threshold committed unchanged runs nothing
        controls = TabControls(
            "text",
            image,
            models,
            {"box_threshold": box_threshold, "text_threshold": text_threshold},
            {"text": text},
            checkboxes={"own": own},
        )
        add_link_button(controls)
        add_explain("text", shown_outcomes, explained_predictions, result_json)  # Explain views (issue 12)

    def run_text(image_path, chosen, prompt, box_value, text_value, own_value, progress=gr.Progress(track_tqdm=True)):
        if not image_path:
            raise user_error("Upload an image or pick an example first.")
        if not chosen:
            raise user_error("Tick at least one model.")
        if not (prompt or "").strip():
            raise user_error("Type what to find, e.g. 'cat, dog'.")
        try:
            loaded = load_image(image_path)
        except PlaygroundError as error:  # the results shown stay, and the status line says why
            status_at = 2 * len(TEXT_MODELS)
            kept = [gr.skip()] * len(outputs)
            kept[status_at] = refused(str(error), False)
            return tuple(kept)
        keys = [key for key in TEXT_MODELS if key in chosen]
        outcomes = playground.predict_many(
            keys,
            loaded.pixels,
            task="text",
            on_start=run_progress(progress, keys, playground),
            params_for=lambda key: text_params(
                key, prompt, box_threshold_for(key, box_value, own_value), float(text_value)
            ),
        )
        options = text_view(box_value, own_value)
        shown = [make_panel(loaded.pixels, outcome, options, legend=False) for outcome in outcomes]
        by_key = {panel.key: panel for panel in shown}
        unticked = "{}: not run (tick it under Models to run it)"
        images = [by_key[key].overlay if key in by_key else None for key in TEXT_MODELS]
        html = [
            panel_html(by_key[key]) if key in by_key else unticked.format(get_spec(key).title) for key in TEXT_MODELS
        ]
        rows = [
            [panel.key, i["label"], i["score"], ", ".join(f"{v:.0f}" for v in i["box"]), i.get("mask_area")]
            for panel in shown
            for i in panel.result.get("instances", [])
        ]
        notes = [loaded.notice]
        for outcome, panel in zip(outcomes, shown):
            prediction = outcome.prediction
            if prediction is not None:
                notes += [f"{panel.title}: {prediction.reuse}" if prediction.reuse else "", prediction.warning]
        return (
            *images,
            *html,
            "\n\n".join(filter(None, notes)),
            rows,
            [panel.result for panel in shown],
            (loaded.pixels, outcomes, float(box_value), bool(own_value)),
            run_inputs(image_path, chosen, prompt, box_value, text_value, own_value),
        )

    ahead = EncodeAhead(playground)

    def mark_arrival(image_path, chosen, request: gr.Request):
        """The image is the session's newest: its encoding for the ticked models is announced."""
        if not image_path:
            return ""
        ahead.arrived(request.session_hash, image_path)
        return encoding_line(ahead.keys_for(chosen or []))

    def encode_arrival(image_path, chosen, request: gr.Request):
        """The ticked models' SAM (and SAM 3) embeddings of the newest image, before the first prompt."""
        keys = ahead.keys_for(chosen or [])
        if not image_path or not keys:
            return gr.skip()
        try:
            loaded = load_image(image_path)
        except PlaygroundError:  # a Run says why
            return ""
        outcomes = ahead.encode(request.session_hash, image_path, loaded.pixels, keys)
        return gr.skip() if outcomes is None else encoded_line(outcomes)

    def rerun_if_changed(last, *values, progress=gr.Progress(track_tqdm=True)):
        """A threshold committed (Enter, focus leaving its box, the slider let go): run again only when
        something changed since the shown results, and only once there are results."""
        if last is None or last == run_inputs(*values):
            return tuple(gr.skip() for _ in outputs)
        return run_text(*values, progress=progress)

    def prepare_downloads(shown):
        if shown is None:
            raise user_error("Find something first.")
        pixels, outcomes, box_value, own_value = shown
        return download_files(pixels, outcomes, text_view(box_value, own_value))

    def restore_text(image_path, chosen, *values, progress=gr.Progress(track_tqdm=True)):
        """A deep link's panels: from the cache, or computed now with progress (nothing to show
        until the link names an image, models and a prompt)."""
        if not image_path or not chosen or not (values[0] or "").strip():
            return tuple(gr.skip() for _ in outputs)
        return run_text(image_path, chosen, *values, progress=progress)

    inputs = [image, models, text, box_threshold, text_threshold, own]
    outputs = [*panels, *captions, status, table, result_json, shown_outcomes, last_inputs]
    controls.restore = (restore_text, inputs, outputs)
    controls.events = model_events(playground)
    prepare.click(prepare_downloads, inputs=shown_outcomes, outputs=downloads, api_visibility="private")
    events = model_events(playground)
    image.change(mark_arrival, inputs=[image, models], outputs=encoding, api_visibility="private").then(
        encode_arrival, inputs=[image, models], outputs=encoding, api_visibility="private", **events
    )
    run.click(run_text, inputs=inputs, outputs=outputs, api_visibility="private", **events)
    text.submit(run_text, inputs=inputs, outputs=outputs, api_visibility="private", **events)
    for slider in (box_threshold, text_threshold):
        slider.release(
            rerun_if_changed, inputs=[last_inputs, *inputs], outputs=outputs, api_visibility="private", **events
        )
    own.input(run_text, inputs=inputs, outputs=outputs, api_visibility="private", **events)
    return controls


def run_inputs(image_path, chosen, prompt, box_value, text_value, own_value) -> tuple:
    """The inputs a run used, compared to tell whether a committed threshold changed anything."""
    return (
        image_path,
        tuple(chosen or ()),
        (prompt or "").strip(),
        round(float(box_value), 4),
        round(float(text_value), 4),
        bool(own_value),
    )


def text_view(box_value: float, own: bool) -> ViewOptions:
    """Each panel at the threshold its model ran with: Grounded-SAM at the box threshold, the others
    at their own (SAM 3's 0.3 filters its stored results here) until "own" is unticked."""
    if own:
        return ViewOptions(score_threshold=None, thresholds={"grounded-sam": float(box_value)})
    return ViewOptions(score_threshold=float(box_value))
