"""The legend strip under a drawn prediction: a colour swatch and a text per entry, and the text
drawing that Explain's figures share. ``PALETTE`` gives masks, boxes and swatches their colours."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
import supervision as sv
from PIL import Image, ImageDraw, ImageFont

PALETTE = sv.ColorPalette.DEFAULT
LegendEntry = tuple[int, str]
"""(palette index of the swatch, text)."""


def colour_hex(colour: int) -> str:
    """``"#rrggbb"`` of a legend entry's palette index."""
    return PALETTE.by_idx(colour).as_hex()


def add_legend(image: np.ndarray, entries: list[LegendEntry], empty_text: str = "nothing found") -> np.ndarray:
    """``image`` (H, W, 3 RGB) with a white strip below listing each entry next to its colour swatch
    (``empty_text`` when there are none)."""
    width = image.shape[1]
    size = max(11, min(18, width // 40))  # swatch side and text height, pixels
    row_height, pad = size + 8, 6
    texts = entries or [(-1, empty_text)]
    rows, x = 1, pad
    positions: list[tuple[int, int]] = []
    for colour, text in texts:
        item_width = (size + 4 if colour >= 0 else 0) + text_width(text, size) + 14
        if x + item_width > width and x > pad:
            rows, x = rows + 1, pad
        positions.append((x, (rows - 1) * row_height + pad))
        x += item_width
    strip = np.full((rows * row_height + 2 * pad - 4, width, 3), 255, np.uint8)
    for (colour, text), (x, y) in zip(texts, positions):
        if colour >= 0:
            cv2.rectangle(strip, (x, y + 2), (x + size, y + 2 + size), PALETTE.by_idx(colour).as_rgb(), -1)
            x += size + 4
        put_text(strip, text, x, y, size)
    return np.concatenate([image, strip], axis=0)


# Legend text: OpenCV's Hershey font, as supervision's tags use; it draws only ASCII (and far faster
# than PIL's FreeType, which dominated the legend's time), so other text falls back to PIL.


def text_width(text: str, size: int) -> int:
    """Width in pixels of ``text`` drawn ``size`` pixels high by `put_text`."""
    if text.isascii():
        (width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, _cv2_scale(size), 1)
        return width
    return int(_pil_font(size).getlength(text))


def put_text(strip: np.ndarray, text: str, x: int, y: int, size: int) -> None:
    """Draw ``text`` in dark grey into ``strip`` (RGB) with its top-left corner near (x, y)."""
    if text.isascii():
        scale = _cv2_scale(size)
        cv2.putText(strip, text, (x, y + size), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 1, cv2.LINE_AA)
        return
    region = strip[y : y + size + 8, x : x + text_width(text, size) + 2]
    tile = Image.fromarray(region)
    ImageDraw.Draw(tile).text((0, 0), text, fill=(20, 20, 20), font=_pil_font(size))
    region[...] = np.asarray(tile)


@cache
def _cv2_scale(size: int) -> float:
    return cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_SIMPLEX, size - 4, 1)


@cache
def _pil_font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)
