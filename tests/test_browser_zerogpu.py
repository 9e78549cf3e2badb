"""The Prompt, Text, Compare and Video tabs in the browser on a stand-in ZeroGPU Space: the same
browser tests as on a plain app (imported here), against an app whose model work runs in a freshly
forked ``spaces.GPU`` worker per call (tests/stand_in), with SAM, SAM 2 and DETR preloaded."""

from __future__ import annotations

import pytest
from conftest import ROOT, start_app
from test_browser_compare import test_compare_runs_five_models_from_three_tasks
from test_browser_prompt_and_text import (
    test_two_clicks_on_the_prompt_tab_show_sam_and_sam2_side_by_side,
    test_typing_cat_in_the_text_tab_shows_three_models_side_by_side,
)
from test_browser_video import test_a_click_on_the_example_clip_tracks_and_the_overlay_plays

pytestmark = pytest.mark.browser
TESTS = (
    test_two_clicks_on_the_prompt_tab_show_sam_and_sam2_side_by_side,
    test_typing_cat_in_the_text_tab_shows_three_models_side_by_side,
    test_compare_runs_five_models_from_three_tasks,
    test_a_click_on_the_example_clip_tracks_and_the_overlay_plays,
)
"""Collected in this module, so they run against this module's ``live_app``."""


@pytest.fixture(scope="module")
def gpu_log(tmp_path_factory):
    return tmp_path_factory.mktemp("zerogpu") / "gpu-calls.log"


@pytest.fixture(scope="module")
def live_app(tmp_path_factory, gpu_log):
    """The app as a ZeroGPU Space (the stand-in ``spaces`` on its path), tiny weights."""
    from playground.bench.startup import stop

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", f"{ROOT / 'tests' / 'stand_in'}:{ROOT}")
        patch.setenv("SPACES_ZERO_GPU", "true")
        patch.setenv("SPACES_STAND_IN_LOG", str(gpu_log))
        app = start_app(tmp_path_factory.mktemp("app"), "--weights", "tiny", "--preload", "sam,sam2,detr")
    yield app
    stop(app.process)


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory):
    """Screenshots of this module never replace the README's (taken from the plain app)."""
    return tmp_path_factory.mktemp("screenshots")


def test_the_tabs_above_made_their_model_work_in_gpu_calls(gpu_log, live_app) -> None:
    """Runs last in this module: every tab above went through spaces.GPU."""
    calls = gpu_log.read_text().splitlines()
    assert any(line.startswith("_predict") for line in calls) and any(line.startswith("_work") for line in calls)
