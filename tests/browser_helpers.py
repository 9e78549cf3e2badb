"""Playwright steps shared by the browser tests."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image

RUN_TIMEOUT_MS = 120_000
DESKTOP = {"width": 1400, "height": 1000}


@contextmanager
def checked_page(browser, url: str, ready_ms: int = 30_000, viewport: dict = DESKTOP, **options) -> Iterator:
    """A fresh page, in a new browser context (``viewport``, ``options``), on the app at ``url`` once
    its Run button shows (within ``ready_ms``); on leaving, the context closes and the test fails on
    any uncaught page error."""
    context = browser.new_context(viewport=viewport, **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url, wait_until="load")
    page.wait_for_selector("#semantic-run", timeout=ready_ms)
    yield page
    context.close()
    assert not errors, f"uncaught errors in the browser: {errors}"


def open_tab(page, title: str) -> None:
    page.get_by_role("tab", name=title).click()


def pick_example(page, task: str, index: int = 0) -> None:
    """Click the ``index``-th example thumbnail of ``task``'s tab and wait for the image input."""
    page.locator(f"#{task}-examples button.gallery-item").nth(index).click()
    page.locator(f"#{task}-image img").first.wait_for(timeout=30_000)


def select_models(page, task: str, titles: list[str]) -> None:
    """Tick exactly ``titles`` in the tab's model checkbox group."""
    group = page.locator(f"#{task}-models")
    for box in group.locator("label").all():
        wanted = box.inner_text().strip() in titles
        checkbox = box.locator("input[type=checkbox]")
        if checkbox.is_checked() != wanted:
            checkbox.click()


def panel_urls(page, task: str) -> list[str]:
    """The image URLs of the tab's visible result panels, in order."""
    images = page.locator(f"[id^='{task}-panel-'] img")
    return [images.nth(i).get_attribute("src") for i in range(images.count())]


def run_and_wait(page, task: str, expected_panels: int, exactly: bool = False) -> list[str]:
    """Click Run and wait until ``expected_panels`` result panels (at least, or ``exactly``) show
    images; returns their URLs. ``exactly`` when an example click may already show cached results
    of other models."""
    page.locator(f"#{task}-run").click()
    page.wait_for_function(
        "([selector, n, exactly]) => { const shown = document.querySelectorAll(selector).length;"
        " return exactly ? shown === n : shown >= n; }",
        arg=[f"[id^='{task}-panel-'] img", expected_panels, exactly],
        timeout=RUN_TIMEOUT_MS,
    )
    return panel_urls(page, task)


def click_image(page, selector: str, x: float = 0.5, y: float = 0.5, timeout: int = 30_000) -> None:
    """Click the image in ``selector`` at ``x``, ``y`` (fractions of its width and height) once it is
    shown, still and uncovered: Playwright's actionability checks wait out what loses a click on a
    busy machine (Gradio's progress overlay on a component being updated, a layout shift)."""
    image = page.locator(f"{selector} img").first
    image.wait_for(timeout=timeout)
    box = image.bounding_box()
    image.click(position={"x": box["width"] * x, "y": box["height"] * y}, timeout=timeout)


def settled_text(page, selector: str, test: str, arg: object = None, timeout: int = RUN_TIMEOUT_MS) -> str:
    """The text of ``selector`` once no event is updating it (Gradio's progress line, "processing |
    1.2s", shares the text while one is, with the previous answer below it) and the JS expression
    ``test`` holds for it (``text``, and ``arg``)."""
    return page.wait_for_function(
        "([selector, arg]) => { const element = document.querySelector(selector);"
        " if (!element || element.querySelector('.progress-text, .eta-bar')) return null;"
        f" const text = element.innerText; return ({test}) ? text : null; }}",
        arg=[selector, arg],
        timeout=timeout,
    ).json_value()


def fetch_image(page, url: str) -> np.ndarray:
    """Download an image the page shows, as (H, W, 3) uint8."""
    response = page.request.get(url)
    assert response.ok, f"{url}: HTTP {response.status}"
    return np.asarray(Image.open(io.BytesIO(response.body())).convert("RGB"))


def assert_not_blank(pixels: np.ndarray) -> None:
    assert pixels.shape[0] > 16 and pixels.shape[1] > 16, pixels.shape
    assert pixels.std() > 10, "the rendered overlay is blank"
