"""Video: the playground's SAM 2 video masks equal the library's own loop on every frame; corrections
re-run only the frames after them; runs cancel; the CLI writes one mp4 frame per tracks.json frame;
a clip decodes in a fork of a process that decoded one (a ZeroGPU worker)."""

from __future__ import annotations

import json
import multiprocessing
import threading

import av
import numpy as np
import pytest
import torch
from conftest import EXAMPLES

from playground.cli import main
from playground.core.errors import BadPromptError
from playground.core.videos import Cancelled, ObjectPrompt, VideoPrompt
from playground.runtime.manager import ModelManager
from playground.video.clips import open_clip
from playground.video.output import tracks_coco, tracks_json, write_overlay
from playground.video.tracker import VideoTracker

pytestmark = pytest.mark.usefixtures("fast_cpu")

CLIP = EXAMPLES / "chelsea_pan.mp4"
FPS = 4.0
"""24 frames: more than the model's 16 object pointers and 7 memories, so the memory bank spills."""
PROMPT_FRAME = 10
OBJECTS = (
    ObjectPrompt(1, points=((150.0, 120.0, 1), (40.0, 30.0, 0))),
    ObjectPrompt(2, box=(180.0, 60.0, 300.0, 200.0)),
)


@pytest.fixture(scope="module")
def clip():
    return open_clip(CLIP, fps=FPS)


@pytest.fixture(scope="module")
def manager():
    torch.manual_seed(0)
    return ModelManager(weights="tiny", device="cpu")


@pytest.fixture(scope="module")
def tracked(manager, clip):
    tracker = VideoTracker(manager, clip)
    tracker.track("sam2", VideoPrompt(PROMPT_FRAME, OBJECTS))
    return tracker


def library_loop(adapter, clip) -> dict[int, np.ndarray]:
    """transformers' documented loop on the whole clip in memory: prompts, then forward and reverse."""
    processor, model = adapter.processor, adapter.model
    video = np.stack([clip.frame(i) for i in range(len(clip))])
    session = processor.init_video_session(video=video, inference_device="cpu")
    prompts = [
        {"obj_ids": 1, "input_points": [[[[150.0, 120.0], [40.0, 30.0]]]], "input_labels": [[[1, 0]]]},
        {"obj_ids": 2, "input_boxes": [[[180.0, 60.0, 300.0, 200.0]]]},
    ]
    for prompt in prompts:
        processor.add_inputs_to_inference_session(session, frame_idx=PROMPT_FRAME, **prompt)
        model(inference_session=session, frame_idx=PROMPT_FRAME)
    masks = {}
    for reverse in (False, True):
        for out in model.propagate_in_video_iterator(session, start_frame_idx=PROMPT_FRAME, reverse=reverse):
            size = [[clip.height, clip.width]]
            masks[out.frame_idx] = processor.post_process_masks([out.pred_masks], size, binarize=True)[0][:, 0].numpy()
    return masks


def test_masks_equal_the_library_loop_on_every_frame(manager, clip, tracked) -> None:
    with manager.use("sam2-video") as (adapter, _):
        expected = library_loop(adapter, clip)
    tracks = tracked.tracks
    assert sorted(tracks.frames) == list(range(len(clip))) == sorted(expected)
    for index, result in tracks.frames.items():
        assert result.object_ids == [1, 2]
        np.testing.assert_array_equal(result.masks(clip.height, clip.width), expected[index], err_msg=f"frame {index}")
    areas = [area for result in tracks.frames.values() for area in result.areas]
    assert 0 < sum(areas) < len(areas) * clip.height * clip.width  # not all empty, not all full
    _, state = tracked._session
    assert state.bank.spilled  # far memories went to disk, and the masks still match


