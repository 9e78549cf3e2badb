"""What a panel shows for one model's outcome: overlay, caption and table rows.

Pure functions of stored outcomes and view options, so every slider, toggle and tab re-renders
from here without a forward pass. Nothing here imports gradio or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from playground.core.prompts import PromptHistory
from playground.core.registry import REGISTRY, get_spec
from playground.core.types import BACKGROUND_LABELS, Prediction
from playground.core.weights import published_score
from playground.render.export import to_json
from playground.runtime.service import Outcome


@dataclass(frozen=True)
class ViewOptions:
    """How to show stored predictions: none of these needs the model again.

    Attributes:
        score_threshold: minimum instance score in [0, 1] for every model, or None for each model's
            own (`ModelSpec.default_score_threshold`): see `threshold_for`.
        thresholds: score thresholds of particular models (registry key -> [0, 1]), over the above.
        mask_threshold: probability in [0, 1] at which soft masks become masks.
        opacity: mask opacity in [0, 1].
        hidden_labels: class names not drawn.
    """

    score_threshold: float | None = 0.5
    mask_threshold: float = 0.5
    opacity: float = 0.5
    hidden_labels: frozenset[str] = field(default_factory=frozenset)
    thresholds: dict[str, float] = field(default_factory=dict, hash=False)

    def threshold_for(self, key: str) -> float:
        """The score threshold ``key``'s results are shown at: its entry in ``thresholds``, else
        ``score_threshold``, else (None) the model's own (0.0 for a model outside the registry, e.g.
        a result file's)."""
        if key in self.thresholds:
            return self.thresholds[key]
        if self.score_threshold is not None:
            return self.score_threshold
        spec = REGISTRY.get(key)
        return spec.default_score_threshold if spec is not None else 0.0


@dataclass(frozen=True)
class Panel:
    """One model's panel.

    Attributes:
        key: registry key of the model.
        overlay: (H', W, 3) uint8, the image with what is shown drawn on it (and, if asked, a legend strip).
        title: the model's title.
        details: weights, state and timings (or the error), e.g. ``"tiny weights · warm · forward 12 ms"``.
        hint: why nothing is shown and what to do about it, or "".
        legend: ("#rrggbb", text) per class or segment drawn.
        result: the JSON of what is shown.
    """

    key: str
    overlay: np.ndarray
    title: str
    details: str
    hint: str
    legend: list[tuple[str, str]]
    result: dict

    @property
    def caption(self) -> str:
        return f"{self.title} · {self.details}" if self.details else self.title

    @property
    def error(self) -> bool:
        return "error" in self.result


def shown_indices(prediction: Prediction, options: ViewOptions) -> np.ndarray:
    """Indices of the instances that pass the view's score threshold for ``prediction.model``, without
    background or hidden classes."""
    dropped = BACKGROUND_LABELS | options.hidden_labels
    keep = prediction.scores >= options.threshold_for(prediction.model)
    keep &= np.array([name not in dropped for name in prediction.labels], bool)
    return np.flatnonzero(keep)


def shown_prediction(prediction: Prediction, options: ViewOptions) -> Prediction:
    """The instances that pass the view's mask and score thresholds, without background or hidden classes."""
    chosen = shown_indices(prediction, options)
    kept = prediction if len(chosen) == len(prediction) else prediction[chosen]  # no copy when nothing is dropped
    return kept.with_mask_threshold(options.mask_threshold)


def make_panel(image: np.ndarray, outcome: Outcome, options: ViewOptions, legend: bool = True) -> Panel:
    """The panel for ``outcome``: its overlay, or the image greyed out with the error as details.

    ``legend`` bakes the legend strip into the overlay (for files); a page shows `Panel.legend` instead.
    """
    spec = get_spec(outcome.key)
    words = published_words(published_score(spec))
    title = f"{spec.title} ({spec.year}; {words})" if words else f"{spec.title} ({spec.year})"
    if outcome.prediction is None:
        grey = image.mean(axis=2, keepdims=True).astype(np.uint8)
        dimmed = (np.repeat(grey, 3, axis=2) * 0.5 + 64).astype(np.uint8)
        return Panel(
            outcome.key, dimmed, title, outcome.error or "", "", [], {"model": outcome.key, "error": outcome.error}
        )
    from playground.render.legend import add_legend, colour_hex  # see `draw`
    from playground.render.overlay import crop_areas, mask_crops, render_with_legend

    # Drawn from the stored prediction by index, masks binarised inside their extents: a slider move
    # copies no image-sized mask stack (the JSON takes its mask areas from the same crops).
    stored, chosen = outcome.prediction, shown_indices(outcome.prediction, options)
    shown = replace(stored, masks=None, mask_probs=None)[chosen]
    hint = empty_hint(stored, shown, options)
    crops = mask_crops(stored, chosen, options.mask_threshold)
    overlay, entries = render_with_legend(
        image, stored, options.opacity, options.hidden_labels, chosen, options.mask_threshold, crops
    )
    if legend:
        overlay = add_legend(overlay, entries, hint or "nothing found")
    return Panel(
        outcome.key,
        overlay,
        title,
        details(outcome.prediction),
        hint,
        [(colour_hex(colour), text) for colour, text in entries],
        to_json(
            shown,
            crop_areas(crops, len(chosen)) if stored.masks is not None or stored.mask_probs is not None else None,
            options.threshold_for(stored.model),
        ),
    )


