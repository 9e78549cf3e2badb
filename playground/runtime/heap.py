"""Hand the memory glibc keeps after ``free`` back to the OS.

glibc keeps freed memory for reuse, so after a forward pass (hundreds of MB of activations) or an
evicted model, resident memory stays high although nothing uses it. ``malloc_trim(0)`` returns
every free page. Elsewhere (musl, macOS) `trim` is a no-op.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from functools import cache


def trim() -> None:
    """Hand every free page of the heap back to the OS (``malloc_trim(0)``)."""
    malloc_trim = _malloc_trim()
    if malloc_trim is not None:
        malloc_trim(0)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # no glibc (musl has no malloc_trim)
        return None
