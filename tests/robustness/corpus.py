"""The bad-image corpus, made on the fly: each upload a stranger might send, with the right answer.

An image either reaches the models at its upright size (``upright``; with a ``notice`` when it was
changed) or is refused with one line containing ``error``.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112
ROTATE_90_CW = 6
"""EXIF orientation "rotate 90 degrees clockwise to display"."""


@dataclass(frozen=True)
class Case:
    """One upload.

    Attributes:
        name: the file name, with the extension a user would upload it under.
        data: the file's bytes.
        upright: (width, height) the models must see, or None when the upload must be refused.
        error: a fragment of the one-line error, for refused uploads.
        notice: a fragment of the notice, for images that were changed (downscaled).
    """

    name: str
    data: bytes
    upright: tuple[int, int] | None = None
    error: str = ""
    notice: str = ""

    def write(self, folder: Path) -> Path:
        path = folder / self.name
        path.write_bytes(self.data)
        return path


def gradient(width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8: red grows to the right, green downwards."""
    x = np.linspace(0, 255, width, dtype=np.uint8)
    y = np.linspace(0, 255, height, dtype=np.uint8)
    blue = np.full((height, width), 90, np.uint8)
    return np.stack([np.tile(x, (height, 1)), np.tile(y[:, None], (1, width)), blue], -1)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but holds almost no data (a bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def upright_top_red(width: int = 32, height: int = 64) -> np.ndarray:
    """(height, width, 3) uint8: the top half red, the bottom half blue (to check orientation)."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[: height // 2, :, 0] = 255
    pixels[height // 2 :, :, 2] = 255
    return pixels


def exif_rotated_jpeg() -> bytes:
    """`upright_top_red` stored lying on its side, with the EXIF tag that stands it up again."""
    stored = Image.fromarray(upright_top_red()).rotate(90, expand=True)  # counter-clockwise: 64x32
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATE_90_CW
    return encode(stored, "JPEG", quality=95, exif=exif)


def animated_gif() -> bytes:
    frames = [Image.fromarray(np.roll(gradient(40, 30), shift, axis=1)).convert("P") for shift in (0, 10, 20)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def palette_with_transparency() -> bytes:
    image = Image.fromarray(gradient(40, 30)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(image, "PNG", transparency=0)


def sixteen_bit_png() -> bytes:
    pixels = (np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)
    return encode(Image.fromarray(pixels, mode="I;16"), "PNG")


def make_cases() -> list[Case]:
    """Every upload of the corpus (about 1 MB in all)."""
    jpeg = encode(Image.fromarray(gradient(64, 48)), "JPEG", quality=90)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48"><rect width="64" height="48"/></svg>'
    rgb = Image.fromarray(gradient(40, 30))
    return [
        Case("empty.png", b"", error="empty (0 bytes)"),
        Case("truncated.jpg", jpeg[: len(jpeg) // 2], error="truncated"),
        Case("notes.png", b"this is a text file, not a picture\n", error="not an image format"),
        Case("drawing.svg", svg, error="not an image format"),
        Case("animated.gif", animated_gif(), upright=(40, 30)),
        Case("deep.png", sixteen_bit_png(), upright=(40, 30)),
        Case("print.jpg", encode(rgb.convert("CMYK"), "JPEG"), upright=(40, 30)),
        Case("palette.png", palette_with_transparency(), upright=(40, 30)),
        Case("alpha.png", encode(rgb.convert("RGBA"), "PNG"), upright=(40, 30)),
        Case("gray.png", encode(rgb.convert("L"), "PNG"), upright=(40, 30)),
        Case("dot.png", encode(Image.new("RGB", (1, 1), "red"), "PNG"), error="at least 8"),
        Case("line.png", encode(Image.new("RGB", (1, 10000), "red"), "PNG"), error="at least 8"),
        Case("bomb.png", png_header_claiming(50000, 50000), error="megapixels"),
        Case("rotated.jpg", exif_rotated_jpeg(), upright=(32, 64)),
        Case(
            "huge.jpg",
            encode(Image.fromarray(gradient(4000, 3000)), "JPEG", quality=80),
            upright=(2048, 1536),
            notice="Downscaled from 4000x3000 to 2048x1536",
        ),
    ]


def assert_one_clear_line(message: str, fragment: str) -> None:
    """``message`` is a single line that says what is wrong (contains ``fragment``), not a traceback."""
    text = message.strip()
    assert fragment in text, f"expected {fragment!r} in {text!r}"
    assert "\n" not in text and "Traceback" not in text, text
