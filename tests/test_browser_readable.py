"""Explain, Score and the results tables readable at 1400 px and on a 420 px phone, and fonts the page
never fetches (issue 33: item 8, item 9's table, item 12's small capitals and "What to build").

One tiny-weights app (the session's ``live_app``); the detection tab runs Grounding DINO (its word
charts) and DETR (its heat maps, each with a colour scale) once, and the second width takes them
from the result cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlparse

import numpy as np
import pytest
from browser_helpers import checked_page, fetch_image, open_tab, pick_example, run_and_wait, select_models
from playwright.sync_api import Browser, Locator, Page

from playground.explain.views import WORDS_SHOWN

pytestmark = pytest.mark.browser

GALLERY = "#detection-explain-views"
TABLE = "#detection-score-table"
MODELS = ["Grounding DINO Tiny", "DETR ResNet-50"]
BAR = (70, 110, 200)
"""The bar colour of the Explain charts (`playground.explain.drawing.bars`)."""
READABLE_PX = 12
"""A chart bar (its word's line of text) at least this tall on screen, in CSS pixels: the old chart
of 177 words was drawn a few pixels a line, a strip."""
SYSTEM_FAMILIES = {"ui-sans-serif", "system-ui", "-apple-system", "sans-serif", "ui-monospace", "monospace"}
"""Font families the system always has: a stack that starts with one never waits for a web font."""

DRAWN = """(img) => {
  const box = img.getBoundingClientRect();
  const scale = Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight);
  const width = img.naturalWidth * scale, height = img.naturalHeight * scale;
  return {left: box.left + (box.width - width) / 2, right: box.left + (box.width + width) / 2,
          top: box.top + (box.height - height) / 2, width, height, scale, fit: getComputedStyle(img).objectFit,
          natural: [img.naturalWidth, img.naturalHeight], viewport: [innerWidth, innerHeight]};
}"""
"""Where an ``object-fit: contain`` image is drawn inside its element, in CSS pixels."""


@pytest.fixture(params=[1400, 420], ids=["1400px", "420px-phone"])
def sized_page(request: pytest.FixtureRequest, browser: Browser, live_app) -> Iterator[Page]:
    """A page on the live app at the parameter's width: a desktop, or a phone (touch, 2x pixels)."""
    phone = request.param < 640
    options = {"is_mobile": phone, "has_touch": phone, "device_scale_factor": 2 if phone else 1}
    with checked_page(browser, live_app.url, viewport={"width": request.param, "height": 900}, **options) as page:
        yield page


def bar_rows(pixels: np.ndarray) -> list[tuple[int, int, int]]:
    """(top, bottom, left) in image pixels of each bar of the chart under the picture in ``pixels``
    (the gallery's lossy webp: colours near the bars'; the chart starts after the first white row)."""
    white = np.flatnonzero((pixels >= 245).all(axis=(1, 2)))
    start = int(white[0]) if white.size else pixels.shape[0]
    bar = (np.abs(pixels.astype(int) - BAR) <= 30).all(axis=2)
    bar[:start] = False
    rows = np.flatnonzero(bar.any(axis=1))
    runs = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1) if rows.size else []
    return [(int(run[0]), int(run[-1]) + 1, int(np.flatnonzero(bar[run[0]])[0])) for run in runs]


def thumbnail(page: Page, text: str) -> Locator:
    """The gallery's view whose caption has ``text``, scrolled into view with its picture loaded."""
    item = page.locator(f"{GALLERY} .thumbnail-lg").filter(has_text=text).first
    item.scroll_into_view_if_needed()
    item.locator("img").evaluate("(img) => img.complete && img.naturalWidth || img.decode()")
    return item


def enlarge(page: Page, item: Locator) -> dict:
    """Click ``item``; wait until the enlarged view shows its picture; where that picture is drawn."""
    source = item.locator("img").get_attribute("src")
    item.click()
    page.wait_for_function(
        "([selector, src]) => { const img = document.querySelector(selector);"
        " return img && img.getAttribute('src') === src && img.complete && img.naturalWidth > 0; }",
        arg=[f"{GALLERY} .preview .media-button img", source],
        timeout=30_000,
    )
    return page.locator(f"{GALLERY} .preview .media-button img").evaluate(DRAWN)


