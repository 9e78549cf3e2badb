"""Panels as they finish, sliders while a run goes on, and cached results (examples from disk after a
restart) shown when the image arrives, without Run, in the browser.

The app of the first tests runs in this process with one model held at a gate (a `threading.Event`),
so "a later model is still running" is a state the test controls, not a race.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest
from browser_helpers import checked_page, fetch_image, open_tab, pick_example, select_models
from conftest import EXAMPLES, start_app
from PIL import Image

from playground.bench.startup import free_port, stop
from playground.core.images import load_image
from playground.render.views import ViewOptions, make_panel
from playground.runtime.example_cache import ExampleCache
from playground.runtime.manager import ModelManager
from playground.runtime.service import Outcome, Playground

pytestmark = pytest.mark.browser

FAST, SLOW = "RetinaNet ResNet-50 FPN v2", "DETR ResNet-50"
WAIT_MS = 120_000


class GatedModels(ModelManager):
    """Tiny models on the CPU; DETR waits at ``gate`` (after saying so on ``waiting``) until the test opens it."""

    def __init__(self) -> None:
        super().__init__(weights="tiny", device="cpu", budget_bytes=400 * 2**20)
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def predict(self, key, image, **params):
        if key == "detr":
            self.waiting.set()
            self.gate.wait(timeout=WAIT_MS / 1000)
        return super().predict(key, image, **params)


@pytest.fixture(scope="module")
def gated(tmp_path_factory) -> Iterator[tuple[str, Playground]]:
    """(url, playground) of an app in this process on `GatedModels`, its examples kept on disk."""
    from playground.ui.app import build_demo
    from playground.ui.common import EXAMPLES_DIR

    playground = Playground(GatedModels(), examples=ExampleCache(tmp_path_factory.mktemp("examples"), 64))
    demo = build_demo(playground)
    demo.queue(default_concurrency_limit=4)  # as app.py
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, allowed_paths=[str(EXAMPLES_DIR)])
    yield f"http://127.0.0.1:{port}/", playground
    playground.manager.gate.set()
    demo.close()


@pytest.fixture
def gated_page(browser, gated):
    url, playground = gated
    playground.manager.gate.clear()
    playground.manager.waiting.clear()
    with checked_page(browser, url) as page:
        yield page
        playground.manager.gate.set()  # a failed test leaves no run waiting


def image_src(page, selector: str) -> str | None:
    images = page.locator(f"{selector} img")
    return images.first.get_attribute("src") if images.count() else None


def move_slider(page, selector: str, value: str) -> None:
    number = page.locator(f"{selector} input[type=number]")
    number.fill(value)
    number.press("Enter")


@pytest.mark.parametrize("tab", ["compare", "detection"])
def test_the_first_panel_shows_and_redraws_while_a_later_model_runs(gated_page, gated, tab):
    page, (_, playground) = gated_page, gated
    open_tab(page, "Compare" if tab == "compare" else "Detection")
    pick_example(page, tab, index=5)  # rocket
    select_models(page, tab, [FAST])
    select_models(page, tab, [FAST, SLOW])  # ticked after: DETR runs second
    page.locator(f"#{tab}-run").click()
    page.locator(f"#{tab}-panel-0 img").first.wait_for(timeout=WAIT_MS)
    assert playground.manager.waiting.wait(timeout=60) and not playground.manager.gate.is_set()
    assert FAST in page.locator(f"#{tab}-caption-0").inner_text()
    assert page.locator(f"#{tab}-panel-1 img").count() == 0  # DETR is still running
    page.wait_for_function(  # the progress names the model running, on the line above the panels
        "(selector) => /DETR ResNet-50 \\(2\\/2\\)/.test(document.querySelector(selector)?.innerText)",
        arg=f"#{tab}-stale",
        timeout=30_000,
    )
    # A slider re-draws the panel already there: it is not queued behind the run.
    before = image_src(page, f"#{tab}-panel-0")
    move_slider(page, f"#{tab}-score", "0")
    page.wait_for_function(
        "([selector, old]) => document.querySelector(selector)?.src !== old",
        arg=[f"#{tab}-panel-0 img", before],
        timeout=30_000,
    )
    assert page.locator(f"#{tab}-panel-1 img").count() == 0 and not playground.manager.gate.is_set()
    playground.manager.gate.set()
    page.locator(f"#{tab}-panel-1 img").first.wait_for(timeout=WAIT_MS)
    assert SLOW in page.locator(f"#{tab}-caption-1").inner_text()
    # The panel that came after the slider moved is drawn at the slider's value, not the run's.
    image = load_image(EXAMPLES / "rocket.jpg").pixels
    task = None if tab == "compare" else "detection"
    detr = Outcome("detr", playground.peek("detr", image, task=task))
    at_zero, at_own = (make_panel(image, detr, ViewOptions(score_threshold=t), legend=False).overlay for t in (0, None))
    assert not np.array_equal(at_zero, at_own), "DETR shows the same at both thresholds: the test proves nothing"
    assert np.array_equal(fetch_image(page, image_src(page, f"#{tab}-panel-1")), at_zero)


def test_cached_results_show_on_the_image_and_an_uncached_image_waits_for_run(gated_page, gated, tmp_path):
    page, (_, playground) = gated_page, gated
    upload = tmp_path / "crop.png"  # not an example: its results are kept in memory only
    Image.fromarray(load_image(EXAMPLES / "chelsea.jpg").pixels[40:260, 60:360]).save(upload)
    open_tab(page, "Detection")
    select_models(page, "detection", [FAST])
    page.locator("#detection-image input[type=file]").set_input_files(str(upload))
    page.locator("#detection-image img").first.wait_for(timeout=30_000)
    page.locator("#detection-run").click()
    caption = page.locator("#detection-caption-0")
    page.locator("#detection-panel-0 img").first.wait_for(timeout=WAIT_MS)
    assert FAST in caption.inner_text() and "cached" not in caption.inner_text()
    ran = playground.forward_count

    stale = page.locator("#detection-stale")
    pick_example(page, "detection", index=1)  # the camera: RetinaNet never ran on it, so nothing new shows
    stale.get_by_text("Out of date").wait_for(timeout=30_000)
    assert "cached" not in caption.inner_text()  # the panel is still the upload's, marked out of date

    page.locator("#detection-image input[type=file]").set_input_files(str(upload))  # the upload again, no Run
    page.wait_for_function(
        "() => /cached/.test(document.querySelector('#detection-caption-0')?.innerText)", timeout=30_000
    )
    assert FAST in caption.inner_text() and "Out of date" not in stale.inner_text()
    assert playground.forward_count == ran  # neither image ran a model


def test_an_example_after_a_restart_comes_from_disk_on_the_click(gated_page, gated, tmp_path, browser):
    page, (_, playground) = gated_page, gated
    models = ["FCN ResNet-50", FAST]
    open_tab(page, "Compare")
    pick_example(page, "compare", index=3)  # coffee: no other test here runs it
    select_models(page, "compare", models)
    page.locator("#compare-run").click()
    page.locator("#compare-panel-1 img").first.wait_for(timeout=WAIT_MS)
    captions = page.locator("[id^='compare-caption-']").all_inner_texts()
    assert not any("from disk" in caption for caption in captions)

    folder = playground.examples.folder
    app = start_app(tmp_path, "--weights", "tiny", "--example-cache", str(folder), "--example-cache-mb", "64")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        restarted = context.new_page()
        restarted.goto(app.url, wait_until="load")
        open_tab(restarted, "Compare")
        select_models(restarted, "compare", models)
        pick_example(restarted, "compare", index=3)  # the click alone: Compare is never pressed
        restarted.locator("#compare-panel-1 img").first.wait_for(timeout=WAIT_MS)
        captions = [restarted.locator(f"#compare-caption-{index}").inner_text() for index in range(2)]
        for title in models:
            assert any(title in caption and "from disk" in caption for caption in captions), (title, captions)
        restarted.locator("#compare-diff img").first.wait_for(timeout=30_000)  # the A/B view of the two
        assert "playground.runtime.service: forward " not in app.log_text()  # no model ran
    finally:
        context.close()
        stop(app.process)
