"""ZeroGPU, with a stand-in ``spaces`` (tests/stand_in) whose ``GPU`` forks a fresh process for every
call and pickles the arguments and the result, as ZeroGPU does at its worst.

- Model work goes through ``spaces.GPU``: the API endpoints included, each call with a duration.
- The second click on the same image neither reloads SAM nor re-encodes the image: its embedding
  came back from the first call's worker and stays in the main process.
- A repeated request takes no GPU call (the result cache is in the main process).
- A video track runs in one GPU call, with its model loaded in the main process, and what crosses
  pickles.
- A worker stuck past its deadline is aborted, with its stacks, instead of hanging the caller.
- A GPU call forked while another request's thread holds the manager's lock does not hang.
"""

from __future__ import annotations

import re
import sys
import threading
import time

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT, start_app
from gradio_client import Client, handle_file

from playground.core.videos import ObjectPrompt, VideoPrompt
from playground.runtime.manager import ModelManager
from playground.runtime.service import Playground
from playground.runtime.zerogpu import ZeroGPUModels, duration_s, models_for_this_host, preload_keys

STAND_IN = ROOT / "tests" / "stand_in"


@pytest.fixture
def zero_gpu(monkeypatch, tmp_path):
    """The stand-in ``spaces`` importable, this process a "ZeroGPU Space"; yields its call log."""
    log = tmp_path / "gpu-calls.log"
    monkeypatch.syspath_prepend(str(STAND_IN))
    monkeypatch.delitem(sys.modules, "spaces", raising=False)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setenv("SPACES_STAND_IN_LOG", str(log))
    return log


def gpu_calls(log) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_clicks_reuse_the_embedding_and_repeats_take_no_gpu_call(zero_gpu, image) -> None:
    manager = ModelManager(weights="tiny", device="cpu", precision="fp32")
    models = models_for_this_host(manager, ["sam"])
    assert isinstance(models, ZeroGPUModels) and manager.is_loaded("sam")
    with manager.use("sam") as (sam, _):
        loaded_at = sam.load_ms
    playground = Playground(models)
    first = playground.predict("sam", image, task="prompt", points=((40.0, 30.0, 1),))
    second = playground.predict("sam", image, task="prompt", points=((60.0, 50.0, 1),))
    assert not first.meta["embedding_cached"] and second.meta["embedding_cached"], "the worker re-encoded"
    assert sam.embeddings.computes == 0 and len(sam.embeddings) == 1  # made in a worker, kept here
    with manager.use("sam") as (again, cold):
        assert again is sam and not cold and sam.load_ms == loaded_at  # never reloaded
    assert len(gpu_calls(zero_gpu)) == models.gpu_calls == 2
    repeat = playground.predict("sam", image, task="prompt", points=((60.0, 50.0, 1),))
    assert repeat.cached and models.gpu_calls == 2 and len(gpu_calls(zero_gpu)) == 2
    assert all(re.fullmatch(r"_predict duration=\d+", line) for line in gpu_calls(zero_gpu))


def test_a_model_not_preloaded_loads_in_the_main_process(zero_gpu, image) -> None:
    manager = ModelManager(weights="tiny", device="cpu", precision="fp32")
    models = models_for_this_host(manager, [])
    Playground(models).predict("detr", image)
    assert manager.is_loaded("detr") and models.gpu_calls == 1


def test_a_video_track_runs_in_one_gpu_call(zero_gpu) -> None:
    from playground.ui.video_api import track_clip
    from playground.video.clips import open_clip

    manager = ModelManager(weights="tiny", device="cpu", precision="fp32")
    models = models_for_this_host(manager, [])
    clip = open_clip(EXAMPLES / "chelsea_pan.mp4", fps=1)
    prompt = VideoPrompt(0, (ObjectPrompt(1, points=((150.0, 120.0, 1),)),))
    tracker, tracks, path, summary = track_clip(Playground(models), clip, "sam2", prompt)
    assert tracker is None and path.is_file() and len(summary["frames"]) == len(clip)
    assert all(frame.object_ids for frame in tracks.frames.values())
    assert gpu_calls(zero_gpu) == [f"_work duration={120}"]
    assert manager.is_loaded("sam2-video")  # loaded here, so the next fork inherits it