def close_enlarged(page: Page) -> None:
    """Leave the enlarged view for the grid."""
    page.locator(f"{GALLERY} .preview .media-button").press("Escape")  # the gallery's own key
    page.locator(f"{GALLERY} .preview").wait_for(state="detached", timeout=10_000)


def assert_whole_in_view(drawn: dict, what: str) -> None:
    """The picture keeps its shape and is seen whole: no part past the screen's sides or height."""
    width, height = drawn["viewport"]
    assert drawn["fit"] == "contain", (what, drawn)
    assert drawn["left"] >= -1 and drawn["right"] <= width + 1, (what, drawn)
    assert drawn["height"] <= height + 1, (what, drawn)


def test_explain_views_are_whole_captioned_charted_and_scaled(sized_page: Page) -> None:
    page = sized_page
    width = page.viewport_size["width"]
    open_tab(page, "Detection")
    pick_example(page, "detection", index=0)  # the astronaut
    select_models(page, "detection", MODELS)
    run_and_wait(page, "detection", len(MODELS))
    page.locator("#detection-explain input[type=checkbox]").check()
    page.locator(f"{GALLERY} .thumbnail-lg img").first.wait_for(timeout=60_000)
    page.locator(f"{GALLERY} .thumbnail-lg").filter(has_text="Grounding DINO Tiny · Box").first.wait_for()

    # the grid: large views inside the screen, each caption under its picture (not over its scale)
    for item in page.locator(f"{GALLERY} .thumbnail-lg").all():
        picture = item.locator("img").bounding_box()
        caption = item.locator(".caption-label").bounding_box()
        assert picture["width"] >= 0.7 * min(width, 700), (width, picture)  # not a thumbnail-sized view
        assert picture["x"] >= 0 and picture["x"] + picture["width"] <= width + 1, (width, picture)
        assert caption["y"] >= picture["y"] + picture["height"] - 1, (picture, caption, item.inner_text()[:80])

    # a heat map has its colour scale: viridis from dark purple to yellow along its bottom
    heat = thumbnail(page, "DETR ResNet-50 · Query ")
    scale = fetch_image(page, heat.locator("img").get_attribute("src"))[-20:].reshape(-1, 3).astype(int)
    assert ((scale[:, 0] < 90) & (scale[:, 1] < 40) & (scale[:, 2] > 60)).any(), "no dark end of a colour scale"
    assert ((scale[:, 0] > 200) & (scale[:, 1] > 200) & (scale[:, 2] < 90)).any(), "no bright end of a colour scale"

    # Grounding DINO's word chart: a few words, each labelled, in bars a person can read
    chart = thumbnail(page, "Grounding DINO Tiny · Box")
    pixels = fetch_image(page, chart.locator("img").get_attribute("src"))
    bars = bar_rows(pixels)
    assert 1 <= len(bars) <= WORDS_SHOWN, bars
    for top, bottom, left in bars:
        label = pixels[top:bottom, :left]
        assert (label.sum(axis=2) < 300).any(), f"no word drawn left of the bar at rows {top}-{bottom}"
    bar_height = min(bottom - top for top, bottom, _ in bars)
    if width >= 1000:  # a phone's grid is a preview: its views are read enlarged
        drawn = chart.locator("img").evaluate(DRAWN)
        assert bar_height * drawn["scale"] >= READABLE_PX, (bar_height, drawn)

    # enlarged: the tall chart and the wide DETR bars whole on the screen, the caption whole, wrapping
    drawn = enlarge(page, chart)
    assert_whole_in_view(drawn, "the enlarged word chart")
    assert bar_height * drawn["scale"] >= READABLE_PX, (bar_height, drawn)
    caption = page.locator(f"{GALLERY} .preview .caption")
    sizes = caption.evaluate(
        """(c) => ({scroll: [c.scrollWidth, c.scrollHeight], client: [c.clientWidth, c.clientHeight],
          box: c.getBoundingClientRect().toJSON(),
          lines: Math.round(c.clientHeight / parseFloat(getComputedStyle(c).lineHeight)),
          strip: c.parentElement.querySelector('.thumbnails').getBoundingClientRect().top})"""
    )
    assert sizes["scroll"][0] <= sizes["client"][0] + 1 and sizes["scroll"][1] <= sizes["client"][1] + 1, sizes
    assert sizes["lines"] >= 2 and sizes["box"]["right"] <= width + 1, sizes  # wraps: not one clipped line
    assert sizes["box"]["bottom"] <= sizes["strip"] + 1, sizes  # not under the strip of thumbnails
    close_enlarged(page)
    assert_whole_in_view(enlarge(page, thumbnail(page, "said 'no object'")), "the enlarged wide DETR chart")
    close_enlarged(page)

    # the gallery leaves the mouse wheel to the page
    middle = thumbnail(page, "DETR ResNet-50 · Query ").bounding_box()
    page.mouse.move(middle["x"] + middle["width"] / 2, middle["y"] + middle["height"] / 2)
    before = page.evaluate("() => scrollY")
    page.mouse.wheel(0, 300)
    page.wait_for_function("(before) => scrollY !== before", arg=before, timeout=5_000)


