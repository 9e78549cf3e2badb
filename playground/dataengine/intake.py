"""What a job labels: a folder's files, or a zip or several uploaded files extracted into a job folder.

A zip is checked before anything is written: an entry that points outside its folder (``../``, an
absolute path, a symbolic link), too many entries, too many bytes in all, or an entry packed more
tightly than `MAX_RATIO` (a zip bomb) refuses the whole archive with one line that states the limit.
Extraction counts the bytes it really writes, so a header that lies is caught too.

Files are read one at a time by `decode`: an unreadable, corrupt or non-image file, or one over the
pixel limit (`playground.core.images.MAX_PIXELS`, checked from its header), becomes a reason to skip
it, and the job goes on.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from playground.core.errors import BadImageError, BadPromptError
from playground.core.images import image_problem, load_image

MAX_FILES = 10_000
"""Most files (zip entries, uploads, files in a folder) one job takes."""
MAX_TOTAL_BYTES = 4 * 1024**3
"""Most bytes a zip may hold once extracted (4 GiB)."""
MAX_RATIO = 100
"""Most an entry of over `RATIO_FLOOR_BYTES` may shrink in a zip (JPEG and PNG barely shrink at all)."""
RATIO_FLOOR_BYTES = 1024 * 1024
CHUNK = 1024 * 1024
EXIF_ORIENTATION = 0x0112
TRANSPOSED = frozenset({5, 6, 7, 8})
"""EXIF orientations that swap width and height."""


class IntakeError(BadPromptError):
    """An input the job refuses as a whole (one line that states the limit)."""


@dataclass(frozen=True)
class Decoded:
    """One file read for labelling: ``pixels`` (H, W, 3) uint8, upright and downscaled to
    `playground.core.images.MAX_SIDE` where larger; ``size`` the upright image's own (height, width),
    which the annotations are written in; or ``reason`` it is skipped (``pixels`` None)."""

    name: str
    pixels: np.ndarray | None = None
    size: tuple[int, int] = (0, 0)
    reason: str = ""


def list_folder(folder: str | Path, exclude: Path | None = None) -> list[str]:
    """Every file under ``folder`` (recursively, hidden files and folders left out, and ``exclude``,
    e.g. the job's output when it lies inside), as sorted POSIX paths relative to it."""
    root = Path(folder)
    if not root.is_dir():
        raise IntakeError(f"{root} is not a folder.")
    skip = exclude.resolve() if exclude is not None else None
    names = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if skip is not None and path.resolve().is_relative_to(skip):
            continue
        names.append(relative.as_posix())
        if len(names) > MAX_FILES:
            raise IntakeError(f"{root} holds more than {MAX_FILES} files; the limit is {MAX_FILES} per job.")
    return names


def extract_zip(archive: str | Path, dest: str | Path) -> list[str]:
    """Check ``archive`` as a whole, then extract its files into ``dest``; returns their names (sorted,
    POSIX, relative to ``dest``). Raises `IntakeError` for an unsafe or oversized archive."""
    archive, dest = Path(archive), Path(dest)
    try:
        with zipfile.ZipFile(archive) as packed:
            entries = [info for info in packed.infolist() if not info.is_dir()]
            names = [safe_name(info, archive.name) for info in entries]
            check_sizes(entries, archive.name)
            dest.mkdir(parents=True, exist_ok=True)
            total = 0
            kept = []
            for info, name in zip(entries, names):
                if name is None:
                    continue
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                total += copy_capped(packed, info, target, MAX_TOTAL_BYTES - total, archive.name)
                kept.append(name)
    except zipfile.BadZipFile as error:
        raise IntakeError(f"{archive.name} is not a readable zip ({error}).") from None
    return sorted(kept)


def safe_name(info: zipfile.ZipInfo, archive: str) -> str | None:
    """The entry's path inside the job folder, None for metadata (``__MACOSX/``, hidden files); raises
    `IntakeError` for a link, an absolute path or one that climbs out with ``..``."""
    raw = info.filename.replace("\\", "/")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise IntakeError(f"{archive}: entry {info.filename!r} is a symbolic link; links are refused.")
    path = PurePosixPath(raw)
    if path.is_absolute() or (raw[1:2] == ":") or ".." in path.parts:
        raise IntakeError(f"{archive}: entry {info.filename!r} points outside the folder; refused.")
    if any(part.startswith(".") or part == "__MACOSX" for part in path.parts):
        return None
    return path.as_posix()


def check_sizes(entries: Sequence[zipfile.ZipInfo], archive: str) -> None:
    """Refuse too many entries, too many bytes in all, and entries packed like a zip bomb."""
    if len(entries) > MAX_FILES:
        raise IntakeError(f"{archive} holds {len(entries)} files; the limit is {MAX_FILES} per job.")
    total = sum(info.file_size for info in entries)
    if total > MAX_TOTAL_BYTES:
        raise IntakeError(
            f"{archive} unpacks to {total / 1024**3:.1f} GiB; the limit is {MAX_TOTAL_BYTES / 1024**3:.0f} GiB."
        )
    for info in entries:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR_BYTES and ratio > MAX_RATIO:
            raise IntakeError(
                f"{archive}: entry {info.filename!r} unpacks {ratio:.0f}x its packed size (a zip bomb?); "
                f"the limit is {MAX_RATIO}x."
            )


def copy_capped(packed: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, archive: str) -> int:
    """Extract one entry to ``target``, stopping at ``budget`` bytes or past its declared size; returns
    the bytes written."""
    written = 0
    with packed.open(info) as source, target.open("wb") as out:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            if written > budget or written > info.file_size:
                out.close()
                target.unlink()
                raise IntakeError(
                    f"{archive}: entry {info.filename!r} unpacks past its declared size or the "
                    f"{MAX_TOTAL_BYTES / 1024**3:.0f} GiB limit; refused."
                )
            out.write(chunk)
    return written


def copy_files(paths: Sequence[str | Path], dest: str | Path) -> list[str]:
    """Copy uploaded files into ``dest`` under their own names (``name-2.jpg`` where a name repeats);
    returns the names in the order given."""
    if len(paths) > MAX_FILES:
        raise IntakeError(f"{len(paths)} files given; the limit is {MAX_FILES} per job.")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for source in map(Path, paths):
        name, count = source.name, 1
        while name in names:
            count += 1
            name = f"{source.stem}-{count}{source.suffix}"
        shutil.copyfile(source, dest / name)
        names.append(name)
    return names


def decode(folder: str | Path, name: str) -> Decoded:
    """Read file ``name`` under ``folder`` for labelling, or say why it is skipped."""
    path = Path(folder) / name
    problem = image_problem(path)
    if problem:
        return Decoded(name, reason=problem)
    try:
        pixels = load_image(path).pixels
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(EXIF_ORIENTATION) in TRANSPOSED:
                width, height = height, width
    except BadImageError as error:
        return Decoded(name, reason=str(error))
    except OSError as error:
        return Decoded(name, reason=f"{name} could not be read ({error.strerror or error}).")
    return Decoded(name, pixels, (height, width))
