"""`heap.trim` hands freed heap memory back to the OS (glibc's malloc_trim)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from playground.runtime import heap


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc only")
def test_trim_returns_freed_heap_memory():
    # 64 KB blocks stay under glibc's mmap threshold, so they live on the heap and stay there when freed
    blocks = [bytearray(b"x" * 65536) for _ in range(3200)]  # 200 MB
    kept = blocks[::50]  # a few live blocks pin the heap's top, so glibc cannot shrink it by itself
    del blocks
    before = rss_mb()
    heap.trim()
    after = rss_mb()
    assert before - after > 100, f"RSS {before:.0f} -> {after:.0f} MB"
    assert len(kept) == 64
