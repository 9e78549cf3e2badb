"""Locks that a forked child gets back unlocked.

On a ZeroGPU Space every GPU call runs in a fork of the server, made from one request's thread
while other requests' threads go on. A lock that another thread held at that instant is copied
held, and that thread does not exist in the child: the child's first ``with lock`` would wait
forever, and the GPU call with it. CPython resets its own locks in a child (logging's, threading's);
`fork_safe` registers ours for the same reset.
"""

from __future__ import annotations

import os
import weakref
from typing import TypeVar

Lock = TypeVar("Lock")

_LOCKS: weakref.WeakSet = weakref.WeakSet()


def fork_safe(lock: Lock) -> Lock:
    """``lock`` (a ``threading.Lock`` or ``RLock``), unlocked in the child of every later fork."""
    _LOCKS.add(lock)
    return lock


def _unlock_in_child() -> None:
    for lock in list(_LOCKS):
        lock._at_fork_reinit()  # CPython's reset of a lock in a fork's child, as logging uses


os.register_at_fork(after_in_child=_unlock_in_child)
