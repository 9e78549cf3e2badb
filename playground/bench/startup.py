"""Start a Gradio app as a subprocess and wait until ``GET /`` answers 200.

The tests' live app (tests/conftest.py) and the bench's start-up figures both start apps here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
BARE_BLOCKS = (
    "import sys, gradio as gr\n"
    "with gr.Blocks() as demo:\n"
    "    pass\n"
    "demo.launch(server_name='127.0.0.1', server_port=int(sys.argv[sys.argv.index('--port') + 1]),"
    " prevent_thread_lock=True)\n"
    "demo.block_thread()\n"
)
"""An empty ``gr.Blocks()`` page: the floor any Gradio app's start-up is measured against."""


class StartupError(RuntimeError):
    """The app exited, or did not serve its page in time; the message ends with its log."""


@dataclass
class Served:
    """A running app: its ``url``, its ``process``, and ``seconds`` from start to its page answering 200."""

    url: str
    process: subprocess.Popen
    seconds: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(argv: list[str], log: Path, timeout: float = 90.0) -> Served:
    """Run ``python *argv --port N`` (N a free port) from the repository root, its output into ``log``,
    until ``GET /`` answers 200. Raises `StartupError` (the process killed) otherwise."""
    port, name = free_port(), "python -c" if argv[0] == "-c" else argv[0]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    url = f"http://127.0.0.1:{port}/"
    start = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, *argv, "--port", str(port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    while time.perf_counter() - start < timeout:
        if process.poll() is not None:
            raise StartupError(f"{name} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return Served(url, process, time.perf_counter() - start)
        time.sleep(0.05)
    stop(process)
    raise StartupError(f"{name} did not serve {url} within {timeout:.0f} s:\n{log.read_text(errors='replace')}")


def stop(process: subprocess.Popen) -> None:
    """Terminate ``process``, and kill it if it has not exited 20 s later."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def seconds_to_page(argv: list[str], timeout: float = 120.0) -> float:
    """Seconds from starting ``python *argv`` to its page answering 200 (the app is stopped after)."""
    with tempfile.TemporaryDirectory() as folder:
        served = serve(argv, Path(folder) / "app.log", timeout)
        stop(served.process)
        return served.seconds


def bench_startup(notes: list[str], runs: int) -> tuple[float | None, float | None]:
    """(startup_to_page_s, startup_ratio): the best of ``runs`` starts of ``app.py --weights tiny``,
    and that over the best of as many starts of an empty ``gr.Blocks()`` page, alternating, so both
    see the same load. (None, None) with a note when either fails."""
    app_s, bare_s = [], []
    try:
        for _ in range(runs):
            bare_s.append(seconds_to_page(["-c", BARE_BLOCKS]))
            app_s.append(seconds_to_page([str(APP), "--weights", "tiny"]))
    except StartupError as error:
        lines = str(error).strip().splitlines()
        notes.append(f"startup: {lines[0]} ({lines[-1][:200]})")
        return None, None
    notes.append(
        f"startup: app.py {', '.join(f'{s:.2f}' for s in app_s)} s, "
        f"empty gr.Blocks {', '.join(f'{s:.2f}' for s in bare_s)} s (best of each used)"
    )
    return round(min(app_s), 2), round(min(app_s) / min(bare_s), 3)
