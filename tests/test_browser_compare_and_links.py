"""Compare tab in the browser, and deep links that restore a tab in a fresh browser context."""

from __future__ import annotations

import pytest
from browser_helpers import assert_not_blank, fetch_image, open_tab, pick_example, run_and_wait, select_models

pytestmark = pytest.mark.browser

FIVE_MODELS = ["FCN ResNet-50", "DETR ResNet-50", "RetinaNet ResNet-50 FPN v2", "Faster R-CNN ResNet-50 FPN v2"]
FIVE_MODELS += ["Mask R-CNN ResNet-50 FPN v2"]


def test_compare_runs_five_models_from_three_tasks(page, screenshot_dir):
    open_tab(page, "Compare")
    pick_example(page, "compare")
    select_models(page, "compare", FIVE_MODELS)
    urls = run_and_wait(page, "compare", 5)
    assert len(urls) == 5
    for url in urls:
        assert_not_blank(fetch_image(page, url))
    page.wait_for_function(
        "() => document.querySelector('#compare-summary [role=grid]')?.getAttribute('aria-rowcount') === '6'"
    )  # the header and five rows
    summary = page.locator("#compare-summary").inner_text()
    for title in FIVE_MODELS:
        assert title in summary
    for task in ("semantic", "detection", "instance"):
        assert task in summary
    page.locator("#compare-diff-button").click()
    page.locator("#compare-diff-counts").get_by_text("both").wait_for(timeout=30_000)
    page.screenshot(path=str(screenshot_dir / "compare.png"), full_page=True)


def test_deep_link_restores_tab_state_in_a_new_context(browser, live_app, page):
    open_tab(page, "Object detection")
    pick_example(page, "detection", index=2)  # chelsea
    select_models(page, "detection", ["RetinaNet ResNet-50 FPN v2", "DETR ResNet-50"])
    page.locator("#detection-score input[type=number]").fill("0.3")
    page.locator("#detection-score input[type=number]").press("Enter")
    page.locator("#detection-link-button").click()
    link_box = page.locator("#detection-link textarea, #detection-link input").first
    page.wait_for_function("(el) => el.value.includes('tab=detection')", arg=link_box.element_handle(), timeout=10_000)
    link = link_box.input_value()
    assert "example=chelsea" in link and "score=0.3" in link

    fresh = browser.new_context()
    try:
        other = fresh.new_page()
        other.goto(link, wait_until="load")
        other.locator("#detection-image img").first.wait_for(timeout=30_000)
        checked = [
            label.inner_text().strip()
            for label in other.locator("#detection-models label").all()
            if label.locator("input").is_checked()
        ]
        assert sorted(checked) == ["DETR ResNet-50", "RetinaNet ResNet-50 FPN v2"]
        assert other.locator("#detection-score input[type=number]").input_value() == "0.3"
        assert "chelsea" in other.locator("#detection-image img").first.get_attribute("src")
        urls = run_and_wait(other, "detection", 2)
        assert len(urls) == 2
    finally:
        fresh.close()
