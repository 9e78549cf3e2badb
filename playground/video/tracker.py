"""`VideoTracker`: one clip, one route (SAM 2 clicks or box, SAM 3 text, Grounding DINO or MaskFormer + SAM 2).

Models run through the `ModelManager` (pinned while a run goes on). Each processed frame is
kept as compact COCO RLE masks (`FrameResult`), never as full arrays, so a 300-frame run holds
kilobytes per object. A correcting click re-runs only the frames from it on and replaces them.

Routes (the CLI's ``--model``): ``sam2`` -> ``sam2-video``; ``sam3`` -> ``sam3-video`` (text);
``grounded-sam2`` -> Grounding DINO on the prompt frame, its boxes -> ``sam2-video``;
``panoptic-sam2`` -> MaskFormer's panoptic segments on the prompt frame, as masks -> ``sam2-video``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from pycocotools import mask as mask_utils

from playground.core.errors import BadPromptError
from playground.core.registry import ModelSpec, get_spec
from playground.core.text_prompts import BOX_THRESHOLD, TEXT_THRESHOLD
from playground.core.types import boxes_from_masks
from playground.core.videos import FrameSource, ObjectPrompt, Progress, TrackedFrame, VideoPrompt, check_frame
from playground.runtime.manager import ModelManager

ROUTES = {
    "sam2": "sam2-video",
    "sam3": "sam3-video",
    "grounded-sam2": "grounded-sam2",
    "panoptic-sam2": "panoptic-sam2",
}
"""CLI / UI route name -> registry key."""
TEXT_ROUTES = ("sam3", "grounded-sam2")
MAX_TEXT_OBJECTS = 20
"""Most Grounding DINO boxes (or panoptic segments) tracked: the best-scoring."""


def route_key(route: str) -> str:
    """The registry key of ``route``; a clear error for an unknown one."""
    if route not in ROUTES:
        raise BadPromptError(f"Unknown video model {route!r}; choose from {', '.join(ROUTES)}.")
    return ROUTES[route]


def route_models(route: str) -> tuple[str, ...]:
    """The registry keys of the models ``route`` runs: its model, or a composite's parts."""
    spec = get_spec(route_key(route))
    return spec.components or (spec.key,)


@dataclass
class FrameResult:
    """One frame's tracked objects: ids, XYXY boxes, mask areas (pixels), scores, RLE masks."""

    index: int
    object_ids: list[int]
    boxes: np.ndarray
    areas: list[int]
    scores: list[float]
    rles: list[dict]

    @classmethod
    def from_tracked(cls, tracked: TrackedFrame) -> FrameResult:
        masks = np.asfortranarray(tracked.masks.transpose(1, 2, 0).astype(np.uint8))
        rles = mask_utils.encode(masks) if len(tracked.object_ids) else []
        return cls(
            index=tracked.index,
            object_ids=[int(i) for i in tracked.object_ids],
            boxes=boxes_from_masks(tracked.masks),
            areas=[int(m.sum()) for m in tracked.masks],
            scores=[round(float(s), 4) for s in tracked.scores],
            rles=list(rles),
        )

    def masks(self, height: int, width: int) -> np.ndarray:
        """(N, height, width) bool."""
        if not self.rles:
            return np.zeros((0, height, width), bool)
        return mask_utils.decode(self.rles).transpose(2, 0, 1).astype(bool)


@dataclass
class Tracks:
    """What a clip's run found: a `FrameResult` per processed frame, and a name per object id."""

    key: str
    weights: str
    frame_count: int
    frames: dict[int, FrameResult] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    def label(self, obj_id: int) -> str:
        """The object's phrase (text routes) or "object"."""
        return self.labels.get(obj_id, "object")

    def tag(self, obj_id: int) -> str:
        """``"cat #2"``: what the overlay writes next to the object."""
        return f"{self.label(obj_id)} #{obj_id}"


class VideoComposite:
    """A route whose first model prompts SAM 2 video on the prompt frame (``spec.components``)."""

    def __init__(self, spec: ModelSpec, manager: ModelManager) -> None:
        self.spec, self.manager = spec, manager

    def predict(self, image: np.ndarray, task: str | None = None, **params: object):
        raise BadPromptError(
            f"{self.spec.title} tracks video clips: use the Video tab or `python -m playground track`."
        )


class GroundedSam2(VideoComposite):
    """The ``grounded-sam2`` route: Grounding DINO boxes on the prompt frame prompt SAM 2 video."""

    def prompt(self, frame: np.ndarray, frame_index: int, text: str) -> tuple[VideoPrompt, dict[int, str]]:
        """One box prompt per phrase found on ``frame`` (best first), and each object's phrase."""
        found = self.manager.predict(
            self.spec.components[0],
            frame,
            task="text",
            text=text,
            box_threshold=BOX_THRESHOLD,
            text_threshold=TEXT_THRESHOLD,
        )
        if not len(found):
            raise BadPromptError(
                f"Grounding DINO found nothing for {text!r} on frame {frame_index}; try another frame or phrase."
            )
        order = np.argsort(-found.scores, kind="stable")[:MAX_TEXT_OBJECTS]
        objects = tuple(ObjectPrompt(n + 1, box=tuple(found.boxes[i].tolist())) for n, i in enumerate(order))
        labels = {n + 1: found.labels[i] for n, i in enumerate(order)}
        return VideoPrompt(frame_index, objects), labels


