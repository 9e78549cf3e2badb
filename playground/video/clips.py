"""Read a clip with PyAV into a `Clip`: sampled, downscaled frames kept in a file on disk.

The stream is decoded once, front to back. Each kept frame (sampled at ``fps`` by its
timestamp, so variable-frame-rate clips come out evenly spaced) is downscaled to at most
`MAX_SIDE` on its long side and written to a temporary file; `Clip.frame` reads one frame
back. Memory stays flat however long the clip: only the frame being decoded is in RAM.

Every way a file can be unusable ends in one `BadVideoError` naming what is wrong.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from playground.core.errors import BadPromptError
from playground.core.videos import (
    DEFAULT_MAX_FPS,
    MAX_FRAMES,
    MAX_SIDE,
    MAX_SOURCE_FPS,
    MAX_SOURCE_PIXELS,
    MAX_UPLOAD_MB,
    BadVideoError,
)


@dataclass(eq=False)
class Clip:
    """A sampled clip: ``len(clip)`` frames of ``height`` x ``width`` at ``fps``, on disk.

    Attributes:
        source_fps: the stream's own average rate; ``fps`` the sampled one.
        notices: what was changed on the way in (downscaled, resampled, variable rate).
    """

    name: str
    height: int
    width: int
    fps: float
    source_fps: float
    notices: list[str] = field(default_factory=list)
    count: int = 0
    file: Any = field(default=None, repr=False)
    source: str = ""
    """The decoded file's path (a GPU worker re-opens it: the frame file does not cross processes)."""
    """An unnamed temporary file holding the frames back to back, (height, width, 3) uint8 each."""

    def __len__(self) -> int:
        return self.count

    @property
    def frame_bytes(self) -> int:
        return self.height * self.width * 3

    def frame(self, index: int) -> np.ndarray:
        """(height, width, 3) uint8 RGB of frame ``index`` (one read from disk)."""
        if not 0 <= index < self.count:
            raise BadPromptError(f"frame {index} is past the end: the clip has frames 0..{self.count - 1}.")
        data = os.pread(self.file.fileno(), self.frame_bytes, index * self.frame_bytes)
        return np.frombuffer(bytearray(data), np.uint8).reshape(self.height, self.width, 3)

    @property
    def notice(self) -> str:
        return " ".join(self.notices)

    def close(self) -> None:
        """Delete the frame file (an unnamed temporary file: also gone when the clip is collected)."""
        self.file.close()


def open_clip(path: str | os.PathLike, fps: float | None = None, max_frames: int = MAX_FRAMES) -> Clip:
    """Decode ``path`` into a `Clip` sampled at ``fps`` (default: its own rate, up to 10)."""
    path = Path(path)
    if not path.is_file():
        raise BadVideoError(f"No video at {path.name}.")
    size_mb = path.stat().st_size / 2**20
    if size_mb > MAX_UPLOAD_MB:
        raise BadVideoError(f"The clip is {size_mb:.1f} MB; the limit is {MAX_UPLOAD_MB} MB.")
    if path.stat().st_size == 0:
        raise BadVideoError("The file is empty.")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise BadPromptError(f"fps {fps}: expected a positive number of frames per second.")
    import av  # here, not at start-up: the page is served before the Video tab's first request

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.EOFError:
        raise BadVideoError(f"{path.name} ends before its first frame: it is empty or truncated.") from None
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as error:
        raise BadVideoError(f"{path.name} is not a video we can read ({_reason(error)}).") from None
    with container:
        if not container.streams.video:
            raise BadVideoError(f"{path.name} has no video track.")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        clip = _decode(container, stream, path.name, fps, max_frames)
    clip.source = str(path)
    return clip


