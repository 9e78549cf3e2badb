"""The Text tab: type class names and Grounded-SAM finds and segments them.

Grounding DINO turns the text into boxes, SAM turns the boxes into masks. Moving a threshold
re-applies Grounding DINO's post-processing to its cached raw outputs and decodes the surviving
boxes on SAM's cached image embedding: neither heavy forward runs again.
"""

from __future__ import annotations

import gradio as gr

from playground.core.errors import PlaygroundError
from playground.core.images import load_image
from playground.core.registry import get_spec
from playground.core.text_prompts import BOX_THRESHOLD, TEXT_THRESHOLD
from playground.service import Outcome, Playground
from playground.ui.common import MODEL_EVENTS, example_paths, image_input, on_gpu
from playground.ui.deep_links import TabControls, add_link_button
from playground.ui.explain_panel import add_explain
from playground.views import ViewOptions, make_panel

TABLE_HEADERS = ["phrase", "score", "box (x1, y1, x2, y2)", "mask area px"]


def create_text_tab(playground: Playground) -> TabControls:
    with gr.Tab("Text to segment (open vocabulary)", id="text"):
        gr.Markdown(
            f"**{get_spec('grounded-sam').title}**: type what to find, e.g. `cat, dog` or `a red car; person`. "
            "Grounding DINO finds boxes for the phrases, SAM segments each box."
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
        panel = gr.Image(label="Grounded-SAM", interactive=False, format="png", height=520, elem_id="text-panel-0")
        status = gr.Markdown(elem_id="text-status")
        table = gr.Dataframe(headers=TABLE_HEADERS, label="What was found", wrap=True, elem_id="text-table")
        with gr.Accordion("JSON (same as the CLI)", open=False):
            result_json = gr.JSON()
        controls = TabControls(
            "text", image, None, {"box_threshold": box_threshold, "text_threshold": text_threshold}, {"text": text}
        )
        add_link_button(controls)
        explained = gr.State()  # (image, prediction) for the Explain views (issue 12)
        add_explain("text", explained, lambda value: (value[0], [value[1]]))

    @on_gpu
    def run_text(image_path, prompt, box_value, text_value, progress=gr.Progress(track_tqdm=True)):
        if not image_path:
            raise gr.Error("Upload an image or pick an example first.")
        if not (prompt or "").strip():
            raise gr.Error("Type what to find, e.g. 'cat, dog'.")
        try:
            loaded = load_image(image_path)
            progress(0, desc="running Grounding DINO, then SAM…")
            prediction = playground.predict(
                "grounded-sam",
                loaded.pixels,
                task="text",
                text=prompt,
                box_threshold=float(box_value),
                text_threshold=float(text_value),
            )
        except PlaygroundError as error:
            raise gr.Error(str(error)) from None
        shown = make_panel(
            loaded.pixels, Outcome(prediction.model, prediction=prediction), ViewOptions(score_threshold=0.0)
        )
        rows = [
            [i["label"], i["score"], ", ".join(f"{v:.0f}" for v in i["box"]), i.get("mask_area")]
            for i in shown.result["instances"]
        ]
        notes = [loaded.notice, prediction.warning, shown.caption]
        notes.append(f"SAM embedding: {prediction.reuse}")
        status_text = "\n\n".join(filter(None, notes))
        return (
            gr.Image(value=shown.overlay, label=shown.caption),
            status_text,
            rows,
            shown.result,
            (loaded.pixels, prediction),
        )

    inputs = [image, text, box_threshold, text_threshold]
    outputs = [panel, status, table, result_json, explained]
    run.click(run_text, inputs=inputs, outputs=outputs, api_visibility="private", **MODEL_EVENTS)
    text.submit(run_text, inputs=inputs, outputs=outputs, api_visibility="private", **MODEL_EVENTS)
    for slider in (box_threshold, text_threshold):
        slider.release(run_text, inputs=inputs, outputs=outputs, api_visibility="private", **MODEL_EVENTS)
    return controls
