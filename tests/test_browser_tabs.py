"""Each closed-set tab in the browser: two models side by side, then a slider re-draws them
from stored results without a second forward pass (counted in the server log)."""

from __future__ import annotations

import pytest
from browser_helpers import (
    assert_not_blank,
    fetch_image,
    open_tab,
    panel_urls,
    pick_example,
    run_and_wait,
    select_models,
)

pytestmark = pytest.mark.browser

TABS = {
    "semantic": ("Semantic", ["FCN ResNet-50", "U-Net (Carvana)"], "opacity", "0.95"),
    "detection": ("Detection", ["RetinaNet ResNet-50 FPN v2", "DETR ResNet-50"], "score", "0"),
    "instance": ("Instance", ["Mask R-CNN ResNet-50 FPN v2", "MaskFormer Swin-B"], "score", "0"),
    "panoptic": ("Panoptic", ["MaskFormer Swin-B", "DETR ResNet-50 (panoptic)"], "score", "0"),
}


def forward_lines(live_app) -> int:
    return live_app.log_text().count("playground.runtime.service: forward ")


@pytest.mark.parametrize("task", list(TABS))
def test_two_models_then_a_slider_redraws_without_a_forward(page, live_app, screenshot_dir, task):
    title, models, slider, value = TABS[task]
    open_tab(page, title)
    pick_example(page, task, index=4)  # motorcycle
    select_models(page, task, models)
    before = run_and_wait(page, task, 2)
    assert len(before) == 2
    for url in before:
        assert_not_blank(fetch_image(page, url))
    captions = page.locator(f"[id^='{task}-caption-']").all_inner_texts()
    captions = " ".join(captions)
    assert all(title in captions for title in models)
    forwards = forward_lines(live_app)

    number = page.locator(f"#{task}-{slider} input[type=number]")
    number.fill(value)
    number.press("Enter")
    page.wait_for_function(
        "([prefix, old]) => { const now = [...document.querySelectorAll(`[id^='${prefix}'] img`)].map(i => i.src);"
        " return now.length === 2 && now.some((src, i) => src !== old[i]); }",
        arg=[f"{task}-panel-", before],
        timeout=30_000,
    )
    after = panel_urls(page, task)
    assert after != before, "the overlays did not change"
    assert forward_lines(live_app) == forwards, "moving a slider ran a model again"
    page.screenshot(path=str(screenshot_dir / f"{task}.png"), full_page=True)


def test_a_panel_downloads_its_overlay_masks_and_coco_results(page):
    open_tab(page, "Instance")
    pick_example(page, "instance")
    select_models(page, "instance", ["Mask R-CNN ResNet-50 FPN v2"])
    run_and_wait(page, "instance", 1)
    page.locator("#instance-score input[type=number]").fill("0")
    page.locator("#instance-score input[type=number]").press("Enter")
    page.locator("#instance-download").get_by_text("Download (overlays, masks, COCO results)").click()
    page.locator("#instance-prepare").click()
    files = page.locator("#instance-downloads a")
    files.nth(2).wait_for(timeout=30_000)
    listing = page.locator("#instance-downloads").inner_text().replace("\n", "")
    for name in ("mask-rcnn_overlay.png", "mask-rcnn_coco.json", "mask-rcnn_masks.zip"):
        assert name in listing
