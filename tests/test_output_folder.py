"""The app's output folder (`playground.ui.common.new_output_path`) under concurrent requests.

Every request that draws an overlay first removes outputs older than an hour. When several requests
arrive together and old outputs exist, they all clean the same folders at once: a folder one of them
removed must not fail another (it did: ``FileNotFoundError`` from ``glob``, which Gradio answered as
"The upstream Gradio app has raised an exception", in the 16-client load test).
"""

from __future__ import annotations

import os
import threading
import time

from playground.ui import common

REQUESTS = 8


def test_concurrent_requests_clean_old_outputs_without_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(common, "OUTPUT_DIR", tmp_path)
    old = time.time() - 2 * common.OUTPUT_MAX_AGE_S
    for index in range(50):
        folder = tmp_path / f"old{index}"
        folder.mkdir()
        (folder / "overlay.png").write_bytes(b"png")
        os.utime(folder / "overlay.png", (old, old))
    recent = tmp_path / "recent" / "overlay.png"
    recent.parent.mkdir()
    recent.write_bytes(b"png")
    start = threading.Barrier(REQUESTS)
    paths, errors = [], []

    def request() -> None:
        start.wait()
        try:
            paths.append(common.new_output_path("overlay.png"))
        except Exception as error:  # collect, so the assertion shows every thread's error
            errors.append(repr(error))

    threads = [threading.Thread(target=request) for _ in range(REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(set(paths)) == REQUESTS and all(path.parent.is_dir() for path in paths)
    assert not list(tmp_path.glob("old*"))
    assert recent.exists()
