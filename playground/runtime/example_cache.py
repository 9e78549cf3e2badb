"""`ExampleCache`: the bundled examples' predictions, kept on disk so they answer at once after a restart.

Only an image whose pixels are a bundled example's (``examples/*.jpg``, by `image_digest`) is
stored; an upload never is. The key is the result cache's (image digest, model, task, parameters)
plus what else makes a prediction: the weights mode, the checkpoint, the precision and the device,
so random-weight and tiny results never answer a pretrained request.

An entry is one ``.npz`` file named by the SHA-256 of its key: the prediction's arrays, and its
other fields as JSON (stored as a uint8 array), read back with ``allow_pickle=False``, so a file
in the folder can never run code. Writes go to a temporary file renamed into place, so a reader
sees a whole entry or none; a missing, partial or corrupt entry is a miss. The folder holds at most
``max_bytes``: after each write the least recently used entries (by file mtime, touched on every
hit) are deleted. Deleting the folder, or any file in it, at any time only costs a recomputation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import zipfile
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from playground.core.cache import MB
from playground.core.checkpoints import resolve_checkpoint
from playground.core.errors import PlaygroundError
from playground.core.forks import fork_safe
from playground.core.images import image_digest, load_image
from playground.core.protocols import Models
from playground.core.registry import get_spec
from playground.core.types import Prediction

log = logging.getLogger(__name__)

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
DEFAULT_MAX_MB = 256
"""Default bound of the folder: a few hundred model results on the bundled examples."""
FOLDER_ENV = "PLAYGROUND_EXAMPLE_CACHE"
MAX_MB_ENV = "PLAYGROUND_EXAMPLE_CACHE_MB"
FORMAT = 1
"""Bumped when the stored layout or a model's output changes meaning: older entries become misses."""
ARRAYS = ("boxes", "scores", "class_ids", "is_thing", "semantic_map")
MASKS = ("masks", "mask_probs")
"""(N, H, W) stacks, stored as each instance's crop to its extent (zero outside it): reading back
100 full 512 px masks from a compressed file took half a second, their crops a few milliseconds."""
EXTENTS = "extents"
SCALARS = tuple(
    f.name
    for f in fields(Prediction)
    if f.name not in (*ARRAYS, *MASKS, "explain", "label_names", "image_size", "cached")
)
META = "__fields__"
EXPLAIN = "explain."
STALE_TEMP_S = 3600
"""A temporary file older than this was left by a write that died: the next write removes it."""
SERVED_FROM = "disk"
"""``Prediction.meta["served_from"]`` of a prediction read from this cache."""


