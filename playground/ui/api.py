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
from playground.core.text_prompts import TEXT_THRESHOLD
from playground.render.views import ViewOptions, make_panel, side_by_side
from playground.runtime.service import Outcome, Playground, failed
from playground.scoring.truth import load_truth
from playground.scoring.views import score_outcomes
from playground.ui.common import EXAMPLES_DIR, model_events, new_output_path, user_error
from playground.ui.compare_tab import comparable_keys, needs_text
from playground.ui.dataengine_api import label_endpoint
from playground.ui.text_tab import text_params
from playground.ui.video_api import video_endpoint


def register_api(playground: Playground) -> None:
    """Add the endpoints to the `gr.Blocks` being built."""
    events = model_events(playground)
    for task in CLOSED_SET_TASKS:
        gr.api(task_endpoint(playground, task), api_name=task, **events)
    gr.api(prompt_endpoint(playground), api_name="prompt", **events)
    gr.api(text_endpoint(playground), api_name="text", **events)
    gr.api(compare_endpoint(playground), api_name="compare", **events)
    gr.api(score_endpoint(playground), api_name="score", **events)
    gr.api(explain_endpoint(playground), api_name="explain", **events)
    gr.api(video_endpoint(playground), api_name="video", **events)
    gr.api(label_endpoint(playground), api_name="label", **events)


def task_endpoint(playground: Playground, task: str):
    def endpoint(
        image: FileData, models: list[str], score_threshold: float | None = None, mask_threshold: float = 0.5
    ) -> tuple[FileData, list[dict]]:
        loaded = uploaded_image(image)
        keys = checked_keys(models, task)
        outcomes = playground.predict_many(keys, loaded.pixels, task=task)
        options = ViewOptions(score_threshold=score_threshold, mask_threshold=mask_threshold)
        return respond(loaded, outcomes, options)

    endpoint.__doc__ = (
        f"{task.capitalize()}: run `models` (keys from: "
        f"{', '.join(spec.key for spec in models_for_task(task))}) on `image`; "
        "returns the overlays side by side (PNG) and one JSON result per model. `score_threshold` applies to "
        "every model; left out (None), each model keeps its own (its JSON's `score_threshold`)."
    )
    return endpoint


def prompt_endpoint(playground: Playground):
    def prompt(
        image: FileData,
        points: list[list[float]] | None = None,
        box: list[float] | None = None,
        models: list[str] | None = None,
    ) -> tuple[FileData, list[dict]]:
        """Prompt: `models` (default ["sam"]; also "sam2", and "sam3" for a box) on `image` with `points`
        [[x, y, label], ...] (label 1 foreground, 0 background) and/or a `box` [x1, y1, x2, y2], in pixels.
        Returns each model's best mask side by side (PNG) and per model the JSON of all candidates (area,
        box, predicted IoU as score). Each model's image embedding is cached."""
        loaded = uploaded_image(image)
        params: dict[str, object] = {}
        if points:
            params["points"] = tuple(tuple(point) for point in points)
        if box:
            params["box"] = tuple(box)
        keys = checked_keys(models or ["sam"], "prompt")
        outcomes = [single_outcome(playground, key, loaded, task="prompt", **params) for key in keys]
        return respond(loaded, outcomes, ViewOptions(score_threshold=None), best_only=True)  # own: SAM keeps all

    return prompt


def text_endpoint(playground: Playground):
    def text(
        image: FileData,
        text: str,
        box_threshold: float | None = None,
        text_threshold: float = TEXT_THRESHOLD,
        models: list[str] | None = None,
    ) -> tuple[FileData, list[dict]]:
        """Text: `models` (default ["grounded-sam"]; also "sam3", "owlv2-sam") find and segment `text`
        (e.g. "cat, dog") in `image`. `box_threshold` applies to every model's boxes; left out (None),
        each keeps its own (Grounding DINO's 0.35, OWLv2's 0.1, SAM 3's 0.3). `text_threshold` is
        Grounding DINO's. Returns the overlays side by side (PNG) and per model the JSON: one instance
        per found phrase with its score, box and mask area."""
        loaded = uploaded_image(image)
        keys = checked_keys(models or ["grounded-sam"], "text")
        outcomes = [
            single_outcome(
                playground, key, loaded, task="text", **text_params(key, text, box_threshold, text_threshold)
            )
            for key in keys
        ]
        return respond(loaded, outcomes, ViewOptions(score_threshold=box_threshold))

    return text


def single_outcome(playground: Playground, key: str, loaded: LoadedImage, **params: object) -> Outcome:
    """One model's outcome, with a bad prompt raised as a clear `gr.Error` rather than a panel."""
    try:
        return Outcome(key, prediction=playground.predict(key, loaded.pixels, **params))
    except BadPromptError as error:
        raise user_error(str(error)) from None
    except Exception as error:  # any other failure stays in this model's result
        return failed(key, error)


