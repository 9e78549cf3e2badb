"""Wall-clock medians, with the timed calls interleaved so that each sees the same load."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn()`` in ms over ``repeat`` runs after one warm-up."""
    return interleaved_median_ms([fn], repeat)[0]


def interleaved_median_ms(
    fns: Sequence[Callable[[], object]], repeat: int, before: Callable[[], None] = lambda: None
) -> list[float]:
    """Median wall ms of each of ``fns`` over ``repeat`` runs after one warm-up each.

    The calls alternate (``fns[0]``, ``fns[1]``, ..., then again), so all of them see the same load
    from other processes; ``before()`` runs untimed before each call.
    """
    times: list[list[float]] = [[] for _ in fns]
    for run_index in range(repeat + 1):
        for fn, bucket in zip(fns, times):
            before()
            start = time.perf_counter()
            fn()
            if run_index:
                bucket.append((time.perf_counter() - start) * 1000)
    return [round(statistics.median(bucket), 2) for bucket in times]
