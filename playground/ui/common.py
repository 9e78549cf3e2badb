"""Pieces every tab shares: tab labels, example images, model choices, progress text, user errors,
the download panel, event settings."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import gradio as gr
import numpy as np
from gradio.utils import get_upload_folder

from playground.core.registry import ModelSpec, get_spec
from playground.render.export import export_files
from playground.render.views import ViewOptions, make_panel, shown_prediction
from playground.runtime.service import Outcome, Playground

log = logging.getLogger(__name__)

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
OUTPUT_DIR = Path(get_upload_folder()) / "playground-outputs"
"""Inside Gradio's cache, the one folder besides the examples from which the app serves files."""
OUTPUT_MAX_AGE_S = 3600

TAB_LABELS = {
    "semantic": "Semantic",
    "detection": "Detection",
    "instance": "Instance",
    "panoptic": "Panoptic",
    "prompt": "Prompt",
    "text": "Text",
    "compare": "Compare",
}
"""Short tab labels, so all seven fit on a phone's screen; each tab's first line names its task in full."""


def model_events(playground: Playground) -> dict[str, object]:
    """Settings of every event that runs models: one shared group of queue slots, as many as the
    models can run at once (`Models.concurrent_requests`: 2 in this process, so a hosted GPU is
    never oversubscribed; every replica's share with the Ray backend)."""
    return {"concurrency_id": "models", "concurrency_limit": playground.manager.concurrent_requests}


def new_output_path(name: str) -> Path:
    """A fresh path under the app's output folder; files there older than an hour are removed."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    remove_outputs_before(time.time() - OUTPUT_MAX_AGE_S)
    return Path(tempfile.mkdtemp(dir=OUTPUT_DIR)) / name


def remove_outputs_before(cutoff: float) -> None:
    """Delete output files last written before ``cutoff`` (epoch seconds), and their folders once
    empty. Concurrent requests (and other apps sharing Gradio's cache) clean the same folder at the
    same time: a file or folder another one removed first is skipped, never an error."""
    for folder in OUTPUT_DIR.iterdir():
        try:
            files = list(folder.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            continue
        for old in files:
            with contextlib.suppress(FileNotFoundError):
                if old.stat().st_mtime < cutoff:
                    old.unlink(missing_ok=True)
                    with contextlib.suppress(OSError):
                        folder.rmdir()


def image_input(tab: str, height: int = 300, **layout: object) -> gr.Image:
    """The upload box every tab starts with; its value is a file path for `load_image`."""
    return gr.Image(
        type="filepath",
        label="Image",
        sources=["upload", "clipboard"],
        height=height,
        elem_id=f"{tab}-image",
        **layout,
    )


def example_paths() -> list[str]:
    """The bundled example photos (see examples/LICENSES.md), as paths Gradio may serve."""
    return [str(path) for path in sorted(EXAMPLES_DIR.glob("*.jpg"))]


def run_progress(progress: gr.Progress, keys: Sequence[str], playground: Playground) -> Callable[[int, str], None]:
    """An ``on_start(index, key)`` callback that shows "loading Mask R-CNN (2/5)…" or "running …"."""

    def on_start(index: int, key: str) -> None:
        verb = "running" if playground.manager.is_loaded(key) else "loading"
        progress((index, len(keys)), desc=f"{verb} {get_spec(key).title} ({index + 1}/{len(keys)})…")

    return on_start


def user_error(message: str) -> gr.Error:
    """A toast for a mistake the user can fix (no image, an unknown model): logged as one line,
    without the traceback Gradio prints for real faults."""
    log.info("user error: %s", message)
    return gr.Error(message, print_exception=False)


def model_choices(specs: list[ModelSpec], playground: Playground) -> list[tuple[str, str]]:
    """(label, key) per model; a model whose pretrained weights are not local says so before Run."""
    return [
        (spec.title if playground.weights_local(spec.key) else f"{spec.title} (weights not downloaded)", spec.key)
        for spec in specs
    ]


def download_panel(tab: str) -> tuple[gr.Button, gr.File]:
    """The "Download" accordion: a button that prepares the files for what is shown, and the files."""
    with gr.Accordion("Download (overlays, masks, COCO results)", open=False, elem_id=f"{tab}-download"):
        prepare = gr.Button("Prepare files for what is shown", size="sm", elem_id=f"{tab}-prepare")
        files = gr.File(file_count="multiple", label="Files", elem_id=f"{tab}-downloads")
    return prepare, files


def download_files(image: np.ndarray, outcomes: list[Outcome], options: ViewOptions) -> list[str]:
    """Each successful model's overlay PNG (legend included), COCO results JSON and masks, as shown now."""
    folder = new_output_path("files").parent
    paths: list[str] = []
    for outcome in outcomes:
        if outcome.prediction is not None:
            panel = make_panel(image, outcome, options)
            shown = shown_prediction(outcome.prediction, options)
            paths += [str(path) for path in export_files(shown, panel.overlay, folder)]
    return paths