class PanopticSam2(VideoComposite):
    """The ``panoptic-sam2`` route (video panoptic): MaskFormer's panoptic segments on the prompt frame,
    things and stuff, each a mask prompt for SAM 2 video, so every segment keeps its id through the clip."""

    def prompt(self, frame: np.ndarray, frame_index: int) -> tuple[VideoPrompt, dict[int, str]]:
        """One mask prompt per segment on ``frame`` (best-scoring first), and each object's class name."""
        found = self.manager.predict(self.spec.components[0], frame, task="panoptic")
        order = [i for i in np.argsort(-found.scores, kind="stable") if found.masks[i].any()][:MAX_TEXT_OBJECTS]
        if not order:
            raise BadPromptError(f"MaskFormer found no panoptic segment on frame {frame_index}; try another frame.")
        objects = tuple(ObjectPrompt(n + 1, mask=found.masks[i]) for n, i in enumerate(order))
        labels = {n + 1: found.labels[i] for n, i in enumerate(order)}
        return VideoPrompt(frame_index, objects), labels


class VideoTracker:
    """Tracks objects through ``source`` with the models of ``manager``; keeps the last run's tracks.

    Not thread-safe: one run at a time per tracker (the UI keeps one tracker per session).
    """

    def __init__(self, manager: ModelManager, source: FrameSource) -> None:
        self.manager, self.source = manager, source
        self.tracks: Tracks | None = None
        self._route = ""
        self._prompt: VideoPrompt | None = None
        self._session: tuple[object, object] | None = None  # (adapter, its session)

    def track(
        self,
        route: str,
        prompt: VideoPrompt,
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> Tracks:
        """Run ``route`` with ``prompt`` over the whole clip (forward and backward from its frame)."""
        key = route_key(route)
        if prompt.text and route == "sam2":
            raise BadPromptError("SAM 2 video takes clicks or a box; for text choose sam3 or grounded-sam2.")
        if route in TEXT_ROUTES and not prompt.text.strip():
            raise BadPromptError(f"{route} tracks what you type: give a text prompt.")
        labels: dict[int, str] = {}
        start = time.perf_counter()
        if route == "panoptic-sam2":
            if prompt.objects or prompt.text.strip():
                raise BadPromptError("panoptic-sam2 tracks the prompt frame's panoptic segments: give no prompt.")
            check_frame(prompt.frame, len(self.source))
            composite = PanopticSam2(get_spec(key), self.manager)
            prompt, labels = composite.prompt(self.source.frame(prompt.frame), prompt.frame)
            key = "sam2-video"
        prompt = prompt.checked(self.source)
        if route == "grounded-sam2":
            composite = GroundedSam2(get_spec(key), self.manager)
            prompt, labels = composite.prompt(self.source.frame(prompt.frame), prompt.frame, prompt.text)
            key = "sam2-video"
        self.tracks = Tracks(route, self.manager.weights, len(self.source), labels=labels)
        self._route, self._prompt = route, prompt
        with self.manager.use(key) as (adapter, _):
            state = adapter.open_session(self.source)
            self._session = (adapter, state)
            self._collect(adapter.track(state, prompt, cancel, progress))
        self.tracks.timings_ms["total"] = round((time.perf_counter() - start) * 1000, 1)
        return self.tracks

    def correct(
        self, frame: int, obj: ObjectPrompt, cancel: threading.Event | None = None, progress: Progress | None = None
    ) -> Tracks:
        """Add clicks for ``obj`` on ``frame`` and re-run the frames from there on (away from the prompt).

        ``tracks.timings_ms["first_update"]`` is the time to the first updated frame."""
        if self.tracks is None or self._prompt is None or self._route == "sam3":
            raise BadPromptError(
                "Correcting clicks refine a SAM 2 run: track first, with sam2, grounded-sam2 or panoptic-sam2."
            )
        check_frame(frame, len(self.source))
        obj = VideoPrompt(frame, (obj,)).checked(self.source).objects[0]
        start = time.perf_counter()
        with self.manager.use("sam2-video") as (adapter, _):
            held, state = self._session or (None, None)
            if held is not adapter:  # the model was unloaded since: rebuild the session first
                state = adapter.open_session(self.source)
                self._session = (adapter, state)
                self._collect(adapter.track(state, self._prompt))
            updates = adapter.correct(state, frame, obj, cancel, progress)
            self._collect(updates, first=lambda: start)
        return self.tracks

    def _collect(self, frames: Iterator[TrackedFrame], first=None) -> None:
        """Keep each frame as RLE, and the phrase of each object an adapter labels (SAM 3)."""
        for tracked in frames:
            self.tracks.frames[tracked.index] = FrameResult.from_tracked(tracked)
            self.tracks.labels.update(tracked.meta.get("labels", {}))
            if first is not None:
                self.tracks.timings_ms["first_update"] = round((time.perf_counter() - first()) * 1000, 1)
                first = None
