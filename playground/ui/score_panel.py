"""The "Score against ground truth" panel that the closed-set tabs and the Compare tab add.

Ground truth comes from an uploaded COCO instances JSON or label-map PNG, from boxes drawn on the
image (two clicks and a label each), or, for a bundled example, from its shipped annotation. Scoring
reads the tab's stored outcomes, so it runs no model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from playground.core.errors import PlaygroundError
from playground.core.images import load_image
from playground.scoring.metrics import table
from playground.scoring.truth import GroundTruth, from_boxes, load_truth
from playground.scoring.views import LEGEND, draw_truth_boxes, example_annotation, score_outcomes

LEGEND_TEXT = " · ".join(f"{['green', 'red', 'amber'][i]}: {text}" for i, (_, text) in enumerate(LEGEND))


@dataclass(frozen=True)
class DrawnBoxes:
    """Boxes drawn on the image: (label, x1, y1, x2, y2) each, and a first corner awaiting its second."""

    boxes: tuple[tuple[str, float, float, float, float], ...] = ()
    pending: tuple[float, float] | None = field(default=None)


def add_score_panel(
    tab: str, image: gr.Image, state: gr.State, threshold: gr.Slider, own: gr.Checkbox | None = None
) -> None:
    """Lay out the panel under the tab's results and wire it to the tab's image, stored result
    (anything with ``image`` and ``outcomes``) and score threshold; ``own`` ticked: each model's own
    threshold instead of the slider's."""
    with gr.Accordion("Score against ground truth", open=False, elem_id=f"{tab}-score-panel"):
        gr.Markdown(
            "Give the truth for this image: upload a COCO instances JSON (boxes, polygons or RLE) or a "
            "label-map PNG (semantic models), draw boxes below, or use a bundled example's hand-drawn "
            "annotation. AP uses every prediction; precision, recall and tp/fp/fn those above the score threshold."
        )
        with gr.Row():
            truth_file = gr.File(
                label="Ground truth (COCO JSON or label-map PNG)", file_types=[".json", ".png"], elem_id=f"{tab}-truth"
            )
            with gr.Column():
                use_example = gr.Button("Use the example's annotation", size="sm", elem_id=f"{tab}-use-example")
                score_button = gr.Button("Score", variant="primary", elem_id=f"{tab}-score-button")
        with gr.Accordion("…or draw boxes: two clicks and a label each", open=False):
            with gr.Row():
                label = gr.Textbox(value="person", label="Label of the next box", elem_id=f"{tab}-truth-label")
                undo = gr.Button("Undo box", size="sm")
                clear = gr.Button("Clear boxes", size="sm")
            canvas = gr.Image(interactive=False, format="png", height=420, elem_id=f"{tab}-truth-canvas")
            drawn_status = gr.Markdown()
        scores_table = gr.Dataframe(label="Scores, best first", wrap=True, elem_id=f"{tab}-score-table")
        gallery = gr.Gallery(label=LEGEND_TEXT, columns=3, height=420, elem_id=f"{tab}-score-gallery")
        with gr.Accordion("Score JSON (same as the CLI)", open=False):
            scores_json = gr.JSON()
        drawn = gr.State(DrawnBoxes())

    def on_example(image_path):
        path = example_annotation(load_image(image_path).pixels) if image_path else None
        if path is None:
            raise gr.Error("This image is not a bundled example with an annotation; upload truth or draw boxes.")
        return str(path)

    def on_image(image_path):
        if not image_path:
            return None, DrawnBoxes(), ""
        try:
            pixels = load_image(image_path).pixels
        except PlaygroundError:  # the tab's own line says why, next to its results
            return None, DrawnBoxes(), ""
        return pixels, DrawnBoxes(), "Click two corners of a box."

    def on_click(image_path, boxes: DrawnBoxes, name: str, evt: gr.SelectData):
        if not image_path:
            raise gr.Error("Upload an image or pick an example first.")
        x, y = (float(v) for v in evt.index)
        if boxes.pending is None:
            return redraw(image_path, DrawnBoxes(boxes.boxes, (x, y)))
        if not name.strip():
            raise gr.Error("Type a label for the box first, e.g. 'person'.")
        (x0, y0) = boxes.pending
        box = (name.strip(), min(x0, x), min(y0, y), max(x0, x), max(y0, y))
        return redraw(image_path, DrawnBoxes((*boxes.boxes, box)))

    def on_undo(image_path, boxes: DrawnBoxes):
        return redraw(image_path, DrawnBoxes(boxes.boxes[:-1])) if image_path else (None, DrawnBoxes(), "")

    def on_clear(image_path):
        return redraw(image_path, DrawnBoxes()) if image_path else (None, DrawnBoxes(), "")

    def on_score(image_path, result, upload, boxes: DrawnBoxes, score_threshold, own_value=False):
        if result is None:
            raise gr.Error("Run the models first, then score them.")
        try:
            truth = resolve_truth(image_path, result.image, upload, boxes)
            threshold = None if own_value else float(score_threshold)
            panels = score_outcomes(result.image, result.outcomes, truth, threshold)
        except PlaygroundError as error:
            raise gr.Error(str(error)) from None
        headers, rows = table([panel.score for panel in panels])
        return (
            gr.Dataframe(value=rows, headers=headers),
            [(panel.overlay, panel.caption) for panel in panels],
            [panel.score.to_json() for panel in panels],
        )

    private = {"api_visibility": "private"}
    use_example.click(on_example, inputs=image, outputs=truth_file, **private)
    image.change(on_image, inputs=image, outputs=[canvas, drawn, drawn_status], **private)
    canvas.select(on_click, inputs=[image, drawn, label], outputs=[canvas, drawn, drawn_status], **private)
    undo.click(on_undo, inputs=[image, drawn], outputs=[canvas, drawn, drawn_status], **private)
    clear.click(on_clear, inputs=image, outputs=[canvas, drawn, drawn_status], **private)
    score_button.click(
        on_score,
        inputs=[image, state, truth_file, drawn, threshold, *([own] if own is not None else [])],
        outputs=[scores_table, gallery, scores_json],
        **private,
    )


def redraw(image_path: str, boxes: DrawnBoxes) -> tuple:
    """(canvas with the boxes and a pending corner, the new boxes, a status line)."""
    pixels = draw_truth_boxes(load_image(image_path).pixels, list(boxes.boxes), boxes.pending)
    names = ", ".join(box[0] for box in boxes.boxes) or "none yet"
    hint = "Click the second corner." if boxes.pending else "Click the first corner of the next box."
    return pixels, boxes, f"Boxes: {names}. {hint}"


def resolve_truth(image_path: str | None, pixels, upload: str | None, boxes: DrawnBoxes) -> GroundTruth:
    """The uploaded file, else the drawn boxes, else the bundled example's annotation."""
    size = pixels.shape[:2]
    if upload:
        return load_truth(upload, size, file_name=image_path or "")
    if boxes.boxes:
        return from_boxes(list(boxes.boxes), size)
    path = example_annotation(pixels)
    if path is None:
        raise gr.Error("Give the ground truth first: upload a COCO JSON or label-map PNG, or draw boxes.")
    return load_truth(path, size)
