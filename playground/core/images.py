"""Turn whatever a user uploads into an RGB uint8 HWC array, or one clear `BadImageError`.

Handles EXIF rotation, 16-bit, CMYK, palette, alpha and grayscale images, refuses
decompression bombs before decoding them, and downscales huge images with a notice.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from playground.core.errors import BadImageError

MAX_PIXELS = 40_000_000
"""Refuse images with more pixels than this before decoding them (decompression bombs)."""
MAX_SIDE = 2048
"""Downscale images whose longer side exceeds this many pixels."""
MIN_SIDE = 8
"""Refuse images whose shorter side is below this many pixels: no model sees anything there."""


@dataclass(frozen=True)
class LoadedImage:
    """An image ready for the models.

    Attributes:
        pixels: (H, W, 3) uint8 RGB, upright (EXIF orientation applied).
        notice: a message for the user when the image was changed (downscaled), else "".
    """

    pixels: np.ndarray
    notice: str = ""


def image_digest(pixels: np.ndarray) -> str:
    """Content hash of an HWC array: equal pixels give equal keys, across users and tabs."""
    digest = hashlib.blake2b(pixels.tobytes(), digest_size=16)
    digest.update(str(pixels.shape).encode())
    return digest.hexdigest()


def load_image(source: str | os.PathLike | bytes | Image.Image | np.ndarray) -> LoadedImage:
    """Decode ``source`` (a path, raw bytes, a PIL image or an array) into an upright RGB image."""
    if isinstance(source, np.ndarray):
        return _finish(_array_to_rgb(source))
    if isinstance(source, Image.Image):
        return _finish(_pil_to_rgb(source))
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise BadImageError(f"No such image file: {path}")
        data = path.read_bytes()
        name = path.name
    else:
        data, name = source, "upload"
    if not data:
        raise BadImageError(f"{name} is empty (0 bytes).")
    return _finish(_pil_to_rgb(_open(data, name)))


def image_problem(source: str | os.PathLike) -> str:
    """Why the file ``source`` cannot be used, from its header alone (nothing decoded, so it is
    cheap enough to ask on every upload); "" when it looks like an image we can read."""
    path = Path(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
    except FileNotFoundError:
        return f"No such image file: {path.name}"
    except UnidentifiedImageError:
        return f"{path.name} is not an image format we can read (PNG, JPEG, WebP, GIF, BMP or TIFF)."
    except Image.DecompressionBombError:
        return f"{path.name} is too large to decode safely; the limit is {MAX_PIXELS / 1e6:.0f} megapixels."
    except (OSError, SyntaxError, ValueError) as error:
        return f"{path.name} could not be read ({error})."
    if width * height > MAX_PIXELS:
        return f"{path.name} has {width}x{height} pixels, over the limit of {MAX_PIXELS / 1e6:.0f} megapixels."
    return ""


def _open(data: bytes, name: str) -> Image.Image:
    """Open and fully decode ``data`` with the pixel limit enforced as an error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise BadImageError(
                    f"{name} claims {width}x{height} pixels, over the limit of {MAX_PIXELS / 1e6:.0f} megapixels."
                )
            image.load()
    except BadImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImageError(
            f"{name} is too large to decode safely (a decompression bomb?); the limit is "
            f"{MAX_PIXELS / 1e6:.0f} megapixels."
        ) from None
    except UnidentifiedImageError:
        raise BadImageError(f"{name} is not an image format we can read.") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise BadImageError(f"{name} could not be decoded ({error}); is it truncated?") from None
    return image


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    """Upright RGB uint8 pixels of the first frame of ``image``."""
    image = ImageOps.exif_transpose(image) or image
    if image.mode.startswith("I"):  # 16-bit PNGs open as "I;16" or "I"
        return _array_to_rgb(np.asarray(image).astype(np.uint16))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return np.array(image.convert("RGB"))  # writable: torch.from_numpy warns on read-only arrays


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1|3|4) uint8, wider integers (full range) or floats (0..1) -> (H, W, 3) uint8."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise BadImageError(f"Expected an HxW or HxWx3 image, got an array of shape {array.shape}.")
    array = array[..., :3]
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.integer) and array.dtype != np.uint8:
        array = (array.astype(np.float64) / np.iinfo(array.dtype).max * 255.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):  # floats are taken as 0..1
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(array)


def _finish(pixels: np.ndarray) -> LoadedImage:
    """Check the size limits, downscale huge images, and say so."""
    height, width = pixels.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise BadImageError(f"The image is {width}x{height} pixels; each side needs at least {MIN_SIDE}.")
    if height * width > MAX_PIXELS:
        raise BadImageError(
            f"The image has {width}x{height} pixels, over the limit of {MAX_PIXELS / 1e6:.0f} megapixels."
        )
    if max(height, width) <= MAX_SIDE:
        return LoadedImage(pixels)
    scale = MAX_SIDE / max(height, width)
    size = (max(MIN_SIDE, round(width * scale)), max(MIN_SIDE, round(height * scale)))
    resized = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))
    notice = f"Downscaled from {width}x{height} to {size[0]}x{size[1]} pixels."
    return LoadedImage(resized, notice)
