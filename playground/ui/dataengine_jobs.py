"""Data engine jobs for the browser and the ``/label`` endpoint: one folder per job, named by a random token.

A job's folder, ``JOBS_DIR/<token>/``, holds its files (``files/``, the `playground.dataengine`
convention), its uploaded ground truth (``truth/``; truth drawn in the browser is in the store), the
job store (``job.sqlite``), the labeler table (``labelers.json``), the tab's threshold settings
(``settings.json``), review thumbnails (``thumbs/``) and the exports (``exports/``). Nothing lists the
jobs: a job is reached only by its token, so users see each other's jobs only when given the link.
`JOBS_DIR` is beside the app's output folder in Gradio's upload cache, whose files the app may serve;
the output folder itself is emptied file by file every hour, and a job lasts `JOB_MAX_AGE_S`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gradio.utils import get_upload_folder

from playground.core.errors import BadPromptError, PlaygroundError
from playground.dataengine.choose import METRICS, LabelerScore, LabelerTable, choose_labeler, load_truths, truth_for
from playground.dataengine.exports import FORMATS, export, weights_note
from playground.dataengine.intake import IntakeError, copy_files, decode, extract_zip, list_folder
from playground.dataengine.job import JobResult, Progress, job_config, run_job
from playground.dataengine.labelers import Labeler, make_labeler
from playground.dataengine.store import STORE_NAME, JobStore
from playground.runtime.service import Playground
from playground.scoring.truth import GroundTruth, from_boxes

JOBS_DIR = Path(get_upload_folder()) / "playground-jobs"
JOB_MAX_AGE_S = 7 * 24 * 3600
"""A job untouched for this long is removed when another job starts."""
TOKEN = re.compile(r"[0-9a-f]{32}")
TABLE_NAME = "labelers.json"
SETTINGS_NAME = "settings.json"

RUNNING: dict[str, threading.Event] = {}
"""Token -> the stop flag of the job labelling now (one run per job at a time)."""
_RUNNING_LOCK = threading.Lock()


@dataclass(frozen=True)
class Job:
    """One job's folder, by its ``token``."""

    token: str

    @property
    def folder(self) -> Path:
        return JOBS_DIR / self.token

    @property
    def files(self) -> Path:
        return self.folder / "files"

    @property
    def truth(self) -> Path:
        return self.folder / "truth"

    @property
    def store_path(self) -> Path:
        return self.folder / STORE_NAME

    @property
    def exports(self) -> Path:
        return self.folder / "exports"

    @property
    def query(self) -> str:
        """The query string of the link that reopens this job in the Data engine tab."""
        return f"?tab=dataengine&job={self.token}"

    def store(self) -> JobStore:
        return JobStore(self.store_path)

    def names(self) -> list[str]:
        """The job's files, as the job labels them."""
        return list_folder(self.files) if self.files.is_dir() else []


def new_job() -> Job:
    """A fresh, empty job; jobs untouched for `JOB_MAX_AGE_S` go first."""
    JOBS_DIR.mkdir(parents=True, exist_ok=True)
    remove_jobs_before(time.time() - JOB_MAX_AGE_S)
    job = Job(secrets.token_hex(16))
    job.files.mkdir(parents=True)
    return job


def open_job(token: str | None) -> Job | None:
    """The job ``token`` names, or None (not a token, or no such job on this server)."""
    if not token or not TOKEN.fullmatch(token):
        return None
    job = Job(token)
    return job if job.files.is_dir() else None


def remove_jobs_before(cutoff: float) -> None:
    """Delete the job folders last written before ``cutoff`` (epoch seconds), but never a running one."""
    for folder in JOBS_DIR.iterdir():
        if folder.name in RUNNING or not TOKEN.fullmatch(folder.name):
            continue
        with contextlib.suppress(OSError):
            written = max(path.stat().st_mtime for path in (folder, *folder.glob("job.sqlite*")))
            if written < cutoff:
                shutil.rmtree(folder, ignore_errors=True)


def take_uploads(job: Job, paths: Sequence[str]) -> list[str]:
    """Put uploaded zips (extracted) and image files into the job's ``files/``; returns its file names.
    Raises `IntakeError` (one line) for an unsafe or oversized zip, or when nothing was given."""
    if not paths:
        raise IntakeError("Upload a zip or some images first.")
    zips = [Path(p) for p in paths if Path(p).suffix.lower() == ".zip"]
    for archive in zips:
        extract_zip(archive, job.files / archive.stem if len(zips) > 1 else job.files)
    singles = [p for p in paths if Path(p).suffix.lower() != ".zip"]
    if singles:
        copy_files(singles, job.files)
    names = job.names()
    if not names:
        raise IntakeError("The upload holds no files.")
    return names


