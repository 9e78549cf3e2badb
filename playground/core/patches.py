"""What was changed in a loaded model: each swap or wrap made at load, recorded on its adapter.

``print(model)`` still shows the library's classes after a forward is rebound, so every change
is written down where it is made, and ``python -m playground models --layers KEY`` and the bench
JSON list them.

A faster layer names the devices it was measured faster on (``devices``); an adapter applies it only
there, and on every other device the library's own kernels run (on CUDA and MPS: cuDNN, SDPA).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Patch:
    """One change: ``replaced`` (the library's layer or function), ``by`` (what runs instead),
    ``why``, ``count`` (how many layers it touched in this model; 0 until applied), and ``devices``:
    the device types (``"cpu"``, ``"cuda"``, ``"mps"``) it is made on, empty for every device."""

    replaced: str
    by: str
    why: str
    count: int = 0
    devices: tuple[str, ...] = ()

    def runs_on(self, device_type: str) -> bool:
        """Whether this change is made on a device of ``device_type`` (``torch.device.type``)."""
        return not self.devices or device_type in self.devices

    def applied(self, count: int) -> Patch:
        """This change, as made to ``count`` layers."""
        return dataclasses.replace(self, count=count)

    def as_dict(self) -> dict[str, str | int | list[str]]:
        return {**dataclasses.asdict(self), "devices": list(self.devices)}
