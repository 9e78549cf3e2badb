"""16 gradio_client users send 10 requests each, across two tabs and four models, to one app with a
60 MB model budget: no errors, no cross-talk between users, and bounded memory."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import start_app
from gradio_client import Client, handle_file
from PIL import Image

CLIENTS = 16
REQUESTS = 10
PLAN = [("semantic", "fcn"), ("detection", "detr"), ("semantic", "unet"), ("detection", "retinanet")]
"""Request j of every user goes to ``PLAN[j % 4]``: two tabs, four models that evict each other."""
RSS_GROWTH_MB = 400
"""Most the app's resident memory may grow while serving the load (models are loaded before)."""
CLIENT_TIMEOUT_S = 180
"""gradio_client's own HTTP timeout is 20 s: on a loaded 2-core machine an upload queued behind 16
users' model reloads can wait longer than that without anything being wrong."""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def user_image(folder: Path, user: int) -> tuple[Path, tuple[int, int]]:
    """A PNG of a size no other user sends, (path, (width, height))."""
    size = (64 + 12 * user, 48 + 8 * user)
    pixels = np.random.default_rng(user).integers(0, 256, (size[1], size[0], 3), np.uint8)
    path = folder / f"user{user}.png"
    Image.fromarray(pixels).save(path)
    return path, size


def request(client: Client, path: Path, task: str, model: str) -> tuple[str, list[dict]]:
    """(overlay PNG path, per-model JSON) from the tab's endpoint."""
    return client.predict(handle_file(str(path)), [model], 0.5, 0.5, api_name=f"/{task}")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = start_app(tmp_path_factory.mktemp("load"), "--weights", "tiny", "--memory-budget", "60")
    yield app
    app.process.terminate()
    app.process.wait(timeout=20)


def test_concurrent_users_get_their_own_results(app, tmp_path):
    images = [user_image(tmp_path, user) for user in range(CLIENTS)]
    warm = Client(app.url, verbose=False, httpx_kwargs={"timeout": CLIENT_TIMEOUT_S})
    for task, model in PLAN:  # import and build each model once, so memory growth below is the load's
        request(warm, images[0][0], task, model)
    rss_before = rss_mb(app.process.pid)
    latencies: list[float] = []
    failures: list[str] = []

    def user(index: int) -> None:
        path, (width, height) = images[index]
        client = Client(app.url, verbose=False, httpx_kwargs={"timeout": CLIENT_TIMEOUT_S})
        for j in range(REQUESTS):
            task, model = PLAN[j % len(PLAN)]
            start = time.perf_counter()
            try:
                overlay, results = request(client, path, task, model)
            except Exception as error:  # every error is unexpected here: collect them all
                failures.append(f"user {index} request {j} ({task}/{model}): {type(error).__name__}: {error}")
                continue
            latencies.append(time.perf_counter() - start)
            (result,) = results
            answer = (result.get("model"), result.get("task"), result.get("image_size"), Image.open(overlay).width)
            if answer != (model, task, [width, height], width) or "error" in result:
                failures.append(f"user {index} request {j}: sent {model}/{task} {width}x{height}, got {answer}")

    start = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(user, range(CLIENTS)))
    elapsed = time.perf_counter() - start
    rss_after = rss_mb(app.process.pid)

    p50 = statistics.median(latencies) if latencies else float("nan")
    p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else float("nan")
    summary = (
        f"{CLIENTS}x{REQUESTS} requests in {elapsed:.1f} s: {len(latencies) / elapsed:.2f} requests/s, "
        f"latency p50 {p50:.2f} s, p95 {p95:.2f} s; app RSS {rss_before:.0f} -> {rss_after:.0f} MB"
    )
    print(f"\nload: {summary}")
    app_errors = [line for line in app.log_text().splitlines() if "Error" in line or "Traceback" in line]
    assert not failures, (
        f"{len(failures)} failures ({summary}):\n"
        + "\n".join(failures[:20])
        + "\napp log:\n"
        + "\n".join(app_errors[-20:])
    )
    assert len(latencies) == CLIENTS * REQUESTS, summary
    assert rss_after - rss_before < RSS_GROWTH_MB, summary
