"""Resident memory of this process (Linux ``/proc``), now and at its peak since a reset."""

from __future__ import annotations

import contextlib
import resource
from pathlib import Path


def status_mb(field: str) -> float | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MB, or None off Linux."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return None


def rss_mb() -> float:
    """Resident memory now, in MB (the peak so far where the current figure cannot be read)."""
    return status_mb("VmRSS") or peak_rss_mb()


def reset_peak_rss() -> float:
    """Reset the kernel's peak-RSS mark for this process (Linux) and return the current RSS in MB."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return rss_mb()


def peak_rss_mb() -> float:
    """Peak resident memory in MB since `reset_peak_rss` (since start where it cannot be reset)."""
    return status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