def take_truth(job: Job, paths: Sequence[str]) -> dict[str, GroundTruth]:
    """Make the uploaded COCO JSON files and PNG label maps the job's ``truth/`` (none: empty it) and
    read them: file name -> truth."""
    shutil.rmtree(job.truth, ignore_errors=True)
    if not paths:
        return {}
    copy_files(paths, job.truth)
    return load_truths(job.truth)


def drawn_truths(job: Job) -> dict[str, GroundTruth]:
    """File name -> the truth drawn on it in the browser (boxes, no masks)."""
    with job.store() as store:
        return {name: from_boxes(boxes, size) for name, (size, boxes) in store.drawn_truth().items()}


def labeler_table(
    playground: Playground,
    job: Job,
    keys: Sequence[str],
    classes: str,
    threshold: float | None,
    on_labeler: Callable[[str], None] | None = None,
) -> LabelerTable:
    """Score each labeler of ``keys`` on the job's images that have truth, best first: uploaded
    (``truth/``), else drawn in the browser. A labeler that cannot be made (no such class, a semantic
    model) is a row with its error. Written to ``labelers.json``."""
    if not keys:
        raise BadPromptError("Tick at least one labeler to score.")
    uploaded = load_truths(job.truth) if job.truth.is_dir() else {}
    drawn = drawn_truths(job)
    if not uploaded and not drawn:
        raise BadPromptError(
            "Give ground truth first: COCO JSON or PNG label maps for some of the images, or boxes drawn on them."
        )
    truths = {
        name: truth for name in job.names() if (truth := truth_for(name, uploaded) or drawn.get(name)) is not None
    }
    with_truth = [decode(job.files, name) for name in truths]
    labelers, failed = [], []
    for key in keys:
        if on_labeler is not None:
            on_labeler(f"loading {key}")
        try:
            labelers.append(make_labeler(playground, key, classes, threshold))
        except PlaygroundError as error:
            failed.append(LabelerScore(key, dict.fromkeys(METRICS), 0, str(error)))
    if not labelers:
        raise BadPromptError("; ".join(f"{row.labeler}: {row.error}" for row in failed))
    table = choose_labeler(labelers, with_truth, truths or uploaded, on_labeler=on_labeler)
    table = LabelerTable(table.rows + tuple(failed), table.best)
    (job.folder / TABLE_NAME).write_text(json.dumps(table.to_json(), indent=2) + "\n")
    return table


def saved_table(job: Job) -> list[dict]:
    """The labeler table the job last scored (`LabelerTable.to_json`), or []."""
    path = job.folder / TABLE_NAME
    return json.loads(path.read_text()) if path.is_file() else []


def save_settings(job: Job, own: bool, threshold: float) -> None:
    """Keep the tab's threshold settings with the job, so its link restores them."""
    (job.folder / SETTINGS_NAME).write_text(json.dumps({"own": bool(own), "threshold": float(threshold)}) + "\n")


def saved_settings(job: Job) -> dict:
    """The job's threshold settings (``own``, ``threshold``), or {}."""
    path = job.folder / SETTINGS_NAME
    return json.loads(path.read_text()) if path.is_file() else {}


def job_for(job: Job, labeler: Labeler) -> tuple[Job, bool]:
    """``job`` itself when it labels with ``labeler`` (or has not started), else a new job on the same
    files and truth, uploaded (hard links where the disk allows) and drawn, so the first keeps its
    labels and link; True when it is new."""
    with job.store() as store:
        config = store.config()
    if config is None or config == job_config(labeler):
        return job, False
    fresh = Job(secrets.token_hex(16))
    for part in ("files", "truth"):
        if (job.folder / part).is_dir():
            shutil.copytree(job.folder / part, fresh.folder / part, copy_function=link_or_copy)
    for name in (TABLE_NAME, SETTINGS_NAME):
        if (job.folder / name).is_file():
            shutil.copyfile(job.folder / name, fresh.folder / name)
    with job.store() as store, fresh.store() as copy:
        for name, (size, boxes) in store.drawn_truth().items():
            copy.draw_truth(name, size, boxes)
    return fresh, True