def test_a_stuck_gpu_worker_is_aborted_and_prints_where_it_stuck(zero_gpu, monkeypatch, capfd) -> None:
    import spaces

    monkeypatch.setattr(spaces, "MIN_DEADLINE_S", 1)
    monkeypatch.setattr(spaces, "DUMP_WAIT_S", 1)
    stuck = spaces.GPU(duration=0.5)(time.sleep)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"GPU task aborted: sleep gave no answer within 1 s \(it was stuck"):
        stuck(120)
    assert time.monotonic() - started < 30
    assert re.search(r"Current thread .*line \d+ in _run", capfd.readouterr().err, re.DOTALL)


def cold_in_worker(manager: ModelManager, key: str) -> bool:
    """In the GPU worker: whether ``key`` had to load there."""
    with manager.use(key) as (_, cold):
        return cold


def pins_in_worker(manager: ModelManager, key: str) -> int:
    """In the GPU worker: how many runs held ``key`` loaded (pinned) when the worker forked."""
    return next(model.running for model in manager.loaded if model.key == key)


def test_a_gpu_calls_models_load_first_and_stay_pinned_through_it(zero_gpu) -> None:
    manager = ModelManager(weights="tiny", device="cpu", precision="fp32")
    models = models_for_this_host(manager, [])
    assert models.run(pins_in_worker, "detr", models=["detr"]) == 1  # loaded here, not evictable meanwhile
    assert manager.is_loaded("detr") and next(model.running for model in manager.loaded) == 0


def test_a_gpu_call_forked_while_another_thread_holds_the_managers_lock_runs(zero_gpu, monkeypatch) -> None:
    import spaces

    monkeypatch.setattr(spaces, "OVERRUN", 0.05)  # a stuck worker fails in seconds, not minutes
    monkeypatch.setattr(spaces, "MIN_DEADLINE_S", 1)
    manager = ModelManager(weights="tiny", device="cpu", precision="fp32")
    models = models_for_this_host(manager, ["detr"])
    held, done = threading.Event(), threading.Event()

    def another_request() -> None:
        with manager._lock:  # as a request does for an instant, here for the whole fork
            held.set()
            done.wait(60)

    thread = threading.Thread(target=another_request)
    thread.start()
    held.wait()
    try:
        assert models.run(cold_in_worker, "detr") is False  # the worker took the lock, found detr loaded
    finally:
        done.set()
        thread.join()


def test_the_preload_list_and_durations(monkeypatch) -> None:
    monkeypatch.delenv("PLAYGROUND_PRELOAD", raising=False)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert "sam" in preload_keys(None) and preload_keys("detr, fcn") == ["detr", "fcn"]
    monkeypatch.setenv("PLAYGROUND_PRELOAD", "unet")
    assert preload_keys(None) == ["unet"]
    monkeypatch.setenv("SPACES_ZERO_GPU", "false")
    monkeypatch.delenv("PLAYGROUND_PRELOAD")
    assert preload_keys(None) == []
    small, large = np.zeros((100, 100, 3), np.uint8), np.zeros((3000, 3000, 3), np.uint8)
    assert 10 <= duration_s("detr", small, {}) < duration_s("detr", large, {}) <= 120
    assert duration_s("sam", large, {"everything": True}) == 120


def test_the_api_runs_model_work_in_gpu_calls_only(tmp_path, monkeypatch) -> None:
    log = tmp_path / "gpu-calls.log"
    monkeypatch.setenv("PYTHONPATH", f"{STAND_IN}:{ROOT}")
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setenv("SPACES_STAND_IN_LOG", str(log))
    app = start_app(tmp_path, "--weights", "tiny", "--preload", "sam,detr")
    try:
        client = Client(app.url, verbose=False, httpx_kwargs={"timeout": 120})
        image = handle_file(str(EXAMPLES / "chelsea.jpg"))
        client.predict(image, [[200, 150, 1]], None, api_name="/prompt")
        _, (second,) = client.predict(image, [[210, 160, 1]], None, api_name="/prompt")
        assert second["meta"]["embedding_cached"] and second["meta"]["reuse"] == "cached", second
        client.predict(image, ["detr"], 0.5, 0.5, api_name="/detection")
        assert len(gpu_calls(log)) == 3
        _, (again,) = client.predict(image, ["detr"], 0.5, 0.5, api_name="/detection")
        assert again["meta"]["cached"] and len(gpu_calls(log)) == 3  # a repeat takes no GPU call
        loads = re.findall(r"loading (\w+) \(", app.log_text())
        assert sorted(loads) == ["detr", "sam"], loads  # at start-up, in the main process only
    finally:
        app.process.terminate()
        app.process.wait(timeout=30)
