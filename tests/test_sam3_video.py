"""SAM 3 video: the playground's masks equal the library's own loop on every frame (tiny build); the CLI
tracks text with ``--model sam3``; missing gated weights are one clear line; the Video tab runs both text
routes side by side, SAM 3's place showing why when its weights are missing."""

from __future__ import annotations

import json

import av
import gradio as gr
import numpy as np
import pytest
import torch
from conftest import EXAMPLES
from gradio.data_classes import FileData

from playground.cli import main
from playground.core.errors import BadPromptError
from playground.core.registry import get_spec
from playground.core.videos import ObjectPrompt, VideoPrompt
from playground.core.weights import missing
from playground.runtime.manager import ModelManager
from playground.runtime.service import Playground
from playground.ui.video_api import run_routes, video_endpoint
from playground.ui.video_tab import create_video_tab, slot_updates
from playground.video.clips import open_clip
from playground.video.tracker import TEXT_ROUTES, VideoTracker

pytestmark = pytest.mark.usefixtures("fast_cpu")

CLIP = EXAMPLES / "chelsea_pan.mp4"
FPS = 4.0
"""24 frames: well past the tiny tracker's 3 memories and the library's 4-frame hotstart delay."""
PROMPT_FRAME = 10
SEED = 1
"""A tiny build whose random tracker calls the objects visible (its object score is ~+0.001; with
other seeds it is ~-0.002 and every tracked mask is empty, leaving only the detector's)."""


@pytest.fixture(scope="module")
def clip():
    return open_clip(CLIP, fps=FPS)


@pytest.fixture(scope="module")
def manager():
    manager = ModelManager(weights="tiny", device="cpu")
    torch.manual_seed(SEED)
    with manager.use("sam3-video"):  # built now, from the seed
        pass
    return manager


def library_loop(adapter, clip) -> dict[int, dict]:
    """transformers' documented loop on the whole clip in memory: the text prompt, then
    ``propagate_in_video_iterator`` forward and reverse from the prompt frame, ``postprocess_outputs``."""
    processor, model = adapter.processor, adapter.model
    video = np.stack([clip.frame(i) for i in range(len(clip))])
    session = processor.init_video_session(video=video, inference_device="cpu")
    processor.add_text_prompt(session, "cat")
    outputs = {}
    for reverse in (False, True):
        for out in model.propagate_in_video_iterator(session, start_frame_idx=PROMPT_FRAME, reverse=reverse):
            outputs[out.frame_idx] = processor.postprocess_outputs(session, out)
    return outputs


def test_masks_equal_the_library_loop_on_every_frame(manager, clip) -> None:
    tracker = VideoTracker(manager, clip)
    tracks = tracker.track("sam3", VideoPrompt(PROMPT_FRAME, text="cat"))
    with manager.use("sam3-video") as (adapter, _):
        expected = library_loop(adapter, clip)
    assert sorted(tracks.frames) == list(range(len(clip))) == sorted(expected)
    for index, result in tracks.frames.items():
        want = expected[index]
        assert result.object_ids == want["object_ids"].tolist(), f"frame {index}"
        masks = result.masks(clip.height, clip.width)
        np.testing.assert_array_equal(masks, want["masks"].numpy(), err_msg=f"frame {index}")
    frames_with_masks = [i for i, r in tracks.frames.items() if sum(r.areas) > 0]
    assert len(frames_with_masks) >= len(clip) // 3  # the comparison is of real masks, not of empties
    seen = [obj_id for result in tracks.frames.values() for obj_id in result.object_ids]
    assert max(seen.count(obj_id) for obj_id in set(seen)) >= 5  # objects keep their id: tracked
    assert {tracks.label(obj_id) for obj_id in seen} == {"cat"}
    _, state = tracker._session
    assert state.bank.spilled  # memories the tracker can no longer read were dropped, masks still equal
    with pytest.raises(BadPromptError, match="refine a SAM 2 run"):
        tracker.correct(3, ObjectPrompt(1, points=((5.0, 5.0, 1),)))


def test_cli_tracks_text_with_sam3(tmp_path, capsys) -> None:
    out, tracks_path = tmp_path / "overlay.mp4", tmp_path / "tracks.json"
    torch.manual_seed(SEED)
    argv = ["track", str(CLIP), "--model", "sam3", "--text", "cat", "--weights", "tiny", "--device", "cpu"]
    code = main([*argv, "--fps", "2", "--frame", "3", "--out", str(out), "--json", str(tracks_path)])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(tracks_path.read_text())
    with av.open(str(out)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded == len(summary["frames"]) == 12 and summary["model"] == "sam3"
    objects = [o for frame in summary["frames"] for o in frame["objects"]]
    assert objects and {o["label"] for o in objects} == {"cat"}
    assert capsys.readouterr().out.startswith("sam3: ")


def test_the_video_endpoint_takes_sam3(manager) -> None:
    endpoint = video_endpoint(Playground(manager))
    overlay, summary = endpoint(FileData(path=str(CLIP)), model="sam3", text="cat", frame=1, fps=2)
    with av.open(overlay.path) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded == len(summary["frames"]) == 12 and summary["model"] == "sam3"


def test_missing_gated_weights_are_one_clear_line(tmp_path, capsys) -> None:
    argv = ["track", str(CLIP), "--model", "sam3", "--text", "cat", "--weights", "pretrained", "--fps", "1"]
    code = main([*argv, "--out", str(tmp_path / "o.mp4"), "--json", str(tmp_path / "t.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "facebook/sam3" in err and "gated" in err and "HF_TOKEN" in err
    assert not (tmp_path / "o.mp4").exists()


def test_the_video_tab_has_a_place_per_text_route(tiny_playground) -> None:
    with gr.Blocks() as demo:
        create_video_tab(tiny_playground)
    ids = {block.elem_id for block in demo.blocks.values()}
    assert {f"video-{kind}-{n}" for kind in ("overlay", "note") for n in range(len(TEXT_ROUTES))} <= ids
    assert TEXT_ROUTES == ("sam3", "grounded-sam2")


@pytest.mark.parametrize("sam3_weights", ["missing", "here"])
def test_text_runs_both_routes_side_by_side(manager, sam3_weights, monkeypatch) -> None:
    if sam3_weights == "missing":  # as offline without the gated checkpoint: `ensure_available` refuses it

        def ensure_available(key: str) -> None:
            if key == "sam3-video":
                raise missing(get_spec(key), "not in the Hugging Face cache and HF_HUB_OFFLINE=1")

        monkeypatch.setattr(manager, "ensure_available", ensure_available)
        manager.unload("sam3-video")
    torch.manual_seed(0)
    runs = run_routes(Playground(manager), open_clip(CLIP, fps=1), list(TEXT_ROUTES), VideoPrompt(2, text="cat"))
    (sam3_video, sam3_note), (grounded_video, grounded_note) = slot_updates(runs, 2)
    assert [run.route for run in runs] == ["sam3", "grounded-sam2"]
    # each route's title in the line above its video (a label over the video would hide the drawn ones)
    assert grounded_video.visible and grounded_note.visible and grounded_note.value == "**Grounded-SAM 2 (video)**"
    assert runs[1].summary["frames"][2]["objects"]
    if sam3_weights == "missing":
        assert runs[0].path is None and not sam3_video.visible and sam3_note.visible
        assert "SAM 3 (video)" in sam3_note.value and "is gated" in sam3_note.value
    else:
        assert runs[0].path.is_file() and sam3_video.visible and sam3_note.value == "**SAM 3 (video)**"
        assert "gated" not in sam3_note.value  # a title, no error
