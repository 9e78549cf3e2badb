"""The Prompt tab: click points or two box corners on the image and SAM segments at once.

SAM encodes an image once (seconds on a CPU); each later click runs only its prompt encoder and
mask decoder on the cached embedding. The three candidate masks come with SAM's predicted IoU,
best shown first. "Segment everything" prompts a grid of points on the same embedding.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import gradio as gr
import numpy as np

from playground.core.errors import PlaygroundError
from playground.core.images import load_image
from playground.core.prompts import PromptHistory
from playground.core.registry import get_spec
from playground.core.types import Prediction
from playground.export import to_json
from playground.service import Playground
from playground.ui.common import MODEL_EVENTS, example_paths, image_input, on_gpu
from playground.ui.deep_links import TabControls, add_link_button
from playground.ui.explain_panel import add_explain
from playground.views import draw, draw_prompts

CLICK_MODES = {"foreground point": "foreground", "background point": "background", "box corner": "corner"}


@dataclass(frozen=True)
class PromptSession:
    """One browser session's prompt state: the image, its clicks, and SAM's latest answer."""

    image: np.ndarray
    history: PromptHistory = field(default_factory=PromptHistory)
    prediction: Prediction | None = None


def create_prompt_tab(playground: Playground) -> TabControls:
    title = get_spec("sam").title
    with gr.Tab("Prompt segmentation (points, box)", id="prompt"):
        gr.Markdown(
            f"**{title}**: upload or pick an image, then click on it. Points and a box (two corner clicks) "
            "can be combined; the image is encoded once and each click after that only runs the light decoder."
        )
        with gr.Row():
            with gr.Column(scale=1):
                image = image_input("prompt", height=260)
                gr.Examples(example_paths(), inputs=[image], label="Examples", elem_id="prompt-examples")
                click_mode = gr.Radio(
                    list(CLICK_MODES), value="foreground point", label="A click adds", elem_id="prompt-mode"
                )
                with gr.Row():
                    undo = gr.Button("Undo", size="sm", elem_id="prompt-undo")
                    clear = gr.Button("Clear", size="sm", elem_id="prompt-clear")
                candidate = gr.Radio(
                    choices=[], label="Candidate mask (SAM's predicted IoU)", type="index", elem_id="prompt-candidate"
                )
                opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Mask opacity", elem_id="prompt-opacity")
                with gr.Accordion("Segment everything", open=False):
                    per_side = gr.Slider(4, 64, value=16, step=1, label="points per side")
                    per_batch = gr.Slider(8, 256, value=64, step=8, label="points per batch")
                    iou_thresh = gr.Slider(0, 1, value=0.88, step=0.01, label="predicted IoU threshold")
                    stability = gr.Slider(0, 1, value=0.95, step=0.01, label="stability score threshold")
                    everything = gr.Button("Segment everything", elem_id="prompt-everything")
            with gr.Column(scale=2):
                canvas = gr.Image(
                    label="Click here to prompt", interactive=False, format="png", elem_id="prompt-canvas", height=560
                )
                status = gr.Markdown(elem_id="prompt-status")
                with gr.Accordion("JSON (same as the CLI)", open=False):
                    result_json = gr.JSON()
        session = gr.State()
        add_explain("prompt", session, lambda s: (s.image, [s.prediction]), canvas)  # Explain views (issue 12)
        controls = TabControls("prompt", image)
        add_link_button(controls)

    outputs = [canvas, candidate, status, result_json, session]

    def on_image(image_path):
        if not image_path:
            return None, gr.Radio(choices=[], value=None), "", None, None
        try:
            loaded = load_image(image_path)
        except PlaygroundError as error:
            raise gr.Error(str(error)) from None
        note = f"{loaded.notice} " if loaded.notice else ""
        return (
            loaded.pixels,
            gr.Radio(choices=[], value=None),
            note + "Click on the image.",
            None,
            PromptSession(loaded.pixels),
        )

    def on_click(state: PromptSession | None, mode: str, shown_opacity: float, evt: gr.SelectData):
        if state is None:
            raise gr.Error("Upload an image or pick an example first.")
        x, y = evt.index
        return run_prompts(replace(state, history=state.history.add(CLICK_MODES[mode], x, y)), shown_opacity)

    def on_undo(state: PromptSession | None, shown_opacity: float):
        if state is None:
            return tuple(gr.skip() for _ in outputs)
        return run_prompts(replace(state, history=state.history.undo()), shown_opacity)

    def on_clear(state: PromptSession | None, shown_opacity: float):
        if state is None:
            return tuple(gr.skip() for _ in outputs)
        return run_prompts(PromptSession(state.image), shown_opacity)

    @on_gpu
    def run_prompts(state: PromptSession, shown_opacity: float):
        if not state.history.ready:
            state = replace(state, prediction=None)
            waiting = "Click the second corner of the box." if state.history.pending_corner else "Click on the image."
            return draw_prompts(state.image, state.history), gr.Radio(choices=[], value=None), waiting, None, state
        try:
            prediction = playground.predict("sam", state.image, task="prompt", **state.history.params())
        except PlaygroundError as error:
            raise gr.Error(str(error)) from None
        return show(replace(state, prediction=prediction), 0, shown_opacity, new_candidates=True)

    @on_gpu
    def on_everything(state: PromptSession | None, side, batch, iou, stable, shown_opacity: float):
        if state is None:
            raise gr.Error("Upload an image or pick an example first.")
        settings = {
            "points_per_side": int(side),
            "points_per_batch": int(batch),
            "pred_iou_thresh": float(iou),
            "stability_score_thresh": float(stable),
        }
        try:
            prediction = playground.predict("sam", state.image, task="prompt", everything=True, **settings)
        except PlaygroundError as error:
            raise gr.Error(str(error)) from None
        return show(PromptSession(state.image, prediction=prediction), None, shown_opacity, new_candidates=True)

    def on_view(state: PromptSession | None, index: int | None, shown_opacity: float):
        if state is None or state.prediction is None:
            return tuple(gr.skip() for _ in outputs)
        return show(state, index, shown_opacity, new_candidates=False)

    image.change(on_image, inputs=image, outputs=outputs, api_visibility="private")
    canvas.select(
        on_click, inputs=[session, click_mode, opacity], outputs=outputs, api_visibility="private", **MODEL_EVENTS
    )
    undo.click(on_undo, inputs=[session, opacity], outputs=outputs, api_visibility="private", **MODEL_EVENTS)
    clear.click(on_clear, inputs=[session, opacity], outputs=outputs, api_visibility="private")
    everything.click(
        on_everything,
        inputs=[session, per_side, per_batch, iou_thresh, stability, opacity],
        outputs=outputs,
        api_visibility="private",
        **MODEL_EVENTS,
    )
    candidate.input(on_view, inputs=[session, candidate, opacity], outputs=outputs, api_visibility="private")
    opacity.change(on_view, inputs=[session, candidate, opacity], outputs=outputs, api_visibility="private")
    return controls


def show(state: PromptSession, index: int | None, opacity: float, new_candidates: bool) -> tuple:
    """The canvas with the chosen candidate (or every mask for "everything"), and its status line."""
    prediction = state.prediction
    everything = prediction.mode == "everything"
    shown = prediction if everything or index is None else prediction[[index]]
    canvas = draw_prompts(draw(state.image, shown, opacity=opacity, legend=False), state.history)
    choices = [f"mask {i + 1} · IoU {score:.3f}" for i, score in enumerate(prediction.scores)]
    radio = (
        gr.Radio(choices=[] if everything else choices, value=None if everything else choices[index or 0])
        if new_candidates
        else gr.skip()
    )
    timings = prediction.timings_ms
    status = (
        f"{prediction.reuse} · decoder {timings.get('forward', 0):.0f} ms · post {timings.get('postprocess', 0):.0f} ms"
    )
    if everything:
        status = f"{len(prediction)} masks · " + status
    if prediction.weights != "pretrained":
        status += f" · {prediction.weights} weights"
    return canvas, radio, status, to_json(shown), state