def link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def label(job: Job, labeler: Labeler, on_progress: Callable[[Progress], None] | None = None) -> JobResult:
    """Label the job's files with ``labeler`` (resuming where it stopped), stoppable by `stop_job`."""
    stop = threading.Event()
    with _RUNNING_LOCK:
        if job.token in RUNNING:
            raise BadPromptError("This job is labelling already: wait for it, or press Stop.")
        RUNNING[job.token] = stop
    try:
        with job.store() as store:
            return run_job(job.files, job.names(), labeler, store, on_progress=on_progress, stop=stop)
    finally:
        with _RUNNING_LOCK:
            RUNNING.pop(job.token, None)


def stop_job(token: str | None) -> bool:
    """Ask job ``token``'s run to stop after its current image; False when it is not running."""
    with _RUNNING_LOCK:
        stop = RUNNING.get(token or "")
    if stop is not None:
        stop.set()
    return stop is not None


def export_job(job: Job, formats: Sequence[str]) -> list[Path]:
    """Write the job's exports from its store as it is now (edits included): ``coco.json``, ``yolo.zip``
    (each kind's ``labels/`` and ``data.yaml``; the images are the job's own files) and ``report.json``."""
    unknown = [name for name in formats if name not in FORMATS]
    if unknown:
        raise BadPromptError(f"Formats {', '.join(unknown)}: choose from {', '.join(FORMATS)}.")
    shutil.rmtree(job.exports, ignore_errors=True)
    job.exports.mkdir(parents=True)
    with job.store() as store:
        if store.config() is None:
            raise BadPromptError("Nothing to export yet: label the images first.")
        written = export(store, job.files, job.exports, tuple(formats))
    paths = [written[name] for name in ("coco",) if name in written]
    if "yolo" in formats:
        paths.append(zip_yolo(job.exports / "yolo", job.exports / "yolo.zip"))
    return [*paths, written["report"]]


def zip_yolo(folder: Path, target: Path) -> Path:
    """``folder``'s YOLO datasets zipped without their image copies: ``detect/`` and ``segment/``,
    each with ``labels/`` and ``data.yaml``."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if path.is_file() and "images" not in relative.parts[:2]:
                archive.write(path, relative.as_posix())
    return target


def current_job(token: str, used: Sequence[str], uploads: Sequence[str] | None) -> tuple[Job, tuple[str, ...]]:
    """A session's job ``token``, or a new one holding ``uploads`` when they are not the ``used`` ones
    the job was made from; and the uploads the job holds."""
    paths = tuple(uploads or ())
    job = open_job(token)
    if paths and (job is None or paths != tuple(used)):
        job = new_job()
        try:
            take_uploads(job, paths)
        except PlaygroundError:
            shutil.rmtree(job.folder, ignore_errors=True)
            raise
        return job, paths
    if job is None:
        raise IntakeError("Upload a zip or some images first.")
    return job, tuple(used)


def unfinished(job: Job) -> bool:
    """True when some of the job's files are not labelled yet (a stopped run, or one never started)."""
    with job.store() as store:
        return store.counts()["pending"] > 0 or len(store.files()) < len(job.names())


def summary(job: Job) -> str:
    """One line on where the job stands: labelled, edited, accepted, duplicates, skipped."""
    with job.store() as store:
        counts = store.counts()
        note = weights_note(store)
    done = counts["labelled"] + counts["edited"] + counts["accepted"]
    head = "**Not finished:** press Label to go on. " if unfinished(job) else "**Done.** "
    line = f"{head}{done} images labelled ({counts['edited']} edited, {counts['accepted']} accepted)"
    line += f", {counts['duplicate']} duplicates, {counts['skipped']} skipped (see report.json)."
    return line + (f" Note: {note}." if note else "")


def progress_line(step: Progress) -> str:
    left = "—" if step.seconds_left is None else f"{step.seconds_left:.0f} s"
    return f"Labelling: {step.done} of {step.total} files · {step.images_per_minute:.1f} images/min · {left} left"


def table_rows(rows: list[dict]) -> list[list]:
    """`LabelerTable.to_json` rows as the tab's table shows them, the best marked."""
    return [
        ["★ best" if row["best"] else "", row["labeler"]]
        + ["—" if row["metrics"].get(k) is None else f"{row['metrics'][k]:.3f}" for k in METRICS]
        + [row["images"], row.get("error", "")]
        for row in rows
    ]
