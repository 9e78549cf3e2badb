"""The data engine's job on Ray Data: `run_job` is `playground.dataengine.job.run_job` with the files
decoded in Ray tasks and labelled by a pool of Ray actors, written by the driver into the same store.

::

    driver: names not yet finished ──from_items──> decode tasks (CPU: read, decode, digest)
        ──> labelling actors (``workers`` of them, each ``cpus`` and ``gpus``; one labeler each)
        ──> driver: iter_rows ──> JobStore (SQLite), one transaction per image

- **Same answers.** Each actor builds its own copy of the driver's `Labeler` (`remote_labeler`):
  a fresh `ModelManager` from the caller's factory, its models loaded once from the seed the local
  job uses, so the rows are the local job's rows.
- **Resumable as the local job.** Files the store already finished (`job.finished`) are not sent;
  results are written as they stream back, so a killed job run again goes on where it stopped.
- **Pulled, not pushed.** Every file is its own block and each actor holds one task at a time, so
  an actor takes the next file when it is free and a slow image holds up nothing else.
- **Nothing lost.** Ray Data restarts a dead actor and retries its file (`tries` in all, Ray's
  ``max_task_retries`` and ``max_retries``, which Ray Data would otherwise leave unbounded). A file
  whose worker died on every try is dropped by Ray Data (``max_errored_blocks=-1``) and recorded
  here as skipped, with the reason. An exception while labelling one file becomes its skip reason.
- **Duplicates** of an image are found by the driver, as results arrive: the first file to arrive
  is the image, the others are its duplicates. Files still to do that hold the same picture are
  each labelled (their rows after the first are dropped).

Call `before_ray` (`playground.backends`) before this module is imported, then `start`.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import ray

from playground.core.images import image_digest
from playground.core.protocols import Models
from playground.dataengine.intake import Decoded, decode
from playground.dataengine.job import JobResult, Progress, add_new_image, finished, job_config, progress
from playground.dataengine.labelers import Labeler, Labelled, load
from playground.dataengine.records import NewAnnotation
from playground.dataengine.store import JobStore
from playground.runtime.service import Playground

DECODE_CPUS = 0.25
"""CPUs a decode task asks Ray for: decoding is short, so several share a core with an actor."""
EMPTY = np.zeros((0, 0, 3), np.uint8)
"""The pixels of a file that is skipped (one column type for every row)."""


class LabelsImages(Protocol):
    """What an actor labels with: a `Labeler`, or anything with its ``label``."""

    def label(self, pixels: np.ndarray, size: tuple[int, int] | None = None) -> Labelled: ...


@dataclass(frozen=True)
class RayOptions:
    """The labelling actors: ``workers`` of them, each asking Ray for ``cpus`` CPUs (also its torch
    threads) and ``gpus`` GPUs (fractions allowed); ``tries`` per file, the first included."""

    workers: int = 1
    cpus: float = 1.0
    gpus: float = 0.0
    tries: int = 3


def start(address: str | None, options: RayOptions = RayOptions()) -> str:
    """Join the Ray cluster at ``address``, or start one here on 127.0.0.1 (no dashboard, a small
    object store) with CPUs enough for the actors and one decode task; returns its address."""
    from playground.backends.ray_serve import start_cluster

    cpus = max(os.cpu_count() or 1, math.ceil(options.workers * options.cpus + DECODE_CPUS))
    return start_cluster(address, num_cpus=None if address else cpus)


def remote_labeler(labeler: Labeler, make_manager: Callable[[], Models]) -> Callable[[], Labeler]:
    """A picklable recipe for ``labeler`` that an actor runs: ``make_manager()``, the models loaded as
    `make_labeler` loads them (random and tiny weights from its seed), the same classes and params."""
    kept = {field.name: getattr(labeler, field.name) for field in fields(labeler) if field.name != "playground"}
    return partial(rebuild_labeler, make_manager, kept)


def rebuild_labeler(make_manager: Callable[[], Models], kept: dict[str, Any]) -> Labeler:
    playground = Playground(make_manager())
    load(playground, kept["key"], kept["task"])
    return Labeler(playground, **kept)


RESULT_COLUMNS = ("name", "digest", "height", "width", "reason", "rows", "timings", "warning")
"""What comes back to the driver per file (`LabelWorker.label_file`)."""


def decode_row(row: dict[str, Any], folder: str) -> dict[str, Any]:
    """Ray task: read and decode one file (``row["name"]`` under ``folder``) -> its pixels (H, W, 3)
    uint8, its own size (height, width), its digest, or the reason it is skipped."""
    name = row["name"]
    try:
        decoded = decode(folder, name)
    except Exception as error:  # anything `decode` does not expect is still this file's reason, not a lost task
        decoded = Decoded(name, reason=f"{name} could not be read ({type(error).__name__}: {error}).")
    if decoded.pixels is None:
        return {"name": name, "pixels": EMPTY, "height": 0, "width": 0, "digest": "", "reason": decoded.reason}
    height, width = decoded.size
    pixels = decoded.pixels
    return {
        "name": name,
        "pixels": pixels,
        "height": height,
        "width": width,
        "digest": image_digest(pixels),
        "reason": "",
    }


class LabelWorker:
    """A labelling actor: builds its labeler once (``build()``, with ``threads`` torch threads), then
    labels each batch of decoded files (`RESULT_COLUMNS` back, no pixels)."""

    def __init__(self, build: Callable[[], LabelsImages], threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.labeler = build()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        results = [
            self.label_file({key: column[i] for key, column in batch.items()}) for i in range(len(batch["name"]))
        ]
        return {key: [result[key] for result in results] for key in RESULT_COLUMNS}

    def label_file(self, row: dict[str, Any]) -> dict[str, Any]:
        """One decoded file -> its rows (JSON: a list of `NewAnnotation` fields) and timings (JSON, ms),
        or its reason to skip: the decode's, or an exception from the labeler."""
        name, size = str(row["name"]), (int(row["height"]), int(row["width"]))
        result = {"name": name, "digest": str(row["digest"]), "height": size[0], "width": size[1]}
        result |= {"reason": str(row["reason"]), "rows": "[]", "timings": "{}", "warning": ""}
        if result["reason"]:
            return result
        start = time.perf_counter()
        try:
            labelled = self.labeler.label(np.array(row["pixels"]), size)  # a writable copy of Ray's block
        except Exception as error:  # this file's reason to skip; the job goes on
            return result | {"reason": f"{name}: labelling failed ({type(error).__name__}: {error})"}
        timings = labelled.timings_ms | {"total": round(1000 * (time.perf_counter() - start), 1)}
        rows = json.dumps([asdict(annotation) for annotation in labelled.rows])
        return result | {"rows": rows, "timings": json.dumps(timings), "warning": labelled.warning}


