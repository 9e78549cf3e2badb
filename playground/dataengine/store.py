"""The job store: one SQLite file (stdlib ``sqlite3``, WAL) beside a job's output, e.g. ``OUT/job.sqlite``.

Tables:

- ``job``: one row: model key, class names, weights mode, parameters (JSON), created (Unix seconds).
- ``files``: every input file by its name in the job (a path relative to the job's folder): its
  image digest, or why it was skipped; a file whose digest an earlier file has is a duplicate.
- ``images``: one row per distinct image (`playground.core.images.image_digest`): the first file's
  name, size, state (``pending``, ``labelled``, ``edited``, ``accepted``), the model's warning and
  its timings in ms.
- ``annotations``: per image, class name, score, box XYXY in pixels, the mask as COCO RLE (JSON,
  pycocotools' ``mask.encode`` with ``counts`` as text) or NULL, where it came from (``model`` or
  ``edit``) and whether an edit removed it (removed rows are kept, so the history is whole).
- ``edits``: remove, relabel, add, accept: image, annotation, details (JSON), time.
- ``drawn_truth``: ground truth a person drew on a file (by its name in the job, labelled or not):
  its size and its boxes, each a class name and XYXY pixels (JSON).

Every write is one transaction, committed at once: an image's annotations and its new state are
written together, so a job killed at any point leaves either the whole image or none of it.
The connection is shared by threads (the UI's events) under one lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playground.core.errors import BadPromptError
from playground.dataengine.records import Annotation, Edit, FileRecord, ImageRecord, JobConfig, NewAnnotation

STORE_NAME = "job.sqlite"
IMAGE_STATES = ("pending", "labelled", "edited", "accepted")
"""An image waits (``pending``), has the model's labels (``labelled``), was corrected (``edited``) or
approved by a person (``accepted``)."""
FILE_STATES = ("image", "duplicate", "skipped")
DrawnBox = tuple[str, float, float, float, float]
"""A box drawn as ground truth: class name, x1, y1, x2, y2 in the image's own pixels."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS job (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    model TEXT NOT NULL,
    classes TEXT NOT NULL,
    weights TEXT NOT NULL,
    params TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    name TEXT PRIMARY KEY,
    digest TEXT,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    digest TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    warning TEXT NOT NULL DEFAULT '',
    timings TEXT NOT NULL DEFAULT '{}',
    labelled_at REAL
);
CREATE TABLE IF NOT EXISTS annotations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL REFERENCES images (digest),
    class_name TEXT NOT NULL,
    score REAL NOT NULL,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    rle TEXT,
    origin TEXT NOT NULL DEFAULT 'model',
    removed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS annotations_by_image ON annotations (digest);