TV_METRICS = {"box_map": "box AP", "mask_map": "mask AP", "miou": "mIoU", "pixel_acc": "pixel accuracy"}
"""torchvision's metric names, as a caption says them."""


def published_words(published: str) -> str:
    """A model's published score (`published_score`) as a caption says it: "box AP 46.7 on COCO
    val2017", "PQ 43.4, COCO 2017 val (model card)"; "" where there is no score to give (none
    confirmed, or a pipeline whose parts have theirs). The record itself keeps its notes."""
    if not published or published.startswith(("unconfirmed", "none (a composite)", "none: its parts")):
        return ""
    text = published.removeprefix("none: ").removeprefix("video: ")
    text = text.replace(" (torchvision weights meta)", "").replace("; model card not confirmed", "")
    text = text.replace("; no COCO score", "").replace("COCO-val2017-VOC-labels", "COCO val2017 (VOC classes)")
    text = text.replace("COCO-val2017", "COCO val2017")
    if text == "not in the torchvision weights meta":
        return ""
    for name, words in TV_METRICS.items():
        text = text.replace(f"{name} ", f"{words} ")
    return text


def empty_hint(prediction: Prediction, shown: Prediction, options: ViewOptions) -> str:
    """Why ``shown`` (``prediction`` as the view shows it) shows nothing, and what to do; "" if it shows something."""
    if len(shown):
        return ""
    if prediction.semantic_map is not None and not len(prediction):  # a class map: no score applies
        classes = [name for name in prediction.semantic_areas() if name not in BACKGROUND_LABELS]
        if any(name not in options.hidden_labels for name in classes):
            return ""
        return "every class found is hidden: tick it under Classes shown" if classes else "only background found"
    real = prediction.filtered(labels=frozenset(set(prediction.labels) - BACKGROUND_LABELS))
    if not len(real):
        return "only background or N/A classes found" if len(prediction) else "nothing found"
    threshold = options.threshold_for(prediction.model)
    if (real.scores >= threshold).any():
        return "every class found is hidden: tick it under Classes shown"
    best = float(real.scores.max())
    digits = 2  # enough digits that the best score never reads as the threshold it is under
    while digits < 6 and f"{best:.{digits}f}" == f"{threshold:.{digits}f}":
        digits += 1
    return f"nothing ≥ {threshold:.{digits}f} (best {best:.{digits}f}): lower the score"


def draw(
    image: np.ndarray,
    prediction: Prediction,
    opacity: float = 0.5,
    hidden_labels: frozenset[str] = frozenset(),
    legend: bool = True,
) -> np.ndarray:
    """`playground.render.overlay.render`, imported on first use: supervision takes over a second to
    import, and the app imports this module before it serves its first page."""
    from playground.render.overlay import render

    return render(image, prediction, opacity=opacity, hidden_labels=hidden_labels, legend=legend)


def details(prediction: Prediction) -> str:
    """``"random weights · bf16 · cold · load 700 · forward 120 · post 3 ms"``."""
    timings = prediction.timings_ms
    parts = []
    if prediction.weights != "pretrained":
        parts.append(f"{prediction.weights} weights")
    parts += [prediction.precision, prediction.state]
    if prediction.cold:
        parts.append(f"load {timings.get('load', 0):.0f}")
    parts.append(f"forward {timings.get('forward', 0):.0f}")
    parts.append(f"post {timings.get('postprocess', 0):.0f} ms")
    return " · ".join(parts)


def present_labels(outcomes: list[Outcome], score_threshold: float | None = 0.0) -> list[str]:
    """Every class name the outcomes show at ``score_threshold`` (None: each model's own; instances
    and semantic classes), background and "N/A" left out, sorted."""
    names: set[str] = set()
    options = ViewOptions(score_threshold=score_threshold)
    for outcome in outcomes:
        if outcome.prediction is not None:
            prediction = outcome.prediction
            names.update(prediction.filtered(options.threshold_for(prediction.model)).labels)
            names.update(prediction.semantic_areas())
    return sorted(names - BACKGROUND_LABELS)


def table_rows(panels: list[Panel]) -> list[list[object]]:
    """Rows of (model, label, score, box or area %) for what the panels show."""
    rows: list[list[object]] = []
    for panel in panels:
        for instance in panel.result.get("instances", []):
            box = ", ".join(f"{v:.0f}" for v in instance["box"])
            rows.append([panel.key, instance["label"], round(instance["score"], 3), box])
        for label, area in panel.result.get("semantic", {}).items():
            rows.append([panel.key, label, None, f"{100 * area:.1f}% of image"])
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