def _decode(container, stream, name: str, fps: float | None, max_frames: int) -> Clip:
    import av
    from av.video.reformatter import VideoReformatter

    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > MAX_SOURCE_PIXELS:
        raise BadVideoError(f"{name} is {width}x{height}; frames above {MAX_SOURCE_PIXELS // 10**6} MP are refused.")
    source_fps = float(stream.average_rate or stream.guessed_rate or 0) or 0.0
    if source_fps > MAX_SOURCE_FPS:
        raise BadVideoError(f"{name} declares {source_fps:.0f} frames per second; the limit is {MAX_SOURCE_FPS:.0f}.")
    target_fps = min(fps or DEFAULT_MAX_FPS, source_fps or DEFAULT_MAX_FPS)
    if fps and source_fps and fps > source_fps:
        target_fps = source_fps
    frames_file = tempfile.TemporaryFile(prefix="clip-")  # noqa: SIM115 - the clip owns it (Clip.close)
    clip = Clip(name, 0, 0, target_fps, source_fps, file=frames_file)
    intervals: set[int] = set()
    start: float | None = None
    last_time = next_time = 0.0
    step = 1 / target_fps
    # This clip's own scaler, not the one PyAV (18.1.1 on) shares between every frame of a thread:
    # a fork's child (a ZeroGPU worker) inherits the parent's shared one without its worker
    # threads, and its first conversion waits for them forever.
    to_rgb = VideoReformatter()
    try:
        for index, frame in enumerate(container.decode(stream)):
            time = _frame_time(frame, index, source_fps)
            start = time if start is None else start
            time -= start
            if index:
                if time <= last_time:
                    raise BadVideoError(f"{name} has timestamps that do not increase at frame {index}.")
                intervals.add(round((time - last_time) * 1000))
            last_time = time
            if time + 1e-6 < next_time:
                continue
            next_time += step
            if next_time <= time:  # after a gap in the stream, sample from here on
                next_time = time + step
            if clip.count >= max_frames:
                raise BadVideoError(
                    f"{name} gives more than {max_frames} frames at {target_fps:g} fps; "
                    f"choose a lower fps or trim the clip."
                )
            _append(clip, to_rgb.reformat(frame, format="rgb24"))
    except av.FFmpegError as error:
        if clip.count == 0:
            raise BadVideoError(f"{name} is corrupt: {_reason(error)}.") from None
        clip.notices.append(f"The stream is damaged after frame {clip.count}; the frames before it are used.")
    if clip.count == 0:
        raise BadVideoError(f"{name} has no frames that decode.")
    if len(intervals) > 2:
        clip.notices.append(f"Variable frame rate: resampled by timestamp to {target_fps:g} fps.")
    elif source_fps and target_fps < source_fps - 1e-6:
        clip.notices.append(f"Sampled at {target_fps:g} fps (the clip runs at {source_fps:g}).")
    return clip


def _frame_time(frame, index: int, source_fps: float) -> float:
    """Seconds from the stream start: the frame's timestamp, or its index over the rate when it has none."""
    if frame.pts is not None and frame.time_base is not None:
        return float(frame.pts * Fraction(frame.time_base))
    return index / (source_fps or DEFAULT_MAX_FPS)


def _append(clip: Clip, frame) -> None:
    """Write ``frame`` (an RGB24 ``av.VideoFrame``, downscaled to `MAX_SIDE`, even sides for H.264)
    to the clip's file."""
    image = frame.to_image()  # already RGB24: no conversion, no scaler
    if clip.count == 0:
        width, height = image.size
        scale = min(1.0, MAX_SIDE / max(width, height))
        clip.width, clip.height = max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
        if scale < 1:
            clip.notices.append(f"Frames downscaled from {width}x{height} to {clip.width}x{clip.height}.")
    if image.size != (clip.width, clip.height):
        image = image.resize((clip.width, clip.height), Image.Resampling.BILINEAR)
    os.pwrite(clip.file.fileno(), np.asarray(image, np.uint8).tobytes(), clip.count * clip.frame_bytes)
    clip.count += 1


def _reason(error: BaseException) -> str:
    """FFmpeg's own words for ``error``, without the file's path on this machine."""
    text = str(getattr(error, "strerror", None) or error).strip() or type(error).__name__
    return text.splitlines()[0][:200]