def run_job(
    folder: str | Path,
    names: Sequence[str],
    labeler: Labeler,
    store: JobStore,
    on_progress: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
    *,
    build: Callable[[], LabelsImages],
    options: RayOptions = RayOptions(),
) -> JobResult:
    """`playground.dataengine.job.run_job` on the Ray cluster this process joined (`start`).

    ``labeler`` is recorded as the job (the driver labels nothing with it); ``build`` is what each
    actor labels with (`remote_labeler`). ``folder`` must be readable at the same path on every node.
    ``on_progress`` is called after each file is written; setting ``stop`` ends the run after the
    next one (the files in flight are labelled again by the next run).
    """
    store.start(job_config(labeler))
    begin = time.perf_counter()
    todo = [name for name in names if not finished(store, name)]
    resumed = done = len(names) - len(todo)
    labelled = 0
    if not todo:
        return JobResult(0, resumed, time.perf_counter() - begin, store.counts())
    with warnings.catch_warnings():  # Ray 2.60 takes retry bounds only as **ray_remote_args, deprecated for 2.64
        warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated", DeprecationWarning)
        dataset = ray.data.from_items([{"name": name} for name in todo], override_num_blocks=len(todo)).map(
            decode_row,
            fn_kwargs={"folder": str(Path(folder).resolve())},
            num_cpus=DECODE_CPUS,
            max_retries=options.tries - 1,
        )
        dataset = dataset.map_batches(
            LabelWorker,
            fn_constructor_args=(build, max(1, int(options.cpus))),
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=options.workers, max_tasks_in_flight_per_actor=1),
            num_cpus=options.cpus,
            num_gpus=options.gpus,
            max_task_retries=options.tries - 1,
        )
    dataset.context.max_errored_blocks = -1
    dataset.context.enable_progress_bars = False
    returned: set[str] = set()
    for row in dataset.iter_rows():
        returned.add(row["name"])
        labelled += record(store, row)
        done += 1
        if on_progress is not None:
            on_progress(progress(done, len(names), labelled, begin, row["name"]))
        if stop is not None and stop.is_set():
            break
    else:
        for name in todo:
            if name not in returned:
                store.skip_file(name, f"{name}: failed after {options.tries} tries (its Ray worker died each time)")
    return JobResult(labelled, resumed, time.perf_counter() - begin, store.counts())


def record(store: JobStore, row: dict[str, Any]) -> bool:
    """Write one result into ``store`` as `job.label_one` does; True when it labelled a new image."""
    if row["reason"]:
        store.skip_file(row["name"], row["reason"])
        return False
    digest = row["digest"]
    if not add_new_image(store, row["name"], digest, (row["height"], row["width"])):
        return False
    rows = [NewAnnotation(r["class_name"], r["score"], tuple(r["box"]), r["rle"]) for r in json.loads(row["rows"])]
    store.save_labels(digest, rows, json.loads(row["timings"]), row["warning"])
    return True
