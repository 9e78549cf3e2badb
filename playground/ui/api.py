"""Named, typed API endpoints, one per tab, for `gradio_client` and `curl`.

Each takes an image, model key(s) and the tab's parameters, and returns the overlays side by side
in one PNG plus the same JSON as the CLI (one entry per model). They run the same `Playground`
as the UI, so the result cache is shared.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData
from gradio.utils import get_upload_folder, is_in_or_equal
from PIL import Image

from playground.errors import PlaygroundError
from playground.images import LoadedImage, load_image
from playground.registry import CLOSED_SET_TASKS, REGISTRY, models_for_task
from playground.service import Outcome, Playground
from playground.ui.common import EXAMPLES_DIR, MODEL_EVENTS
from playground.ui.compare_tab import comparable_keys, needs_text
from playground.views import ViewOptions, make_panel, side_by_side

OUTPUT_DIR = Path(get_upload_folder()) / "playground-outputs"
"""Inside Gradio's cache, the one folder besides the examples from which the app serves files."""
OUTPUT_MAX_AGE_S = 3600


def register_api(playground: Playground) -> None:
    """Add the endpoints to the `gr.Blocks` being built."""
    for task in CLOSED_SET_TASKS:
        gr.api(task_endpoint(playground, task), api_name=task, **MODEL_EVENTS)
    gr.api(compare_endpoint(playground), api_name="compare", **MODEL_EVENTS)


def task_endpoint(playground: Playground, task: str):
    def endpoint(
        image: FileData, models: list[str], score_threshold: float = 0.5, mask_threshold: float = 0.5
    ) -> tuple[FileData, list[dict]]:
        loaded = uploaded_image(image)
        keys = checked_keys(models, task)
        outcomes = playground.predict_many(keys, loaded.pixels, task=task)
        options = ViewOptions(score_threshold=score_threshold, mask_threshold=mask_threshold)
        return respond(loaded, outcomes, options)

    endpoint.__doc__ = (
        f"{task.capitalize()}: run `models` (keys from: "
        f"{', '.join(spec.key for spec in models_for_task(task) if spec.built)}) on `image`; "
        "returns the overlays side by side (PNG) and one JSON result per model."
    )
    return endpoint


def compare_endpoint(playground: Playground):
    def compare(
        image: FileData, models: list[str], text: str = "", score_threshold: float = 0.5
    ) -> tuple[FileData, list[dict]]:
        """Compare: run any `models` across tasks on `image` (`text` feeds the open-vocabulary ones);
        returns the overlays side by side (PNG) and one JSON result per model."""
        loaded = uploaded_image(image)
        allowed = comparable_keys()
        unknown = [key for key in models if key not in allowed]
        if unknown or not models:
            raise gr.Error(f"Choose models from {', '.join(allowed)} (got {', '.join(models) or 'none'}).")
        outcomes = playground.predict_many(
            list(models), loaded.pixels, params_for=lambda key: {"text": text} if needs_text(key) else {}
        )
        return respond(loaded, outcomes, ViewOptions(score_threshold=score_threshold))

    return compare


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


def uploaded_image(image: FileData | dict | str) -> LoadedImage:
    """Decode an uploaded file, refusing paths outside Gradio's upload cache and our examples."""
    path = image.get("path") if isinstance(image, dict) else getattr(image, "path", image)
    if not path:
        raise gr.Error("No image was sent.")
    if not (is_in_or_equal(path, get_upload_folder()) or is_in_or_equal(path, EXAMPLES_DIR)):
        raise gr.Error("That file is not an upload; send the image with gradio_client.handle_file().")
    try:
        return load_image(path)
    except PlaygroundError as error:
        raise gr.Error(str(error)) from None


def checked_keys(models: list[str], task: str) -> list[str]:
    """``models`` if each is a built model of ``task``, else a clear `gr.Error`."""
    allowed = [spec.key for spec in models_for_task(task) if spec.built]
    if not models:
        raise gr.Error(f"Pick at least one model: {', '.join(allowed)}.")
    for key in models:
        if key not in REGISTRY or key not in allowed:
            raise gr.Error(f"'{key}' is not a {task} model here; choose from {', '.join(allowed)}.")
    return list(models)


def respond(loaded: LoadedImage, outcomes: list[Outcome], options: ViewOptions) -> tuple[FileData, list[dict]]:
    """The side-by-side overlay PNG and the per-model JSON (errors included as ``{"error": ...}``)."""
    panels = [make_panel(loaded.pixels, outcome, options) for outcome in outcomes]
    path = new_output_path("overlay.png")
    Image.fromarray(side_by_side([panel.overlay for panel in panels])).save(path)
    results = [panel.result for panel in panels]
    if loaded.notice:
        for result in results:
            result["notice"] = loaded.notice
    return FileData(path=str(path)), results
