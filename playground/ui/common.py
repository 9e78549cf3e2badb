"""Pieces every tab shares: tab labels, example images, model choices, progress text, user errors,
the download panel, event settings."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import gradio as gr
import numpy as np
from gradio.utils import get_upload_folder
from PIL import Image, UnidentifiedImageError

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


def _uploaded_image_class() -> type[gr.Image]:
    """`UploadedImage`, made without the ``.pyi`` stub Gradio writes beside the module of every
    component class (a copy of this whole module, at import time); it is only for type checkers."""
    from gradio import component_meta

    write_stub = component_meta.create_or_modify_pyi
    component_meta.create_or_modify_pyi = lambda *args, **kwargs: None
    try:

        class UploadedImage(gr.Image):
            """Gradio's image box whose file path reaches the handlers even when the file is not a
            readable image (a text file named .jpg, an image over the pixel limit), so the tab says
            why next to its results and keeps them; Gradio's own preprocessing fails the whole event
            (an Error badge on every output). A class, not a patched instance: Gradio rebuilds a
            component from its class on every update. ``is_template``: drawn as Gradio's image box."""

            is_template = True

            def preprocess(self, payload):
                try:
                    return super().preprocess(payload)
                except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError):
                    if self.type != "filepath" or payload is None or not payload.path:
                        raise
                    return str(payload.path)  # Gradio has checked it is an upload of this session

    finally:
        component_meta.create_or_modify_pyi = write_stub
    return UploadedImage


UploadedImage = _uploaded_image_class()


def image_input(tab: str, height: int = 300, **layout: object) -> gr.Image:
    """The upload box every tab starts with; its value is a file path for `load_image` (a file that
    is not an image too: see `UploadedImage`)."""
    return UploadedImage(
        type="filepath",
        label="Image",
        sources=["upload", "clipboard"],
        height=height,
        elem_id=f"{tab}-image",
        **layout,
    )


def refused(problem: str, kept: bool) -> str:
    """The line a tab shows where its "out of date" note goes, for an input it cannot use: the
    problem, and that the results shown (if any) are the previous image's, kept."""
    tail = " The results below are still those of the previous image." if kept else ""
    return f"{REFUSED} {problem}{tail}"


REFUSED = "**Not run:**"


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


def missing_weights(keys: Sequence[str], playground: Playground) -> list[str]:
    """The models among ``keys`` whose pretrained weights are neither cached nor given locally."""
    return [key for key in keys if not playground.weights_local(key)]


def weights_advice(keys: Sequence[str]) -> str:
    """How to get ``keys``' weights for real use, and how to try the app without them."""
    return (
        f"For real use, fetch them once with `python -m playground download {' '.join(keys)}` (needs "
        "internet); to try the app without them, start it with `--weights tiny`."
    )


def weights_note(keys: Sequence[str], playground: Playground) -> str:
    """A tab's line naming its models whose weights are not here, and how to get them; "" if all are."""
    lacking = missing_weights(keys, playground)
    if not lacking:
        return ""
    titles = ", ".join(get_spec(key).title for key in lacking)
    return f"**Weights not downloaded:** {titles}. {weights_advice(lacking)}"


def download_panel(tab: str) -> tuple[gr.Button, gr.File]:
    """The "Download" accordion: a button that prepares the files for what is shown, and the files."""
    with gr.Accordion("Download (overlays, masks, COCO results)", open=False, elem_id=f"{tab}-download"):
        prepare = gr.Button("Prepare files for what is shown", size="sm", elem_id=f"{tab}-prepare")
        files = gr.File(file_count="multiple", label="Files", elem_id=f"{tab}-downloads")
    return prepare, files


def download_files(image: np.ndarray, outcomes: list[Outcome], options: ViewOptions) -> list[str]:
    """One zip of everything first, then each successful model's overlay PNG (legend included),
    COCO results JSON and masks, as shown now; a model that found nothing shown has no results JSON
    (an empty ``[]`` file says nothing its overlay does not)."""
    folder = new_output_path("files").parent
    paths: list[Path] = []
    for outcome in outcomes:
        if outcome.prediction is not None:
            panel = make_panel(image, outcome, options)
            shown = shown_prediction(outcome.prediction, options)
            written = export_files(shown, panel.overlay, folder)
            paths += [path for path in written if not (path.suffix == ".json" and path.read_text().strip() == "[]")]
    if not paths:
        return []
    bundle = folder / "all_files.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            archive.write(path, path.name)
    return [str(bundle), *map(str, paths)]
