"""Issue 34 in the browser: the Prompt tab encodes an uploaded image before the first click, so a
click made after that reports the embedding as reused; a brushed mask is a prompt of its own."""

from __future__ import annotations

import numpy as np
import pytest
from browser_helpers import assert_not_blank, click_image, fetch_image, open_tab, settled_text
from PIL import Image

from playground.ui.encode_ahead import READY

pytestmark = pytest.mark.browser


def upload_fresh_image(page, tmp_path, seed: int) -> None:
    """An image no other test sent to the app (so nothing of it is cached), into the Prompt tab."""
    pixels = np.random.default_rng(seed).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    path = tmp_path / f"fresh-{seed}.png"
    Image.fromarray(pixels).save(path)
    page.locator("#prompt-image input[type=file]").set_input_files(str(path))
    page.locator("#prompt-canvas img").first.wait_for(timeout=30_000)


def wait_for_text(page, selector: str, pattern: str, timeout: int = 120_000) -> str:
    """``selector``'s text once it is settled (`settled_text`) and matches the regular expression ``pattern``."""
    return settled_text(page, selector, "new RegExp(arg).test(text)", arg=pattern, timeout=timeout)


def test_a_first_click_after_the_upload_was_encoded_reuses_the_embedding(page, tmp_path) -> None:
    open_tab(page, "Prompt")
    upload_fresh_image(page, tmp_path, seed=34)
    encoded = wait_for_text(page, "#prompt-encoding", f"^{READY}")
    assert encoded.count("image encoded in") == 2, encoded  # both models, in the background
    click_image(page, "#prompt-canvas")
    status = wait_for_text(page, "#prompt-status", "SAM 2.1[^\\n]*: ")
    lines = [line for line in status.splitlines() if line.startswith(("Segment Anything", "SAM 2.1"))]
    assert len(lines) == 2, status
    assert all(": cached · " in line for line in lines), status  # not "image encoded in", not "after waiting"


def test_a_brushed_mask_is_a_prompt(page, tmp_path) -> None:
    open_tab(page, "Prompt")
    upload_fresh_image(page, tmp_path, seed=35)
    wait_for_text(page, "#prompt-encoding", f"^{READY}")  # the image is the brush's canvas by then
    page.get_by_text("Brush a mask").click()
    canvas = page.locator("#prompt-brush canvas").first
    canvas.wait_for(timeout=30_000)
    box = canvas.bounding_box()
    # Playwright's checks first (no progress overlay over the editor, no layout shift), then the stroke.
    canvas.hover(position={"x": box["width"] * 0.3, "y": box["height"] * 0.4}, timeout=30_000)
    box = canvas.bounding_box()
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(box["x"] + box["width"] * (0.3 + 0.04 * step), box["y"] + box["height"] * 0.5, steps=2)
    page.mouse.up()
    page.locator("#prompt-brush button[aria-label='Undo']:not([disabled])").wait_for(timeout=30_000)  # it took
    page.locator("#prompt-brush-run").click()
    status = wait_for_text(page, "#prompt-status", "SAM 2.1[^\\n]*: ")
    assert status.count("prompted by the brushed mask") == 2, status
    assert_not_blank(fetch_image(page, page.locator("#prompt-canvas img").first.get_attribute("src")))