def compare_endpoint(playground: Playground):
    def compare(
        image: FileData, models: list[str], text: str = "", score_threshold: float | None = None
    ) -> tuple[FileData, list[dict]]:
        """Compare: run any `models` across tasks on `image` (`text` feeds the open-vocabulary ones);
        returns the overlays side by side (PNG) and one JSON result per model. `score_threshold`
        applies to every model; left out (None), each model keeps its own."""
        loaded = uploaded_image(image)
        allowed = comparable_keys()
        unknown = [key for key in models if key not in allowed]
        if unknown or not models:
            raise user_error(f"Choose models from {', '.join(allowed)} (got {', '.join(models) or 'none'}).")
        outcomes = playground.predict_many(
            list(models), loaded.pixels, params_for=lambda key: {"text": text} if needs_text(key) else {}
        )
        return respond(loaded, outcomes, ViewOptions(score_threshold=score_threshold))

    return compare


def score_endpoint(playground: Playground):
    def score(
        image: FileData, models: list[str], truth: FileData, text: str = "", score_threshold: float | None = None
    ) -> tuple[FileData, list[dict]]:
        """Score: run `models` (any keys but `sam`; `text` feeds the open-vocabulary ones) on `image` and
        score them against `truth`, a COCO instances JSON or a label-map PNG for the same image. Returns
        each model's true positives, false positives and misses drawn side by side (PNG) and one
        {model, task, metrics, published} per model, best first. tp/fp/fn count predictions at
        `score_threshold`, or (None) at each model's own."""
        loaded = uploaded_image(image)
        truth_path = uploaded_path(truth, "ground truth")
        allowed = comparable_keys()
        if not models or any(key not in allowed for key in models):
            raise gr.Error(f"Choose models from {', '.join(allowed)} (got {', '.join(models) or 'none'}).")
        try:
            ground_truth = load_truth(truth_path, loaded.pixels.shape[:2], file_name=uploaded_path(image, "image"))
            outcomes = playground.predict_many(
                list(models), loaded.pixels, params_for=lambda key: {"text": text} if needs_text(key) else {}
            )
            panels = score_outcomes(loaded.pixels, outcomes, ground_truth, score_threshold)
        except PlaygroundError as error:
            raise gr.Error(str(error)) from None
        if not panels:
            raise gr.Error("; ".join(f"{o.key}: {o.error}" for o in outcomes if o.error) or "Nothing was scored.")
        path = new_output_path("scores.png")
        Image.fromarray(side_by_side([panel.overlay for panel in panels])).save(path)
        return FileData(path=str(path)), [panel.score.to_json() for panel in panels]

    return score


def uploaded_path(file: FileData | dict | str, what: str) -> str:
    """The path of an uploaded file, refusing paths outside Gradio's upload cache and our examples."""
    path = file.get("path") if isinstance(file, dict) else getattr(file, "path", file)
    if not path:
        raise user_error(f"No {what} was sent.")
    if not (is_in_or_equal(path, get_upload_folder()) or is_in_or_equal(path, EXAMPLES_DIR)):
        raise user_error(f"The {what} is not an upload; send it with gradio_client.handle_file().")
    return path


def explain_endpoint(playground: Playground):
    def explain(
        image: FileData,
        model: str,
        points: list[list[float]] | None = None,
        box: list[float] | None = None,
        text: str = "",
        task: str = "",
    ) -> tuple[list[FileData], list[dict]]:
        """Explain: run `model` on `image` (SAM with `points` [[x, y, label], ...] and/or a `box`;
        Grounding DINO and Grounded-SAM with `text`) and draw its Explain views. Returns one PNG per
        view and their JSON: [{title, caption, file}], as the CLI's views.json."""
        loaded = uploaded_image(image)
        if model not in REGISTRY:
            raise gr.Error(f"Unknown model '{model}'; choose from {', '.join(REGISTRY)}.")
        params: dict[str, object] = {"text": text} if needs_text(model) else {}
        if points:
            params["points"] = tuple(tuple(point) for point in points)
        if box:
            params["box"] = tuple(box)
        outcome = single_outcome(playground, model, loaded, task=task or None, **params)
        if outcome.prediction is None:
            raise gr.Error(outcome.error or "The model failed.")
        folder = new_output_path("views.json").parent
        from playground.explain.views import explain_views, write_views  # see explain_panel

        listed = write_views(explain_views(outcome.prediction, loaded.pixels), folder)
        return [FileData(path=str(folder / item["file"])) for item in listed], listed

    return explain


def uploaded_image(image: FileData | dict | str) -> LoadedImage:
    """Decode an uploaded file, refusing paths outside Gradio's upload cache and our examples."""
    path = uploaded_path(image, "image")
    try:
        return load_image(path)
    except PlaygroundError as error:
        raise user_error(str(error)) from None


def checked_keys(models: list[str], task: str) -> list[str]:
    """``models`` if each is a built model of ``task``, else a clear `gr.Error`."""
    allowed = [spec.key for spec in models_for_task(task)]
    if not models:
        raise user_error(f"Pick at least one model: {', '.join(allowed)}.")
    for key in models:
        if key not in REGISTRY or key not in allowed:
            raise user_error(f"'{key}' is not a {task} model here; choose from {', '.join(allowed)}.")
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
