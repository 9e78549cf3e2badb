"""The data engine tests' folder of files to label, and a ``label`` job killed part-way, for the
local and the Ray backend alike."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from conftest import EXAMPLES

from playground.dataengine.store import STORE_NAME, JobStore

PHOTOS = sorted(p.name for p in EXAMPLES.glob("*.jpg"))


def make_folder(folder: Path) -> Path:
    """``folder`` made, with the bundled photos, a truncated JPEG, a text file and a copy of chelsea.jpg."""
    folder.mkdir(parents=True)
    for name in PHOTOS:
        shutil.copyfile(EXAMPLES / name, folder / name)
    (folder / "broken.jpg").write_bytes((EXAMPLES / "coffee.jpg").read_bytes()[:3000])
    (folder / "notes.txt").write_text("not an image\n")
    shutil.copyfile(EXAMPLES / "chelsea.jpg", folder / "zz_chelsea_again.jpg")
    return folder


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
