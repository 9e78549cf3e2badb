"""`LRUCache`: the one cache class. Results, SAM embeddings and raw model outputs all live in one.

cachetools' ``LRUCache(maxsize, getsizeof=...)`` does the bookkeeping: it bounds the summed size
of the values and evicts the least recently used. We add what it lacks, and nothing else:

- a lock, because every user of a running app shares these caches;
- a bound on the number of entries as well as on bytes;
- single-flight `get_or_compute`: threads that ask for the same missing key wait for the first
  one's result instead of computing it again (SAM encodes an image once for everyone, and a click
  that comes while the image's encoding started on arrival waits only for what is left of it);
- entries larger than the whole byte budget are returned but not stored (cachetools would raise).

An adapter that fills a cache owns it (`Adapter.new_cache`), so evicting the model frees it and
the memory budget counts it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, fields, is_dataclass
from typing import Generic, TypeVar

import cachetools
import numpy as np

from playground.core.forks import fork_safe

V = TypeVar("V")

MB = 1024 * 1024


def deep_nbytes(value: object) -> int:
    """Bytes of the arrays in ``value``: a tensor or ndarray, an object with ``nbytes``, or a dict,
    list, tuple or dataclass holding them (other values count 0)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if hasattr(value, "element_size") and hasattr(value, "numel"):  # a torch.Tensor, without importing torch
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(deep_nbytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(deep_nbytes(v) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return sum(deep_nbytes(getattr(value, f.name)) for f in fields(value))
    nbytes = getattr(value, "nbytes", 0)
    return nbytes if isinstance(nbytes, int) else 0


@dataclass(frozen=True)
class Lookup(Generic[V]):
    """What `LRUCache.get_or_compute` found.

    Attributes:
        value: the cached or freshly computed value.
        computed: True when this call ran ``compute`` (a miss), False when it was served.
        seconds: time this call spent computing (0.0 when served from the cache).
        waited: time this call waited for another caller's computation of the same key (0.0 if none).
    """

    value: V
    computed: bool
    seconds: float = 0.0
    waited: float = 0.0

    def describe(self, what: str = "image encoded") -> str:
        """``"image encoded in 12.3 s"`` for a miss, ``"cached"`` for a hit, ``"cached, after 2.1 s
        waiting for it"`` for a hit that joined a computation under way."""
        if self.computed:
            return f"{what} in {self.seconds:.1f} s"
        return f"cached, after {self.waited:.1f} s waiting for it" if self.waited else "cached"


class LRUCache(Generic[V]):
    """A thread-safe LRU bounded in entries and in bytes.

    Args:
        max_items: most entries kept.
        max_bytes: most bytes kept, as measured by ``sizeof``.
        sizeof: bytes of one value; default `deep_nbytes`.
        restore: applied to a value found in the cache before it is returned (an adapter's cache
            moves an entry another process made on the CPU onto the model's device).
    """

    def __init__(
        self,
        max_items: int,
        max_bytes: int,
        sizeof: Callable[[V], int] = deep_nbytes,
        restore: Callable[[V], V] | None = None,
    ) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.restore = restore
        self.computes = 0
        """How many times ``compute`` ran: tests use it to prove a prompt did not re-encode."""
        self._items: cachetools.LRUCache[Hashable, V] = cachetools.LRUCache(max_bytes, getsizeof=sizeof)
        self._pending: dict[Hashable, Future[V]] = {}
        self._lock = fork_safe(threading.Lock())

    def get(self, key: Hashable) -> V | None:
        """The value for ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._items.get(key)
        return value if value is None or self.restore is None else self.restore(value)

    def put(self, key: Hashable, value: V) -> None:
        """Store ``value``, evicting least recently used entries beyond either bound."""
        with self._lock:
            self._put(key, value)

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> Lookup[V]:
        """The value for ``key``, running ``compute()`` only if no one has it or is making it.

        Concurrent callers with the same missing key wait for the first one's result (or its
        exception) instead of computing it again.
        """
        with self._lock:
            found = self._items.get(key)
            pending = self._pending.get(key)
        if found is not None:
            return Lookup(found if self.restore is None else self.restore(found), computed=False)
        with self._lock:
            if key in self._items:
                found = self._items[key]
                return Lookup(found if self.restore is None else self.restore(found), computed=False)
            pending = self._pending.get(key)
            owner = pending is None
            if owner:
                pending = self._pending[key] = Future()
        start = time.perf_counter()
        if not owner:
            value = pending.result()
            return Lookup(value, computed=False, waited=time.perf_counter() - start)
        try:
            value = compute()
        except BaseException as error:
            with self._lock:
                del self._pending[key]
            pending.set_exception(error)
            raise
        seconds = time.perf_counter() - start
        with self._lock:
            self.computes += 1
            self._put(key, value)
            del self._pending[key]
        pending.set_result(value)
        return Lookup(value, computed=True, seconds=seconds)

    def _put(self, key: Hashable, value: V) -> None:
        """Insert under the lock; a value larger than the whole byte budget is not kept."""
        self._items.pop(key, None)
        if self._items.getsizeof(value) > self.max_bytes:
            return
        self._items[key] = value
        while len(self._items) > self.max_items:
            self._items.popitem()

    def items(self) -> list[tuple[Hashable, V]]:
        """(key, value) of every entry, least recently used first, as stored (no ``restore``)."""
        with self._lock:
            return list(self._items.items())

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached values."""
        with self._lock:
            return int(self._items.currsize)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._items.clear()
