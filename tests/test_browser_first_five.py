"""A new user's first five minutes in the browser: panels that say why they are empty, class
toggles without background labels, links that restore results and toggles (and one notice for a
bad link), stale results marked, and every tab one tap away on a phone."""

from __future__ import annotations

import re

import pytest
from browser_helpers import RUN_TIMEOUT_MS, open_tab, pick_example, run_and_wait, select_models
from conftest import EXAMPLES

pytestmark = pytest.mark.browser


def set_number(page, elem_id: str, value: str) -> None:
    number = page.locator(f"#{elem_id} input[type=number]")
    number.fill(value)
    number.press("Enter")


def class_boxes(page, task: str) -> dict[str, bool]:
    """Each class toggle's name -> ticked."""
    labels = page.locator(f"#{task}-classes label").all()
    return {label.inner_text().strip(): label.locator("input").is_checked() for label in labels}


def wait_for_classes(page, task: str, predicate: str) -> None:
    """Wait until ``predicate`` (JS, of ``boxes``: [[name, ticked], ...]) holds for the class toggles."""
    page.wait_for_function(
        f"""(task) => {{
            const boxes = [...document.querySelectorAll(`#${{task}}-classes label`)]
                .map(l => [l.innerText.trim(), l.querySelector('input').checked]);
            return {predicate};
        }}""",
        arg=task,
        timeout=30_000,
    )


def copy_link(page, task: str) -> str:
    page.locator(f"#{task}-link-button").click()
    box = page.locator(f"#{task}-link textarea, #{task}-link input").first
    page.wait_for_function("(el) => el.value.includes('tab=')", arg=box.element_handle(), timeout=10_000)
    return box.input_value()


def test_an_empty_panel_says_why_and_the_class_list_has_no_background(page):
    open_tab(page, "Detection")
    pick_example(page, "detection", index=4)  # motorcycle
    select_models(page, "detection", ["RetinaNet ResNet-50 FPN v2"])
    run_and_wait(page, "detection", 1)
    caption = page.locator("#detection-caption-0")
    caption.get_by_text("lower the score").wait_for(timeout=30_000)
    assert re.search(r"nothing ≥ 0\.50 \(best 0\.\d\d\): lower the score", caption.inner_text())
    assert page.locator("#detection-mask").count() == 0 or not page.locator("#detection-mask").is_visible()
    assert not page.locator("#detection-opacity").is_visible()  # boxes only: no mask controls
    own = page.locator("#detection-own-score input")
    assert own.is_checked()  # RetinaNet at its own threshold, 0.50

    set_number(page, "detection-score", "0")
    wait_for_classes(page, "detection", "boxes.length > 3")
    assert not own.is_checked()  # moving the slider set one threshold for all
    boxes = class_boxes(page, "detection")
    assert not {"N/A", "__background__", "background"} & set(boxes)
    assert all(boxes.values())

    page.locator("#detection-classes-none").click()
    wait_for_classes(page, "detection", "boxes.every(([, on]) => !on)")
    page.locator("#detection-classes-all").click()
    wait_for_classes(page, "detection", "boxes.every(([, on]) => on)")


def test_a_link_restores_results_and_unticked_classes_without_run(browser, page):
    open_tab(page, "Detection")
    pick_example(page, "detection", index=2)  # chelsea
    select_models(page, "detection", ["RetinaNet ResNet-50 FPN v2"])
    set_number(page, "detection-score", "0")
    run_and_wait(page, "detection", 1)
    wait_for_classes(page, "detection", "boxes.length >= 2")
    hidden = page.locator("#detection-classes label").first.inner_text().strip()
    page.locator("#detection-classes label").first.click()
    wait_for_classes(page, "detection", "boxes.some(([, on]) => !on)")
    link = copy_link(page, "detection")
    assert "example=chelsea" in link and "score=0" in link and "hide=" in link

    fresh = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        other = fresh.new_page()
        other.goto(link, wait_until="load")
        other.locator("#detection-panel-0 img").first.wait_for(timeout=60_000)  # no Run pressed
        wait_for_classes(other, "detection", "boxes.length >= 2")
        boxes = class_boxes(other, "detection")
        assert boxes[hidden] is False and sum(boxes.values()) == len(boxes) - 1
        assert "RetinaNet" in other.locator("#detection-caption-0").inner_text()
        assert other.locator("#detection-score input[type=number]").input_value() == "0"
    finally:
        fresh.close()


