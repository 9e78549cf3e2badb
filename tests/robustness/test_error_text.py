"""Every kind of bad request through gradio_client gets one clear line, never Gradio's generic text
("The upstream Gradio app has raised an exception but has not enabled verbose error reporting")."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import EXAMPLES, start_app
from gradio_client import Client, handle_file
from PIL import Image

GENERIC = "has not enabled verbose error reporting"


def clear_line(text: str) -> str:
    """``text`` if it is one clear line (not Gradio's generic text, no traceback), else fail."""
    assert text and GENERIC not in text and "Traceback" not in text, text
    assert "\n" not in text.strip() and text.strip() != "Error", repr(text)
    return text


def error_text(call) -> str:
    with pytest.raises(Exception) as caught:  # whatever gradio_client raises: its text is what matters
        call()
    return clear_line(str(caught.value))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    Image.fromarray(np.zeros((64, 80, 3), np.uint8)).save(folder / "ok.png")
    (folder / "not-an-image.jpg").write_text("hello, I am text")
    (folder / "too-big.png").write_bytes(b"\x89PNG" + os.urandom(21 * 2**20))
    return {path.stem: path for path in folder.iterdir()}


def test_each_kind_of_bad_request_gets_a_clear_line(live_app, files) -> None:
    client = Client(live_app.url, verbose=False)
    ok = handle_file(str(files["ok"]))
    texts = {
        "unknown model": error_text(lambda: client.predict(ok, ["nope"], 0.5, 0.5, api_name="/detection")),
        "not an image": error_text(
            lambda: client.predict(handle_file(str(files["not-an-image"])), ["detr"], 0.5, 0.5, api_name="/detection")
        ),
        "refused URL": error_text(
            lambda: client.predict(handle_file("http://127.0.0.1:9/x.png"), ["detr"], 0.5, 0.5, api_name="/detection")
        ),
        "server path": error_text(
            lambda: client.predict(
                {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}},
                ["detr"],
                0.5,
                0.5,
                api_name="/detection",
            )
        ),
        "over the limit": error_text(
            lambda: client.predict(handle_file(str(files["too-big"])), ["detr"], 0.5, 0.5, api_name="/detection")
        ),
        "bad prompt": error_text(lambda: client.predict(ok, [[1000, 1000, 1]], None, api_name="/prompt")),
        "empty text": error_text(lambda: client.predict(ok, "   ", api_name="/text")),
        "text as video": error_text(
            lambda: client.predict(handle_file(str(files["not-an-image"])), "sam2", [[5, 5, 1]], api_name="/video")
        ),
        "unknown explain model": error_text(lambda: client.predict(ok, "nope", api_name="/explain")),
    }
    assert "nope" in texts["unknown model"] and "not-an-image" in texts["not an image"]
    assert "upload" in texts["refused URL"] and "maximum file size" in texts["over the limit"]
    assert "outside" in texts["bad prompt"]
    # the app keeps serving everyone after all of that
    _, results = client.predict(ok, ["detr"], 0.5, 0.5, api_name="/detection")
    assert results[0]["model"] == "detr" and "error" not in results[0]


def test_a_model_that_fails_answers_one_line_and_the_app_keeps_serving(tmp_path) -> None:
    """A pretrained checkpoint that does not fit: the model's result is one clear line, every time."""
    bad = tmp_path / "bad.pth"
    torch.save({"weight": torch.zeros(3)}, bad)
    app = start_app(tmp_path, "--weights", "pretrained", "--checkpoint", f"fcn={bad}")
    try:
        client = Client(app.url, verbose=False)
        for _ in range(2):
            _, (result,) = client.predict(handle_file(str(EXAMPLES / "chelsea.jpg")), ["fcn"], api_name="/semantic")
            assert "FCN" in clear_line(result["error"]), result
    finally:
        app.process.terminate()
        app.process.wait(timeout=30)


def test_a_full_queue_says_so(tmp_path, files) -> None:
    """With room for one waiting request, a burst at a cold start overflows: each refused user is
    told the queue is full; every other user gets a result."""
    app = start_app(tmp_path, "--weights", "tiny", "--max-queue", "1")
    try:
        image = handle_file(str(files["ok"]))

        def ask(_: int) -> str:
            client = Client(app.url, verbose=False, httpx_kwargs={"timeout": 120})
            try:
                _, results = client.predict(image, ["maskformer"], 0.5, 0.5, api_name="/panoptic")
            except Exception as error:
                return clear_line(str(error))
            return "ok" if results[0].get("model") == "maskformer" else f"wrong answer {results}"

        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(ask, range(10)))
    finally:
        app.process.terminate()
        app.process.wait(timeout=30)
    refused = [answer for answer in answers if answer != "ok"]
    assert refused and all("Queue is full" in answer for answer in refused), answers
    assert "ok" in answers
