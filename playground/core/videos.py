"""Video types shared by the video adapters (``models/``) and the streaming layer (``playground/video``).

A clip is read once into a `FrameSource` (frames on disk, one read per access), so an adapter
asks for frame ``i`` when it needs it and nothing holds the whole clip in memory. Adapters
yield one `TrackedFrame` per processed frame; everything is in the clip's (sampled, possibly
downscaled) pixel space.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from playground.core.errors import BadPromptError, PlaygroundError
from playground.core.prompts import Box, Point, check_box, check_point

MAX_UPLOAD_MB = 20
"""Largest clip accepted, in MB."""
MAX_FRAMES = 300
"""Most frames kept after sampling."""
DEFAULT_MAX_FPS = 10.0
"""Sampling rate when none is asked: the clip's own rate, up to this."""
MAX_SIDE = 1024
"""Frames longer than this on their long side are downscaled (with a notice)."""
MAX_SOURCE_PIXELS = 8192 * 8192
"""Streams larger than this (width x height) are refused before decoding."""
MAX_SOURCE_FPS = 1000.0
"""Streams declaring a higher frame rate are refused."""


class BadVideoError(PlaygroundError):
    """The upload is not a video we can use (no video track, no frames, corrupt, too large)."""


class FrameSource(Protocol):
    """Frames of one sampled clip: ``len`` frames of ``height`` x ``width``, read one at a time."""

    height: int
    width: int
    fps: float

    def __len__(self) -> int: ...

    def frame(self, index: int) -> np.ndarray:
        """(height, width, 3) uint8 RGB."""


@dataclass(frozen=True)
class ObjectPrompt:
    """One object's prompt on one frame, in frame pixels: clicks and/or a box, or a mask (SAM 2 video).

    ``mask``: (H, W) bool at the frame's size (a panoptic segment), given alone."""

    obj_id: int
    points: tuple[Point, ...] = ()
    box: Box | None = None
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class VideoPrompt:
    """What to track: objects prompted on ``frame``, or ``text`` (SAM 3 video finds the objects)."""

    frame: int
    objects: tuple[ObjectPrompt, ...] = ()
    text: str = ""

    def checked(self, source: FrameSource) -> VideoPrompt:
        """This prompt with its frame index and every point and box checked against ``source``."""
        check_frame(self.frame, len(source))
        if not self.objects and not self.text.strip():
            raise BadPromptError("Give a prompt: click a point or two box corners on the frame, or type what to track.")
        objects = []
        for obj in self.objects:
            if obj.mask is not None:
                if obj.points or obj.box is not None or obj.mask.shape != (source.height, source.width):
                    raise BadPromptError(
                        f"object {obj.obj_id}: a mask prompt is given alone, at the frame's "
                        f"{source.width}x{source.height}."
                    )
                objects.append(obj)
                continue
            if not obj.points and obj.box is None:
                raise BadPromptError(f"object {obj.obj_id}: give at least one point or a box.")
            points = tuple(check_point(p, source.width, source.height) for p in obj.points)
            box = check_box(obj.box, source.width, source.height) if obj.box is not None else None
            objects.append(ObjectPrompt(obj.obj_id, points, box))
        return VideoPrompt(self.frame, tuple(objects), self.text.strip())


def check_frame(index: int, count: int) -> int:
    """``index`` if it is a frame of a clip of ``count`` frames, else a clear `BadPromptError`."""
    if not isinstance(index, int | np.integer) or not 0 <= index < count:
        raise BadPromptError(f"frame {index} is past the end: the clip has frames 0..{count - 1}.")
    return int(index)


@dataclass
class TrackedFrame:
    """The tracked objects on one frame.

    Attributes:
        index: the frame's index in the sampled clip.
        object_ids: (N,) int64 stable ids (the same object keeps its id on every frame).
        masks: (N, H, W) bool at the frame's size.
        scores: (N,) float32 in [0, 1]: the model's object score (is the object visible).
    """

    index: int
    object_ids: np.ndarray
    masks: np.ndarray
    scores: np.ndarray
    meta: dict = field(default_factory=dict)


Progress = Callable[[int, int], None]
"""``progress(done, total)``: frames processed so far out of the frames this run will process."""


class Cancelled(PlaygroundError):
    """The run was stopped by its cancel event; the frames done so far are kept."""
