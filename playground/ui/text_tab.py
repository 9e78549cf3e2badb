"""The Text tab: type class names; Grounded-SAM, SAM 3 and OWLv2 + SAM find and segment them side by side.

Grounded-SAM: Grounding DINO turns the text into boxes, SAM turns the boxes into masks; moving a
threshold re-applies Grounding DINO's post-processing to its cached raw outputs and decodes the
surviving boxes on SAM's cached image embedding. SAM 3 segments each phrase directly. OWLv2 + SAM
is Grounded-SAM with OWLv2 as the detector (at its own box threshold, 0.1). A model that fails
(e.g. SAM 3 without hub access) shows its error in its own panel; the others still render.
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
    model_events,
    on_gpu,
    run_progress,
    user_error,
)
from playground.ui.deep_links import TabControls, add_link_button
from playground.ui.explain_panel import add_explain
from playground.ui.panels import panel_html

TABLE_HEADERS = ["model", "phrase", "score", "box (x1, y1, x2, y2)", "mask area px"]
TEXT_MODELS = ("grounded-sam", "sam3", "owlv2-sam")
"""The models the tab runs on one prompt, side by side (the /text endpoint's default is the first)."""


def explained_predictions(shown: tuple) -> tuple:
    """(image, predictions) of the stored (image, outcomes), for the Explain views."""
    pixels, outcomes = shown
    return pixels, [outcome.prediction for outcome in outcomes if outcome.prediction is not None]


def text_params(key: str, text: str, box_threshold: float, text_threshold: float) -> dict[str, object]:
    """The params ``key`` takes from the tab's prompt and its Grounding DINO thresholds."""
    if key == "grounded-sam":
        return {"text": text, "box_threshold": box_threshold, "text_threshold": text_threshold}
    return {"text": text}


def create_text_tab(playground: Playground) -> TabControls:
    with gr.Tab(TAB_LABELS["text"], id="text"):
        titles = ", ".join(f"**{get_spec(key).title}**" for key in TEXT_MODELS)
        gr.Markdown(
            f"**Text to segment** with {titles} side by side: type what to find, "
            "e.g. `cat, dog` or `a red car; person`. The thresholds "
            "are Grounding DINO's; SAM 3 and OWLv2 keep their own."
        )
        with gr.Row():
            image = image_input("text", scale=1)
            with gr.Column(scale=1):
                text = gr.Textbox(label="What to find", placeholder="cat, dog", elem_id="text-prompt")
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
        shown_outcomes = gr.State()  # (image, outcomes): for the downloads and the Explain views (issue 12)
        controls = TabControls(
            "text", image, None, {"box_threshold": box_threshold, "text_threshold": text_threshold}, {"text": text}
        )
        add_link_button(controls)
        add_explain("text", shown_outcomes, explained_predictions, result_json)  # Explain views (issue 12)

    @on_gpu
    def run_text(image_path, prompt, box_value, text_value, progress=gr.Progress(track_tqdm=True)):
        if not image_path:
            raise user_error("Upload an image or pick an example first.")
        if not (prompt or "").strip():
            raise user_error("Type what to find, e.g. 'cat, dog'.")
        try:
            loaded = load_image(image_path)
        except PlaygroundError as error:
            raise user_error(str(error)) from None
        keys = list(TEXT_MODELS)
        outcomes = playground.predict_many(
            keys,
            loaded.pixels,
            task="text",
            on_start=run_progress(progress, keys, playground),
            params_for=lambda key: text_params(key, prompt, float(box_value), float(text_value)),
        )
        options = ViewOptions(score_threshold=0.0)
        shown = [make_panel(loaded.pixels, outcome, options, legend=False) for outcome in outcomes]
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
            *[panel.overlay for panel in shown],
            *[panel_html(panel) for panel in shown],
            "\n\n".join(filter(None, notes)),
            rows,
            [panel.result for panel in shown],
            (loaded.pixels, outcomes),
        )

    def prepare_downloads(shown):
        if shown is None:
            raise user_error("Find something first.")
        pixels, outcomes = shown
        return download_files(pixels, outcomes, ViewOptions(score_threshold=0.0))

    inputs = [image, text, box_threshold, text_threshold]
    outputs = [*panels, *captions, status, table, result_json, shown_outcomes]
    prepare.click(prepare_downloads, inputs=shown_outcomes, outputs=downloads, api_visibility="private")
    events = model_events(playground)
    run.click(run_text, inputs=inputs, outputs=outputs, api_visibility="private", **events)
    text.submit(run_text, inputs=inputs, outputs=outputs, api_visibility="private", **events)
    for slider in (box_threshold, text_threshold):
        slider.release(run_text, inputs=inputs, outputs=outputs, api_visibility="private", **events)
    return controls
