"""Run a labelling job end to end: every file of a folder through a `Labeler` into a `JobStore`.

Resumable: a file the store already holds (a duplicate, or an image no longer pending) is not read
again, and an image is marked labelled in the same transaction as its annotations, so a
job killed at any point and run again labels every image exactly once. The next file is decoded on
a second thread while the model runs on the current one (a one-image read-ahead).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from playground.core.images import image_digest
from playground.dataengine.intake import Decoded, decode
from playground.dataengine.labelers import Labeler
from playground.dataengine.records import JobConfig
from playground.dataengine.store import JobStore


@dataclass(frozen=True)
class Progress:
    """Where a job stands: ``done`` of ``total`` files; ``images_per_minute`` labelled in this run
    (0 before the first); ``seconds_left`` at that rate (None before the first); ``name`` the file
    just finished."""

    done: int
    total: int
    images_per_minute: float
    seconds_left: float | None
    name: str


@dataclass(frozen=True)
class JobResult:
    """What one run did: ``labelled`` images this run, ``resumed`` files the store already held,
    ``seconds`` of wall time, and the store's counts per state afterwards."""

    labelled: int
    resumed: int
    seconds: float
    counts: dict[str, int]

    @property
    def images_per_minute(self) -> float:
        return 60.0 * self.labelled / self.seconds if self.seconds > 0 else 0.0


def job_config(labeler: Labeler) -> JobConfig:
    """The store's record of what ``labeler`` labels with."""
    params = {"task": labeler.task, "threshold": labeler.threshold}
    params |= {k: v for k, v in labeler.params.items() if k != "text"}
    return JobConfig(labeler.key, labeler.classes, labeler.playground.manager.weights, params)


def run_job(
    folder: str | Path,
    names: Sequence[str],
    labeler: Labeler,
    store: JobStore,
    on_progress: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
) -> JobResult:
    """Label files ``names`` (relative to ``folder``, e.g. from `intake.list_folder`) with ``labeler``
    into ``store``, which must hold this job or none (`JobStore.start`); ``on_progress`` is called
    after each file. Setting ``stop`` (from another thread) ends the run after the current file; run
    it again to go on."""
    store.start(job_config(labeler))
    start = time.perf_counter()
    labelled = 0
    todo = [name for name in names if not finished(store, name)]
    resumed = len(names) - len(todo)
    for done, decoded in enumerate(read_ahead(folder, todo), start=resumed + 1):
        if stop is not None and stop.is_set():
            break
        if label_one(decoded, labeler, store):
            labelled += 1
        if on_progress is not None:
            on_progress(progress(done, len(names), labelled, start, decoded.name))
    return JobResult(labelled, resumed, time.perf_counter() - start, store.counts())


def progress(done: int, total: int, labelled: int, start: float, name: str) -> Progress:
    """`Progress` after ``done`` of ``total`` files, ``labelled`` images since ``start``
    (`time.perf_counter`); ``name`` the file just finished."""
    elapsed = time.perf_counter() - start
    rate = 60.0 * labelled / elapsed if labelled and elapsed > 0 else 0.0
    return Progress(done, total, rate, (total - done) * 60.0 / rate if rate else None, name)


def finished(store: JobStore, name: str) -> bool:
    """True when file ``name`` needs no more work: a duplicate, or its image labelled. A skipped file
    is read again (it may have been replaced); a pending image is labelled again from the start."""
    record = store.file(name)
    if record is None or record.digest is None:
        return False
    return record.state == "duplicate" or store.image(record.digest).state != "pending"


def label_one(decoded: Decoded, labeler: Labeler, store: JobStore) -> bool:
    """Record one decoded file and label it if it is a new image; True when it was labelled."""
    if decoded.pixels is None:
        store.skip_file(decoded.name, decoded.reason)
        return False
    digest = image_digest(decoded.pixels)
    if not add_new_image(store, decoded.name, digest, decoded.size):
        return False
    start = time.perf_counter()
    labelled = labeler.label(decoded.pixels, decoded.size)
    timings = labelled.timings_ms | {"total": round(1000 * (time.perf_counter() - start), 1)}
    store.save_labels(digest, labelled.rows, timings, labelled.warning)
    return True


def add_new_image(store: JobStore, name: str, digest: str, size: tuple[int, int]) -> bool:
    """Record file ``name`` as holding the image ``digest`` of ``size`` (height, width); True when that
    image still needs labelling (the file is no duplicate and the image is not labelled yet)."""
    record = store.add_file(name, digest, size)
    return record.state != "duplicate" and store.image(digest).state == "pending"


def read_ahead(folder: str | Path, names: Sequence[str]) -> Iterator[Decoded]:
    """`decode` each file, the next one on a worker thread while the caller works on the current one."""
    if not names:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as pool:
        pending: Future[Decoded] = pool.submit(decode, folder, names[0])
        for name in names[1:]:
            current = pending.result()
            pending = pool.submit(decode, folder, name)
            yield current
        yield pending.result()
