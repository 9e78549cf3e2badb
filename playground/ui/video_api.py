"""The ``/video`` endpoint, and the upload checks and run the Video tab shares with it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData
from gradio.utils import get_upload_folder, is_in_or_equal

from playground.core.errors import PlaygroundError
from playground.core.videos import Cancelled, ObjectPrompt, Progress, VideoPrompt
from playground.runtime.service import Playground
from playground.runtime.zerogpu import ZeroGPUModels
from playground.ui.common import EXAMPLES_DIR, new_output_path
from playground.video.clips import Clip, open_clip
from playground.video.output import tracks_json, write_overlay
from playground.video.tracker import Tracks, VideoTracker, route_models

EXAMPLE_CLIP = EXAMPLES_DIR / "chelsea_pan.mp4"


def uploaded_clip(video: FileData | dict | str | None, fps: float | None = None) -> Clip:
    """Decode an uploaded clip, refusing paths outside Gradio's upload cache and our examples."""
    path = video.get("path") if isinstance(video, dict) else getattr(video, "path", video)
    if not path:
        raise gr.Error("No video was sent.")
    if not (is_in_or_equal(path, get_upload_folder()) or is_in_or_equal(path, EXAMPLES_DIR)):
        raise gr.Error("That file is not an upload; send the clip with gradio_client.handle_file().")
    try:
        return open_clip(Path(path), fps=fps or None)
    except PlaygroundError as error:
        raise gr.Error(str(error)) from None


Tracked = tuple[VideoTracker | None, Tracks, Path, dict]
"""(the tracker, for refining and scrubbing: None from a ZeroGPU worker; the tracks; the overlay mp4;
the tracks JSON)."""


def tracked(
    manager: object,
    clip: Clip,
    route: str,
    prompt: VideoPrompt,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
) -> Tracked:
    """Track ``route`` on ``clip`` with ``manager`` and write its overlay: the model work of a run."""
    tracker = VideoTracker(manager, clip)
    tracks = tracker.track(route, prompt, cancel, progress)
    return tracker, tracks, *write_outputs(tracker, tracks)


def tracked_in_worker(manager: object, source: str, fps: float, route: str, prompt: VideoPrompt) -> Tracked:
    """`tracked` inside a ZeroGPU worker: the clip is decoded again from ``source`` (its frame file
    does not cross processes), and the tracker stays behind."""
    _, tracks, path, summary = tracked(manager, open_clip(source, fps=fps), route, prompt)
    return None, tracks, path, summary


def track_clip(
    playground: Playground,
    clip: Clip,
    route: str,
    prompt: VideoPrompt,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
) -> Tracked:
    """`tracked` where the models run: here, or on a ZeroGPU Space in one GPU call (without live
    progress or cancelling: neither crosses into the worker)."""
    if isinstance(playground.manager, ZeroGPUModels):
        return playground.manager.run(
            tracked_in_worker, clip.source, clip.fps, route, prompt, models=route_models(route)
        )
    return tracked(playground.manager, clip, route, prompt, cancel, progress)


@dataclass
class RouteRun:
    """One route's part of a side-by-side run: its overlay and tracks JSON, or why it has none."""

    route: str
    tracker: VideoTracker | None = None
    tracks: Tracks | None = None
    path: Path | None = None
    summary: dict | None = None
    error: str = ""


def run_routes(
    playground: Playground,
    clip: Clip,
    routes: list[str],
    prompt: VideoPrompt,
    cancel: threading.Event | None = None,
    progress: Callable[[str], Progress] | None = None,
    raise_when_none: bool = True,
) -> list[RouteRun]:
    """Run ``routes`` one after the other on ``clip``. A route that fails (SAM 3's gated weights
    missing, nothing found) keeps its one-line message and the others still run; a cancel stops
    the routes not started. One `gr.Error` when none gives an overlay (unless ``raise_when_none``
    is False: the Video tab shows each route's message where its overlay would be)."""
    runs = []
    for route in routes:
        run = RouteRun(route)
        runs.append(run)
        try:
            run.tracker, run.tracks, run.path, run.summary = track_clip(
                playground, clip, route, prompt, cancel, progress(route) if progress else None
            )
        except Cancelled as error:
            run.error = str(error)
            break
        except PlaygroundError as error:
            run.error = str(error)
            continue
    if raise_when_none and not any(run.path for run in runs):
        raise gr.Error(" ".join(f"{run.route}: {run.error}" if len(runs) > 1 else run.error for run in runs))
    return runs


def write_outputs(tracker: VideoTracker, tracks: Tracks) -> tuple[Path, dict]:
    """The overlay mp4 (in the app's output folder) and the tracks JSON, with the clip's notices."""
    source = tracker.source
    tracks.notices = list(getattr(source, "notices", []))
    path = new_output_path("overlay.mp4")
    write_overlay(source, tracks, path)
    return path, tracks_json(tracks, source)


def video_endpoint(playground: Playground):
    def video(
        video: FileData,
        model: str = "sam2",
        points: list[list[float]] | None = None,
        box: list[float] | None = None,
        text: str = "",
        frame: int = 0,
        fps: float = 0.0,
    ) -> tuple[FileData, dict]:
        """Video: follow objects through `video` (mp4, webm, mov, gif; at most 20 MB, 300 frames after
        sampling at `fps`, 0 = the clip's own rate up to 10). `model` sam2 takes `points`
        [[x, y, label], ...] and/or a `box` [x1, y1, x2, y2] on frame `frame`; sam3 (SAM 3 video, gated
        weights) and grounded-sam2 (Grounding DINO boxes on frame `frame` -> SAM 2 video) take `text`;
        panoptic-sam2 takes no prompt (MaskFormer's panoptic segments on frame `frame` -> SAM 2 video).
        Returns the overlay mp4 and the tracks JSON (per frame: each object's id, label, box, mask
        area and score)."""
        clip = uploaded_clip(video, fps)
        objects = ()
        if points or box:
            point_list = tuple(tuple(point) for point in points or ())
            objects = (ObjectPrompt(1, points=point_list, box=tuple(box) if box else None),)
        try:
            _, _, path, summary = track_clip(playground, clip, model, VideoPrompt(int(frame), objects, text))
        except PlaygroundError as error:
            raise gr.Error(str(error)) from None
        return FileData(path=str(path)), summary

    return video
