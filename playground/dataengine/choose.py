"""Choose a labeler by evidence: score each candidate on the images that have ground truth.

Truth is a COCO instances JSON holding several images, matched to the job's files by file name
(then by stem), a PNG label map matched by stem (``a.png`` for ``a.jpg``), or a folder of both
(``examples/annotations``). A label map's id *i* is the *i*-th of the job's classes (1 the first, as
typed), 0 is background, and each connected region of one id is one object. Each candidate labels
those images, and each labelled image is scored with the app's own scoring
(`playground.scoring.metrics.score`):

- ``box_ap``: AP@[.5:.95] on boxes, for every labeler (so box-only and mask labelers compare);
- ``mask_ap``: AP@[.5:.95] on masks, where the labeler and the truth both have masks;
- ``mask_iou``: per class, all predicted masks against all truth masks of it (the Text tab's);
- ``pq``: panoptic quality (Kirillov et al. 2019), where there are masks;
- ``precision``, ``recall`` at IoU 0.5 over the kept annotations.

Each is the mean over the images scored. The best labeler has the highest ``box_ap``, then
``mask_ap``, then ``pq``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from playground.core.errors import PlaygroundError
from playground.dataengine.intake import Decoded
from playground.dataengine.labelers import Labeler
from playground.scoring.metrics import score
from playground.scoring.truth import (
    BadTruthError,
    GroundTruth,
    TruthObject,
    canonical_label,
    check_size,
    load_label_map,
    parse_coco,
)

TRUTH_SUFFIXES = (".json", ".png")
PNG_SIGNATURE = b"\x89PNG"
METRICS = ("box_ap", "mask_ap", "mask_iou", "pq", "precision", "recall")
RANKED_BY = ("box_ap", "mask_ap", "pq")


@dataclass(frozen=True)
class LabelerScore:
    """One row of the table: ``labeler`` key, mean ``metrics`` (None where it does not apply), the
    number of ``images`` scored, and the ``error`` that stopped it, if any."""

    labeler: str
    metrics: dict[str, float | None]
    images: int
    error: str = ""

    def rank(self) -> tuple[float, ...]:
        return tuple(-1.0 if self.metrics.get(k) is None else float(self.metrics[k] or 0.0) for k in RANKED_BY)


@dataclass(frozen=True)
class LabelerTable:
    """Rows best first; ``best`` is the preselected labeler's key (None when every one failed)."""

    rows: tuple[LabelerScore, ...]
    best: str | None

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {"labeler": r.labeler, "metrics": r.metrics, "images": r.images, "best": r.labeler == self.best}
            | ({"error": r.error} if r.error else {})
            for r in self.rows
        ]

    def text(self) -> str:
        """The table as the CLI prints it: one line per labeler, the best marked with ``*``."""
        header = ["", "labeler", *METRICS, "images"]
        lines = [header]
        for row in self.rows:
            cells = ["—" if row.metrics.get(k) is None else f"{row.metrics[k]:.3f}" for k in METRICS]
            lines.append(["*" if row.labeler == self.best else "", row.labeler, *cells, str(row.images)])
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)
        errors = [f"{row.labeler}: {row.error}" for row in self.rows if row.error]
        return "\n".join([text, *errors])


