"""What the Data engine tab's review shows: the gallery (least certain first, with overlays) and one
opened image with its instances, its SAM clicks and the mask they give before it is added."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageDraw

from playground.core.prompts import PromptHistory
from playground.core.types import Prediction
from playground.dataengine.intake import decode
from playground.dataengine.labelers import load
from playground.dataengine.review import as_prediction, review_queue
from playground.dataengine.store import JobStore
from playground.render.views import draw_prompts
from playground.runtime.service import Playground
from playground.ui.dataengine_jobs import Job

GALLERY_MAX = 48
"""The gallery shows this many of the least certain images."""
THUMB_SIDE = 320
PENDING_COLOUR = np.array([255, 215, 0], np.float32)
NO_OBJECTS = "no objects"


@dataclass(frozen=True)
class Opened:
    """The image under review: its ``digest``, ``pixels`` as shown (upright, at most
    `playground.core.images.MAX_SIDE`), the SAM clicks on it and the mask they give (shown pixels' size)."""

    digest: str
    pixels: np.ndarray
    history: PromptHistory = field(default_factory=PromptHistory)
    mask: np.ndarray | None = None
    focus: int | None = None
    """The annotation picked in the object list, outlined."""

    def cleared(self) -> Opened:
        """The same image without clicks, SAM mask or picked object."""
        return Opened(self.digest, self.pixels)


def gallery(job: Job, store: JobStore) -> tuple[list[tuple[str, str]], list[str], str]:
    """(thumbnail path, caption) per reviewed image, least certain first, their digests in that order,
    and a line on how many there are."""
    queue = review_queue(store)
    items, digests = [], []
    for item in queue[:GALLERY_MAX]:
        least = "—" if item.least_score is None else f"{item.least_score:.2f}"
        caption = f"{item.image.name} · {item.image.state} · {item.annotations} objects · least score {least}"
        items.append((str(thumbnail(job, store, item.image.digest)), caption))
        digests.append(item.image.digest)
    shown = f"the {len(items)} least certain of {len(queue)}" if len(queue) > len(items) else f"{len(queue)}"
    return items, digests, f"Review: {shown} labelled images, least certain first; pick one to correct it."


def thumbnail(job: Job, store: JobStore, digest: str) -> str:
    """The image's overlay at most `THUMB_SIDE` pixels, as a file in the job's ``thumbs/`` named by its
    annotations and state (an edit makes a new one)."""
    record = store.image(digest)
    rows = [(a.id, a.class_name, a.box) for a in store.annotations(digest)]
    signature = hashlib.blake2b(repr((record.state, rows)).encode(), digest_size=8).hexdigest()
    path = job.folder / "thumbs" / f"{digest}-{signature}.png"
    if not path.is_file():
        decoded = decode(job.files, record.name)
        pixels = decoded.pixels if decoded.pixels is not None else np.zeros((record.height, record.width, 3), np.uint8)
        scale = min(1.0, THUMB_SIDE / max(pixels.shape[:2]))
        small = np.asarray(
            Image.fromarray(pixels).resize((round(pixels.shape[1] * scale), round(pixels.shape[0] * scale)))
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(overlay(small, store, digest)).save(path)
    return str(path)


def open_image(job: Job, store: JobStore, digest: str) -> Opened:
    """``digest`` opened for review, without clicks."""
    decoded = decode(job.files, store.image(digest).name)
    if decoded.pixels is None:
        raise FileNotFoundError(decoded.reason)
    return Opened(digest, decoded.pixels)


def canvas(store: JobStore, opened: Opened) -> np.ndarray:
    """The opened image with its annotations, the picked one outlined in white, the mask the clicks
    give (yellow) and the clicks."""
    drawn = overlay(opened.pixels, store, opened.digest)
    if opened.mask is not None:
        drawn = drawn.copy()
        drawn[opened.mask] = (0.45 * drawn[opened.mask] + 0.55 * PENDING_COLOUR).astype(np.uint8)
    live = {a.id: a for a in store.annotations(opened.digest)}
    if opened.focus in live:
        record = store.image(opened.digest)
        sx, sy = opened.pixels.shape[1] / record.width, opened.pixels.shape[0] / record.height
        x1, y1, x2, y2 = live[opened.focus].box
        picture = Image.fromarray(drawn)
        width = max(3, min(drawn.shape[:2]) // 120)
        ImageDraw.Draw(picture).rectangle((x1 * sx, y1 * sy, x2 * sx, y2 * sy), outline=(255, 255, 255), width=width)
        drawn = np.asarray(picture)
    return draw_prompts(drawn, opened.history)


def overlay(pixels: np.ndarray, store: JobStore, digest: str) -> np.ndarray:
    """``pixels`` with image ``digest``'s live annotations, brought to the pixels' size."""
    from playground.render.overlay import render

    prediction, _ = as_prediction(store, digest)
    return render(pixels, fit(prediction, pixels.shape[:2]), legend=False, empty_text=NO_OBJECTS)


def fit(prediction: Prediction, size: tuple[int, int]) -> Prediction:
    """``prediction`` in an image of ``size`` (height, width): boxes scaled, masks resized (nearest)."""
    if tuple(prediction.image_size) == tuple(size):
        return prediction
    sy, sx = size[0] / prediction.image_size[0], size[1] / prediction.image_size[1]
    masks = None
    if prediction.masks is not None:
        masks = np.stack([resize_mask(mask, size) for mask in prediction.masks]) if len(prediction) else None
        masks = masks if masks is not None else np.zeros((0, *size), bool)
    return replace(prediction, image_size=size, boxes=prediction.boxes * np.float32([sx, sy, sx, sy]), masks=masks)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(mask).resize((size[1], size[0]), Image.Resampling.NEAREST))


def instance_choices(store: JobStore, digest: str) -> list[tuple[str, str]]:
    """(label, annotation id) per live annotation of the image, in the overlay's order."""
    return [
        (f"{a.class_name} · {a.score:.2f}" + (" · added" if a.origin == "edit" else ""), str(a.id))
        for a in store.annotations(digest)
    ]


def click(playground: Playground, opened: Opened, kind: str, x: float, y: float) -> Opened:
    """Add a click (``foreground`` or ``background``) and segment with SAM: its best candidate with
    any pixels (SAM encodes the image once; each click runs its decoder)."""
    history = opened.history.add(kind, x, y)
    load(playground, "sam")
    prediction = playground.predict("sam", opened.pixels, task="prompt", **history.params())
    masks = [mask for mask in prediction.masks if mask.any()] if prediction.masks is not None else []
    return replace(opened, history=history, mask=masks[0] if masks else None)


def mask_at_size(mask: np.ndarray, store: JobStore, digest: str) -> np.ndarray:
    """A mask on the shown pixels brought to the image's own size, as the store keeps annotations."""
    record = store.image(digest)
    size = (record.height, record.width)
    return mask if mask.shape == size else resize_mask(mask, size)
