"""The Compare tab in the browser: five models from three tasks, the summary and A-versus-B."""

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
    page.locator("#compare-diff-counts").get_by_text("Objects").wait_for(timeout=30_000)
    page.screenshot(path=str(screenshot_dir / "compare.png"), full_page=True)
