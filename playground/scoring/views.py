"""Scores as the UI and the API show them: stored outcomes scored against truth, and each model's
true positives, false positives and misses drawn on the image in three colours with a legend.

Pure functions of stored outcomes: scoring runs no model. Nothing here imports gradio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from playground.core.images import image_digest, load_image
from playground.core.registry import get_spec
from playground.runtime.service import Outcome
from playground.scoring.metrics import Matches, Score, score
from playground.scoring.truth import GroundTruth

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
ANNOTATIONS_DIR = EXAMPLES_DIR / "annotations"
TP, FP, MISS = (40, 200, 90), (230, 50, 50), (255, 176, 0)
LEGEND = ((TP, "true positive"), (FP, "false positive"), (MISS, "missed"))


@dataclass(frozen=True)
class ScoredPanel:
    """One model's score and its (H + legend, W, 3) uint8 drawing."""

    score: Score
    overlay: np.ndarray
    caption: str


def example_annotation(pixels: np.ndarray) -> Path | None:
    """The shipped annotation of the bundled example whose pixels these are, if there is one."""
    digest = image_digest(pixels)
    for path in sorted(ANNOTATIONS_DIR.glob("*.json")):
        example = EXAMPLES_DIR / f"{path.stem}.jpg"
        if example.exists() and image_digest(load_image(example).pixels) == digest:
            return path
    return None


def score_outcomes(
    image: np.ndarray, outcomes: list[Outcome], truth: GroundTruth, threshold: float | None
) -> list[ScoredPanel]:
    """Each successful outcome scored (AP over all its predictions, tp/fp/fn at ``threshold``, or at
    each model's own when it is None) and drawn, best first by its task's headline metric."""
    panels = []
    for outcome in outcomes:
        if outcome.prediction is None:
            continue
        own = get_spec(outcome.key).default_score_threshold
        result = score(outcome.prediction, truth, threshold=own if threshold is None else threshold)
        headline = f"{result.headline:.3f}" if result.headline is not None else "—"
        caption = f"{get_spec(outcome.key).title}: {headline} on your image"
        if result.published is not None:
            caption += f" · published {result.published}"
        panels.append(ScoredPanel(result, draw_matches(image, result.matches), caption))
    return sorted(panels, key=lambda panel: -(panel.score.headline or 0.0))


def draw_matches(image: np.ndarray, matches: Matches) -> np.ndarray:
    """(H + legend, W, 3) uint8: pixels tinted and boxes outlined green (true positive), red (false
    positive) or amber (missed truth), with a legend strip and counts below."""
    canvas = image.astype(np.float32)
    if matches.pixels is not None:
        for colour, mask in zip((TP, FP, MISS), matches.pixels):
            canvas[mask] = canvas[mask] * 0.45 + np.array(colour, np.float32) * 0.55
    picture = Image.fromarray(canvas.astype(np.uint8))
    pen = ImageDraw.Draw(picture)
    width = max(2, min(image.shape[:2]) // 150)
    for colour, boxes in ((MISS, matches.fn), (FP, matches.fp), (TP, matches.tp)):
        for box in boxes:
            pen.rectangle([float(v) for v in box], outline=colour, width=width)
    counts = (len(matches.tp), len(matches.fp), len(matches.fn)) if matches.pixels is None else None
    return np.vstack([np.asarray(picture), legend_strip(image.shape[1], counts)])


def legend_strip(width: int, counts: tuple[int, int, int] | None) -> np.ndarray:
    strip = Image.new("RGB", (width, 24), (255, 255, 255))
    pen = ImageDraw.Draw(strip)
    x = 6
    for index, (colour, text) in enumerate(LEGEND):
        label = f"{text} {counts[index]}" if counts else text
        pen.rectangle([x, 6, x + 12, 18], fill=colour)
        pen.text((x + 16, 6), label, fill=(0, 0, 0))
        x += 24 + int(pen.textlength(label))
    return np.asarray(strip)


def draw_truth_boxes(
    image: np.ndarray, boxes: list[tuple[str, float, float, float, float]], pending: tuple[float, float] | None
) -> np.ndarray:
    """(H, W, 3) uint8 with drawn truth boxes outlined in amber with their labels, and a pending
    first corner as a ring."""
    picture = Image.fromarray(image)
    pen = ImageDraw.Draw(picture)
    width = max(2, min(image.shape[:2]) // 150)
    for label, x1, y1, x2, y2 in boxes:
        pen.rectangle([x1, y1, x2, y2], outline=MISS, width=width)
        pen.text((x1 + 4, y1 + 2), label, fill=MISS)
    if pending is not None:
        x, y = pending
        radius = max(4, min(image.shape[:2]) // 80)
        pen.ellipse((x - radius, y - radius, x + radius, y + radius), outline=MISS, width=3)
    return np.asarray(picture)
