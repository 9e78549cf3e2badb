"""Labelers: a model key and class names in, "label one image -> annotation rows" out.

Three kinds, all run through one `Playground` (so one `ModelManager`: each model loads once per job):

- a text route (`TEXT_ROUTES`): the class names are its prompt, one call per image with every
  class, so Grounding DINO and OWLv2 run once, SAM encodes the image once and decodes every box on
  that one embedding, and SAM 3 runs once per class on one cached image encoding;
- a closed-set model (detection, instance or panoptic): its own label names narrowed to the chosen
  classes, matched case-insensitively; refused with one line when none of the classes is one of them;
- ``sam``: SAM's automatic masks ("segment everything"), class-agnostic, named `EVERYTHING_CLASS`.

Random and tiny weights are built from one seed (`RANDOM_WEIGHTS_SEED`, the Ray Serve deployment's
too), so a resumed job, another process or a Ray actor labels with the same weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from playground.core.errors import BadPromptError
from playground.core.registry import CLOSED_SET_TASKS, get_spec
from playground.core.text_prompts import split_classes
from playground.core.types import BACKGROUND_LABELS, Prediction
from playground.dataengine.records import NewAnnotation
from playground.runtime.manager import ModelManager
from playground.runtime.service import Playground

TEXT_ROUTES = ("grounded-sam", "owlv2-sam", "sam3", "grounding-dino", "owlv2")
EVERYTHING = "sam"
EVERYTHING_CLASS = "object"
CLOSED_SET_PREFERENCE = ("instance", "panoptic", "detection")
"""The task a closed-set model labels with when it serves several: masks first."""
RANDOM_WEIGHTS_SEED = 0
"""Equal to `playground.backends.ray_serve.RANDOM_WEIGHTS_SEED`."""
PROBE_SIDE = 64
"""Side of the blank image a remote backend is asked about to learn a model's label names."""


@dataclass(frozen=True)
class Labelled:
    """One image's labels: ``rows`` in the image's own pixel size, the narrowed ``prediction`` (in the
    labelled pixels' size), ``timings_ms`` per stage, and the model's ``warning``."""

    rows: tuple[NewAnnotation, ...]
    prediction: Prediction
    timings_ms: dict[str, float]
    warning: str = ""


@dataclass(frozen=True)
class Labeler:
    """A model ready to label images with ``classes``.

    Attributes:
        key: registry key, e.g. ``grounded-sam``.
        classes: the class names annotations get, as the user typed them.
        task: the task it runs (``text``, ``instance``, ``panoptic``, ``detection`` or ``prompt``).
        threshold: the least score kept, in [0, 1].
        params: what `Playground.predict` is given besides the task (the prompt, thresholds).
        names: a model label, lower case -> the class it becomes; other labels are dropped.
        note: a line for the user (classes the model does not know), or "".
    """

    playground: Playground
    key: str
    classes: tuple[str, ...]
    task: str
    threshold: float
    params: dict[str, Any] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    note: str = ""

    @property
    def name(self) -> str:
        return self.key

    def predict(self, pixels: np.ndarray) -> Prediction:
        """The model on ``pixels`` (H, W, 3 uint8), narrowed: instances scoring at least the threshold
        whose label is one of the classes, with class ids indexing ``classes``."""
        prediction = self.playground.predict(self.key, pixels, task=self.task, **self.params)
        keep = [
            i
            for i, label in enumerate(prediction.labels)
            if label.lower() in self.names and prediction.scores[i] >= self.threshold
        ]
        kept = prediction[np.asarray(keep, np.int64)]
        ids = [self.classes.index(self.names[label.lower()]) for label in kept.labels]
        return replace(kept, class_ids=np.asarray(ids, np.int64), label_names=dict(enumerate(self.classes)))

    def label(self, pixels: np.ndarray, size: tuple[int, int] | None = None) -> Labelled:
        """Label ``pixels``; ``size`` (height, width) is the image's own size when ``pixels`` were
        downscaled, and the rows are scaled up to it."""
        prediction = self.predict(pixels)
        rows = tuple(annotation_rows(prediction, size or prediction.image_size))
        timings = {stage: round(ms, 1) for stage, ms in prediction.timings_ms.items()}
        return Labelled(rows, prediction, timings, prediction.warning)