def test_the_score_table_is_named_before_scoring_and_readable_after(sized_page: Page) -> None:
    page = sized_page
    open_tab(page, "Detection")
    pick_example(page, "detection", index=0)  # the astronaut, with its bundled annotation
    select_models(page, "detection", MODELS)
    run_and_wait(page, "detection", len(MODELS))
    page.locator("#detection-score-panel").get_by_text("Score against ground truth").first.click()
    page.locator(f"{TABLE} thead th").first.wait_for(timeout=30_000)
    before = [h.strip() for h in page.locator(f"{TABLE} thead th").all_inner_texts()]
    assert before[0] == "model" and not {"1", "2", "3"} & set(before), before  # named, no placeholders
    page.locator("#detection-use-example").click()
    page.locator("#detection-truth [aria-label='astronaut.json']").wait_for(timeout=30_000)
    page.locator("#detection-score-button").click()
    page.wait_for_function(
        f"() => document.querySelector('{TABLE} [role=grid]')?.getAttribute('aria-rowcount') === '{len(MODELS) + 1}'",
        timeout=60_000,
    )  # the header and a row per model

    headers = assert_words_whole(page, TABLE)
    assert headers[-1] == "published" and "tp/fp/fn" in headers, headers
    assert_scrolls_inside(page, TABLE)


def test_what_each_model_found_and_compares_summary_keep_every_word_whole(sized_page: Page) -> None:
    page = sized_page
    open_tab(page, "Detection")
    pick_example(page, "detection", index=0)  # the astronaut
    select_models(page, "detection", MODELS)
    run_and_wait(page, "detection", len(MODELS))
    number = page.locator("#detection-score input[type=number]")
    number.fill("0")  # every box the tiny models found: rows with labels, scores and boxes
    number.press("Enter")
    found = "#detection-table"
    page.wait_for_function(
        "(cells) => [...document.querySelectorAll(cells)].some((cell) => /\\d+, \\d+, /.test(cell.innerText))",
        arg=f"{found} [role=gridcell]",
        timeout=30_000,
    )
    assert assert_words_whole(page, found) == ["model", "label", "score", "box (x1, y1, x2, y2) or area"]
    scrolls = [assert_scrolls_inside(page, found)]

    open_tab(page, "Compare")
    select_models(page, "compare", MODELS)
    pick_example(page, "compare", index=0)
    run_and_wait(page, "compare", len(MODELS))
    summary = "#compare-summary"
    page.wait_for_function(
        f"() => document.querySelector('{summary} [role=grid]')?.getAttribute('aria-rowcount') === '{len(MODELS) + 1}'",
        timeout=60_000,
    )  # the header and a row per model
    assert assert_words_whole(page, summary)[-1] == "found"
    scrolls.append(assert_scrolls_inside(page, summary))
    if page.viewport_size["width"] < 1000:  # wider than a phone: each table scrolls inside its box
        assert all(scroll["scroll"] > scroll["client"] for scroll in scrolls), scrolls


