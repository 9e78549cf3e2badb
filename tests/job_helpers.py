"""Kill a ``label`` job part-way, for the resume tests of the local and the Ray backend."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from playground.dataengine.store import STORE_NAME, JobStore


def labelled(out: Path) -> int:
    """Images the job store under ``out`` has labelled (0 while it does not exist yet)."""
    if not (out / STORE_NAME).exists():
        return 0
    try:
        with JobStore(out / STORE_NAME) as store:
            return store.counts()["labelled"]
    except Exception:  # the store is being created by the other process
        return 0


def kill_part_way(command: list[str], cwd: Path, out: Path, images: int, patience: float) -> int:
    """Run ``command`` (a ``label`` writing into ``out``) and SIGKILL it once ``images`` images are
    labelled (or after ``patience`` seconds); returns how many were labelled."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + patience
        while process.poll() is None and time.monotonic() < deadline and labelled(out) < images:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    return labelled(out)