def load_truths(path: str | Path) -> dict[str, GroundTruth]:
    """File name -> its `GroundTruth`, from a COCO instances JSON with any number of images, a PNG
    label map (keyed by its own name; its ids are named by `label_map_objects`), or a folder of both.
    Raises `BadTruthError` (one line) for a file that is neither."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in TRUTH_SUFFIXES) if path.is_dir() else [path]
    truths: dict[str, GroundTruth] = {}
    for file in files:
        try:
            raw = file.read_bytes()
        except OSError as error:
            raise BadTruthError(f"{file.name}: cannot read it ({error.strerror}).") from None
        if raw.startswith(PNG_SIGNATURE):
            truths[file.name] = load_label_map(raw, None, file.name)
            continue
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise BadTruthError(f"{file.name}: neither a PNG label map nor JSON ({error}).") from None
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise BadTruthError(f"{file.name}: expected a COCO instances file with 'images' and 'annotations' lists.")
        annotated = {ann.get("image_id") for ann in data.get("annotations") or [] if isinstance(ann, dict)}
        for image in data["images"]:
            if isinstance(image, dict) and image.get("id") in annotated and image.get("file_name"):
                truths[PurePosixPath(str(image["file_name"])).name] = parse_coco(
                    data, None, name=file.name, image_id=image["id"]
                )
    if not truths:
        raise BadTruthError(f"{path.name} annotates no image.")
    return truths


def label_map_objects(truth: GroundTruth, classes: Sequence[str]) -> GroundTruth:
    """A label map's truth as objects, masks and boxes: id *i* is ``classes[i - 1]``, 0 is background,
    and each connected region of one id is one object. Other truth is returned as it is."""
    if truth.label_map is None:
        return truth
    from scipy import ndimage

    ids = [int(i) for i in np.unique(truth.label_map) if i != 0]
    if not ids:
        raise BadTruthError(f"{truth.source} labels no object: every pixel is 0 (background).")
    if ids[-1] > len(classes):
        raise BadTruthError(
            f"{truth.source} has class id {ids[-1]}; the {len(classes)} classes give ids 1 to {len(classes)} "
            "(in the order typed, 0 is background)."
        )
    objects = []
    for ident in ids:
        regions, _ = ndimage.label(truth.label_map == ident, structure=np.ones((3, 3)))
        for index, (rows, cols) in enumerate(ndimage.find_objects(regions), start=1):
            box = (float(cols.start), float(rows.start), float(cols.stop), float(rows.stop))
            objects.append(TruthObject(canonical_label(classes[ident - 1]), box, regions == index))
    return GroundTruth(truth.image_size, tuple(objects), source=truth.source)


def truth_for(name: str, truths: dict[str, GroundTruth]) -> GroundTruth | None:
    """The truth for job file ``name``: by its name in the job, by file name, else by stem (``a.png``
    for ``a.jpg``)."""
    base = PurePosixPath(name)
    for key in (name, base.name):
        if key in truths:
            return truths[key]
    stems = [key for key in truths if PurePosixPath(key).stem == base.stem]
    return truths[stems[0]] if len(stems) == 1 else None


def score_labeler(labeler: Labeler, scored: Sequence[tuple[Decoded, GroundTruth]]) -> LabelerScore:
    """``labeler`` on each (image, truth) pair; the metrics' means (see the module docstring)."""
    values: dict[str, list[float]] = {k: [] for k in METRICS}
    try:
        for decoded, truth in scored:
            prediction = labeler.predict(decoded.pixels)
            if tuple(prediction.image_size) != tuple(truth.image_size):
                raise BadTruthError(f"the truth for {decoded.name} is for another image size.")
            box = score(replace(prediction, task="detection", masks=None, mask_probs=None), truth).metrics
            values["box_ap"].append(box["ap"])
            values["precision"].append(box["precision"])
            values["recall"].append(box["recall"])
            if prediction.masks is not None and truth.has_masks:
                masked = score(replace(prediction, task="text"), truth).metrics
                values["mask_ap"].append(masked["ap"])
                values["mask_iou"].append(masked.get("mask_iou", 0.0))
                values["pq"].append(score(replace(prediction, task="panoptic"), truth).metrics["pq"])
    except PlaygroundError as error:
        return LabelerScore(labeler.key, dict.fromkeys(METRICS), 0, str(error))
    means = {k: round(float(np.mean(v)), 4) if v else None for k, v in values.items()}
    return LabelerScore(labeler.key, means, len(scored))


def choose_labeler(
    labelers: Sequence[Labeler],
    images: Sequence[Decoded],
    truths: dict[str, GroundTruth],
    on_labeler: Callable[[str], None] | None = None,
) -> LabelerTable:
    """Score every labeler on the ``images`` that have truth; the table best first. Label maps are
    named by the labelers' classes (every candidate has the job's). Raises `BadTruthError` (one
    line) when no image has truth, or truth is for another image size or names an id past the classes."""
    scored = [(d, t) for d in images if d.pixels is not None and (t := truth_for(d.name, truths)) is not None]
    if not scored:
        raise BadTruthError(f"None of the images has ground truth (the truth names {', '.join(sorted(truths))}).")
    classes = labelers[0].classes if labelers else ()
    scored = [(d, label_map_objects(t, classes)) for d, t in scored]
    for decoded, truth in scored:
        check_size(truth.image_size, decoded.size, f"The truth for {decoded.name} ({truth.source})")
    rows = []
    for labeler in labelers:
        if on_labeler is not None:
            on_labeler(labeler.key)
        rows.append(score_labeler(labeler, scored))
    ordered = sorted(rows, key=lambda r: (not r.error, r.rank()), reverse=True)
    best = next((r.labeler for r in ordered if not r.error), None)
    return LabelerTable(tuple(ordered), best)