def test_a_correcting_click_reruns_only_the_frames_after_it(tracked, clip) -> None:
    before = {i: [rle["counts"] for rle in r.rles] for i, r in tracked.tracks.frames.items()}
    done = []
    tracks = tracked.correct(
        18, ObjectPrompt(1, points=((60.0, 60.0, 1),)), progress=lambda n, total: done.append((n, total))
    )
    assert done[-1] == (len(clip) - 18, len(clip) - 18)
    assert all([rle["counts"] for rle in tracks.frames[i].rles] == before[i] for i in range(18))
    assert tracks.timings_ms["first_update"] > 0
    with pytest.raises(BadPromptError, match="outside"):
        tracked.correct(18, ObjectPrompt(1, points=((9999.0, 5.0, 1),)))
    with pytest.raises(BadPromptError, match="past the end"):
        tracked.correct(len(clip), ObjectPrompt(1, points=((5.0, 5.0, 1),)))


def test_cancel_stops_the_run(manager, clip) -> None:
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done == 3:
            cancel.set()

    tracker = VideoTracker(manager, clip)
    with pytest.raises(Cancelled, match="after 3 of 24 frames"):
        tracker.track("sam2", VideoPrompt(0, OBJECTS[:1]), cancel=cancel, progress=progress)
    assert len(tracker.tracks.frames) == 3
    summary = tracks_json(tracker.tracks, clip)
    assert len(summary["frames"]) == len(clip) and sum(f["tracked"] for f in summary["frames"]) == 3


def test_bad_prompts_are_one_clear_error(manager, clip) -> None:
    tracker = VideoTracker(manager, clip)
    with pytest.raises(BadPromptError, match="past the end"):
        tracker.track("sam2", VideoPrompt(len(clip), OBJECTS))
    with pytest.raises(BadPromptError, match="outside the 320x240"):
        tracker.track("sam2", VideoPrompt(0, (ObjectPrompt(1, box=(0, 0, 400, 100)),)))
    with pytest.raises(BadPromptError, match="text"):
        tracker.track("grounded-sam2", VideoPrompt(0, OBJECTS))


def test_grounded_sam2_tracks_the_boxes_grounding_dino_finds(manager, clip) -> None:
    tracks = VideoTracker(manager, clip).track("grounded-sam2", VideoPrompt(5, text="cat"))
    ids = tracks.frames[5].object_ids
    assert ids and all(tracks.label(i) == "cat" for i in ids)
    assert all(tracks.frames[i].object_ids == ids for i in range(len(clip)))


def test_outputs_keep_ids_and_colours(tracked, clip, tmp_path) -> None:
    path = tmp_path / "overlay.mp4"
    assert write_overlay(clip, tracked.tracks, path) == len(clip)
    coco = tracks_coco(tracked.tracks, clip)
    assert {c["id"] for c in coco["categories"]} == {1, 2}
    assert all(a["track_id"] == a["category_id"] and a["segmentation"]["counts"] for a in coco["annotations"])


