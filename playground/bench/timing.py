"""Medians of wall and CPU time, with the timed calls interleaved so that each sees the same load.

On a shared virtual machine the hypervisor can take the cores away ("steal" time): the wall clock
then counts time the process did not run. The process's CPU time (every thread together) leaves
that out, so it is the steadier figure there; `steal_percent` says how much was taken.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

STEAL_COLUMN = 8
"""Index of ``steal`` in the ``cpu`` line of ``/proc/stat`` (after the label)."""


class Median(NamedTuple):
    """Median times of one call, in ms."""

    wall_ms: float
    cpu_ms: float
    """Process CPU time of all threads together (about ``wall_ms`` x threads when none is idle)."""


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn()`` in ms over ``repeat`` runs after one warm-up."""
    return interleaved_medians([fn], repeat)[0].wall_ms


def interleaved_medians(
    fns: Sequence[Callable[[], object]], repeat: int, before: Callable[[], None] = lambda: None
) -> list[Median]:
    """Median wall and CPU ms of each of ``fns`` over ``repeat`` runs after one warm-up each.

    The calls alternate (``fns[0]``, ``fns[1]``, ..., then again), so all of them see the same load
    from other processes; ``before()`` runs untimed before each call.
    """
    walls: list[list[float]] = [[] for _ in fns]
    cpus: list[list[float]] = [[] for _ in fns]
    for run_index in range(repeat + 1):
        for fn, wall, cpu in zip(fns, walls, cpus):
            before()
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            if run_index:
                wall.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - start_cpu) * 1000)
    return [
        Median(round(statistics.median(wall), 2), round(statistics.median(cpu), 2)) for wall, cpu in zip(walls, cpus)
    ]


def cpu_ticks() -> tuple[int, int] | None:
    """(all ticks, steal ticks) of the machine so far, from ``/proc/stat``; None where it is absent."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(field) for field in fields]
    return sum(ticks), ticks[STEAL_COLUMN - 1] if len(ticks) >= STEAL_COLUMN else 0


def steal_percent(start: tuple[int, int] | None, end: tuple[int, int] | None) -> float | None:
    """Share of the machine's CPU time between two `cpu_ticks` readings that the hypervisor took."""
    if start is None or end is None or end[0] <= start[0]:
        return None
    return round(100 * (end[1] - start[1]) / (end[0] - start[0]), 1)
