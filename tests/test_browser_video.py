"""The Video tab in the browser: a click on the example clip's frame, Track, and the overlay plays."""

from __future__ import annotations

import pytest
from browser_helpers import click_image
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

pytestmark = pytest.mark.browser
TAB = "Video (track through a clip)"


def open_video_tab(page) -> None:
    """The tab's button, or its entry in the overflow menu Gradio makes when the tabs do not fit."""
    tab = page.get_by_role("tab", name=TAB)
    if tab.is_visible():
        tab.click()
        return
    page.locator(".overflow-menu button").first.click()
    page.locator(".overflow-dropdown button", has_text=TAB).click()


def click_until_drawn(page, canvas, attempts: int = 3) -> None:
    """Click the frame's centre until the click is drawn on it (the image changes). On a busy CI
    machine a click that lands while Gradio swaps the frame image can be lost, as a person's can;
    they click again, and so does this (each wait 20 s)."""
    for attempt in range(attempts):
        before = canvas.get_attribute("src")
        click_image(page, "#video-canvas")
        try:
            page.wait_for_function(
                "(before) => document.querySelector('#video-canvas img')?.src !== before", arg=before, timeout=20_000
            )
            return
        except PlaywrightTimeoutError:
            if attempt == attempts - 1:
                raise


def test_a_click_on_the_example_clip_tracks_and_the_overlay_plays(page, screenshot_dir):
    open_video_tab(page)
    fps = page.locator("#video-fps input")
    fps.fill("2")  # 12 frames: the tiny model on a busy CPU
    fps.press("Enter")
    page.locator("#video-example").click()
    canvas = page.locator("#video-canvas img").first
    canvas.wait_for(timeout=60_000)
    assert "12 frames, 320x240 at 2 fps" in page.locator("#video-status").inner_text()
    click_until_drawn(page, canvas)
    page.locator("#video-track").click()
    page.wait_for_function(
        "() => { const v = document.querySelector('#video-overlay-0 video'); return v && v.src && v.duration > 0; }",
        timeout=300_000,
    )
    assert "Tracked: sam2" in page.locator("#video-status").inner_text()
    playing = page.evaluate(
        """async () => {
            const video = document.querySelector('#video-overlay-0 video');
            video.muted = true;
            await video.play();
            await new Promise((done) => setTimeout(done, 700));
            return {time: video.currentTime, duration: video.duration};
        }"""
    )
    assert playing["duration"] == pytest.approx(6.0, abs=0.6) and playing["time"] > 0
    page.screenshot(path=str(screenshot_dir / "video.png"), full_page=True)