def test_cli_writes_one_mp4_frame_per_tracks_json_frame(tmp_path, capsys) -> None:
    out, tracks_path, coco = tmp_path / "overlay.mp4", tmp_path / "tracks.json", tmp_path / "coco.json"
    argv = ["track", str(CLIP), "--weights", "tiny", "--device", "cpu", "--box", "100,50,220,200", "--frame", "2"]
    code = main([*argv, "--fps", "2", "--out", str(out), "--json", str(tracks_path), "--coco", str(coco)])
    assert code == 0, capsys.readouterr().err
    frames = json.loads(tracks_path.read_text())["frames"]
    with av.open(str(out)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded == len(frames) == 12
    assert [f["index"] for f in frames] == list(range(12))
    assert all({"id", "box", "mask_area", "score"} <= set(o) for f in frames for o in f["objects"])
    assert (
        main(
            [
                "track",
                str(CLIP),
                "--weights",
                "tiny",
                "--text",
                "cat",
                "--model",
                "sam2",
                "--out",
                str(out),
                "--json",
                str(tracks_path),
            ]
        )
        == 2
    )
    assert "--text needs" in capsys.readouterr().err


def test_track_without_json_writes_tracks_json_beside_the_overlay(tmp_path, capsys) -> None:
    """The command a newcomer types first: no --json, so tracks.json lands next to --out."""
    out = tmp_path / "clips" / "overlay.mp4"
    out.parent.mkdir()
    argv = ["track", str(CLIP), "--weights", "tiny", "--points", "150,120,1", "--fps", "1", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    frames = json.loads((out.parent / "tracks.json").read_text())["frames"]
    assert frames and out.is_file()
    assert str(out.parent / "tracks.json") in capsys.readouterr().out


def test_panoptic_segments_keep_their_ids_on_every_frame(manager, tmp_path) -> None:
    """Video panoptic: MaskFormer's segments on the prompt frame, each a mask prompt for SAM 2 video; the
    masks equal the library's loop given the same masks, and every segment keeps its id and class."""
    clip = open_clip(CLIP, fps=2)
    segments = manager.predict("maskformer", clip.frame(3), task="panoptic")
    tracks = VideoTracker(manager, clip).track("panoptic-sam2", VideoPrompt(3))
    ids = tracks.frames[3].object_ids
    assert len(ids) == min(len(segments), 20) >= 2
    assert all(tracks.frames[i].object_ids == ids for i in range(len(clip)))
    assert sorted(tracks.label(i) for i in ids) == sorted(segments.labels)
    with manager.use("sam2-video") as (adapter, _):
        processor, model = adapter.processor, adapter.model
        session = processor.init_video_session(video=np.stack([clip.frame(i) for i in range(len(clip))]))
        order = np.argsort(-segments.scores, kind="stable")
        for obj_id, index in enumerate(order, start=1):
            masks = [segments.masks[index]]
            processor.add_inputs_to_inference_session(session, frame_idx=3, obj_ids=[obj_id], input_masks=masks)
            model(inference_session=session, frame_idx=3)
        for reverse in (False, True):
            for out in model.propagate_in_video_iterator(session, start_frame_idx=3, reverse=reverse):
                expected = processor.post_process_masks([out.pred_masks], [[clip.height, clip.width]], binarize=True)
                got = tracks.frames[out.frame_idx].masks(clip.height, clip.width)
                np.testing.assert_array_equal(got, expected[0][:, 0].numpy(), err_msg=f"frame {out.frame_idx}")
    with pytest.raises(BadPromptError, match="give no prompt"):
        VideoTracker(manager, clip).track("panoptic-sam2", VideoPrompt(3, text="cat"))
    out, tracks_path = tmp_path / "overlay.mp4", tmp_path / "tracks.json"
    argv = ["track", str(CLIP), "--model", "panoptic-sam2", "--weights", "tiny", "--fps", "1", "--frame", "2"]
    assert main([*argv, "--out", str(out), "--json", str(tracks_path)]) == 0
    frames = json.loads(tracks_path.read_text())["frames"]
    assert len({tuple(o["id"] for o in f["objects"]) for f in frames}) == 1 and frames[0]["objects"]


def test_a_clip_decodes_in_a_fork_of_a_process_that_decoded_one(clip) -> None:
    """PyAV (18.1.1 on) shares one scaler per thread; a fork's child has none of its worker threads, and
    a conversion through it waited for them forever (every video track in a ZeroGPU worker hung)."""
    assert len(clip) > 0  # decoded here first
    with av.open(str(CLIP)) as container:  # and PyAV's shared scaler started, as any code here might
        next(container.decode(video=0)).to_image()
    worker = multiprocessing.get_context("fork").Process(target=open_clip, args=(CLIP,), kwargs={"fps": FPS})
    worker.start()
    worker.join(60)
    stuck = worker.is_alive()
    if stuck:
        worker.kill()
        worker.join()
    assert not stuck and worker.exitcode == 0