def test_a_link_to_an_upload_names_no_server_path(page, tmp_path):
    upload = tmp_path / "my-photo.jpg"
    upload.write_bytes((EXAMPLES / "coffee.jpg").read_bytes())
    open_tab(page, "Detection")
    page.locator("#detection-image input[type=file]").set_input_files(str(upload))
    page.locator("#detection-image img").first.wait_for(timeout=30_000)
    link = copy_link(page, "detection")
    assert re.search(r"upload=[0-9a-f]{16,}", link), link
    assert "tmp" not in link and "gradio" not in link.split("?")[1]

    other = page.context.new_page()
    other.goto(link, wait_until="load")
    other.locator("#detection-image img").first.wait_for(timeout=30_000)
    assert not other.locator("#link-notice").is_visible()


def test_a_bad_link_gives_one_friendly_notice(page, live_app):
    page = page.context.new_page()
    page.goto(live_app.url + "?tab=detection&example=nope&score=7&models=yolo,detr&colour=red", wait_until="load")
    notice = page.locator("#link-notice")
    notice.wait_for(timeout=30_000)
    text = notice.inner_text()
    for part in ("score=7", "nope", "yolo", "colour"):
        assert part in text, text
    page.wait_for_timeout(1000)  # any toast the link caused would be up by now
    assert page.locator(".toast-body").count() == 0
    assert page.locator("#detection-score input[type=number]").input_value() == "0.5"
    labels = page.locator("#detection-models label").all()
    checked = [label.inner_text().strip() for label in labels if label.locator("input").is_checked()]
    assert checked == ["DETR ResNet-50"]


def test_results_for_a_previous_image_are_marked_stale(page):
    open_tab(page, "Detection")
    pick_example(page, "detection", index=0)
    select_models(page, "detection", ["DETR ResNet-50"])
    run_and_wait(page, "detection", 1)
    stale = page.locator("#detection-stale")
    assert "Out of date" not in stale.inner_text()
    pick_example(page, "detection", index=1)
    stale.get_by_text("Out of date").wait_for(timeout=30_000)
    page.locator("#detection-run").click()
    page.wait_for_function(
        "() => !document.querySelector('#detection-stale')?.innerText.includes('Out of date')", timeout=RUN_TIMEOUT_MS
    )


def test_every_tab_is_one_tap_away_on_a_phone(browser, live_app, screenshot_dir):
    context = browser.new_context(viewport={"width": 420, "height": 900}, is_mobile=True, has_touch=True)
    try:
        phone = context.new_page()
        phone.goto(live_app.url, wait_until="load")
        phone.wait_for_selector("#semantic-run", timeout=30_000)
        names = ["Semantic", "Detection", "Instance", "Panoptic", "Prompt", "Text", "Compare"]
        for name in names:
            tab = phone.get_by_role("tab", name=name, exact=True)
            assert tab.is_visible(), f"tab {name} is hidden"
            box = tab.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 420, f"tab {name} is off screen: {box}"
            tab.tap()
            phone.wait_for_function(
                "(name) => [...document.querySelectorAll('[role=tab]')]"
                ".some(t => t.innerText.trim() === name && t.getAttribute('aria-selected') === 'true')",
                arg=name,
                timeout=10_000,
            )
        open_tab(phone, "Detection")
        phone.screenshot(path=str(screenshot_dir / "phone.png"), full_page=True)
    finally:
        context.close()
