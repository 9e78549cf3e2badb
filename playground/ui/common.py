"""Pieces every tab shares: example images, progress text, event settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import gradio as gr

from playground.registry import get_spec
from playground.service import Playground

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"

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


def example_paths() -> list[str]:
    """The bundled example photos (see examples/LICENSES.md), as paths Gradio may serve."""
    return [str(path) for path in sorted(EXAMPLES_DIR.glob("*.jpg"))]


def run_progress(progress: gr.Progress, keys: Sequence[str], playground: Playground) -> Callable[[int, str], None]:
    """An ``on_start(index, key)`` callback that shows "loading Mask R-CNN (2/5)…" or "running …"."""

    def on_start(index: int, key: str) -> None:
        verb = "running" if playground.manager.is_loaded(key) else "loading"
        progress((index, len(keys)), desc=f"{verb} {get_spec(key).title} ({index + 1}/{len(keys)})…")

    return on_start
