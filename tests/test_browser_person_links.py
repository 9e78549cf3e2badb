"""Every tab as a person meets it (issue 33), item 5: a link restores the whole view and shows its
results when it opens: from the cache, or computed then (never "Press Run")."""

from __future__ import annotations

import pytest
from browser_helpers import click_image, open_tab, pick_example, run_and_wait, select_models

pytestmark = pytest.mark.browser

RUN_MS = 240_000


def copy_link(page, task: str) -> str:
    page.locator(f"#{task}-link-button").click()
    box = page.locator(f"#{task}-link textarea, #{task}-link input").first
    page.wait_for_function(
        "(selector) => (document.querySelector(selector)?.value || '').includes('?tab=')",
        arg=f"#{task}-link textarea, #{task}-link input",
        timeout=10_000,
    )
    return box.input_value()


def test_a_text_link_restores_the_inputs_and_shows_the_panels(browser, page):
    open_tab(page, "Text")
    pick_example(page, "text", index=2)
    page.locator("#text-prompt textarea").fill("cat")
    page.locator("#text-run").click()
    page.wait_for_function(
        "() => /OWLv2 \\+ SAM[\\s\\S]* ms/.test(document.querySelector('#text-caption-2')?.innerText)",
        timeout=RUN_MS,
    )
    link = copy_link(page, "text")
    assert "tab=text" in link and "text=cat" in link, link

    fresh = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        other = fresh.new_page()
        other.goto(link, wait_until="load")
        for i in range(3):  # no button pressed: the panels come with the link
            other.locator(f"#text-panel-{i} img").first.wait_for(timeout=RUN_MS)
        assert other.locator("#text-prompt textarea").input_value() == "cat"
        assert other.locator("#text-caption-0").inner_text().startswith("Grounded-SAM")
    finally:
        fresh.close()


def test_a_link_to_results_not_in_memory_computes_them_on_open(browser, live_app):
    # one model on an example no other test of this file runs: results not in memory
    fresh = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        other = fresh.new_page()
        other.goto(f"{live_app.url}?tab=semantic&example=coffee&models=fcn&mask=0.5", wait_until="load")
        other.locator("#semantic-panel-0 img").first.wait_for(timeout=RUN_MS)
        assert "Press" not in other.locator("#semantic-stale").inner_text()
        assert "FCN" in other.locator("#semantic-caption-0").inner_text()
    finally:
        fresh.close()


def test_a_compare_link_keeps_the_ab_pair(browser, page):
    open_tab(page, "Compare")
    pick_example(page, "compare", index=2)
    select_models(page, "compare", ["FCN ResNet-50", "Faster R-CNN ResNet-50 FPN v2", "RetinaNet ResNet-50 FPN v2"])
    run_and_wait(page, "compare", 3)
    page.wait_for_function(
        "() => /Objects/.test(document.querySelector('#compare-diff-counts')?.innerText)", timeout=60_000
    )
    before = page.locator("#compare-diff-counts").inner_text()
    page.locator("#compare-b input").click()
    options = page.locator("[role=option]")
    options.first.wait_for(timeout=10_000)
    titles = [t.strip() for t in options.all_inner_texts() if "✓" not in t]
    new_b = next(t for t in titles if t and t not in before)  # neither A nor B
    options.filter(has_text=new_b).first.click()
    page.wait_for_function(
        "(title) => document.querySelector('#compare-diff-counts')?.innerText.includes(title)", arg=new_b
    )
    a = page.locator("#compare-a input").input_value()
    link = copy_link(page, "compare")
    assert "ab=" in link, link

    fresh = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        other = fresh.new_page()
        other.goto(link, wait_until="load")
        other.wait_for_function(
            "(title) => document.querySelector('#compare-diff-counts')?.innerText.includes(title)",
            arg=new_b,
            timeout=RUN_MS,
        )
        assert other.locator("#compare-b input").input_value() == new_b
        assert other.locator("#compare-a input").input_value() == a
        other.locator("#compare-diff img").first.wait_for(timeout=10_000)
    finally:
        fresh.close()


def test_a_prompt_link_restores_the_clicks_and_the_box(browser, page):
    open_tab(page, "Prompt")
    pick_example(page, "prompt", index=1)
    page.locator("#prompt-canvas img").first.wait_for(timeout=30_000)
    click_image(page, "#prompt-canvas", 0.5, 0.5)
    page.wait_for_function("() => /SAM 2.1/.test(document.querySelector('#prompt-status')?.innerText)", timeout=RUN_MS)
    page.get_by_text("box corner", exact=True).click()
    click_image(page, "#prompt-canvas", 0.2, 0.2)
    page.get_by_text("Box: now click the opposite corner.").first.wait_for(timeout=60_000)
    click_image(page, "#prompt-canvas", 0.8, 0.8)
    page.wait_for_function(
        "() => /SAM 2.1/.test(document.querySelector('#prompt-status')?.innerText)"
        " && !/opposite corner/.test(document.querySelector('#prompt-status')?.innerText)",
        timeout=RUN_MS,
    )
    page.wait_for_function(
        "() => ((document.querySelector('#prompt-clicks textarea')?.value || '').match(/;c/g) || []).length >= 2",
        timeout=RUN_MS,
    )
    clicks = page.locator("#prompt-clicks textarea").input_value()
    assert clicks.count(";c") == 2 and clicks.startswith("f"), clicks
    canvas = page.locator("#prompt-canvas img").first.get_attribute("src")
    link = copy_link(page, "prompt")
    assert "clicks=" in link, link

    fresh = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        other = fresh.new_page()
        other.goto(link, wait_until="load")
        other.wait_for_function(
            "() => /SAM 2.1/.test(document.querySelector('#prompt-status')?.innerText)", timeout=RUN_MS
        )
        assert other.locator("#prompt-clicks textarea").input_value() == clicks
        assert len(other.locator("#prompt-candidate label").all_inner_texts()) == 3
        other.wait_for_timeout(1000)  # the image box's own change comes after: it must not clear the clicks
        assert "SAM 2.1" in other.locator("#prompt-status").inner_text()
        assert other.locator("#prompt-canvas img").first.get_attribute("src") != canvas or canvas
    finally:
        fresh.close()