def default_folder() -> Path:
    """``$PLAYGROUND_EXAMPLE_CACHE``, else ``$XDG_CACHE_HOME/vision-playground/examples`` (``~/.cache``
    when unset), beside the Hugging Face and torch caches."""
    if os.environ.get(FOLDER_ENV):
        return Path(os.environ[FOLDER_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vision-playground" / "examples"


def default_max_mb() -> float:
    """``$PLAYGROUND_EXAMPLE_CACHE_MB`` (0 turns the cache off), else `DEFAULT_MAX_MB`."""
    text = os.environ.get(MAX_MB_ENV, "").strip()
    try:
        return float(text) if text else DEFAULT_MAX_MB
    except ValueError:
        raise PlaygroundError(f"${MAX_MB_ENV}={text!r}: expected a number of MB (0 turns the cache off).") from None


def result_key(models: Models, key: str, digest: str, task: str | None, params: dict[str, object]) -> str:
    """The entry's key as canonical JSON: everything that makes model ``key``'s prediction on the
    image ``digest`` (all ``params``, forward and post-processing alike)."""
    spec = get_spec(key)
    parts = [spec, *(get_spec(part) for part in spec.components)]
    asked = getattr(models, "checkpoints", {})
    precision_for = getattr(models, "precision_for", None)
    return json.dumps(
        {
            "format": FORMAT,
            "image": digest,
            "model": key,
            "task": task,
            "params": repr(sorted(params.items())),
            "weights": models.weights,
            "checkpoints": [
                resolve_checkpoint(part, asked.get(part.key)).label for part in parts if not part.components
            ],
            "precision": [precision_for(part.key) if precision_for else "" for part in parts],
            "device": str(models.device),
        },
        sort_keys=True,
    )


class ExampleCache:
    """Predictions on the bundled examples in ``folder``, at most ``max_mb`` MB of files.

    Thread-safe, and safe to share between processes: every file is written whole and renamed.
    """

    def __init__(self, folder: Path, max_mb: float = DEFAULT_MAX_MB, examples: Path = EXAMPLES_DIR) -> None:
        self.folder = Path(folder)
        self.max_bytes = int(max_mb * MB)
        self.examples = examples
        self._digests: frozenset[str] | None = None
        self._lock = fork_safe(threading.Lock())

    def is_example(self, digest: str) -> bool:
        """True when ``digest`` (`image_digest`) is a bundled example's, as `load_image` decodes it."""
        with self._lock:
            if self._digests is None:
                paths = sorted(self.examples.glob("*.jpg"))
                self._digests = frozenset(image_digest(load_image(path).pixels) for path in paths)
        return digest in self._digests

    def path(self, key: str) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()}.npz"

    def get(self, key: str) -> Prediction | None:
        """The stored prediction for ``key`` (from `result_key`), with ``meta["served_from"]`` set
        to ``"disk"``; None when there is none, or the file is partial, corrupt or another key's."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as stored:
                record = json.loads(bytes(stored[META]).decode())
                if record.get("key") != key:
                    return None
                values = record["fields"]
                size = tuple(values["image_size"])
                arrays = {name: stored[name] for name in ARRAYS if name in stored.files}
                explain = {name[len(EXPLAIN) :]: stored[name] for name in stored.files if name.startswith(EXPLAIN)}
                extents = stored[EXTENTS] if EXTENTS in stored.files else None
                for name in MASKS:
                    if name in stored.files:
                        arrays[name] = uncropped(stored[name], extents, size)
            prediction = Prediction(
                **{name: values[name] for name in SCALARS if name in values},
                image_size=size,
                label_names={int(k): v for k, v in values["label_names"]},
                explain=explain,
                **arrays,
            )
            if extents is not None:
                prediction.seed_extents(extents)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as error:
            log.warning("example cache: %s is unreadable (%s): ignored and removed", path.name, error)
            path.unlink(missing_ok=True)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # most recently used
        return replace(prediction, meta={**prediction.meta, "served_from": SERVED_FROM})

    def put(self, key: str, prediction: Prediction) -> None:
        """Store ``prediction`` under ``key``, then trim the folder to its bound. A prediction
        whose fields are not plain JSON (numbers, strings, lists, dicts) is not stored."""
        values = {name: getattr(prediction, name) for name in SCALARS}
        values["image_size"] = list(prediction.image_size)
        values["label_names"] = sorted(prediction.label_names.items())
        try:
            record = json.dumps({"key": key, "fields": values}, default=plain)
        except TypeError as error:
            log.info("example cache: %s's result not stored: %s", prediction.model, error)
            return
        arrays = {name: getattr(prediction, name) for name in ARRAYS if getattr(prediction, name) is not None}
        if prediction.masks is not None or prediction.mask_probs is not None:
            extents = prediction.mask_extents()
            arrays[EXTENTS] = extents
            for name in MASKS:
                if getattr(prediction, name) is not None:
                    arrays[name] = cropped(getattr(prediction, name), extents)
        arrays |= {EXPLAIN + name: np.asarray(value) for name, value in prediction.explain.items()}
        if any(array.dtype == object for array in arrays.values()):
            log.info("example cache: %s's result not stored: it holds Python objects", prediction.model)
            return
        temporary = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".tmp", delete=False) as file:
                temporary = Path(file.name)
                np.savez_compressed(file, **{META: np.frombuffer(record.encode(), np.uint8)}, **arrays)
            os.replace(temporary, self.path(key))
            self.trim()
        except OSError as error:  # a full or read-only disk: the result is still shown, only not kept
            log.warning("example cache: %s's result not stored in %s: %s", prediction.model, self.folder, error)
            if temporary is not None:
                temporary.unlink(missing_ok=True)

    def trim(self) -> None:
        """Delete the least recently used entries until the folder holds at most ``max_bytes``, and
        temporary files a dead write left behind."""
        entries = []
        for path in self.folder.iterdir():
            with contextlib.suppress(FileNotFoundError):  # another process removed it first
                stat = path.stat()
                if path.suffix == ".tmp" and stat.st_mtime < time.time() - STALE_TEMP_S:
                    path.unlink(missing_ok=True)
                elif path.suffix == ".npz":
                    entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size

    @property
    def nbytes(self) -> int:
        """Bytes of the entries in the folder now."""
        return sum(path.stat().st_size for path in self.folder.glob("*.npz")) if self.folder.is_dir() else 0


def cropped(stack: np.ndarray, extents: np.ndarray) -> np.ndarray:
    """(N, H, W) -> one flat array of each instance's crop to its extent ``y0, x0, y1, x1`` (N, 4)."""
    crops = [stack[i, y0:y1, x0:x1].ravel() for i, (y0, x0, y1, x1) in enumerate(extents)]
    return np.concatenate(crops) if crops else np.zeros(0, stack.dtype)


def uncropped(flat: np.ndarray, extents: np.ndarray | None, size: tuple[int, int]) -> np.ndarray:
    """`cropped`'s inverse: the (N, H, W) stack, zero outside each extent."""
    if extents is None:
        raise ValueError("masks stored without their extents")
    stack = np.zeros((len(extents), *size), flat.dtype)
    start = 0
    for i, (y0, x0, y1, x1) in enumerate(extents):
        end = start + (y1 - y0) * (x1 - x0)
        stack[i, y0:y1, x0:x1] = flat[start:end].reshape(y1 - y0, x1 - x0)
        start = end
    if start != flat.size:
        raise ValueError(f"{flat.size} mask pixels stored, {start} in the extents")
    return stack


def plain(value: object) -> object:
    """``json.dumps``' fallback: numpy scalars and small arrays as numbers and lists."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")
