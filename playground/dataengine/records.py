"""The job store's records: what `playground.dataengine.store.JobStore` reads and writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JobConfig:
    """What a job labels with: a model key, the class names, the weights mode and extra parameters
    (JSON-able: a score threshold, a task). A store holds one job: reopening it with another config
    is refused."""

    model: str
    classes: tuple[str, ...]
    weights: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Annotation:
    """One annotation row. ``box`` is XYXY pixels; ``rle`` is COCO RLE ``{"size": [H, W], "counts": str}``
    or None (a box without a mask)."""

    id: int
    digest: str
    class_name: str
    score: float
    box: tuple[float, float, float, float]
    rle: dict[str, Any] | None
    origin: str
    removed: bool


@dataclass(frozen=True)
class ImageRecord:
    """One distinct image: its first file's ``name``, ``width`` x ``height`` pixels, ``state``, the
    model's ``warning`` and ``timings`` (ms per stage, plus ``total``)."""

    digest: str
    name: str
    width: int
    height: int
    state: str
    warning: str
    timings: dict[str, float]


@dataclass(frozen=True)
class FileRecord:
    """One input file: ``state`` ``image`` (the first with its digest), ``duplicate`` or ``skipped``
    (``reason`` says why)."""

    name: str
    digest: str | None
    state: str
    reason: str


@dataclass(frozen=True)
class Edit:
    """One edit as stored: ``kind`` is ``remove``, ``relabel``, ``add`` or ``accept``; ``at`` Unix seconds."""

    id: int
    digest: str
    kind: str
    annotation_id: int | None
    detail: dict[str, Any]
    at: float


@dataclass(frozen=True)
class NewAnnotation:
    """An annotation to write: class name, score in [0, 1], box XYXY pixels, COCO RLE or None."""

    class_name: str
    score: float
    box: tuple[float, float, float, float]
    rle: dict[str, Any] | None = None
