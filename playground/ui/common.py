"""Pieces every tab shares: example images, progress text, event settings."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from playground.core.registry import get_spec
from playground.service import Playground
from playground.views import Panel

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
OUTPUT_DIR = Path(get_upload_folder()) / "playground-outputs"
"""Inside Gradio's cache, the one folder besides the examples from which the app serves files."""
OUTPUT_MAX_AGE_S = 3600

MODEL_EVENTS = {"concurrency_id": "models", "concurrency_limit": 2}
"""Events that run models share one queue slot group, so a hosted GPU is never oversubscribed."""


def on_gpu(function: Callable) -> Callable:
    """``spaces.GPU(function)`` on a Hugging Face ZeroGPU Space, so the call is given a GPU; the
    function itself everywhere else (the `spaces` package is only installed on Spaces)."""
    try:
        import spaces
    except ImportError:
        return function
    return spaces.GPU(function)


def new_output_path(name: str) -> Path:
    """A fresh path under the app's output folder; files there older than an hour are removed."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - OUTPUT_MAX_AGE_S
    for old in OUTPUT_DIR.glob("*/*"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                old.parent.rmdir()
    return Path(tempfile.mkdtemp(dir=OUTPUT_DIR)) / name


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


def panel_updates(panels: list[Panel], slots: int) -> list[gr.Image]:
    """Show each panel in its own image slot, captioned, and hide the slots left over."""
    shown = [gr.Image(value=panel.overlay, label=panel.caption, visible=True) for panel in panels]
    return shown + [gr.Image(value=None, visible=False)] * (slots - len(panels))


def example_paths() -> list[str]:
    """The bundled example photos (see examples/LICENSES.md), as paths Gradio may serve."""
    return [str(path) for path in sorted(EXAMPLES_DIR.glob("*.jpg"))]


def run_progress(progress: gr.Progress, keys: Sequence[str], playground: Playground) -> Callable[[int, str], None]:
    """An ``on_start(index, key)`` callback that shows "loading Mask R-CNN (2/5)…" or "running …"."""

    def on_start(index: int, key: str) -> None:
        verb = "running" if playground.manager.is_loaded(key) else "loading"
        progress((index, len(keys)), desc=f"{verb} {get_spec(key).title} ({index + 1}/{len(keys)})…")

    return on_start
