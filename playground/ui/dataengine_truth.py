"""Ground truth drawn in the Data engine tab: boxes with a class each, two clicks a box as in the Score
panel (`playground.ui.score_panel`), on any of the job's first images. Each box is saved in the job
store the moment it is drawn, so the job's link keeps it; "Score labelers" uses the drawn boxes for
the images that have no uploaded truth."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import gradio as gr
import numpy as np

from playground.core.errors import PlaygroundError
from playground.dataengine.intake import decode
from playground.scoring.views import draw_truth_boxes
from playground.ui.common import EXAMPLES_DIR, example_paths, user_error
from playground.ui.dataengine_jobs import Job, current_job, open_job

DRAW_CHOICES = 100
"""The image list offers the job's first this many files."""
LABEL_MAP_HELP = (
    "A **label map** is a PNG named like its image (`a.png` for `a.jpg`) whose pixels are class ids: 1 is the "
    "first class typed, 2 the second, and so on; 0 is background. Each connected region of one id is one object."
)


@dataclass(frozen=True)
class Drawing:
    """The image drawn on: its ``name`` in the job, ``pixels`` as shown, its own ``size`` (height,
    width), and a first corner (shown pixels) awaiting its second."""

    name: str
    pixels: np.ndarray
    size: tuple[int, int]
    pending: tuple[float, float] | None = None

    def to_own(self, x: float, y: float) -> tuple[float, float]:
        """A point on the shown pixels in the image's own pixels."""
        return x * self.size[1] / self.pixels.shape[1], y * self.size[0] / self.pixels.shape[0]


@dataclass(frozen=True)
class DrawPanel:
    """The drawing's components, laid out by `add_draw_panel` and wired by `wire_draw_panel`."""

    accordion: gr.Accordion
    start: gr.Button
    image: gr.Dropdown
    label: gr.Textbox
    undo: gr.Button
    clear: gr.Button
    canvas: gr.Image
    status: gr.Markdown
    drawing: gr.State


def add_draw_panel() -> DrawPanel:
    """Lay out the label-map hint and the drawing, under the truth upload."""
    gr.Markdown(LABEL_MAP_HELP)
    with gr.Accordion("…or draw boxes on some of the images: two clicks and a class each", open=False) as accordion:
        with gr.Row():
            start = gr.Button("Draw on the uploaded images", size="sm", elem_id="dataengine-draw-start")
            image = gr.Dropdown([], label="Image", elem_id="dataengine-draw-image")
        with gr.Row():
            label = gr.Textbox(label="Class of the next box", placeholder="person", elem_id="dataengine-draw-class")
            undo = gr.Button("Undo box", size="sm", elem_id="dataengine-draw-undo")
            clear = gr.Button("Clear boxes", size="sm", elem_id="dataengine-draw-clear")
        canvas = gr.Image(
            interactive=False, format="png", height=360, label="Click two corners of each box",
            elem_id="dataengine-draw-canvas",
        )  # fmt: skip
        status = gr.Markdown(elem_id="dataengine-draw-status")
    return DrawPanel(accordion, start, image, label, undo, clear, canvas, status, gr.State(None))


def open_drawing(job: Job, name: str) -> tuple:
    """The drawing's outputs for file ``name``: the drawing, the canvas and a line; no drawing, and
    the reason in the line, for a file that is not a readable image."""
    decoded = decode(job.files, name)
    if decoded.pixels is None:
        return None, None, f"{name} cannot be drawn on: {decoded.reason}. Pick another image."
    drawing = Drawing(name, decoded.pixels, decoded.size)
    return drawing, *view(job, drawing)


def view(job: Job, drawing: Drawing) -> tuple[np.ndarray, str]:
    """The image with the boxes drawn on it (and a pending corner), and a line on what is drawn."""
    with job.store() as store:
        drawn = store.drawn_truth()
    boxes = drawn[drawing.name][1] if drawing.name in drawn else []
    sy, sx = drawing.pixels.shape[0] / drawing.size[0], drawing.pixels.shape[1] / drawing.size[1]
    shown = [(name, x1 * sx, y1 * sy, x2 * sx, y2 * sy) for name, x1, y1, x2, y2 in boxes]
    hint = "Click the second corner." if drawing.pending else "Click the first corner of the next box."
    names = ", ".join(box[0] for box in boxes) or "none yet"
    line = f"Boxes on **{drawing.name}**: {names}. {hint} Truth drawn on {len(drawn)} image(s), saved."
    return draw_truth_boxes(drawing.pixels, shown, drawing.pending), line


