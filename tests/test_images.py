"""load_image: every odd upload becomes an upright RGB uint8 array or one clear BadImageError."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from playground.core.errors import BadImageError
from playground.core.images import MAX_SIDE, image_digest, load_image


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def gradient(width: int = 64, height: int = 48) -> np.ndarray:
    x = np.linspace(0, 255, width, dtype=np.uint8)
    y = np.linspace(0, 255, height, dtype=np.uint8)
    return np.stack(
        [np.tile(x, (height, 1)), np.tile(y[:, None], (1, width)), np.full((height, width), 128, np.uint8)], -1
    )


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but holds almost no data (a bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def test_rgb_png_round_trips_exactly():
    pixels = gradient()
    loaded = load_image(encode(Image.fromarray(pixels), "PNG"))
    np.testing.assert_array_equal(loaded.pixels, pixels)
    assert loaded.notice == ""


@pytest.mark.parametrize(
    "make",
    [
        lambda p: Image.fromarray(p).convert("L"),
        lambda p: Image.fromarray(p).convert("RGBA"),
        lambda p: Image.fromarray(p).convert("CMYK"),
        lambda p: Image.fromarray(p).convert("P"),
    ],
    ids=["grayscale", "rgba", "cmyk", "palette"],
)
def test_odd_modes_become_rgb(make):
    fmt = "JPEG" if make(gradient()).mode == "CMYK" else "PNG"
    loaded = load_image(encode(make(gradient()), fmt))
    assert loaded.pixels.shape == (48, 64, 3) and loaded.pixels.dtype == np.uint8


def test_sixteen_bit_png_is_scaled_not_clipped():
    wide = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16)
    loaded = load_image(encode(Image.fromarray(wide), "PNG"))
    assert loaded.pixels.min() == 0 and loaded.pixels.max() == 255
    assert len(np.unique(loaded.pixels)) > 200  # a full ramp, not a saturated blob


def test_transparent_palette_composites_on_white():
    image = Image.new("P", (16, 16), 0)
    image.putpalette([255, 0, 0, 0, 0, 255])
    image.info["transparency"] = 0
    loaded = load_image(encode(image, "PNG", transparency=0))
    assert (loaded.pixels == 255).all()


def test_exif_rotated_jpeg_is_upright():
    tall = np.zeros((60, 30, 3), np.uint8)
    tall[:10] = 255  # a white band at the top of the upright image
    stored = Image.fromarray(tall).transpose(Image.Transpose.ROTATE_90)  # stored sideways: 30 x 60
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 clockwise to display
    loaded = load_image(encode(stored, "JPEG", exif=exif.tobytes(), quality=95))
    assert loaded.pixels.shape[:2] == (60, 30)
    assert loaded.pixels[:8].mean() > 200 and loaded.pixels[20:].mean() < 40


def test_animated_gif_uses_its_first_frame():
    frames = [Image.new("RGB", (20, 20), color) for color in ("red", "blue")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    pixels = load_image(data).pixels
    assert pixels[..., 0].mean() > 200 and pixels[..., 2].mean() < 50


def test_huge_image_is_downscaled_with_a_notice():
    loaded = load_image(np.zeros((3000, 4500, 3), np.uint8))
    assert max(loaded.pixels.shape[:2]) == MAX_SIDE
    assert "Downscaled from 4500x3000" in loaded.notice


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"hello, I am text pretending to be a png", "not an image format"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not an image format"),
        (png_header_claiming(50_000, 50_000), "megapixels"),
        (png_header_claiming(7_000, 7_000), "over the limit of 40 megapixels"),
    ],
    ids=["empty", "text", "svg", "bomb", "over-limit"],
)
def test_unusable_uploads_are_one_clear_error(data, message):
    with pytest.raises(BadImageError, match=message):
        load_image(data)


def test_truncated_jpeg_is_a_clear_error():
    data = encode(Image.fromarray(gradient(256, 256)), "JPEG")
    with pytest.raises(BadImageError, match="truncated"):
        load_image(data[: len(data) // 2])


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 10000, 3)])
def test_degenerate_sizes_are_refused(shape):
    with pytest.raises(BadImageError, match="each side needs at least"):
        load_image(np.zeros(shape, np.uint8))


def test_digest_changes_with_pixels_and_shape():
    pixels = gradient()
    assert image_digest(pixels) == image_digest(pixels.copy())
    changed = pixels.copy()
    changed[0, 0, 0] ^= 1
    assert image_digest(changed) != image_digest(pixels)
    assert image_digest(pixels.reshape(64, 48, 3)) != image_digest(pixels)
