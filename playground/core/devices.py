"""Devices: which one a run asks for, whether it is here, and a clock that waits for it.

CUDA and MPS run kernels asynchronously: a call returns when the work is queued, so a timer read
right after it measures the queueing, not the work. `synchronize` waits for the device first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from playground.core.errors import PlaygroundError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = "auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N, mps"
"""What ``--device`` takes, in words."""


def mps_available() -> bool:
    """True where torch can run on Apple's Metal GPU (built with MPS, and the device is present)."""
    import torch

    return bool(torch.backends.mps.is_available())


def check_device(device: torch.device) -> torch.device:
    """``device`` if it is present here, else `PlaygroundError` with one line that says why not."""
    import torch

    if device.type == "cuda" and not torch.cuda.is_available():
        raise PlaygroundError(f"--device {device}: no CUDA device is available here.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise PlaygroundError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    if device.type == "mps" and not mps_available():
        why = "this torch was built without MPS" if not torch.backends.mps.is_built() else "no Metal GPU is usable here"
        raise PlaygroundError(f"--device mps: {why} (MPS needs macOS 12.3+ on Apple silicon or an AMD GPU).")
    if device.type not in ("cpu", "cuda", "mps"):
        raise PlaygroundError(f"--device {device}: use {DEVICE_CHOICES}.")
    return device


def synchronize(device: torch.device) -> None:
    """Wait until ``device`` has finished the work queued on it (nothing to wait for on a CPU)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
