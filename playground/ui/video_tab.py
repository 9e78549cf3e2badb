"""The Video tab: load a clip, prompt one frame (clicks, a box or text), follow the objects through it.

The clip is decoded once into frames on disk; the frame slider shows any of them. Track runs
the chosen route forward and backward from the prompt frame (progress counts frames; Cancel
stops it and keeps the frames done). After a run, clicks on another frame and "Refine from this
frame" re-run only the frames from there on. "Every panoptic segment" tracks MaskFormer's segments
of the frame with SAM 2 video (video panoptic). Text prompts run both text routes side by side:
SAM 3 video (text -> tracked masks) and Grounding DINO on the prompt frame -> boxes -> SAM 2
video; a route that cannot run (SAM 3's gated weights missing) shows why in its place.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import gradio as gr

from playground.core.errors import PlaygroundError
from playground.core.prompts import PromptHistory
from playground.core.registry import get_spec
from playground.core.videos import ObjectPrompt, VideoPrompt
from playground.render.views import draw_prompts
from playground.runtime.service import Playground
from playground.ui.common import model_events, weights_note
from playground.ui.prompt_tab import CLICK_MODES
from playground.ui.video_api import EXAMPLE_CLIP, RouteRun, run_routes, uploaded_clip, write_outputs
from playground.video.clips import Clip
from playground.video.output import overlay_frame
from playground.video.tracker import ROUTES, TEXT_ROUTES

PROMPT_ROUTES = {
    "clicks or box (SAM 2 video)": "sam2",
    "text": "text",
    "every panoptic segment (MaskFormer + SAM 2 video)": "panoptic-sam2",
}


@dataclass
class VideoSession:
    """One browser session's clip, clicks (on ``frame``), the last run per route and the cancel flag."""

    clip: Clip
    frame: int = 0
    history: PromptHistory = field(default_factory=PromptHistory)
    runs: dict[str, RouteRun] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)


def route_title(route: str) -> str:
    """``"SAM 3 (video)"``: the registry title of a route's model."""
    return get_spec(ROUTES[route]).title


def slot_updates(runs: list[RouteRun], slots: int) -> list[tuple[gr.Video, gr.Markdown]]:
    """Each overlay slot's video and note: route ``n``'s overlay, or its one-line error, side by side."""
    updates = []
    for n in range(slots):
        run = runs[n] if n < len(runs) else None
        if run is None:
            updates.append((gr.Video(value=None, visible=False), gr.Markdown(value="", visible=False)))
            continue
        title = route_title(run.route)
        video = gr.Video(value=str(run.path) if run.path else None, visible=run.path is not None)
        note = f"**{title}**: {run.error}" if run.error else f"**{title}**"
        updates.append((video, gr.Markdown(value=note, visible=True)))
    return updates


