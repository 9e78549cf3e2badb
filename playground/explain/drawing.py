"""Drawing pieces of the Explain views: heat maps, class colours, titles, boxes, bar charts.

Every function takes and returns RGB uint8 numpy images; nothing here imports torch.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw

from playground.render.legend import PALETTE, put_text, text_width
from playground.render.views import side_by_side

SIDE = 384
"""Longer side (pixels) of the image in each view."""


def fit(image: np.ndarray, side: int = SIDE) -> np.ndarray:
    """``image`` resized (area) so its longer side is ``side`` pixels."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    return cv2.resize(
        image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
    )


def resize(values: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """(h, w) array -> (H, W) float32, nearest (the grid shows) or bilinear (half-pixel centres)."""
    mode = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.resize(values.astype(np.float32), (size[1], size[0]), interpolation=mode)


def heat(values: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """(H, W) values -> (H, W, 3) uint8 viridis, scaled from ``low`` to ``high`` (default: min, max)."""
    low = float(values.min()) if low is None else low
    high = float(values.max()) if high is None else high
    scaled = np.clip((values - low) / max(high - low, 1e-12), 0, 1)
    return cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)[..., ::-1].copy()


def over(image: np.ndarray, values: np.ndarray, nearest: bool = False, alpha: float = 0.6) -> np.ndarray:
    """A heat map of (h, w) ``values`` laid over ``image`` (H, W, 3)."""
    coloured = heat(resize(values, image.shape[:2], nearest))
    return (image * (1 - alpha) + coloured * alpha).astype(np.uint8)


def classes(label_map: np.ndarray) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8, one palette colour per id."""
    table = np.array([PALETTE.by_idx(i).as_rgb() for i in range(256)], np.uint8)
    return table[label_map.astype(np.int64) % 256]


def titled(image: np.ndarray, text: str, size: int = 16) -> np.ndarray:
    """``image`` with a white strip above it holding ``text``."""
    width = max(image.shape[1], text_width(text, size) + 8)
    strip = np.full((size + 10, width, 3), 255, np.uint8)
    put_text(strip, text, 4, 2, size)
    body = np.full((image.shape[0], width, 3), 255, np.uint8)
    body[:, : image.shape[1]] = image
    return np.concatenate([strip, body])


def boxes_drawn(image: np.ndarray, boxes: np.ndarray, size: tuple[int, int], colour=(255, 60, 60)) -> np.ndarray:
    """``boxes`` (N, 4) XYXY in a ``size`` (H, W) image, drawn on ``image`` (resized view)."""
    scale = image.shape[0] / size[0]
    canvas = Image.fromarray(image)
    pen = ImageDraw.Draw(canvas)
    for box in np.asarray(boxes, np.float32).reshape(-1, 4) * scale:
        pen.rectangle(box.tolist(), outline=colour, width=2)
    return np.asarray(canvas)


def bars(labels: list[str], values: np.ndarray, width: int = 360, log: bool = False, size: int = 14) -> np.ndarray:
    """A horizontal bar chart: one row per label, bar length ``values`` (0..1, or log-scaled counts)."""
    shown = np.log10(1 + values) / max(np.log10(1 + values.max()), 1e-12) if log else np.clip(values, 0, 1)
    label_width = max([text_width(label, size) for label in labels] + [10]) + 10
    row = size + 6
    chart = np.full((row * len(labels) + 4, label_width + width + 70, 3), 255, np.uint8)
    for index, (label, value, length) in enumerate(zip(labels, values, shown)):
        y = index * row + 2
        put_text(chart, label, 4, y - 2, size)
        chart[y + 2 : y + row - 2, label_width : label_width + max(1, int(length * width))] = (70, 110, 200)
        number = f"{int(value)}" if log else f"{value:.2f}"
        put_text(chart, number, label_width + int(length * width) + 6, y - 2, size)
    return chart


def colour_scale(width: int, low: str = "low", high: str = "high", size: int = 14) -> np.ndarray:
    """A white strip with the heat maps' viridis bar from ``low`` (left) to ``high`` (right), labelled."""
    bar_width = max(40, width - text_width(low, size) - text_width(high, size) - 24)
    strip = np.full((size + 12, max(width, bar_width + 60), 3), 255, np.uint8)
    put_text(strip, low, 4, 2, size)
    x = text_width(low, size) + 12
    ramp = heat(np.tile(np.linspace(0, 1, bar_width, dtype=np.float32), (size - 2, 1)), 0, 1)
    strip[5 : 5 + ramp.shape[0], x : x + bar_width] = ramp
    put_text(strip, high, x + bar_width + 6, 2, size)
    return strip


def with_scale(image: np.ndarray, low: str = "low", high: str = "high") -> np.ndarray:
    """``image`` with its colour scale below it (`colour_scale`), as wide as the image."""
    strip = colour_scale(image.shape[1], low, high)
    return stacked([image, strip], gap=2)


def stacked(images: list[np.ndarray], gap: int = 8) -> np.ndarray:
    """Panels (H_i, W_i, 3) uint8 one above the other, left-aligned on white, ``gap`` pixels apart:
    `side_by_side` on the panels turned on their side (rows and columns swapped), and back."""
    row = side_by_side([image.transpose(1, 0, 2) for image in images], gap)
    return np.ascontiguousarray(row.transpose(1, 0, 2))
