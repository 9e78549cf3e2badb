"""Corrections a person makes in review, each saved to the job store at once (one transaction each).

Every edit is kept in the store's ``edits`` table, and the image becomes ``edited`` (``accepted`` for
`accept_image`). A removed annotation stays in the store, marked removed, and leaves the exports.
"""

from __future__ import annotations

import numpy as np

from playground.core.errors import BadPromptError
from playground.core.types import boxes_from_masks
from playground.dataengine.labelers import encode_mask
from playground.dataengine.records import Annotation, NewAnnotation
from playground.dataengine.store import JobStore


def remove_annotation(store: JobStore, annotation_id: int) -> None:
    """Remove annotation ``annotation_id`` from its image."""
    annotation = live(store, annotation_id)
    store.edit(
        annotation.digest,
        "remove",
        annotation_id,
        {"class_name": annotation.class_name},
        change=("UPDATE annotations SET removed = 1 WHERE id = ?", (annotation_id,)),
    )


def relabel_annotation(store: JobStore, annotation_id: int, class_name: str) -> None:
    """Give annotation ``annotation_id`` the class ``class_name`` (any non-empty name)."""
    name = " ".join(class_name.split())
    if not name:
        raise BadPromptError("Give the new class name.")
    annotation = live(store, annotation_id)
    store.edit(
        annotation.digest,
        "relabel",
        annotation_id,
        {"from": annotation.class_name, "to": name},
        change=("UPDATE annotations SET class_name = ? WHERE id = ?", (name, annotation_id)),
    )


def add_annotation(store: JobStore, digest: str, class_name: str, mask: np.ndarray, score: float = 1.0) -> int:
    """Add an object to image ``digest`` from its (H, W) bool ``mask`` in the image's own size (e.g.
    SAM's mask for a person's clicks); its box is the mask's. Returns the new annotation's id."""
    name = " ".join(class_name.split())
    image = store.image(digest)
    mask = np.asarray(mask, bool)
    if not name:
        raise BadPromptError("Give the new object a class name.")
    if mask.shape != (image.height, image.width):
        raise BadPromptError(f"The mask is {mask.shape[1]}x{mask.shape[0]}; the image is {image.width}x{image.height}.")
    if not mask.any():
        raise BadPromptError("The mask is empty: segment the object first.")
    x1, y1, x2, y2 = (float(v) for v in boxes_from_masks(mask[None])[0])
    row = NewAnnotation(name, float(score), (x1, y1, x2, y2), encode_mask(mask))
    return store.edit(digest, "add", detail={"class_name": name}, add=row)


def accept_image(store: JobStore, digest: str) -> None:
    """Mark image ``digest`` as checked by a person."""
    store.image(digest)
    store.edit(digest, "accept")


def live(store: JobStore, annotation_id: int) -> Annotation:
    """The annotation, refused when an edit removed it already."""
    annotation = store.annotation(annotation_id)
    if annotation.removed:
        raise BadPromptError(f"Annotation {annotation_id} was removed already.")
    return annotation