def create_video_tab(playground: Playground) -> None:
    with gr.Tab("Video (track through a clip)", id="video"):
        gr.Markdown(
            "Load a clip (mp4, webm, mov, gif; at most 20 MB and 300 frames after sampling), pick a frame, "
            "prompt it, then **Track**: the objects are followed forward and backward. After a run, click on "
            "another frame and **Refine from this frame** to re-run only the frames from there on."
        )
        gr.Markdown(weights_note(list(dict.fromkeys(ROUTES.values())), playground), elem_id="video-weights")
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.Video(label="Clip", sources=["upload"], height=220, elem_id="video-upload")
                example = gr.Button("Use the example clip", size="sm", elem_id="video-example")
                fps = gr.Number(value=0, label="Sampling fps (0: the clip's own, up to 10)", elem_id="video-fps")
                mode = gr.Radio(list(PROMPT_ROUTES), value="clicks or box (SAM 2 video)", label="Prompt with")
                click_mode = gr.Radio(list(CLICK_MODES), value="foreground point", label="A click adds")
                text = gr.Textbox(label="Text (e.g. cat)", elem_id="video-text")
                with gr.Row():
                    clear = gr.Button("Clear clicks", size="sm", elem_id="video-clear")
                    track = gr.Button("Track", variant="primary", elem_id="video-track")
                with gr.Row():
                    refine = gr.Button(
                        "Refine from this frame", size="sm", interactive=False, elem_id="video-refine"
                    )  # active once a run has tracks to refine
                    cancel = gr.Button("Cancel", size="sm", variant="stop", interactive=False, elem_id="video-cancel")
            with gr.Column(scale=2):
                frame_slider = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="video-frame")
                canvas = gr.Image(
                    label="Click to prompt this frame", interactive=False, elem_id="video-canvas", height=360
                )
                status = gr.Markdown(elem_id="video-status")
        overlays, notes = [], []
        with gr.Row():
            for n in range(len(TEXT_ROUTES)):  # one slot per text route, side by side
                with gr.Column():
                    # the title above, in a line of its own: a label over the video would hide the drawn ones
                    notes.append(gr.Markdown(elem_id=f"video-note-{n}", visible=False))
                    overlays.append(gr.Video(show_label=False, elem_id=f"video-overlay-{n}", visible=n == 0))
        with gr.Row():
            scrub = gr.Slider(0, 1, value=0, step=1, label="Scrub the result", elem_id="video-scrub")
        gr.Markdown("**Result frame** (the first route's, at the scrubbed frame)")
        scrubbed = gr.Image(show_label=False, interactive=False, elem_id="video-scrubbed", height=300)
        with gr.Accordion("tracks.json (same as the CLI)", open=False):
            result_json = gr.JSON(elem_id="video-json")
        session = gr.State()

    def on_load(path, sample_fps):
        if not path:
            return None, gr.Slider(maximum=1, value=0), None, ""
        clip = uploaded_clip(path, sample_fps)
        note = f"{len(clip)} frames, {clip.width}x{clip.height} at {clip.fps:g} fps. {clip.notice}"
        return VideoSession(clip), gr.Slider(maximum=max(1, len(clip) - 1), value=0), clip.frame(0), note

    def on_frame(state: VideoSession | None, index):
        if state is None:
            return gr.skip(), state
        if int(index) != state.frame:
            state.frame, state.history = int(index), PromptHistory()
        return draw_prompts(state.clip.frame(state.frame), state.history), state

    def on_click(state: VideoSession | None, kind: str, prompt_mode: str, evt: gr.SelectData):
        if state is None:
            raise gr.Error("Load a clip or use the example first.")
        if PROMPT_ROUTES[prompt_mode] != "sam2":  # text and panoptic take no clicks: none is drawn
            return gr.skip(), state
        state.history = state.history.add(CLICK_MODES[kind], *evt.index)
        return draw_prompts(state.clip.frame(state.frame), state.history), state

    def on_clear(state: VideoSession | None):
        if state is None:
            return gr.skip(), state
        state.history = PromptHistory()
        return state.clip.frame(state.frame), state

    def on_track(state: VideoSession | None, prompt_mode: str, phrase: str, progress=gr.Progress()):
        if state is None:
            raise gr.Error("Load a clip or use the example first.")
        state.cancel.clear()
        if PROMPT_ROUTES[prompt_mode] == "text":
            routes, prompt = list(TEXT_ROUTES), VideoPrompt(state.frame, text=phrase)
        elif PROMPT_ROUTES[prompt_mode] == "panoptic-sam2":
            routes, prompt = ["panoptic-sam2"], VideoPrompt(state.frame)
        else:
            if not state.history.ready:
                raise gr.Error("Click a point or two box corners on the frame first.")
            obj = ObjectPrompt(1, points=state.history.points, box=state.history.box)
            routes, prompt = ["sam2"], VideoPrompt(state.frame, (obj,))
        runs = run_routes(
            playground,
            state.clip,
            routes,
            prompt,
            state.cancel,
            lambda route: frame_progress(progress, route),
            raise_when_none=False,
        )
        state.runs = {run.route: run for run in runs if run.path}
        return show(state, runs)

    def on_refine(state: VideoSession | None, progress=gr.Progress()):
        route = state and next((r for r in ("sam2", "grounded-sam2", "panoptic-sam2") if r in state.runs), None)
        if not route or not state.history.points:
            raise gr.Error("Track first, then click on another frame to refine.")
        tracker = state.runs[route].tracker
        if tracker is None:
            raise gr.Error(
                "Refining needs the model's session from the last run, and on a ZeroGPU Space each run is a "
                "fresh GPU worker: add your clicks and press Track again."
            )
        state.cancel.clear()
        try:
            tracks = tracker.correct(
                state.frame,
                ObjectPrompt(1, points=state.history.points),
                state.cancel,
                frame_progress(progress, "refine"),
            )
        except PlaygroundError as error:
            raise gr.Error(str(error)) from None
        path, summary = write_outputs(tracker, tracks)
        return show(state, [RouteRun(route, tracker, tracks, path, summary)])

    def on_mode(state: VideoSession | None, prompt_mode: str):
        """Clicks are drawn only while they are the prompt; another mode shows the bare frame."""
        if state is None:
            return gr.skip()
        frame = state.clip.frame(state.frame)
        return draw_prompts(frame, state.history) if PROMPT_ROUTES[prompt_mode] == "sam2" else frame

    def on_cancel(state: VideoSession | None):
        if state is not None:
            state.cancel.set()
        return "Cancelling after the current frame…"

    def on_scrub(state: VideoSession | None, index):
        if state is None or not state.runs:
            return None
        return overlay_frame(state.clip, next(iter(state.runs.values())).tracks, int(index))

    def show(state: VideoSession, runs: list[RouteRun]):
        videos, texts = zip(*slot_updates(runs, len(overlays)))
        summaries = [run.summary for run in runs if run.summary]
        if not summaries:  # every route failed: each says why in its own place, and the status sums up
            failed = "; ".join(f"{route_title(run.route)}: {run.error}" for run in runs if run.error)
            return (*videos, *texts, gr.skip(), failed or "Nothing was tracked.", None, state, gr.skip(), gr.skip())
        times = ", ".join(f"{s['model']} {s['timings_ms'].get('total', 0) / 1000:.1f} s" for s in summaries)
        extra = summaries[0]["timings_ms"].get("first_update")
        note = f"Tracked: {times}." + (f" First updated frame after {extra:.0f} ms." if extra else "")
        note += f" {summaries[0].get('note', '')}"
        last = max(1, len(state.clip) - 1)
        tracked = [run for run in runs if run.summary]
        frame = overlay_frame(state.clip, tracked[0].tracks, state.frame)  # the result frame, without a scrub
        shown_json = summaries[0] if len(summaries) == 1 else summaries  # every route's tracks
        refinable = gr.Button(interactive=any(r in state.runs for r in ("sam2", "grounded-sam2", "panoptic-sam2")))
        return (*videos, *texts, gr.Slider(maximum=last, value=state.frame), note, shown_json, state, frame, refinable)

    load_outputs = [session, frame_slider, canvas, status]
    upload.change(on_load, inputs=[upload, fps], outputs=load_outputs, api_visibility="private")
    example.click(lambda: str(EXAMPLE_CLIP), outputs=upload, api_visibility="private")
    frame_slider.change(on_frame, inputs=[session, frame_slider], outputs=[canvas, session], api_visibility="private")
    canvas.select(on_click, inputs=[session, click_mode, mode], outputs=[canvas, session], api_visibility="private")
    mode.change(on_mode, inputs=[session, mode], outputs=canvas, api_visibility="private")
    clear.click(on_clear, inputs=session, outputs=[canvas, session], api_visibility="private")
    events = model_events(playground)
    run_outputs = [*overlays, *notes, scrub, status, result_json, session, scrubbed, refine]
    track.click(lambda: gr.Button(interactive=True), outputs=cancel, api_visibility="private", queue=False)
    track.click(
        on_track,
        inputs=[session, mode, text],
        outputs=run_outputs,
        api_visibility="private",
        **events,
    )
    refine.click(on_refine, inputs=session, outputs=run_outputs, api_visibility="private", **events)
    cancel.click(on_cancel, inputs=session, outputs=status, api_visibility="private", queue=False)
    scrub.change(on_scrub, inputs=[session, scrub], outputs=scrubbed, api_visibility="private")


def frame_progress(progress: gr.Progress, route: str):
    """A ``progress(done, total)`` callback that moves the Gradio bar, counting frames."""

    def report(done: int, total: int) -> None:
        progress((done, total), desc=f"{route}: frame {done}/{total}", unit="frames")

    return report
