"""Click prompts for SAM: foreground and background points, and a box from two corner clicks.

`PromptHistory` is an immutable list of steps, so undo is "drop the last step" and every view
(points, the box, a pending corner) is derived from it. Coordinates are image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
