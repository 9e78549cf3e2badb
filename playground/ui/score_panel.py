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
from playground.core.registry import REGISTRY, get_spec
from playground.core.weights import published_score
from playground.render.views import published_words
from playground.scoring.metrics import HEADLINE, Score
from playground.scoring.truth import GroundTruth, from_boxes, load_truth
from playground.scoring.views import LEGEND, draw_truth_boxes, example_annotation, score_outcomes
from playground.ui.tables import column_widths

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
        scored_from = gr.Markdown(elem_id=f"{tab}-scored-from")
        # named columns before scoring (a table without headers shows placeholders "1 2 3"); shown from
        # the start: a table first drawn while hidden showed a single row once scored
        scores_table = gr.Dataframe(
            value=[], headers=[*SCORE_COLUMNS[:3], "published"], label="Scores, best first", wrap=True,
            elem_id=f"{tab}-score-table",
        )  # fmt: skip
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
            truth, source = resolve_truth(image_path, result.image, upload, boxes)
            threshold = None if own_value else float(score_threshold)
            panels = score_outcomes(result.image, result.outcomes, truth, threshold)
        except PlaygroundError as error:
            raise gr.Error(str(error)) from None
        headers, rows = score_table([panel.score for panel in panels])
        return (
            source,
            gr.Dataframe(value=rows, headers=headers, column_widths=column_widths(headers, rows)),
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
        outputs=[scored_from, scores_table, gallery, scores_json],
        **private,
    )


def redraw(image_path: str, boxes: DrawnBoxes) -> tuple:
    """(canvas with the boxes and a pending corner, the new boxes, a status line)."""
    pixels = draw_truth_boxes(load_image(image_path).pixels, list(boxes.boxes), boxes.pending)
    names = ", ".join(box[0] for box in boxes.boxes) or "none yet"
    hint = "Click the second corner." if boxes.pending else "Click the first corner of the next box."
    return pixels, boxes, f"Boxes: {names}. {hint}"


def resolve_truth(image_path: str | None, pixels, upload: str | None, boxes: DrawnBoxes) -> tuple[GroundTruth, str]:
    """The uploaded file, else the drawn boxes, else the bundled example's annotation; and a line
    that says which one was scored (and what was left out)."""
    size = pixels.shape[:2]
    if upload:
        line = "Scored against the **ground-truth file**"
        if boxes.boxes:
            line += f" (your {len(boxes.boxes)} drawn box(es) were not used: remove the file to score them)"
        return load_truth(upload, size, file_name=image_path or ""), line + "."
    if boxes.boxes:
        return from_boxes(list(boxes.boxes), size), f"Scored against your **{len(boxes.boxes)} drawn box(es)**."
    path = example_annotation(pixels)
    if path is None:
        raise gr.Error("Give the ground truth first: upload a COCO JSON or label-map PNG, or draw boxes.")
    return load_truth(path, size), "Scored against the **example's annotation**."


SCORE_COLUMNS = ["model", "task", "score on your image", "ap50", "ap75", "precision", "recall", "tp/fp/fn", "SQ", "RQ"]


def score_table(scores: list[Score]) -> tuple[list[str], list[list[object]]]:
    """Headers and rows, best first: the metrics that apply (panoptic SQ and RQ in their own
    columns; a column no model has is left out) and the published score as the captions word it."""
    rows = []
    for s in sorted(scores, key=lambda s: -(s.headline or 0.0)):
        m = s.metrics
        headline = f"{HEADLINE.get(s.task, 'ap')} {s.headline:.3f}" if s.headline is not None else ""
        counts = f"{m['tp']}/{m['fp']}/{m['fn']}" if "tp" in m else ""
        title = get_spec(s.model).title if s.model in REGISTRY else s.model
        words = published_words(published_score(get_spec(s.model))) if s.model in REGISTRY else ""
        rows.append(
            [title, s.task, headline]
            + [m.get(k, "") for k in ("ap50", "ap75", "precision", "recall")]
            + [counts, *(f"{m[k]:.3f}" if k in m else "" for k in ("sq", "rq"))]
            + [words or "—"]
        )
    keep = [i for i in range(len(SCORE_COLUMNS)) if i < 3 or any(row[i] != "" for row in rows)]
    return [SCORE_COLUMNS[i] for i in keep] + ["published"], [[row[i] for i in keep] + [row[-1]] for row in rows]