def make_labeler(
    playground: Playground,
    key: str,
    classes: str | Sequence[str],
    threshold: float | None = None,
    task: str | None = None,
    params: dict[str, Any] | None = None,
) -> Labeler:
    """A `Labeler` for model ``key`` and ``classes`` ("cat, dog" or a list), its models loaded.

    ``threshold`` defaults to the model's own (`ModelSpec.default_score_threshold`); ``task`` picks a
    closed-set model's task (default: instance, then panoptic, then detection); ``params`` go to
    the model as well (e.g. SAM's ``pred_iou_thresh``). Raises `UnknownModelError` or `BadPromptError`
    (one line) for an unknown model, no classes, or a model that cannot label them.
    """
    spec = get_spec(key)
    names = split_classes(classes) if isinstance(classes, str) else split_classes(", ".join(classes))
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise BadPromptError(f"threshold {threshold}: expected a number in 0..1.")
    cut = spec.default_score_threshold if threshold is None else threshold
    extra = dict(params or {})
    if key == EVERYTHING:
        if len(names) > 1:
            raise BadPromptError(f"{key} labels every object as one class; give one class name or none.")
        chosen = tuple(names) or (EVERYTHING_CLASS,)
        load(playground, key)
        return Labeler(playground, key, chosen, "prompt", cut, {"everything": True, **extra}, {"object": chosen[0]})
    if not names:
        raise BadPromptError('No classes given: name what to label, e.g. "cat, dog".')
    if key in TEXT_ROUTES:
        model_class = spec.load_class()
        if threshold is not None and "box_threshold" in model_class.postprocess_params:
            extra["box_threshold"] = threshold
        load(playground, key)
        lowered = {name.lower(): name for name in names}
        return Labeler(playground, key, tuple(names), "text", cut, {"text": ", ".join(names), **extra}, lowered)
    tasks = [t for t in CLOSED_SET_PREFERENCE if t in spec.tasks]
    if task is not None and task not in tasks:
        raise BadPromptError(f"{key} cannot label with task {task!r}; it labels {', '.join(tasks) or 'nothing'}.")
    if not tasks:
        kinds = "semantic maps" if set(spec.tasks) & set(CLOSED_SET_TASKS) else ", ".join(spec.tasks)
        raise BadPromptError(
            f"{key} gives {kinds}, not objects to label; pick a detection, instance or panoptic model, "
            f"a text route ({', '.join(TEXT_ROUTES)}) or {EVERYTHING}."
        )
    chosen_task = task or tasks[0]
    label_names = load(playground, key, chosen_task)
    known = {name.lower(): name for name in label_names if name not in BACKGROUND_LABELS}
    matched = {name.lower(): name for name in names if name.lower() in known}
    if not matched:
        listed = ", ".join(sorted(known.values())[:12]) + (", ..." if len(known) > 12 else "")
        raise BadPromptError(f"None of {', '.join(names)} is a label of {key}; its labels are {listed}")
    missing = [name for name in names if name.lower() not in matched]
    note = f"{key} has no label {', '.join(missing)}: those classes get no annotations." if missing else ""
    return Labeler(playground, key, tuple(names), chosen_task, cut, extra, matched, note)


def load(playground: Playground, key: str, task: str | None = None) -> list[str]:
    """Load ``key``'s models (a composite's parts) once, random and tiny weights from one seed; returns
    the label names of the (single) model."""
    manager = playground.manager
    parts = get_spec(key).components or (key,)
    if not isinstance(manager, ModelManager):  # a remote backend: ask it about a blank image
        blank = np.full((PROBE_SIDE, PROBE_SIDE, 3), 127, np.uint8)
        return [] if len(parts) > 1 else list(playground.predict(key, blank, task=task).label_names.values())
    import torch

    names: list[str] = []
    for part in parts:
        if manager.weights != "pretrained" and not manager.is_loaded(part):
            torch.manual_seed(RANDOM_WEIGHTS_SEED)
        with manager.use(part) as (adapter, _):
            names = list(getattr(adapter, "label_names", {}).values())
    return names


def annotation_rows(prediction: Prediction, size: tuple[int, int]) -> list[NewAnnotation]:
    """``prediction``'s instances as store rows in an image of ``size`` (height, width): boxes XYXY
    scaled from the prediction's size, masks resized (nearest) and encoded as COCO RLE."""
    height, width = prediction.image_size
    sy, sx = size[0] / height, size[1] / width
    rows = []
    for index, (label, score, box) in enumerate(zip(prediction.labels, prediction.scores, prediction.boxes)):
        x1, y1, x2, y2 = (float(v) for v in box)
        scaled = (round(x1 * sx, 2), round(y1 * sy, 2), round(x2 * sx, 2), round(y2 * sy, 2))
        rle = None
        if prediction.masks is not None:
            mask = prediction.masks[index]
            if (sy, sx) != (1.0, 1.0):
                mask = np.asarray(Image.fromarray(mask).resize((size[1], size[0]), Image.Resampling.NEAREST))
            rle = encode_mask(mask)
        rows.append(NewAnnotation(label, round(float(score), 5), scaled, rle))
    return rows


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """(H, W) bool -> COCO RLE ``{"size": [H, W], "counts": str}`` (pycocotools' ``mask.encode``)."""
    from pycocotools import mask as mask_utils

    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def decode_mask(rle: dict[str, Any]) -> np.ndarray:
    """COCO RLE (as `encode_mask` writes it) -> (H, W) bool."""
    from pycocotools import mask as mask_utils

    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)
