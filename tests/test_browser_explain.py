"""Explain in the browser: ticking it under FCN, DETR and SAM results shows their captioned views."""

from __future__ import annotations

import pytest
from browser_helpers import click_image, open_tab, pick_example, run_and_wait, select_models

pytestmark = pytest.mark.browser

VIEW_TIMEOUT_MS = 60_000


def open_explain(page, tab: str, expected: list[str]) -> str:
    """Tick ``tab``'s Explain box; wait until its gallery shows every title in ``expected``."""
    page.locator(f"#{tab}-explain input[type=checkbox]").check()
    gallery = page.locator(f"#{tab}-explain-views")
    gallery.locator("img").first.wait_for(timeout=VIEW_TIMEOUT_MS)
    page.wait_for_function(
        "([selector, words]) => { const text = document.querySelector(selector)?.innerText || '';"
        " return words.every(word => text.includes(word)); }",
        arg=[f"#{tab}-explain-views", expected],
        timeout=VIEW_TIMEOUT_MS,
    )
    return gallery.inner_text()


def test_explain_fcn_and_detr(page, screenshot_dir):
    pick_example(page, "semantic")
    select_models(page, "semantic", ["FCN ResNet-50"])
    run_and_wait(page, "semantic", 1)
    text = open_explain(page, "semantic", ["Coarse grid beside the final map", "Score heatmap"])
    assert "FCN predicts" in text or "grid" in text
    page.screenshot(path=str(screenshot_dir / "explain-fcn.png"), full_page=True)

    open_tab(page, "Detection")
    pick_example(page, "detection")
    select_models(page, "detection", ["DETR ResNet-50"])
    run_and_wait(page, "detection", 1)
    open_explain(page, "detection", ["no object", "cross-attention"])
    page.screenshot(path=str(screenshot_dir / "explain-detr.png"), full_page=True)


def test_explain_sam(page, screenshot_dir):
    open_tab(page, "Prompt")
    pick_example(page, "prompt")
    page.locator("#prompt-canvas img").first.wait_for(timeout=30_000)
    click_image(page, "#prompt-canvas", 0.5, 0.4)
    page.wait_for_function(
        "() => /image encoded in|cached/.test(document.querySelector('#prompt-status')?.innerText)", timeout=120_000
    )
    open_explain(page, "prompt", ["Three candidate masks", "Low-resolution logits", "what was cached"])
    page.screenshot(path=str(screenshot_dir / "explain-sam.png"), full_page=True)
