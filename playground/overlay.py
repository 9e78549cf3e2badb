"""Draw a `Prediction` on its image with supervision's annotators, plus a legend strip.

One composited RGB image per view: semantic maps become one mask per class present, instances get
masks, boxes and "label score" tags. Colours follow the class id, so a class keeps its colour
across models that share a label space.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import supervision as sv
from PIL import Image, ImageDraw, ImageFont

from playground.types import Prediction

PALETTE = sv.ColorPalette.DEFAULT
BACKGROUND_LABELS = frozenset({"__background__", "background", "N/A"})
"""Semantic classes left undrawn: painting the background would hide the photo."""


def render(
    image: np.ndarray,
    prediction: Prediction,
    opacity: float = 0.5,
    hidden_labels: frozenset[str] = frozenset(),
    legend: bool = True,
) -> np.ndarray:
    """(H, W, 3) uint8 RGB with ``prediction`` drawn on it; a legend strip is added below.

    Args:
        image: the image the prediction was made on.
        prediction: already filtered by score; ``hidden_labels`` hides classes on top of that.
        opacity: mask opacity in [0, 1].
    """
    scene = np.ascontiguousarray(image[..., ::-1])  # supervision draws with OpenCV, in BGR
    semantic = semantic_detections(prediction, hidden_labels)
    if len(semantic):
        scene = sv.MaskAnnotator(color=PALETTE, opacity=opacity).annotate(scene, semantic)
    instances = instance_detections(prediction, hidden_labels)
    if len(instances):
        if instances.mask is not None:
            scene = sv.MaskAnnotator(color=PALETTE, opacity=opacity).annotate(scene, instances)
        scene = sv.BoxAnnotator(color=PALETTE, thickness=2).annotate(scene, instances)
        tags = [f"{name} {score:.2f}" for name, score in zip(instances.data["label"], instances.confidence)]
        label_annotator = sv.LabelAnnotator(color=PALETTE, text_scale=0.45, text_padding=4, smart_position=True)
        scene = label_annotator.annotate(scene, instances, labels=tags)
    rgb = np.ascontiguousarray(scene[..., ::-1])
    if not legend:
        return rgb
    return add_legend(rgb, legend_entries(prediction, hidden_labels))


def semantic_detections(prediction: Prediction, hidden_labels: frozenset[str]) -> sv.Detections:
    """One supervision mask per foreground class present in the semantic map."""
    if prediction.semantic_map is None:
        return sv.Detections.empty()
    class_ids = [
        int(c)
        for c in np.unique(prediction.semantic_map)
        if prediction.label_name(int(c)) not in BACKGROUND_LABELS | hidden_labels
    ]
    if not class_ids:
        return sv.Detections.empty()
    masks = np.stack([prediction.semantic_map == c for c in class_ids])
    return sv.Detections(
        xyxy=sv.mask_to_xyxy(masks).astype(np.float32),
        mask=masks,
        class_id=np.array(class_ids),
    )


def instance_detections(prediction: Prediction, hidden_labels: frozenset[str]) -> sv.Detections:
    """The prediction's instances as supervision detections, with their names in ``data["label"]``."""
    keep = np.array([name not in hidden_labels for name in prediction.labels], bool)
    shown = prediction[keep] if len(prediction) else prediction
    if not len(shown):
        return sv.Detections.empty()
    return sv.Detections(
        xyxy=shown.boxes,
        mask=shown.masks,
        confidence=shown.scores,
        class_id=shown.class_ids,
        data={"label": np.array(shown.labels)},
    )


def legend_entries(prediction: Prediction, hidden_labels: frozenset[str]) -> list[tuple[int, str]]:
    """(class id, text) for each class drawn, in order of first appearance."""
    entries: dict[int, str] = {}
    if prediction.semantic_map is not None:
        ids, counts = np.unique(prediction.semantic_map, return_counts=True)
        for class_id, count in sorted(zip(ids.tolist(), counts.tolist()), key=lambda item: -item[1]):
            name = prediction.label_name(class_id)
            if name not in BACKGROUND_LABELS | hidden_labels:
                entries[class_id] = f"{name} {100 * count / prediction.semantic_map.size:.1f}%"
    for class_id, name in zip(prediction.class_ids.tolist(), prediction.labels):
        if name not in hidden_labels:
            count = int(np.sum(prediction.class_ids == class_id))
            entries.setdefault(class_id, f"{name} x{count}")
    return list(entries.items())


@cache
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def add_legend(image: np.ndarray, entries: list[tuple[int, str]]) -> np.ndarray:
    """``image`` with a white strip below listing each entry next to its class colour swatch."""
    width = image.shape[1]
    size = max(11, min(18, width // 40))
    font = _font(size)
    row_height, pad = size + 8, 6
    texts = entries or [(-1, "nothing found above the threshold")]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    rows, x = 1, pad
    positions: list[tuple[int, int]] = []
    for _, text in texts:
        item_width = size + 4 + int(probe.textlength(text, font=font)) + 14
        if x + item_width > width and x > pad:
            rows, x = rows + 1, pad
        positions.append((x, (rows - 1) * row_height + pad))
        x += item_width
    strip = Image.new("RGB", (width, rows * row_height + 2 * pad - 4), "white")
    draw = ImageDraw.Draw(strip)
    for (class_id, text), (x, y) in zip(texts, positions):
        if class_id >= 0:
            draw.rectangle([x, y + 2, x + size, y + 2 + size], fill=PALETTE.by_idx(class_id).as_rgb())
            x += size + 4
        draw.text((x, y), text, fill=(20, 20, 20), font=font)
    return np.concatenate([image, np.asarray(strip)], axis=0)
