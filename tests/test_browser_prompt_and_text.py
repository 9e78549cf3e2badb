"""The prompt and text tabs in the browser: clicks give SAM's and SAM 2.1's masks side by side,
text gives three labelled overlays (Grounded-SAM, SAM 3, OWLv2 + SAM)."""

from __future__ import annotations

import re

import pytest
from browser_helpers import assert_not_blank, click_image, fetch_image, open_tab, pick_example, settled_text

pytestmark = pytest.mark.browser


def test_two_clicks_on_the_prompt_tab_show_sam_and_sam2_side_by_side(page, screenshot_dir):
    open_tab(page, "Prompt")
    pick_example(page, "prompt")
    page.locator("#prompt-canvas img").first.wait_for(timeout=30_000)
    before = page.locator("#prompt-canvas img").first.get_attribute("src")
    click_image(page, "#prompt-canvas", 0.5, 0.4)
    # "cached" when another test already sent this image to SAM
    first = settled_text(page, "#prompt-status", "/image encoded in|cached/.test(text)", timeout=120_000)
    click_image(page, "#prompt-canvas", 0.3, 0.7)
    status = settled_text(page, "#prompt-status", "text !== arg && text.includes('cached')", arg=first)
    after = page.locator("#prompt-canvas img").first.get_attribute("src")
    assert after != before
    assert_not_blank(fetch_image(page, after))
    sam2_panel = page.locator("#prompt-panel-sam2 img").first.get_attribute("src")
    assert sam2_panel not in (before, after)
    assert_not_blank(fetch_image(page, sam2_panel))
    lines = status.splitlines()
    assert any(line.startswith("Segment Anything") for line in lines)
    assert any(line.startswith("SAM 2.1") and "cached" in line for line in lines), lines
    choices = page.locator("#prompt-candidate label").all_inner_texts()
    assert len(choices) == 3 and all(re.search(r"IoU \d\.\d{3}", choice) for choice in choices)
    page.screenshot(path=str(screenshot_dir / "prompt.png"), full_page=True)


def test_typing_cat_in_the_text_tab_shows_three_models_side_by_side(page, screenshot_dir):
    open_tab(page, "Text")
    pick_example(page, "text", index=2)  # chelsea
    page.locator("#text-prompt textarea").fill("cat")
    page.locator("#text-box-threshold input[type=number]").fill("0.05")
    page.locator("#text-box-threshold input[type=number]").press("Enter")
    page.locator("#text-run").click()
    page.wait_for_function(
        "() => /OWLv2 \\+ SAM/.test(document.querySelector('#text-status')?.innerText)", timeout=240_000
    )
    for index in range(3):
        assert_not_blank(fetch_image(page, page.locator(f"#text-panel-{index} img").first.get_attribute("src")))
    captions = " ".join(page.locator(f"#text-caption-{index}").inner_text() for index in range(3))
    assert all(title in captions for title in ("Grounded-SAM", "SAM 3", "OWLv2 + SAM"))
    page.screenshot(path=str(screenshot_dir / "text.png"), full_page=True)
