"""Shared fixtures: tiny random-weight models, example images, a live app and a headless browser."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from browser_helpers import checked_page

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Apps the tests start keep no example results on disk, so a result one run left never answers
# another's; tests/test_example_cache.py and tests/test_browser_instant.py turn it on in a temp folder.
os.environ.setdefault("PLAYGROUND_EXAMPLE_CACHE_MB", "0")
# This process forks (the ZeroGPU stand-in's workers) after the Ray tests used gRPC in it, and
# grpcio's fork handlers (on unless this says otherwise) restart gRPC's threads in every child and
# can hang a fork; the children never use gRPC. Read when grpc is first imported: set before that.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
# Uploads and outputs of the apps the tests start go to one folder per run, removed at its end,
# not to the machine's shared /tmp/gradio (about 1300 files a run, never removed).
GRADIO_TEMP = None if "GRADIO_TEMP_DIR" in os.environ else tempfile.mkdtemp(prefix="playground-tests-gradio-")
if GRADIO_TEMP:
    os.environ["GRADIO_TEMP_DIR"] = GRADIO_TEMP


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove this run's Gradio folder (one a caller set stays)."""
    if GRADIO_TEMP:
        shutil.rmtree(GRADIO_TEMP, ignore_errors=True)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """(512, 512, 3) uint8 RGB, public domain (see examples/LICENSES.md)."""
    from playground.core.images import load_image

    return load_image(EXAMPLES / "astronaut.jpg").pixels


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """(128, 171, 3) uint8: skimage's astronaut, subsampled (not square, not a multiple of 32). The
    models' equivalence tests use it; modules that need another size define their own ``image``."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[::4, ::3])


@pytest.fixture(scope="module")
def fast_cpu() -> Iterator[None]:
    """One intra-op thread and subnormals flushed to zero, for the module that asks for it.

    Tiny models gain nothing from a second thread, and on a busy 2-core machine its spin-waits
    made these tests 5x slower. Random inits (SAM's vision encoder starts at std 1e-10) make
    subnormal floats, about 15x slower on CPU; real weights do not.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_playground():
    """A fresh `Playground` on tiny random-weight models, on the CPU."""
    from playground.runtime.manager import ModelManager
    from playground.runtime.service import Playground

    return Playground(ModelManager(weights="tiny", device="cpu"))


APP_NUMBERS = itertools.count()


@dataclass
class LiveApp:
    """A running `app.py` on localhost; ``log`` is its combined stdout and stderr."""

    url: str
    log: Path
    process: subprocess.Popen

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def count_calls(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[int]:
    """Wrap ``module.name`` (for this test) so each call appends to the returned list, and runs as before."""
    calls: list[int] = []
    original = getattr(module, name)

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def start_app(tmp_dir: Path, *args: str, timeout: float = 90.0) -> LiveApp:
    """Start app.py with ``args`` on a free port and wait until its page is served (the bench's
    start-up probe, `playground.bench.startup.serve`)."""
    from playground.bench.startup import APP, serve

    log = tmp_dir / f"app-{next(APP_NUMBERS)}.log"
    served = serve([str(APP), *args], log, timeout)
    return LiveApp(served.url, log, served.process)


@pytest.fixture(scope="session")
def live_app(tmp_path_factory) -> Iterator[LiveApp]:
    """One app with tiny weights for the whole session."""
    from playground.bench.startup import stop

    app = start_app(tmp_path_factory.mktemp("app"), "--weights", "tiny", "--memory-budget", "400")
    yield app
    stop(app.process)


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:
    """Where browser tests save screenshots: $PLAYGROUND_SCREENSHOTS (e.g. docs) or a temp folder."""
    folder = os.environ.get("PLAYGROUND_SCREENSHOTS")
    return Path(folder) if folder else tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by playwright (never `playwright install`).

    One per test module, not per session: while playwright's sync API is open, its asyncio loop
    counts as running in the main thread, and the tests after it that call sync-only APIs (Ray
    Serve's ``DeploymentResponse.result``) would fail with "called from within an asyncio event loop".
    """
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_app):
    """A fresh browser page on the live app; the test fails on any uncaught page error."""
    with checked_page(browser, live_app.url) as page:
        yield page
