"""A public app must not hand out files, accept huge uploads, or load code from checkpoints."""

from __future__ import annotations

import ast
import http.client
import json
import urllib.parse
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT
from gradio_client import Client, handle_file
from PIL import Image

UPLOAD_LIMIT = 20 * 1024 * 1024
"""app.py's ``max_file_size="20mb"`` in bytes."""
OUTSIDE = [
    "/etc/passwd",
    "../../../../etc/passwd",
    "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/proc/self/environ",
    str(ROOT / "app.py"),
    f"{EXAMPLES}/../app.py",
    f"{EXAMPLES}/%2e%2e/playground/core/weights.py",
]


def request(url: str, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, bytes]:
    """(status, body) of one raw HTTP request; ``path`` is sent exactly as given, never normalised."""
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("target", OUTSIDE)
@pytest.mark.parametrize("route", ["/gradio_api/file=", "/file=", "/static/", "/assets/"])
def test_file_routes_refuse_paths_outside_the_app(live_app, route, target):
    status, body = request(live_app.url, "GET", route + target)
    assert status in (400, 403, 404), (status, body[:200])
    assert b"root:" not in body and b"import" not in body


def test_file_route_serves_the_examples(live_app):
    """The control: the same route does serve an allowed file, so the refusals above mean something."""
    status, body = request(live_app.url, "GET", f"/gradio_api/file={EXAMPLES / 'astronaut.jpg'}")
    assert status == 200 and body[:2] == b"\xff\xd8"


def call_endpoint(url: str, data: list) -> str:
    """The event stream of one raw ``/gradio_api/call/detection`` request (no client-side upload)."""
    payload = json.dumps({"data": data}).encode()
    status, body = request(url, "POST", "/gradio_api/call/detection", payload, {"Content-Type": "application/json"})
    assert status == 200, body[:300]
    event_id = json.loads(body)["event_id"]
    return request(url, "GET", f"/gradio_api/call/detection/{event_id}")[1].decode(errors="replace")


@pytest.mark.parametrize("name", ["/etc/passwd", "server-side.png"])
def test_api_refuses_server_paths_that_were_not_uploaded(live_app, tmp_path, name):
    """A FileData naming a server path is refused, even a readable image the model would accept."""
    image = tmp_path / "server-side.png"
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(image)
    path = name if name.startswith("/") else str(image)
    stream = call_endpoint(live_app.url, [{"path": path, "meta": {"_type": "gradio.FileData"}}, ["detr"], 0.5, 0.5])
    assert "event: error" in stream and "event: complete" not in stream, stream[:500]


def multipart(field: str, name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
    head += "Content-Type: application/octet-stream\r\n\r\n"
    return head.encode() + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_uploads_over_the_limit_are_refused(live_app, tmp_path):
    too_big = np.random.default_rng(0).bytes(UPLOAD_LIMIT + 1024)
    body, content_type = multipart("files", "big.png", too_big)
    status, answer = request(live_app.url, "POST", "/gradio_api/upload", body, {"Content-Type": content_type})
    assert status == 413 and b"maximum" in answer, (status, answer[:200])
    body, content_type = multipart("files", "small.png", too_big[:1000])
    assert request(live_app.url, "POST", "/gradio_api/upload", body, {"Content-Type": content_type})[0] == 200
    # gradio_client reads the limit from the app and refuses before sending.
    big = tmp_path / "big.png"
    big.write_bytes(too_big)
    with pytest.raises(ValueError, match="maximum file size"):
        Client(live_app.url, verbose=False).predict(handle_file(str(big)), ["detr"], api_name="/detection")


# ---- code that would run what a checkpoint says ---------------------------------------------------


def project_sources() -> list[Path]:
    skip = {".venv", ".git", "node_modules", "__pycache__"}
    return [path for path in ROOT.rglob("*.py") if not skip & set(path.relative_to(ROOT).parts)]


def risky_calls(source: str) -> list[tuple[int, str]]:
    """(line, what) for each ``torch.load`` without ``weights_only=True`` and each
    ``trust_remote_code`` that is not literally False (as a keyword or a dict key)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            if ast.unparse(node.func) == "torch.load":
                weights_only = [k.value for k in node.keywords if k.arg == "weights_only"]
                if not (weights_only and isinstance(weights_only[0], ast.Constant) and weights_only[0].value is True):
                    found.append((node.lineno, ast.unparse(node)))
            for keyword in node.keywords:
                if keyword.arg == "trust_remote_code" and not _is_false(keyword.value):
                    found.append((node.lineno, ast.unparse(node)))
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "trust_remote_code" and not _is_false(value):
                    found.append((node.lineno, ast.unparse(node)))
    return found


def _is_false(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def test_the_scanner_flags_what_it_should():
    bad = "torch.load(p)\ntorch.load(p, weights_only=False)\nf(trust_remote_code=True)\nd = {'trust_remote_code': 1}\n"
    good = "torch.load(p, map_location='cpu', weights_only=True)\nf(trust_remote_code=False)\nnp.load(p)\n"
    assert [line for line, _ in risky_calls(bad)] == [1, 2, 3, 4]
    assert risky_calls(good) == []


def test_no_checkpoint_can_run_code():
    sources = project_sources()
    assert len(sources) > 20 and "torch.load(" in (ROOT / "playground" / "core" / "weights.py").read_text()
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {call}" for path in sources for line, call in risky_calls(path.read_text())
    ]
    assert not offenders, "\n".join(offenders)