CREATE TABLE IF NOT EXISTS edits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL,
    kind TEXT NOT NULL,
    annotation_id INTEGER,
    detail TEXT NOT NULL DEFAULT '{}',
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS drawn_truth (
    name TEXT PRIMARY KEY,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    boxes TEXT NOT NULL
);
"""
_KEEP_POSITION = (
    " ON CONFLICT (name) DO UPDATE SET digest = excluded.digest, state = excluded.state, reason = excluded.reason"
)
"""A file met again (a resumed job) keeps its place in the order."""


class JobStore:
    """The job store at ``path`` (created when missing). Thread-safe; every method commits at once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- the job -----------------------------------------------------------------------------

    def config(self) -> JobConfig | None:
        rows = self._rows("SELECT model, classes, weights, params FROM job")
        if not rows:
            return None
        model, classes, weights, params = rows[0]
        return JobConfig(model, tuple(json.loads(classes)), weights, json.loads(params))

    def start(self, config: JobConfig) -> None:
        """Record ``config``, or check that the store's job is the same one (a resumed job)."""
        with self._transaction() as db:
            stored = self.config()
            config = JobConfig(
                config.model, tuple(config.classes), config.weights, json.loads(json.dumps(config.params))
            )
            if stored is None:
                db.execute(
                    "INSERT INTO job VALUES (1, ?, ?, ?, ?, ?)",
                    (config.model, json.dumps(config.classes), config.weights, json.dumps(config.params), time.time()),
                )
            elif stored != config:
                raise BadPromptError(
                    f"{self.path} holds another job ({stored.model}, classes {', '.join(stored.classes) or '-'}, "
                    f"{stored.weights} weights, {stored.params}); give another --out to start a new one."
                )

    # -- files and images --------------------------------------------------------------------

    def file(self, name: str) -> FileRecord | None:
        rows = self._rows("SELECT name, digest, state, reason FROM files WHERE name = ?", (name,))
        return FileRecord(*rows[0]) if rows else None

    def files(self) -> list[FileRecord]:
        """Every input file, in the order the job met them."""
        return [
            FileRecord(*row) for row in self._rows("SELECT name, digest, state, reason FROM files ORDER BY position")
        ]

    def skip_file(self, name: str, reason: str) -> None:
        """Record that file ``name`` is skipped and why."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO files VALUES (?, NULL, 'skipped', ?, (SELECT COUNT(*) FROM files))" + _KEEP_POSITION,
                (name, reason),
            )

    def add_file(self, name: str, digest: str, size: tuple[int, int]) -> FileRecord:
        """Record file ``name`` with image ``digest`` of ``size`` (height, width): a new ``pending`` image,
        or a ``duplicate`` of the first file with that digest (its reason names it)."""
        with self._transaction() as db:
            first = db.execute("SELECT name FROM images WHERE digest = ?", (digest,)).fetchone()
            if first is None or first[0] == name:
                if first is None:
                    db.execute(
                        "INSERT INTO images (digest, name, width, height) VALUES (?, ?, ?, ?)",
                        (digest, name, size[1], size[0]),
                    )
                record = FileRecord(name, digest, "image", "")
            else:
                record = FileRecord(name, digest, "duplicate", f"duplicate of {first[0]}")
            db.execute(
                "INSERT INTO files VALUES (?, ?, ?, ?, (SELECT COUNT(*) FROM files))" + _KEEP_POSITION,
                (name, digest, record.state, record.reason),
            )
        return record

    def image(self, digest: str) -> ImageRecord:
        rows = self._rows(
            "SELECT digest, name, width, height, state, warning, timings FROM images WHERE digest = ?", (digest,)
        )
        if not rows:
            raise BadPromptError(f"No image {digest} in this job.")
        return _image(rows[0])

    def images(self) -> list[ImageRecord]:
        """Every distinct image, in the order the job met them."""
        rows = self._rows(
            "SELECT i.digest, i.name, i.width, i.height, i.state, i.warning, i.timings FROM images i "
            "JOIN files f ON f.name = i.name ORDER BY f.position"
        )
        return [_image(row) for row in rows]

    def save_labels(
        self, digest: str, rows: Sequence[NewAnnotation], timings: dict[str, float], warning: str = ""
    ) -> None:
        """Write a pending image's annotations and mark it ``labelled``, in one transaction; an image that
        is no longer pending (labelled already) is left as it is."""
        with self._transaction() as db:
            state = db.execute("SELECT state FROM images WHERE digest = ?", (digest,)).fetchone()
            if state is None or state[0] != "pending":
                return
            for row in rows:
                _insert(db, digest, row, "model")
            db.execute(
                "UPDATE images SET state = 'labelled', warning = ?, timings = ?, labelled_at = ? WHERE digest = ?",
                (warning, json.dumps(timings), time.time(), digest),
            )

    def counts(self) -> dict[str, int]:
        """Images per state and files per state (``skipped``, ``duplicate``)."""
        counts = dict.fromkeys((*IMAGE_STATES, "skipped", "duplicate"), 0)
        counts.update(dict(self._rows("SELECT state, COUNT(*) FROM images GROUP BY state")))
        for state, count in self._rows("SELECT state, COUNT(*) FROM files WHERE state != 'image' GROUP BY state"):
            counts[state] = count
        return counts

    # -- annotations and edits ---------------------------------------------------------------

    def annotations(self, digest: str | None = None, include_removed: bool = False) -> list[Annotation]:
        """The annotations of image ``digest`` (every image's when None), oldest first."""
        sql = "SELECT id, digest, class_name, score, x1, y1, x2, y2, rle, origin, removed FROM annotations"
        where = [] if include_removed else ["removed = 0"]
        args: list[Any] = []
        if digest is not None:
            where.append("digest = ?")
            args.append(digest)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_annotation(row) for row in self._rows(sql + " ORDER BY id", args)]

    def annotation(self, annotation_id: int) -> Annotation:
        rows = self._rows(
            "SELECT id, digest, class_name, score, x1, y1, x2, y2, rle, origin, removed FROM annotations WHERE id = ?",
            (annotation_id,),
        )
        if not rows:
            raise BadPromptError(f"No annotation {annotation_id} in this job.")
        return _annotation(rows[0])

    def edit(
        self,
        digest: str,
        kind: str,
        annotation_id: int | None = None,
        detail: dict[str, Any] | None = None,
        change: tuple[str, Sequence[Any]] | None = None,
        add: NewAnnotation | None = None,
    ) -> int:
        """Record one edit and make it, in one transaction: ``change`` is an SQL update and its
        arguments, ``add`` a new annotation. The image becomes ``edited`` (``accepted`` for an
        accept). Returns the new annotation's id for an add, else ``annotation_id``."""
        state = "accepted" if kind == "accept" else "edited"
        with self._transaction() as db:
            if change is not None:
                db.execute(*change)
            if add is not None:
                annotation_id = _insert(db, digest, add, "edit")
            db.execute(
                "INSERT INTO edits (digest, kind, annotation_id, detail, at) VALUES (?, ?, ?, ?, ?)",
                (digest, kind, annotation_id, json.dumps(detail or {}), time.time()),
            )
            db.execute("UPDATE images SET state = ? WHERE digest = ?", (state, digest))
        return annotation_id if annotation_id is not None else -1

    def edits(self, digest: str | None = None) -> list[Edit]:
        sql = "SELECT id, digest, kind, annotation_id, detail, at FROM edits"
        args = (digest,) if digest is not None else ()
        if digest is not None:
            sql += " WHERE digest = ?"
        return [
            Edit(i, d, k, a, json.loads(detail), at)
            for i, d, k, a, detail, at in self._rows(sql + " ORDER BY id", args)
        ]

    # -- ground truth drawn in the browser ---------------------------------------------------

    def drawn_truth(self) -> dict[str, tuple[tuple[int, int], list[DrawnBox]]]:
        """File name -> (its size (height, width), the boxes drawn on it), for every file with boxes."""
        rows = self._rows("SELECT name, height, width, boxes FROM drawn_truth ORDER BY name")
        return {name: ((h, w), [tuple(box) for box in json.loads(boxes)]) for name, h, w, boxes in rows}

    def draw_truth(self, name: str, size: tuple[int, int], boxes: Sequence[DrawnBox]) -> None:
        """Make ``boxes`` the truth drawn on file ``name`` of ``size`` (height, width); none removes it."""
        with self._transaction() as db:
            db.execute("DELETE FROM drawn_truth WHERE name = ?", (name,))
            if boxes:
                db.execute(
                    "INSERT INTO drawn_truth VALUES (?, ?, ?, ?)",
                    (name, size[0], size[1], json.dumps([list(box) for box in boxes])),
                )


def _insert(db: sqlite3.Connection, digest: str, row: NewAnnotation, origin: str) -> int:
    x1, y1, x2, y2 = (float(v) for v in row.box)
    cursor = db.execute(
        "INSERT INTO annotations (digest, class_name, score, x1, y1, x2, y2, rle, origin) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            digest,
            row.class_name,
            float(row.score),
            x1,
            y1,
            x2,
            y2,
            None if row.rle is None else json.dumps(row.rle),
            origin,
        ),
    )
    return int(cursor.lastrowid or 0)


def _image(row: tuple) -> ImageRecord:
    digest, name, width, height, state, warning, timings = row
    return ImageRecord(digest, name, width, height, state, warning, json.loads(timings))


def _annotation(row: tuple) -> Annotation:
    ident, digest, class_name, score, x1, y1, x2, y2, rle, origin, removed = row
    return Annotation(
        ident,
        digest,
        class_name,
        score,
        (x1, y1, x2, y2),
        None if rle is None else json.loads(rle),
        origin,
        bool(removed),
    )
