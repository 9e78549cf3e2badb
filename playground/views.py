"""What a panel shows for one model's outcome: overlay, caption and table rows.

Pure functions of stored outcomes and view options, so every slider, toggle and tab re-renders
from here without a forward pass. Nothing here imports gradio or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from playground.core.prompts import PromptHistory
from playground.core.registry import get_spec
from playground.core.types import Prediction
from playground.export import to_json
from playground.service import Outcome


@dataclass(frozen=True)
class ViewOptions:
    """How to show stored predictions: none of these needs the model again.

    Attributes:
        score_threshold: minimum instance score in [0, 1].
        mask_threshold: probability in [0, 1] at which soft masks become masks.
        opacity: mask opacity in [0, 1].
        hidden_labels: class names not drawn.
    """

    score_threshold: float = 0.5
    mask_threshold: float = 0.5
    opacity: float = 0.5
    hidden_labels: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Panel:
    """One model's panel: an (H', W, 3) uint8 overlay, its caption, and the JSON of what it shows."""

    key: str
    overlay: np.ndarray
    caption: str
    result: dict


def shown_prediction(prediction: Prediction, options: ViewOptions) -> Prediction:
    """The instances that pass the view's mask and score thresholds."""
    return prediction.filtered(options.score_threshold).with_mask_threshold(options.mask_threshold)


def make_panel(image: np.ndarray, outcome: Outcome, options: ViewOptions) -> Panel:
    """The panel for ``outcome``: its overlay, or the image greyed out with the error as caption."""
    title = get_spec(outcome.key).title
    if outcome.prediction is None:
        grey = image.mean(axis=2, keepdims=True).astype(np.uint8)
        dimmed = (np.repeat(grey, 3, axis=2) * 0.5 + 64).astype(np.uint8)
        return Panel(outcome.key, dimmed, f"{title}: {outcome.error}", {"model": outcome.key, "error": outcome.error})
    shown = shown_prediction(outcome.prediction, options)
    overlay = draw(image, shown, opacity=options.opacity, hidden_labels=options.hidden_labels)
    return Panel(outcome.key, overlay, caption(title, outcome.prediction), to_json(shown))


def draw(
    image: np.ndarray,
    prediction: Prediction,
    opacity: float = 0.5,
    hidden_labels: frozenset[str] = frozenset(),
    legend: bool = True,
) -> np.ndarray:
    """`playground.overlay.render`, imported on first use: supervision takes over a second to
    import, and the app imports this module before it serves its first page."""
    from playground.overlay import render

    return render(image, prediction, opacity=opacity, hidden_labels=hidden_labels, legend=legend)


def caption(title: str, prediction: Prediction) -> str:
    """``"DETR ResNet-50 (2020; box AP 42.0, COCO 2017 val (model card)) · random weights · bf16 · cold ·
    load 700 · forward 120 · post 3 ms"``."""
    from playground.core.weights import published_score

    timings = prediction.timings_ms
    state = prediction.state
    spec = get_spec(prediction.model)
    parts = [f"{title} ({spec.year}; {published_score(spec)})"]
    if prediction.weights != "pretrained":
        parts.append(f"{prediction.weights} weights")
    parts += [prediction.precision, state]
    if prediction.cold:
        parts.append(f"load {timings.get('load', 0):.0f}")
    parts.append(f"forward {timings.get('forward', 0):.0f}")
    parts.append(f"post {timings.get('postprocess', 0):.0f} ms")
    return " · ".join(parts)


def found_labels(outcomes: list[Outcome]) -> list[str]:
    """Every class name the outcomes found (instances and semantic classes), sorted."""
    names: set[str] = set()
    for outcome in outcomes:
        if outcome.prediction is not None:
            names.update(outcome.prediction.labels)
            names.update(outcome.prediction.semantic_areas())
    return sorted(names)


def table_rows(panels: list[Panel]) -> list[list[object]]:
    """Rows of (model, label, score, box or area %) for what the panels show."""
    rows: list[list[object]] = []
    for panel in panels:
        for instance in panel.result.get("instances", []):
            box = ", ".join(f"{v:.0f}" for v in instance["box"])
            rows.append([panel.key, instance["label"], round(instance["score"], 3), box])
        for label, area in panel.result.get("semantic", {}).items():
            rows.append([panel.key, label, None, f"{100 * area:.1f}% of image"])
        if "error" in panel.result:
            rows.append([panel.key, "error", None, panel.result["error"]])
    return rows


def side_by_side(images: list[np.ndarray], gap: int = 8) -> np.ndarray:
    """Panels (H_i, W_i, 3) uint8 in one row, top-aligned on white, ``gap`` pixels apart."""
    height = max(image.shape[0] for image in images)
    width = sum(image.shape[1] for image in images) + gap * (len(images) - 1)
    canvas = np.full((height, width, 3), 255, np.uint8)
    x = 0
    for image in images:
        canvas[: image.shape[0], x : x + image.shape[1]] = image
        x += image.shape[1] + gap
    return canvas


def draw_prompts(image: np.ndarray, history: PromptHistory) -> np.ndarray:
    """(H, W, 3) uint8 with the clicks drawn: green foreground and red background dots, the box,
    and a pending box corner as a hollow yellow ring."""
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    radius = max(4, min(image.shape[:2]) // 80)
    if history.box is not None:
        draw.rectangle(history.box, outline=(255, 215, 0), width=max(2, radius // 2))
    for x, y, label in history.points:
        colour = (40, 220, 80) if label else (235, 50, 50)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour, outline=(255, 255, 255), width=2)
    if history.pending_corner is not None:
        x, y = history.pending_corner
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=(255, 215, 0), width=3)
    return np.asarray(canvas)
