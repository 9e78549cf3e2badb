"""What was changed in a loaded model: each swap or wrap made at load, recorded on its adapter.

``print(model)`` still shows the library's classes after a forward is rebound, so every change
is written down where it is made, and ``python -m playground models --layers KEY`` and the bench
JSON list them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Patch:
    """One change: ``replaced`` (the library's layer or function), ``by`` (what runs instead),
    ``why``, and ``count`` (how many layers it touched in this model; 0 until applied)."""

    replaced: str
    by: str
    why: str
    count: int = 0

    def applied(self, count: int) -> Patch:
        """This change, as made to ``count`` layers."""
        return dataclasses.replace(self, count=count)

    def as_dict(self) -> dict[str, str | int]:
        return dataclasses.asdict(self)
