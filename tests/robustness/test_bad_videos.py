"""Odd and hostile clips, made on the fly with PyAV, through the Python API, the CLI and the live
app's /video endpoint: each is read (with a notice where it was changed) or refused with one
clear line, and the server still answers a good request afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import EXAMPLES, ROOT
from corpus import assert_one_clear_line
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from playground.core.videos import BadVideoError
from playground.video.clips import open_clip


@dataclass(frozen=True)
class VideoCase:
    """A clip: ``frames`` it must give (None: refused with ``error``), and a ``notice`` fragment."""

    name: str
    frames: int | None = None
    error: str = ""
    notice: str = ""


def encode(path: Path, frames: int = 10, size=(64, 48), rate=10, fmt=None, pts=None, time_base=None) -> None:
    """A grey ramp clip through PyAV's MPEG-4 encoder; ``pts`` (in ``time_base``) for uneven timing."""
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        if time_base:
            stream.codec_context.time_base = stream.time_base = time_base
        if not frames:
            container.start_encoding()
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), index * 20 % 255, np.uint8), "rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[index], time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        for index in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, index * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


CASES = [
    VideoCase("not_a_video.mp4", error="is not a video we can read"),
    VideoCase("audio_only.mp4", error="has no video track"),
    VideoCase("zero_frames.mkv", error="ends before its first frame"),
    VideoCase("truncated.mp4", error="is not a video we can read"),
    VideoCase("truncated.mkv", frames=15),
    VideoCase("huge.gif", error="8200x8200; frames above 67 MP are refused"),
    VideoCase("too_fast.mp4", error="declares 2000 frames per second; the limit is 1000"),
    VideoCase("fast.mp4", frames=10, notice="Sampled at 10 fps (the clip runs at 240)"),
    VideoCase("variable_rate.mkv", frames=6, notice="Variable frame rate: resampled by timestamp to 10 fps"),
    VideoCase("large.mp4", frames=2, notice="Frames downscaled from 2000x1200 to 1024x614"),
    VideoCase("too_many_frames.mp4", error="more than 300 frames at 10 fps; choose a lower fps"),
]
REFUSED = [case for case in CASES if case.frames is None]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    (folder / "not_a_video.mp4").write_text("hello, this is not a video\n" * 10)
    audio_only(folder / "audio_only.mp4")
    encode(folder / "zero_frames.mkv", frames=0, fmt="matroska")
    for name, fmt in (("truncated.mp4", None), ("truncated.mkv", "matroska")):
        encode(folder / f"whole-{name}", frames=30, fmt=fmt)
        data = (folder / f"whole-{name}").read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
    Image.new("P", (8200, 8200)).save(folder / "huge.gif")
    encode(folder / "too_fast.mp4", frames=5, rate=2000)
    encode(folder / "fast.mp4", frames=240, rate=240)
    pts = [0, 40, 80, 300, 320, 700, 740, 760, 1200, 1210, 1500, 1900]
    encode(folder / "variable_rate.mkv", frames=12, fmt="matroska", pts=pts, time_base=Fraction(1, 1000))
    encode(folder / "large.mp4", frames=2, size=(2000, 1200))
    encode(folder / "too_many_frames.mp4", frames=310, size=(16, 16))
    return folder


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_python_api(case: VideoCase, clips: Path) -> None:
    if case.frames is None:
        with pytest.raises(BadVideoError) as info:
            open_clip(clips / case.name)
        assert_one_clear_line(str(info.value), case.error)
        assert str(clips) not in str(info.value)  # no server paths in messages
        return
    clip = open_clip(clips / case.name)
    assert len(clip) == case.frames
    assert case.notice in clip.notice if case.notice else clip.notice == ""
    assert clip.frame(len(clip) - 1).shape == (clip.height, clip.width, 3)


def test_uploads_over_the_size_limit_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.mp4"
    with big.open("wb") as handle:
        handle.truncate(21 * 2**20)
    with pytest.raises(BadVideoError, match=r"21.0 MB; the limit is 20 MB"):
        open_clip(big)


def test_cli_refuses_a_bad_clip_and_a_frame_past_the_end(clips: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    base = [sys.executable, "-m", "playground", "track", "--weights", "tiny", "--points", "5,5,1"]
    outputs = ["--out", str(tmp_path / "o.mp4"), "--json", str(tmp_path / "t.json")]
    runs = [
        subprocess.Popen(
            [*base, str(clips / "audio_only.mp4"), *outputs],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
        subprocess.Popen(
            [*base, str(EXAMPLES / "chelsea_pan.mp4"), "--frame", "500", *outputs],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
    ]
    for process, fragment in zip(runs, ("has no video track", "frame 500 is past the end")):
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 2 and stdout == ""
        assert_one_clear_line(stderr.removeprefix("error: "), fragment)


# ---- the live app ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(live_app) -> Client:
    return Client(live_app.url, verbose=False)


@pytest.mark.parametrize("case", REFUSED, ids=[case.name for case in REFUSED])
def test_live_app_refuses_bad_clips(case: VideoCase, clips: Path, client: Client) -> None:
    with pytest.raises(AppError) as info:
        client.predict(handle_file(str(clips / case.name)), "sam2", [[5, 5, 1]], api_name="/video")
    assert_one_clear_line(str(info.value), case.error)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"points": [[900, 5, 1]]}, "point (900, 5) is outside the 320x240 image"),
        ({"points": [[5, 5, 1]], "frame": 99}, "frame 99 is past the end"),
        ({"model": "grounded-sam2"}, "grounded-sam2 tracks what you type"),
    ],
)
def test_live_app_refuses_bad_prompts(params: dict, fragment: str, client: Client) -> None:
    with pytest.raises(AppError) as info:
        client.predict(handle_file(str(EXAMPLES / "chelsea_pan.mp4")), fps=2, api_name="/video", **params)
    assert_one_clear_line(str(info.value), fragment)


def test_live_app_still_tracks_a_good_clip(client: Client) -> None:
    overlay, summary = client.predict(
        handle_file(str(EXAMPLES / "chelsea_pan.mp4")), "sam2", [[150, 120, 1]], fps=2, api_name="/video"
    )
    with av.open(overlay) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded == len(summary["frames"]) == 12
    assert {obj["id"] for frame in summary["frames"] for obj in frame["objects"]} == {1}
