"""Named, typed API endpoints, one per tab, for `gradio_client` and `curl`.

Each takes an image, model key(s) and the tab's parameters, and returns the overlays side by side
in one PNG plus the same JSON as the CLI (one entry per model). They run the same `Playground`
as the UI, so the result cache is shared.
"""

from __future__ import annotations

from dataclasses import replace

import gradio as gr
from gradio.data_classes import FileData
from gradio.utils import get_upload_folder, is_in_or_equal
from PIL import Image

from playground.core.errors import BadPromptError, PlaygroundError
from playground.core.images import LoadedImage, load_image
from playground.core.registry import CLOSED_SET_TASKS, REGISTRY, models_for_task
from playground.core.text_prompts import BOX_THRESHOLD, TEXT_THRESHOLD
from playground.service import Outcome, Playground
from playground.ui.common import EXAMPLES_DIR, MODEL_EVENTS, new_output_path
from playground.ui.compare_tab import comparable_keys, needs_text
from playground.ui.video_api import video_endpoint
from playground.views import ViewOptions, make_panel, side_by_side


def register_api(playground: Playground) -> None:
    """Add the endpoints to the `gr.Blocks` being built."""
    for task in CLOSED_SET_TASKS:
        gr.api(task_endpoint(playground, task), api_name=task, **MODEL_EVENTS)
    gr.api(prompt_endpoint(playground), api_name="prompt", **MODEL_EVENTS)
    gr.api(text_endpoint(playground), api_name="text", **MODEL_EVENTS)
    gr.api(compare_endpoint(playground), api_name="compare", **MODEL_EVENTS)
    gr.api(video_endpoint(playground), api_name="video", **MODEL_EVENTS)


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
        f"{', '.join(spec.key for spec in models_for_task(task))}) on `image`; "
        "returns the overlays side by side (PNG) and one JSON result per model."
    )
    return endpoint


def prompt_endpoint(playground: Playground):
    def prompt(
        image: FileData, points: list[list[float]] | None = None, box: list[float] | None = None
    ) -> tuple[FileData, list[dict]]:
        """Prompt: SAM on `image` with `points` [[x, y, label], ...] (label 1 foreground, 0 background)
        and/or a `box` [x1, y1, x2, y2], in pixels. Returns the best mask's overlay (PNG) and the JSON of
        all three candidates (area, box, predicted IoU as score). The image embedding is cached."""
        loaded = uploaded_image(image)
        params: dict[str, object] = {}
        if points:
            params["points"] = tuple(tuple(point) for point in points)
        if box:
            params["box"] = tuple(box)
        outcome = single_outcome(playground, "sam", loaded, task="prompt", **params)
        overlay, results = respond(loaded, [outcome], ViewOptions(score_threshold=0.0), best_only=True)
        return overlay, results

    return prompt


def text_endpoint(playground: Playground):
    def text(
        image: FileData, text: str, box_threshold: float = BOX_THRESHOLD, text_threshold: float = TEXT_THRESHOLD
    ) -> tuple[FileData, list[dict]]:
        """Text: Grounded-SAM finds and segments `text` (e.g. "cat, dog") in `image`. Returns the overlay
        (PNG) and the JSON: one instance per found phrase with its score, box and mask area."""
        loaded = uploaded_image(image)
        outcome = single_outcome(
            playground,
            "grounded-sam",
            loaded,
            task="text",
            text=text,
            box_threshold=box_threshold,
            text_threshold=text_threshold,
        )
        return respond(loaded, [outcome], ViewOptions(score_threshold=0.0))

    return text


def single_outcome(playground: Playground, key: str, loaded: LoadedImage, **params: object) -> Outcome:
    """One model's outcome, with a bad prompt raised as a clear `gr.Error` rather than a panel."""
    try:
        return Outcome(key, prediction=playground.predict(key, loaded.pixels, **params))
    except BadPromptError as error:
        raise gr.Error(str(error)) from None
    except PlaygroundError as error:
        return Outcome(key, error=str(error))


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
    allowed = [spec.key for spec in models_for_task(task)]
    if not models:
        raise gr.Error(f"Pick at least one model: {', '.join(allowed)}.")
    for key in models:
        if key not in REGISTRY or key not in allowed:
            raise gr.Error(f"'{key}' is not a {task} model here; choose from {', '.join(allowed)}.")
    return list(models)


def respond(
    loaded: LoadedImage, outcomes: list[Outcome], options: ViewOptions, best_only: bool = False
) -> tuple[FileData, list[dict]]:
    """The side-by-side overlay PNG and the per-model JSON (errors included as ``{"error": ...}``).

    ``best_only`` draws only each prediction's first instance (SAM's best candidate); the JSON
    still lists them all."""
    panels = [make_panel(loaded.pixels, outcome, options) for outcome in outcomes]
    if best_only:
        drawn = [
            make_panel(loaded.pixels, Outcome(o.key, prediction=o.prediction[:1]), options) if o.prediction else p
            for o, p in zip(outcomes, panels)
        ]
        panels = [replace(panel, overlay=best.overlay) for panel, best in zip(panels, drawn)]
    path = new_output_path("overlay.png")
    Image.fromarray(side_by_side([panel.overlay for panel in panels])).save(path)
    results = [panel.result for panel in panels]
    if loaded.notice:
        for result in results:
            result["notice"] = loaded.notice
    return FileData(path=str(path)), results
