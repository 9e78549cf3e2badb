"""app.py imports torch, torchvision and supervision in the background only after the first page has loaded, so
the import (which holds the GIL) never slows the page; a fresh app is started for this."""

from __future__ import annotations

import time

import pytest
from conftest import start_app

from playground.bench.startup import stop

pytestmark = pytest.mark.browser

PRELOAD_LINE = "importing torch, torchvision and supervision"


def wait_for_line(app, text: str, seconds: float) -> str | None:
    """The first log line containing ``text`` within ``seconds``, else None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lines = [line for line in app.log_text().splitlines() if text in line]
        if lines:
            return lines[0]
        time.sleep(0.1)
    return None


def test_heavy_imports_wait_for_the_first_page_load(browser, tmp_path):
    app = start_app(tmp_path, "--weights", "tiny")
    try:
        assert PRELOAD_LINE not in app.log_text(), "the imports started before any page had loaded"
        context = browser.new_context()
        page = context.new_page()
        page.goto(app.url, wait_until="load")
        page.wait_for_selector("#semantic-run", timeout=30_000)
        line = wait_for_line(app, PRELOAD_LINE, 5)
        context.close()
        assert line is not None and line.endswith("the first page load"), line
    finally:
        stop(app.process)
