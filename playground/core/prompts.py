"""Prompts for promptable models (SAM): points and boxes in image pixels, their checks, and clicks.

`check_point` and `check_box` validate a prompt against the image and raise `BadPromptError`
naming what is wrong. `PromptHistory` is an immutable list of clicks, so undo is "drop the last
step" and every view (points, the box, a pending corner) is derived from it.

Dense prompts (SAM's ``mask_input``) are hashable, so they enter the result-cache key like points:
`EarlierPrompt` names the prompt whose best low-resolution mask is fed back (SAM's predictor
refines one mask click by click this way), `BrushedMask` a mask drawn on the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from playground.core.errors import BadPromptError

StepKind = Literal["foreground", "background", "corner"]
Point = tuple[float, float, int]
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class PromptHistory:
    """The clicks so far, in order: (kind, x, y), after an optional brushed mask."""

    steps: tuple[tuple[StepKind, float, float], ...] = ()
    brush: BrushedMask | None = None

    def add(self, kind: StepKind, x: float, y: float) -> PromptHistory:
        return PromptHistory((*self.steps, (kind, float(x), float(y))), self.brush)

    def undo(self) -> PromptHistory:
        """The last click dropped; with no click left, the brushed mask."""
        return PromptHistory(self.steps[:-1], self.brush) if self.steps else PromptHistory()

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
        """True when there is a prompt SAM can run on: a point, a completed non-empty box, or a brushed mask."""
        box = self.box
        return bool(self.points) or (box is not None and box[0] < box[2] and box[1] < box[3]) or bool(self.brush)

    def params(self) -> dict[str, object]:
        """The SAM adapter's prompt params: ``points`` and/or ``box`` (hashable tuples), and ``mask_input``:
        the previous distinct prompt as an `EarlierPrompt` (its own dense prompt chained the same way,
        down to the brushed mask), so each click refines the last answer as SAM's predictor does."""
        mask_input: MaskInput | None = self.brush
        current: tuple[tuple[Point, ...], Box | None] | None = None
        for count in range(len(self.steps) + 1):
            prefix = PromptHistory(self.steps[:count], self.brush)
            prompt = (prefix.points, prefix.box)
            if not prefix.ready or prompt == current:  # a first box corner adds no prompt
                continue
            if current is not None:
                mask_input = EarlierPrompt(*current, mask_input)
            current = prompt
        params: dict[str, object] = {}
        if self.points:
            params["points"] = self.points
        if self.box is not None:
            params["box"] = self.box
        if mask_input is not None:
            params["mask_input"] = mask_input
        return params


@dataclass(frozen=True)
class BrushedMask:
    """A mask brushed on an image of ``height`` x ``width`` pixels, packed 8 pixels a byte, row-major
    (``np.packbits``): hashable and small, so it can be a prompt parameter."""

    height: int
    width: int
    bits: bytes

    @classmethod
    def from_mask(cls, mask: np.ndarray) -> BrushedMask:
        """(H, W) bool -> a `BrushedMask`."""
        return cls(int(mask.shape[0]), int(mask.shape[1]), np.packbits(mask.astype(bool), axis=None).tobytes())

    def mask(self) -> np.ndarray:
        """(H, W) bool."""
        bits = np.unpackbits(np.frombuffer(self.bits, np.uint8), count=self.height * self.width)
        return bits.reshape(self.height, self.width).astype(bool)


@dataclass(frozen=True)
class EarlierPrompt:
    """An earlier prompt on the same image, whose best low-resolution mask logits (highest predicted
    IoU) are the dense prompt of the next one: its points, box and its own dense prompt."""

    points: tuple[Point, ...] = ()
    box: Box | None = None
    mask_input: MaskInput | None = None


MaskInput = BrushedMask | EarlierPrompt
"""A dense prompt: an earlier prompt's best mask, or a brushed one."""


def check_mask_input(mask_input: Any, width: int, height: int) -> MaskInput | None:
    """``mask_input`` checked against a ``width`` x ``height`` image, every earlier prompt's points and
    box normalised as `check_point` and `check_box` do (so equal prompts are equal keys)."""
    if mask_input is None:
        return None
    if isinstance(mask_input, BrushedMask):
        if (mask_input.height, mask_input.width) != (height, width) or len(mask_input.bits) * 8 < height * width:
            raise BadPromptError(
                f"the brushed mask is {mask_input.width}x{mask_input.height}, the image {width}x{height}."
            )
        if not mask_input.mask().any():
            raise BadPromptError("the brushed mask is empty: brush over the object first.")
        return mask_input
    if not isinstance(mask_input, EarlierPrompt):
        raise BadPromptError("mask_input: expected an earlier prompt or a brushed mask.")
    return EarlierPrompt(
        tuple(check_point(p, width, height) for p in mask_input.points),
        None if mask_input.box is None else check_box(mask_input.box, width, height),
        check_mask_input(mask_input.mask_input, width, height),
    )


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