def set_boxes(job: Job, drawing: Drawing, boxes: list) -> tuple:
    """Save ``boxes`` as the truth drawn on the image; the drawing's outputs."""
    with job.store() as store:
        store.draw_truth(drawing.name, drawing.size, boxes)
    drawing = replace(drawing, pending=None)
    return drawing, *view(job, drawing)


def drawn_boxes(job: Job, name: str) -> list:
    """The boxes drawn on file ``name``, oldest first."""
    with job.store() as store:
        drawn = store.drawn_truth()
    return list(drawn[name][1]) if name in drawn else []


def drawn_names(job: Job) -> set[str]:
    """The files that have truth drawn on them."""
    with job.store() as store:
        return set(store.drawn_truth())


def first_choice(job: Job) -> tuple[list[str], str]:
    """The files offered to draw on, and the one to show: the first with boxes, else the first."""
    names = job.names()[:DRAW_CHOICES]
    if not names:
        raise user_error("Upload a zip or some images first.")
    drawn = drawn_names(job)
    return names, next((name for name in names if name in drawn), names[0])


def wire_draw_panel(
    panel: DrawPanel, token: gr.State, sources: gr.State, files: gr.File, query: gr.Textbox, demo: gr.Blocks
) -> gr.Dependency:
    """The drawing's events; returns the start event, for the tab to chain its link on."""
    private = {"api_visibility": "private"}
    shown = [panel.drawing, panel.canvas, panel.status]

    def on_start(job_token, used, uploads):
        try:
            job, used = current_job(job_token, used, uploads)
        except PlaygroundError as error:
            raise user_error(str(error)) from None
        names, first = first_choice(job)
        return job.token, used, job.query, gr.Dropdown(choices=names, value=first), *open_drawing(job, first)

    def on_pick(job_token, name):
        job = open_job(job_token)
        if job is None or not name:
            return gr.skip(), gr.skip(), gr.skip()
        return open_drawing(job, name)

    def on_click(job_token, drawing: Drawing | None, name: str, evt: gr.SelectData):
        job = open_job(job_token)
        if job is None or drawing is None:
            raise user_error("Press 'Draw on the uploaded images' and pick an image first.")
        x, y = (float(v) for v in evt.index)
        if drawing.pending is None:
            drawing = replace(drawing, pending=(x, y))
            return drawing, *view(job, drawing)
        if not name.strip():
            raise user_error("Type the class of the box first, e.g. 'person'.")
        (x0, y0), (x1, y1) = drawing.to_own(*drawing.pending), drawing.to_own(x, y)
        box = (name.strip(), min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        return set_boxes(job, drawing, [*drawn_boxes(job, drawing.name), box])

    def on_undo(job_token, drawing: Drawing | None):
        job = open_job(job_token)
        if job is None or drawing is None:
            return gr.skip(), gr.skip(), gr.skip()
        return set_boxes(job, drawing, drawn_boxes(job, drawing.name)[:-1])

    def on_clear(job_token, drawing: Drawing | None):
        job = open_job(job_token)
        if job is None or drawing is None:
            return gr.skip(), gr.skip(), gr.skip()
        return set_boxes(job, drawing, [])

    def on_load(request: gr.Request):
        """A job's link: the drawing open on the first image with drawn truth."""
        params = dict(request.query_params) if request else {}
        job = open_job(params.get("job")) if params.get("tab") == "dataengine" else None
        if job is None or not drawn_names(job):
            return tuple(gr.skip() for _ in range(5))
        names, first = first_choice(job)
        return gr.Accordion(open=True), gr.Dropdown(choices=names, value=first), *open_drawing(job, first)

    started = panel.start.click(
        on_start, inputs=[token, sources, files], outputs=[token, sources, query, panel.image, *shown], **private
    )
    panel.image.input(on_pick, inputs=[token, panel.image], outputs=shown, **private)
    panel.canvas.select(on_click, inputs=[token, panel.drawing, panel.label], outputs=shown, **private)
    panel.undo.click(on_undo, inputs=[token, panel.drawing], outputs=shown, **private)
    panel.clear.click(on_clear, inputs=[token, panel.drawing], outputs=shown, **private)
    demo.load(on_load, outputs=[panel.accordion, panel.image, *shown], **private)
    return started


def bundled_examples() -> tuple[list[str], list[str]]:
    """The bundled photos that have an annotation, and their annotations, to try the tab."""
    truths = sorted((EXAMPLES_DIR / "annotations").glob("*.json"))
    stems = {path.stem for path in truths}
    return [path for path in example_paths() if Path(path).stem in stems], [str(path) for path in truths]
