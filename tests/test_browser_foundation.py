"""The app in real headless Chromium: upload an example, run FCN and DETR, see two overlays."""

from __future__ import annotations

import pytest
from browser_helpers import assert_not_blank, fetch_image, open_tab, pick_example, run_and_wait, select_models

pytestmark = pytest.mark.browser


def test_fcn_and_detr_overlays_render(page, screenshot_dir):
    pick_example(page, "semantic")
    select_models(page, "semantic", ["FCN ResNet-50"])
    [fcn_url] = run_and_wait(page, "semantic", 1, exactly=True)
    page.screenshot(path=str(screenshot_dir / "semantic.png"), full_page=True)

    open_tab(page, "Detection")
    pick_example(page, "detection")
    select_models(page, "detection", ["DETR ResNet-50"])
    [detr_url] = run_and_wait(page, "detection", 1, exactly=True)

    fcn, detr = fetch_image(page, fcn_url), fetch_image(page, detr_url)
    assert_not_blank(fcn)
    assert_not_blank(detr)
    assert fcn.shape != detr.shape or (fcn != detr).any(), "the two panels show the same image"
    caption = page.locator("#detection-caption-0").inner_text()
    assert "DETR ResNet-50" in caption and "tiny weights · " in caption  # cold, warm or cached: the app is shared
    assert "forward" in caption
    page.screenshot(path=str(screenshot_dir / "detection.png"), full_page=True)
