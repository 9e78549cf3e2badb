"""The Prompt tab: click points or two box corners on the image; SAM and SAM 2.1 segment side by side.

Each model encodes an image once (seconds on a CPU) into its own cached embedding, starting as soon
as the image arrives (`encode_ahead`); each click runs only the prompt encoders and mask decoders,
and feeds the previous prompt's best low-resolution mask back as a dense prompt, as SAM's predictor
does (`PromptHistory.params`). A mask brushed on the image can be the prompt too; Undo steps back
through clicks and brush alike. The three candidate masks come with each model's predicted IoU,
best shown first. "Segment everything" (SAM only) prompts a grid of points on SAM's embedding. A
model that fails shows its error in its own panel; the other still renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import gradio as gr
import numpy as np
from PIL import Image

from playground.core.errors import PlaygroundError
from playground.core.images import load_image
from playground.core.prompts import BrushedMask, EarlierPrompt, PromptHistory
from playground.core.registry import get_spec
from playground.core.types import Prediction
from playground.render.export import to_json
from playground.render.views import draw, draw_prompts
from playground.runtime.service import Outcome, Playground
from playground.ui.common import (
    TAB_LABELS,
    example_paths,
    image_input,
    model_events,
    refused,
    user_error,
    weights_note,
)
from playground.ui.deep_links import TabControls, add_link_button
from playground.ui.encode_ahead import EncodeAhead, encoded_line, encoding_line
from playground.ui.explain_panel import add_explain

CLICK_MODES = {"foreground point": "foreground", "background point": "background", "box corner": "corner"}
CORNER_HINT = "Box: now click the opposite corner."
CANDIDATE_LABEL = "Candidate mask (predicted IoU)"
EVERYTHING_LABEL = "Candidate mask: none after 'Segment everything' (every mask found is shown); click to prompt again"
PROMPT_MODELS = ("sam", "sam2")
"""The models that answer every click, side by side; the first also draws on the clickable canvas."""


@dataclass(frozen=True)
class PromptSession:
    """One browser session's prompt state: the image, its clicks, and each model's latest answer."""

    image: np.ndarray
    history: PromptHistory = field(default_factory=PromptHistory)
    outcomes: tuple[Outcome, ...] = ()
    source: str = ""
    """The image path the session is on (a link's restore and the image box's change agree on it)."""

    @property
    def prediction(self) -> Prediction | None:
        """The first answering model's prediction (SAM's, unless it failed), which sets the candidate
        choices."""
        return next((outcome.prediction for outcome in self.outcomes if outcome.prediction is not None), None)


def create_prompt_tab(playground: Playground) -> TabControls:
    titles = " and ".join(f"**{get_spec(key).title}**" for key in PROMPT_MODELS)
    with gr.Tab(TAB_LABELS["prompt"], id="prompt"):
        gr.Markdown(
            f"**Prompt segmentation** with {titles} side by side: upload or pick an image, then click on it. "
            "Points and a box (two corner "
            "clicks) can be combined; each model encodes the image once and each click after that only runs "
            "its light decoder."
        )
        gr.Markdown(weights_note(PROMPT_MODELS, playground), elem_id="prompt-weights")
        with gr.Row():
            with gr.Column(scale=1):
                image = image_input("prompt", height=260)
                encoding = gr.Markdown(elem_id="prompt-encoding")
                gr.Examples(example_paths(), inputs=[image], label="Examples", elem_id="prompt-examples")
                click_mode = gr.Radio(
                    list(CLICK_MODES), value="foreground point", label="A click adds", elem_id="prompt-mode"
                )
                with gr.Row():
                    undo = gr.Button("Undo", size="sm", elem_id="prompt-undo")
                    clear = gr.Button("Clear", size="sm", elem_id="prompt-clear")
                candidate = gr.Radio(choices=[], label=CANDIDATE_LABEL, type="index", elem_id="prompt-candidate")
                opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Mask opacity", elem_id="prompt-opacity")
                with gr.Accordion("Brush a mask", open=False):
                    brush = gr.ImageEditor(
                        type="numpy",
                        sources=(),
                        layers=False,
                        transforms=(),
                        brush=gr.Brush(colors=["#ff3030"], color_mode="fixed"),
                        label="Brush over the object; its mask is the prompt",
                        elem_id="prompt-brush",
                    )
                    brushed = gr.Button("Segment the brushed mask", elem_id="prompt-brush-run")
                with gr.Accordion("Segment everything (SAM)", open=False):
                    per_side = gr.Slider(4, 64, value=16, step=1, label="points per side")
                    per_batch = gr.Slider(8, 256, value=64, step=8, label="points per batch")
                    iou_thresh = gr.Slider(0, 1, value=0.88, step=0.01, label="predicted IoU threshold")
                    stability = gr.Slider(0, 1, value=0.95, step=0.01, label="stability score threshold")
                    everything = gr.Button("Segment everything", elem_id="prompt-everything")
            with gr.Column(scale=2):
                with gr.Row(equal_height=True):
                    canvas = gr.Image(
                        label=f"{get_spec(PROMPT_MODELS[0]).title}: click either picture to prompt",
                        interactive=False,
                        format="png",
                        elem_id="prompt-canvas",
                        height=480,
                    )
                    others = [
                        gr.Image(
                            label=get_spec(key).title,
                            interactive=False,
                            format="png",
                            height=480,
                            elem_id=f"prompt-panel-{key}",
                        )
                        for key in PROMPT_MODELS[1:]
                    ]
                gr.HTML(elem_id="prompt-margin-hint", elem_classes=["stale-mark"])  # see style.HEAD
                status = gr.Markdown(elem_id="prompt-status")
                with gr.Accordion("JSON (same as the CLI)", open=False):
                    result_json = gr.JSON()
        session = gr.State()
        add_explain("prompt", session, explained_predictions, canvas)  # Explain views (issue 12)
        clicks = gr.Textbox(visible="hidden", elem_id="prompt-clicks")  # the clicks and box, for the link
        controls = TabControls("prompt", image, texts={"clicks": clicks})
        add_link_button(controls)

    outputs = [canvas, *others, candidate, status, result_json, session]
    with_clicks = [*outputs, clicks]  # the results and the link box's clicks: a link's restore, a new image
    blank_others = [None] * len(others)

    def on_image(image_path, state: PromptSession | None):
        """A new image: a fresh session, and no clicks in the link box (in the same update as the
        session, so a link's restored clicks, arriving meanwhile, are never cleared by a later step)."""
        if state is not None and image_path and state.source == image_path:  # a link restored it already
            return tuple(gr.skip() for _ in with_clicks)
        if not image_path:
            return None, *blank_others, gr.Radio(choices=[], value=None), "", None, None, ""
        try:
            loaded = load_image(image_path)
        except PlaygroundError as error:  # the picture and masks shown stay, and the status says why
            kept = [gr.skip()] * (len(others) + 2)
            shown = refused(str(error), state is not None and bool(state.outcomes))
            return *kept, shown, gr.skip(), gr.skip(), gr.skip()
        note = f"{loaded.notice} " if loaded.notice else ""
        return (
            loaded.pixels,
            *[loaded.pixels] * len(others),
            gr.Radio(choices=[], value=None),
            note + "Click on the image.",
            None,
            PromptSession(loaded.pixels, source=image_path),
            "",
        )

    ahead = EncodeAhead(playground)

    def mark_arrival(state: PromptSession | None, request: gr.Request):
        """The image is the session's newest: its encoding is announced, and it becomes the brush's canvas."""
        if state is None:
            return "", None
        ahead.arrived(request.session_hash, state.source)
        return encoding_line(ahead.keys_for(PROMPT_MODELS)), state.image

    def encode_arrival(state: PromptSession | None, request: gr.Request):
        """Every prompt model's embedding of the newest image, before its first click."""
        if state is None:
            return gr.skip()
        keys = ahead.keys_for(PROMPT_MODELS)
        outcomes = ahead.encode(request.session_hash, state.source, state.image, keys)
        return gr.skip() if outcomes is None else encoded_line(outcomes)

    def on_brush(state: PromptSession | None, painted: dict | None, shown_opacity: float):
        """The brushed strokes' mask (every painted pixel) as a new prompt: a new object, its clicks to come."""
        if state is None:
            raise user_error("Upload an image or pick an example first.")
        mask = brushed_mask(painted, state.image.shape[:2])
        if mask is None:
            raise user_error("Brush over the object first (open 'Brush a mask' and paint on the picture).")
        history = PromptHistory(brush=BrushedMask.from_mask(mask))
        return run_prompts(PromptSession(state.image, history=history, source=state.source), shown_opacity)

    def restore_clicks(image_path, text, progress=gr.Progress()):
        """A deep link's clicks and box on its image, answered by every model."""
        history = decode_clicks(text)
        if not image_path or not history.steps:
            return tuple(gr.skip() for _ in with_clicks)
        try:
            loaded = load_image(image_path)
        except PlaygroundError:
            return tuple(gr.skip() for _ in with_clicks)
        progress(0, desc="Segmenting the linked clicks")
        state = PromptSession(loaded.pixels, history=history, source=image_path)
        return *run_prompts(state, 0.5), encode_clicks(history)

    def on_click(state: PromptSession | None, mode: str, shown_opacity: float, evt: gr.SelectData):
        if state is None:
            raise user_error("Upload an image or pick an example first.")
        x, y = evt.index
        return run_prompts(replace(state, history=state.history.add(CLICK_MODES[mode], x, y)), shown_opacity)

    def on_undo(state: PromptSession | None, shown_opacity: float):
        if state is None:
            return tuple(gr.skip() for _ in outputs)
        return run_prompts(replace(state, history=state.history.undo()), shown_opacity)

    def on_clear(state: PromptSession | None, shown_opacity: float):
        if state is None:
            return tuple(gr.skip() for _ in outputs)
        return run_prompts(PromptSession(state.image, source=state.source), shown_opacity)

    def run_prompts(state: PromptSession, shown_opacity: float):
        if not state.history.ready:
            state = replace(state, outcomes=())
            waiting = CORNER_HINT if state.history.pending_corner else "Click on the image."
            drawn = draw_prompts(state.image, state.history)
            radio = gr.Radio(choices=[], value=None, label=CANDIDATE_LABEL)
            return drawn, *[drawn] * len(others), radio, waiting, None, state
        params = state.history.params()
        outcomes = playground.predict_many(list(PROMPT_MODELS), state.image, task="prompt", params_for=lambda _: params)
        return show(replace(state, outcomes=tuple(outcomes)), 0, shown_opacity, new_candidates=True)

    def on_everything(state: PromptSession | None, side, batch, iou, stable, shown_opacity: float):
        if state is None:
            raise user_error("Upload an image or pick an example first.")
        settings = {
            "points_per_side": int(side),
            "points_per_batch": int(batch),
            "pred_iou_thresh": float(iou),
            "stability_score_thresh": float(stable),
        }
        [answer] = playground.predict_many(
            [PROMPT_MODELS[0]], state.image, task="prompt", params_for=lambda _: {"everything": True, **settings}
        )
        first = get_spec(PROMPT_MODELS[0]).title
        skipped = [Outcome(key, error=f"'Segment everything' is {first}'s alone") for key in PROMPT_MODELS[1:]]
        fresh = PromptSession(
            state.image, outcomes=(answer, *skipped), source=state.source
        )  # the old clicks and hints go
        return show(fresh, None, shown_opacity, new_candidates=True, settings=settings)

    def on_view(state: PromptSession | None, index: int | None, shown_opacity: float):
        if state is None or state.prediction is None:
            return tuple(gr.skip() for _ in outputs)
        return show(state, index, shown_opacity, new_candidates=False)

    events = model_events(playground)
    controls.restore = (restore_clicks, [image, clicks], with_clicks)
    controls.events = events

    def linked(event) -> None:
        """After ``event`` the link box's clicks follow the session's."""
        event.then(
            lambda state: encode_clicks(state.history) if state else "", session, clicks, api_visibility="private"
        )

    arrival = image.change(on_image, inputs=[image, session], outputs=with_clicks, api_visibility="private")
    arrival.then(mark_arrival, inputs=session, outputs=[encoding, brush], api_visibility="private").then(
        encode_arrival, inputs=session, outputs=encoding, api_visibility="private", **events
    )
    linked(
        brushed.click(on_brush, inputs=[session, brush, opacity], outputs=outputs, api_visibility="private", **events)
    )
    for clickable in (canvas, *others):  # every model's panel takes clicks, SAM 2's as SAM's
        linked(
            clickable.select(
                on_click, inputs=[session, click_mode, opacity], outputs=outputs, api_visibility="private", **events
            )
        )
    linked(undo.click(on_undo, inputs=[session, opacity], outputs=outputs, api_visibility="private", **events))
    linked(clear.click(on_clear, inputs=[session, opacity], outputs=outputs, api_visibility="private"))
    everything_run = everything.click(
        on_everything,
        inputs=[session, per_side, per_batch, iou_thresh, stability, opacity],
        outputs=outputs,
        api_visibility="private",
        **events,
    )
    linked(everything_run)
    candidate.input(on_view, inputs=[session, candidate, opacity], outputs=outputs, api_visibility="private")
    opacity.change(on_view, inputs=[session, candidate, opacity], outputs=outputs, api_visibility="private")
    return controls


STEP_CODES = {"foreground": "f", "background": "b", "corner": "c"}


def encode_clicks(history: PromptHistory) -> str:
    """The clicks for a link: ``f120,80;b30,40;c10,10;c200,150`` (foreground, background, box corner)."""
    return ";".join(f"{STEP_CODES[kind]}{x:g},{y:g}" for kind, x, y in history.steps)


def decode_clicks(text: str | None) -> PromptHistory:
    """`encode_clicks` read back; steps it cannot read are left out."""
    kinds = {code: kind for kind, code in STEP_CODES.items()}
    history = PromptHistory()
    for step in (text or "").split(";"):
        try:
            x, y = (float(value) for value in step[1:].split(","))
        except ValueError:
            continue
        if step[:1] in kinds:
            history = history.add(kinds[step[:1]], x, y)
    return history


def explained_predictions(state: PromptSession) -> tuple:
    """(image, predictions) of every prompt model that answered, for the Explain views."""
    return state.image, [outcome.prediction for outcome in state.outcomes if outcome.prediction is not None]


def show(
    state: PromptSession, index: int | None, opacity: float, new_candidates: bool, settings: dict | None = None
) -> tuple:
    """Each model's panel with the chosen candidate (or every mask for "everything"), the first
    model's candidate choices, one status line per model, and the JSON of what is shown;
    ``settings`` are "Segment everything"'s thresholds, named when it found no mask."""
    prediction = state.prediction
    everything = prediction is not None and prediction.mode == "everything"
    dense = dense_note(state.history)
    panels, notes, shown_json = [], [], []
    for outcome in state.outcomes:
        title = get_spec(outcome.key).title
        if outcome.prediction is None:
            panels.append(draw_prompts(state.image, state.history))
            notes.append(f"{title}: {outcome.error}")
            continue
        candidate = outcome.prediction
        shown = candidate if everything or index is None else candidate[[min(index, len(candidate) - 1)]]
        panels.append(draw_prompts(draw(state.image, shown, opacity=opacity, legend=False), state.history))
        timings = candidate.timings_ms
        note = f"{title}: {how_answered(candidate)} · decoder {timings.get('forward', 0):.0f} ms"
        note += f" · post {timings.get('postprocess', 0):.0f} ms"
        if dense and not everything:
            note += f" · {dense}"
        if everything:
            note = f"{len(candidate)} mask{'' if len(candidate) == 1 else 's'} · " + note
            if not len(candidate) and settings:
                note += (
                    f" · no mask passed the predicted IoU threshold ({settings['pred_iou_thresh']:.2f}) and the "
                    f"stability score threshold ({settings['stability_score_thresh']:.2f}): lower them and try again"
                )
        if candidate.weights != "pretrained":
            note += f" · {candidate.weights} weights"
        notes.append(note)
        shown_json.append(to_json(shown))
    choices = (
        []
        if prediction is None or everything
        else [f"mask {i + 1} · IoU {s:.3f}" for i, s in enumerate(prediction.scores)]
    )
    radio = (
        gr.Radio(
            choices=choices,
            value=choices[index or 0] if choices else None,
            label=EVERYTHING_LABEL if everything else CANDIDATE_LABEL,
        )
        if new_candidates
        else gr.skip()
    )
    if state.history.pending_corner is not None:
        notes.append(CORNER_HINT)
    return *panels, radio, "\n\n".join(notes), shown_json, state


def how_answered(prediction: Prediction) -> str:
    """``"answer cached"`` or ``"answer from disk"`` for a prediction the result caches gave back
    (its timings are its first run's), else what the model's own cache saved (``reuse``)."""
    return f"answer {prediction.state}" if prediction.cached else prediction.reuse


def dense_note(history: PromptHistory) -> str:
    """What the last prompt's dense prompt (``mask_input``) was, for the status line."""
    mask_input = history.params().get("mask_input")
    if isinstance(mask_input, EarlierPrompt):
        return "refined from the previous best mask"
    return "prompted by the brushed mask" if mask_input is not None else ""


def brushed_mask(painted: dict | None, size: tuple[int, int]) -> np.ndarray | None:
    """(H, W) bool of every pixel the brush painted in an `gr.ImageEditor` value (its layers' alpha),
    at the image's ``size`` (H, W); None when nothing was painted."""
    layers = [layer for layer in (painted or {}).get("layers") or [] if layer is not None]
    if not layers:
        return None
    alpha = np.any([layer[..., -1] > 0 for layer in layers], axis=0)
    if alpha.shape != size:
        alpha = np.asarray(Image.fromarray(alpha).resize(size[::-1], Image.Resampling.NEAREST))
    return alpha if alpha.any() else None
