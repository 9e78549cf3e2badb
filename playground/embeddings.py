"""`EmbeddingCache`: per-image model outputs worth keeping, such as SAM's image embedding.

SAM's heavy image encoder runs once per image; every later prompt on that image needs only the
embedding (vit-b: (1, 256, 64, 64) float32, 4 MiB). The cache is an LRU bounded in count and in
bytes, safe under concurrent users, and computes a missing entry once even when several threads
ask for it at the same time (the others wait for that result instead of encoding again).

It lives on the adapter that fills it, so when the manager evicts the model its entries go too.
It is a module of its own because it knows nothing about SAM: Grounding DINO keeps its raw
outputs in one as well, and it is tested without any model.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch

V = TypeVar("V")

MB = 1024 * 1024


def tensor_nbytes(value: object) -> int:
    """Bytes of the tensors in ``value``: a tensor, or a dict, list or tuple holding tensors."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_nbytes(v) for v in value)
    return 0


@dataclass(frozen=True)
class Lookup(Generic[V]):
    """What `EmbeddingCache.get_or_compute` found.

    Attributes:
        value: the cached or freshly computed value.
        computed: True when this call ran ``compute`` (a miss), False when it was served.
        seconds: time this call spent computing (0.0 when served from the cache).
    """

    value: V
    computed: bool
    seconds: float = 0.0

    def describe(self, what: str = "image encoded") -> str:
        """``"image encoded in 12.3 s"`` for a miss, ``"cached"`` for a hit."""
        return f"{what} in {self.seconds:.1f} s" if self.computed else "cached"


class EmbeddingCache(Generic[V]):
    """A thread-safe LRU of values keyed by (image digest, model, ...), bounded in count and bytes.

    Args:
        max_items: most entries kept.
        max_bytes: most bytes kept (the newest entry is kept even if it alone is larger).
        sizeof: bytes of one value; default `tensor_nbytes`.
    """

    def __init__(
        self, max_items: int = 16, max_bytes: int = 256 * MB, sizeof: Callable[[V], int] = tensor_nbytes
    ) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.sizeof = sizeof
        self.computes = 0
        """How many times ``compute`` ran: tests use it to prove a prompt did not re-encode."""
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._pending: dict[Hashable, Future[V]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> Lookup[V]:
        """The value for ``key``, running ``compute()`` only if no one has it or is making it.

        Concurrent callers with the same missing key wait for the first one's result (or its
        exception) instead of computing it again.
        """
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return Lookup(self._items[key][0], computed=False)
            pending = self._pending.get(key)
            owner = pending is None
            if owner:
                pending = self._pending[key] = Future()
        if not owner:
            return Lookup(pending.result(), computed=False)
        start = time.perf_counter()
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
        """Insert under the lock and evict least recently used entries beyond the bounds."""
        if key in self._items:
            self._bytes -= self._items.pop(key)[1]
        size = self.sizeof(value)
        self._items[key] = (value, size)
        self._bytes += size
        while len(self._items) > 1 and (len(self._items) > self.max_items or self._bytes > self.max_bytes):
            _, (_, dropped) = self._items.popitem(last=False)
            self._bytes -= dropped

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
            return self._bytes

    def clear(self) -> None:
        """Drop every entry (the model that made them is going away)."""
        with self._lock:
            self._items.clear()
            self._bytes = 0
