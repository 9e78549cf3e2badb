"""The bench's clocks: CPU time leaves out waiting, and the steal share reads /proc/stat's ticks."""

from __future__ import annotations

import time

from playground.bench.timing import cpu_ticks, interleaved_medians, steal_percent


def test_cpu_time_leaves_out_waiting_and_counts_work() -> None:
    def wait() -> None:
        time.sleep(0.05)

    def work() -> None:
        end = time.process_time() + 0.05
        while time.process_time() < end:
            pass

    waited, worked = interleaved_medians([wait, work], repeat=2)
    assert waited.wall_ms >= 50 and waited.cpu_ms < 0.5 * waited.wall_ms
    assert worked.cpu_ms >= 50


def test_steal_share_of_two_readings() -> None:
    assert steal_percent((1000, 100), (2000, 350)) == 25.0
    assert steal_percent((1000, 100), (1000, 100)) is None  # no time passed
    assert steal_percent(None, (2000, 350)) is None


def test_ticks_grow_on_linux() -> None:
    first = cpu_ticks()
    time.sleep(0.05)
    second = cpu_ticks()
    assert first is not None and second is not None
    assert second[0] > first[0] and 0 <= second[1] - first[1] <= second[0] - first[0]
