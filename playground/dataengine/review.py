"""What the review gallery needs from a job store: the images least certain first, and one image's
annotations as a `Prediction` the app's overlay code draws (`playground.render.overlay.render`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from playground.core.types import Prediction
from playground.dataengine.exports import job_classes
from playground.dataengine.labelers import decode_mask
from playground.dataengine.records import ImageRecord
from playground.dataengine.store import JobStore


@dataclass(frozen=True)
class ReviewItem:
    """One image in the gallery: its record, how many annotations it has, and their least score
    (None when it has none)."""

    image: ImageRecord
    annotations: int
    least_score: float | None


def review_queue(store: JobStore) -> list[ReviewItem]:
    """Labelled, edited and accepted images, least certain first: no annotations, then the lowest
    least score; accepted images last."""
    scores: dict[str, list[float]] = {}
    for annotation in store.annotations():
        scores.setdefault(annotation.digest, []).append(annotation.score)
    items = [
        ReviewItem(
            record, len(scores.get(record.digest, [])), min(scores[record.digest]) if record.digest in scores else None
        )
        for record in store.images()
        if record.state != "pending"
    ]
    return sorted(
        items,
        key=lambda item: (item.image.state == "accepted", item.least_score is not None, item.least_score or 0.0),
    )


def as_prediction(store: JobStore, digest: str) -> tuple[Prediction, list[int]]:
    """Image ``digest``'s live annotations as a `Prediction` in the image's own size (class ids index
    `job_classes`), and the annotation id of each instance, in order (for remove and relabel)."""
    record = store.image(digest)
    annotations = store.annotations(digest)
    classes = job_classes(store)
    config = store.config()
    size = (record.height, record.width)
    masks = None
    if any(a.rle is not None for a in annotations):
        masks = np.zeros((len(annotations), *size), bool)
        for i, a in enumerate(annotations):
            if a.rle is not None:
                masks[i] = decode_mask(a.rle)
            else:  # an annotation with only a box: the box filled, right and bottom edges inclusive
                x1, y1, x2, y2 = (round(v) for v in a.box)
                masks[i, y1 : y2 + 1, x1 : x2 + 1] = True
    prediction = Prediction(
        model=config.model if config else "",
        task="instance" if masks is not None else "detection",
        weights=config.weights if config else "pretrained",  # type: ignore[arg-type]
        image_size=size,
        label_names=dict(enumerate(classes)),
        boxes=np.array([a.box for a in annotations], np.float32).reshape(-1, 4),
        scores=np.array([a.score for a in annotations], np.float32),
        class_ids=np.array([classes.index(a.class_name) for a in annotations], np.int64),
        masks=masks,
    )
    return prediction, [a.id for a in annotations]
