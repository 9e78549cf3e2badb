"""Prompts for promptable models (SAM): points and boxes in image pixels, their checks, and clicks.

`check_point` and `check_box` validate a prompt against the image and raise `BadPromptError`
naming what is wrong. `PromptHistory` is an immutable list of clicks, so undo is "drop the last
step" and every view (points, the box, a pending corner) is derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from playground.core.errors import BadPromptError

StepKind = Literal["foreground", "background", "corner"]
Point = tuple[float, float, int]
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class PromptHistory:
    """The clicks so far, in order: (kind, x, y)."""

    steps: tuple[tuple[StepKind, float, float], ...] = ()

    def add(self, kind: StepKind, x: float, y: float) -> PromptHistory:
        return PromptHistory((*self.steps, (kind, float(x), float(y))))

    def undo(self) -> PromptHistory:
        return PromptHistory(self.steps[:-1])

    @property
    def points(self) -> tuple[Point, ...]:
        """((x, y, label), ...) with label 1 for foreground and 0 for background."""
        return tuple((x, y, int(kind == "foreground")) for kind, x, y in self.steps if kind != "corner")

    @property
    def corners(self) -> list[tuple[float, float]]:
        return [(x, y) for kind, x, y in self.steps if kind == "corner"]

    @property
    def box(self) -> Box | None:
        """The box of the last two completed corner clicks (ordered x1 < x2, y1 < y2), if any."""
        corners = self.corners
        if len(corners) < 2:
            return None
        pairs = len(corners) // 2
        (ax, ay), (bx, by) = corners[2 * pairs - 2], corners[2 * pairs - 1]
        return (min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))

    @property
    def pending_corner(self) -> tuple[float, float] | None:
        """The first corner of a box still waiting for its second click."""
        corners = self.corners
        return corners[-1] if len(corners) % 2 else None

    @property
    def ready(self) -> bool:
        """True when there is a prompt SAM can run on: a point or a completed, non-empty box."""
        box = self.box
        return bool(self.points) or (box is not None and box[0] < box[2] and box[1] < box[3])

    def params(self) -> dict[str, object]:
        """The SAM adapter's prompt params: ``points`` and/or ``box`` (hashable tuples)."""
        params: dict[str, object] = {}
        if self.points:
            params["points"] = self.points
        if self.box is not None:
            params["box"] = self.box
        return params


def check_point(point: Any, width: int, height: int) -> tuple[float, float, int]:
    """``(x, y)`` or ``(x, y, label)`` inside a ``width`` x ``height`` image -> (x, y, label)."""
    try:
        x, y, *rest = (float(v) for v in point)
        if len(rest) > 1 or (rest and rest[0] not in (0, 1)):
            raise ValueError
        label = int(rest[0]) if rest else 1
    except (TypeError, ValueError):
        raise BadPromptError(
            f"point {point!r:.60}: expected (x, y, label) with label 1 (foreground) or 0 (background)."
        ) from None
    if not (0 <= x <= width and 0 <= y <= height):
        raise BadPromptError(f"point ({x:g}, {y:g}) is outside the {width}x{height} image.")
    return x, y, label


def check_box(box: Any, width: int, height: int) -> Box:
    """``(x1, y1, x2, y2)`` with x1 <= x2 and y1 <= y2 inside a ``width`` x ``height`` image."""
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
        if not (x1 <= x2 and y1 <= y2):
            raise ValueError
    except (TypeError, ValueError):
        raise BadPromptError(f"box {box!r:.80}: expected (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2.") from None
    if not (0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height):
        raise BadPromptError(f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) is outside the {width}x{height} image.")
    return x1, y1, x2, y2