def assert_words_whole(page: Page, table: str) -> list[str]:
    """No header clipped, no word broken or cut in a cell of ``table`` (a selector): each word at most
    as wide as its cell's text box ("precisio", "d/e/t/e/c/t/i/o/n" before). The rows in view are
    grid cells (Gradio's ``tbody`` holds one hidden row that sizes the columns). Returns the headers."""
    cells = page.locator(f"{table} thead th, {table} [role=gridcell]").evaluate_all(
        """(cells) => cells.filter((cell) => cell.checkVisibility()).map((cell) => {
          const text = cell.querySelector('.header, .text, span') || cell;
          const style = getComputedStyle(text);
          const pen = document.createElement('canvas').getContext('2d');
          pen.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
          const words = cell.innerText.split(/\\s+/).filter(Boolean);
          return {text: cell.innerText.trim(), room: text.clientWidth,
                  word: Math.max(0, ...words.map((word) => pen.measureText(word).width))};
        })"""
    )
    cramped = [cell for cell in cells if cell["text"] and cell["word"] > cell["room"] + 1]
    assert not cramped, (table, cramped)
    return [cell["text"] for cell in cells[: len(page.locator(f"{table} thead th").all())]]


def assert_scrolls_inside(page: Page, table: str) -> dict:
    """The page never scrolls sideways; ``table`` fits a desktop, and on a phone its box may scroll
    sideways, to its last column. Returns the box's scroll and client widths and overflow."""
    width = page.viewport_size["width"]
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width, "the page scrolls sideways"
    viewport = page.locator(f"{table} .virtual-table-viewport")
    scroll = viewport.evaluate(
        "(v) => ({scroll: v.scrollWidth, client: v.clientWidth, overflow: getComputedStyle(v).overflowX})"
    )
    if width >= 1000:
        assert scroll["scroll"] <= scroll["client"] + 1, (table, scroll)  # the whole table in view
    else:
        assert scroll["overflow"] in ("auto", "scroll"), (table, scroll)
    viewport.evaluate("(v) => { v.scrollLeft = v.scrollWidth; }")
    last = page.locator(f"{table} thead th").last.bounding_box()
    shown = viewport.bounding_box()
    assert last["x"] + last["width"] <= shown["x"] + shown["width"] + 1, (table, last, shown)  # last column reachable
    return scroll


def test_fonts_are_the_systems_own_and_nothing_is_fetched_from_outside(browser: Browser, live_app) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    requests: list[tuple[str, str]] = []  # (URL, resource type)
    page.on("request", lambda request: requests.append((request.url, request.resource_type)))
    page.goto(live_app.url, wait_until="load")
    page.wait_for_selector("#semantic-run", timeout=30_000)
    open_tab(page, "Detection")
    page.evaluate("() => document.fonts.ready.then(() => true)")

    web = [(url, kind) for url, kind in requests if urlparse(url).scheme in ("http", "https")]
    assert any(kind == "stylesheet" for _, kind in web), web  # the page's own CSS was seen
    outside = [(url, kind) for url, kind in web if urlparse(url).hostname != "127.0.0.1"]
    assert not outside, outside  # no font (nor anything else) from another host: offline, nothing waits

    remote_faces = page.evaluate(
        """() => [...document.styleSheets].flatMap((sheet) => {
          let rules;
          try { rules = [...sheet.cssRules]; } catch (error) { return [`unreadable sheet ${sheet.href}`]; }
          return rules.filter((rule) => rule instanceof CSSFontFaceRule)
            .map((rule) => rule.style.getPropertyValue('src'))
            .filter((src) => /url\\(\\s*["']?(https?:)?\\/\\//.test(src) && !src.includes('127.0.0.1'));
        })"""
    )
    assert not remote_faces, remote_faces
    failed = page.evaluate("() => [...document.fonts].filter((face) => face.status === 'error').map((f) => f.family)")
    assert not failed, f"fonts that failed to load: {failed}"

    stacks = page.evaluate(
        """() => ['h1', 'h2', '[role=tab]', 'label span', 'button.primary', '.block-label', 'th', 'textarea']
          .flatMap((selector) => [...document.querySelectorAll(selector)].slice(0, 3))
          .map((node) => [node.tagName + '.' + node.className, getComputedStyle(node).fontFamily])"""
    )
    assert len(stacks) >= 6, stacks
    for node, stack in stacks:
        first = stack.split(",")[0].strip().strip("\"'")
        assert first in SYSTEM_FAMILIES, (node, stack)
    context.close()
