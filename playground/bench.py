"""``python -m playground bench``: how fast the playground is, and what it costs over each library.

Measured (wall clock; each model figure is the median of ``--repeat`` runs after one warm-up):

- ``models.KEY.cold_load_ms``: building the model and moving it to the device (`Adapter.load`).
- ``bare_forward_ms``: the library's own call, ``adapter.forward`` (the torchvision or
  transformers model) under ``torch.inference_mode()``, on the adapter's own ``preprocess``
  output, prepared once.
- ``playground_ms``: our whole path from the image array to a `Prediction` and its overlay:
  ``Playground.predict`` with an empty result cache, the default view filter, and `render`.
  Per-image caches (SAM's embedding, Grounding DINO's raw outputs) are emptied before every run
  of both, so both pay for the whole model. ``overhead_ratio`` = playground_ms / bare_forward_ms.
- ``sam_prompt``: a first point prompt on an image (encoder and decoder) against a second point
  on the same image (decoder only, the embedding is cached); ``ratio`` = second / first.
- ``refilter_ms``: one panel re-drawn at a new score and mask threshold (`make_panel`, as a slider
  does) from a stored Mask R-CNN-shaped prediction: 100 instances with soft masks at 1024x1024.
- ``overlay_100_masks_ms``: `render` of 100 random blob masks with boxes and tags at 1024x1024.
- ``startup_to_page_s``: ``app.py --weights tiny`` as a subprocess until ``GET /`` answers 200.
- ``memory``: every selected model run once, in turn, by a manager whose budget is smaller than
  all of them together; the peak resident memory of this process meanwhile, and the evictions.

A figure that could not be measured is null, and the printed report says why. The JSON keys are
fixed (issue 6), so nothing else goes into the file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from playground.core.errors import BadPromptError, PlaygroundError
from playground.core.types import WEIGHT_MODES, Prediction

if TYPE_CHECKING:
    import torch

    from playground.manager import ModelManager
    from playground.service import Playground

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
OVERLAY_SIDE = 1024
"""Side in pixels of the synthetic image the overlay and re-filter figures use."""
OVERLAY_MASKS = 100
MIN_CHEAP_RUNS = 5
"""Timed runs of the cheap figures (overlay, re-filter), whatever ``--repeat`` says."""
STARTUP_TIMEOUT_S = 120.0
MODEL_FIELDS = ("cold_load_ms", "bare_forward_ms", "playground_ms", "overhead_ratio")
GOALS = {
    "overhead_ratio": 1.10,
    "sam_prompt": 0.03,
    "refilter_ms": 50.0,
    "overlay_100_masks_ms": 60.0,
    "startup_to_page_s": 5.0,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench flags; ``parser.set_defaults(run=run)`` included."""
    parser.add_argument("--models", help="comma-separated keys [default: every model that is not a composite]")
    parser.add_argument("--image", type=Path, default=ROOT / "examples" / "astronaut.jpg", help="the image to time")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure after one warm-up (median)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    parser.add_argument("--weights", choices=WEIGHT_MODES, default="random", help="default: full-size random weights")
    parser.add_argument("--dtype", choices=("float16", "bfloat16"), help="run models under CUDA autocast")
    parser.add_argument(
        "--memory-budget",
        type=float,
        metavar="MB",
        help="budget of the memory cycle [default: the largest model + 10%%, below their sum]",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Measure everything, print the report, write ``--json``; 0 even when a model fails."""
    import torch

    from playground.core.images import load_image
    from playground.manager import ModelManager, pick_device

    if args.repeat < 1:
        raise BadPromptError(f"--repeat {args.repeat}: expected at least 1.")
    keys = model_keys(args.models)
    device = pick_device(args.device)
    if args.dtype and device.type != "cuda":
        raise BadPromptError(f"--dtype {args.dtype} runs under CUDA autocast, but this run is on {device}.")
    image = load_image(args.image).pixels
    notes: list[str] = []
    load_before = os.getloadavg()[0]
    autocast = torch.autocast("cuda", dtype=getattr(torch, args.dtype)) if args.dtype else contextlib.nullcontext()
    with autocast:
        manager = ModelManager(weights=args.weights, device=device)
        models, sizes = {}, {}
        for key in keys:
            models[key], sizes[key] = bench_model(manager, key, image, args.repeat, notes)
        sam_prompt = bench_sam_prompt(manager, keys, image, args.repeat, notes)
        del manager
        memory = bench_memory(args, device, sizes, image, notes)
    report = {
        "device": describe_device(device, args.dtype),
        "torch": torch.__version__,
        "weights": args.weights,
        "models": models,
        "sam_prompt": sam_prompt,
        "refilter_ms": bench_refilter(args.repeat),
        "overlay_100_masks_ms": bench_overlay(args.repeat),
        "startup_to_page_s": time_startup(notes),
        "memory": memory,
    }
    notes.append(
        f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} "
        "cores: other processes inflate wall times"
    )
    print_report(report, notes)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"-> {args.json}")
    return 0


def model_keys(selection: str | None) -> list[str]:
    """``--models`` as registry keys (unknown keys are an error), or every built non-composite image model."""
    from playground.core.registry import REGISTRY, get_spec

    if selection is None:
        return [spec.key for spec in REGISTRY.values() if not spec.components and "video" not in spec.tasks]
    keys = [key.strip() for key in selection.split(",") if key.strip()]
    if not keys:
        raise BadPromptError("--models is empty: give keys such as fcn,detr.")
    return [get_spec(key).key for key in keys]


def describe_device(device: torch.device, dtype: str | None) -> str:
    """``"cpu (2 cores)"`` or ``"cuda:0 (NVIDIA H100, bfloat16 autocast)"``."""
    import torch

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"{device} ({name}{f', {dtype} autocast' if dtype else ''})"
    return f"{device} ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


# ---- per model ---------------------------------------------------------------------------------


def prompt_params(task: str, image: np.ndarray) -> dict[str, object]:
    """The forward params a model of ``task`` needs: a centre point for SAM, a phrase for text models."""
    height, width = image.shape[:2]
    if task == "prompt":
        return {"points": ((width / 2, height / 2, 1),)}
    if task == "text":
        return {"text": "person"}
    return {}


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn()`` in ms over ``repeat`` runs after one warm-up."""
    return paired_median_ms(fn, lambda: None, repeat)[0]


def paired_median_ms(
    first: Callable[[], object], second: Callable[[], object], repeat: int, before: Callable[[], None] = lambda: None
) -> tuple[float, float]:
    """Median wall ms of ``first()`` and of ``second()`` over ``repeat`` runs after one warm-up each.

    The two alternate, so both see the same load from other processes; ``before()`` runs untimed
    before each call.
    """
    times: tuple[list[float], list[float]] = ([], [])
    for run_index in range(repeat + 1):
        for fn, bucket in zip((first, second), times):
            before()
            start = time.perf_counter()
            fn()
            if run_index:
                bucket.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times[0]), 2), round(statistics.median(times[1]), 2)


def bench_model(
    manager: ModelManager, key: str, image: np.ndarray, repeat: int, notes: list[str]
) -> tuple[dict[str, float | None], int]:
    """(the model's figures, its bytes of weights); a failing model gets nulls and a note."""
    import torch

    from playground.core.registry import get_spec
    from playground.service import Playground

    spec = get_spec(key)
    task = spec.tasks[0]
    params = prompt_params(task, image)
    try:
        with manager.use(key) as (adapter, _):
            with torch.inference_mode():
                inputs = adapter.preprocess(image, task=task, **params)

            def bare() -> None:
                with torch.inference_mode():
                    adapter.forward(inputs)
                if adapter.device.type == "cuda":
                    torch.cuda.synchronize(adapter.device)

            playground = Playground(manager)
            stages: dict[str, float] = {}

            def full() -> None:
                prediction = predict_uncached(playground, key, image, task, params)
                start = time.perf_counter()
                draw(image, prediction)
                stages.update(prediction.timings_ms, overlay=(time.perf_counter() - start) * 1000)

            bare_ms, full_ms = paired_median_ms(bare, full, repeat, before=adapter.clear_caches)
            stages.pop("load", None)
            notes.append(f"{key}: last playground run: {', '.join(f'{k} {v:.0f}' for k, v in stages.items())} ms")
            figures = dict(
                zip(MODEL_FIELDS, (round(adapter.load_ms, 2), bare_ms, full_ms, round(full_ms / bare_ms, 3)))
            )
            size = adapter.nbytes
    except Exception as error:  # one failing model (not built, no weights, a library error) is a note
        notes.append(f"{key}: {type(error).__name__}: {error}".splitlines()[0])
        return dict.fromkeys(MODEL_FIELDS), 0
    finally:
        manager.unload(key)
    return figures, size


def predict_uncached(playground: Playground, key: str, image: np.ndarray, task: str, params: dict) -> Prediction:
    """``playground.predict`` with an empty result cache, so the model runs."""
    from playground.service import new_result_cache

    playground.cache = new_result_cache()
    return playground.predict(key, image, task=task, **params)


def draw(image: np.ndarray, prediction: Prediction) -> np.ndarray:
    """The overlay the UI shows first: default thresholds, every class."""
    from playground.overlay import render
    from playground.views import ViewOptions, shown_prediction

    return render(image, shown_prediction(prediction, ViewOptions()))


def bench_sam_prompt(
    manager: ModelManager, keys: list[str], image: np.ndarray, repeat: int, notes: list[str]
) -> dict[str, float | None]:
    """First point prompt (encoder + decoder) vs a second point on the same image (decoder only)."""
    from playground.service import Playground

    empty = {"first_ms": None, "second_ms": None, "ratio": None}
    if "sam" not in keys:
        notes.append("sam_prompt: sam is not among --models")
        return empty
    height, width = image.shape[:2]
    first, second = [], []
    try:
        with manager.use("sam") as (adapter, _):
            playground = Playground(manager)
            for _ in range(repeat):
                adapter.clear_caches()
                for points, times in (((width / 2, height / 2, 1),), first), (((width / 4, height / 4, 1),), second):
                    start = time.perf_counter()
                    draw(image, predict_uncached(playground, "sam", image, "prompt", {"points": points}))
                    times.append((time.perf_counter() - start) * 1000)
    except Exception as error:
        notes.append(f"sam_prompt: {type(error).__name__}: {error}".splitlines()[0])
        return empty
    finally:
        manager.unload("sam")
    first_ms, second_ms = statistics.median(first), statistics.median(second)
    return {"first_ms": round(first_ms, 2), "second_ms": round(second_ms, 2), "ratio": round(second_ms / first_ms, 4)}


# ---- drawing -----------------------------------------------------------------------------------


def blob_prediction(side: int = OVERLAY_SIDE, count: int = OVERLAY_MASKS, seed: int = 0) -> Prediction:
    """A Mask R-CNN-shaped prediction on a ``side`` x ``side`` image: ``count`` elliptic blobs
    (20..200 px across) with boxes, uniform scores, COCO-like class ids and soft masks."""
    import cv2

    rng = np.random.default_rng(seed)
    probs = np.zeros((count, side, side), np.uint8)
    boxes = np.zeros((count, 4), np.float32)
    for index in range(count):
        width, height = rng.integers(20, 200, 2)
        x, y = rng.integers(0, side - 200, 2)
        center, axes = (int(x + width // 2), int(y + height // 2)), (int(width // 2), int(height // 2))
        cv2.ellipse(probs[index], center, axes, 0, 0, 360, int(rng.integers(64, 256)), -1)
        boxes[index] = (x, y, x + width, y + height)
    return Prediction(
        model="mask-rcnn",
        task="instance",
        weights="random",
        image_size=(side, side),
        label_names={i: f"class {i}" for i in range(91)},
        boxes=boxes,
        scores=rng.random(count),
        class_ids=rng.integers(1, 91, count),
        masks=probs >= 128,
        mask_probs=probs,
    )


def noise_image(side: int = OVERLAY_SIDE) -> np.ndarray:
    """(side, side, 3) uint8 random RGB."""
    return np.random.default_rng(1).integers(0, 256, (side, side, 3), np.uint8)


def bench_overlay(repeat: int) -> float:
    """Median ms of `render` for 100 blob masks, boxes and tags at 1024x1024 (legend included)."""
    from playground.overlay import render

    image, prediction = noise_image(), blob_prediction()
    return median_ms(lambda: render(image, prediction), max(repeat, MIN_CHEAP_RUNS))


def bench_refilter(repeat: int) -> float:
    """Median ms to re-draw one stored 100-instance panel at a new score and mask threshold."""
    from playground.service import Outcome
    from playground.views import ViewOptions, make_panel

    image, outcome = noise_image(), Outcome("mask-rcnn", blob_prediction())
    thresholds = iter(np.resize([0.3, 0.6], 2 * (max(repeat, MIN_CHEAP_RUNS) + 1)).tolist())

    def refilter() -> None:
        value = next(thresholds)
        make_panel(image, outcome, ViewOptions(score_threshold=value, mask_threshold=value))

    return median_ms(refilter, max(repeat, MIN_CHEAP_RUNS))


# ---- start-up and memory -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_startup(notes: list[str]) -> float | None:
    """Seconds from starting ``app.py --weights tiny`` to its page answering 200, or None."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, str(ROOT / "app.py"), "--weights", "tiny", "--port", str(port)]
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while time.perf_counter() - start < STARTUP_TIMEOUT_S and process.poll() is None:
                with (
                    contextlib.suppress(OSError),
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response,
                ):
                    if response.status == 200:
                        return round(time.perf_counter() - start, 2)
                time.sleep(0.05)
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            notes.append(f"startup_to_page_s: no page within {STARTUP_TIMEOUT_S:.0f} s ({tail[0][:200]})")
            return None
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def reset_peak_rss() -> float:
    """Reset the kernel's peak-RSS mark for this process (Linux) and return the current RSS in MB."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return status_mb("VmRSS") or 0.0


def peak_rss_mb() -> float:
    """Peak resident memory in MB since `reset_peak_rss` (since start where it cannot be reset)."""
    return status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def status_mb(field: str) -> float | None:
    """A ``kB`` field of ``/proc/self/status`` in MB, or None off Linux."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return None


def bench_memory(
    args: argparse.Namespace, device: torch.device, sizes: dict[str, int], image: np.ndarray, notes: list[str]
) -> dict[str, float | int | None]:
    """Run each model that loaded, in turn, under a budget below their sum; peak RSS and evictions.

    The default budget fits the largest model with 10% to spare, but stays below their sum.
    """
    import gc

    from playground.core.registry import get_spec
    from playground.manager import ModelManager
    from playground.service import Playground

    loaded = {key: size for key, size in sizes.items() if size}
    if not loaded:
        notes.append("memory: no model loaded, nothing to cycle")
        return {"budget_mb": None, "peak_rss_mb": None, "evictions": None}
    total_mb, largest_mb = sum(loaded.values()) / MB, max(loaded.values()) / MB
    budget_mb = args.memory_budget or min(largest_mb * 1.1, (largest_mb + total_mb) / 2)
    if budget_mb >= total_mb:
        notes.append(f"memory: the budget {budget_mb:.0f} MB holds all {total_mb:.0f} MB, so nothing is evicted")
    gc.collect()
    start_mb = reset_peak_rss()
    manager = ModelManager(weights=args.weights, device=device, budget_bytes=int(budget_mb * MB))
    playground = Playground(manager)
    for key in loaded:
        task = get_spec(key).tasks[0]
        with contextlib.suppress(PlaygroundError):
            playground.predict(key, image, task=task, **prompt_params(task, image))
    peak_mb = peak_rss_mb()
    notes.append(
        f"memory: RSS {start_mb:.0f} MB before the cycle, peak {peak_mb:.0f} MB (+{peak_mb - start_mb:.0f} MB) "
        f"for models of {total_mb:.0f} MB under a {budget_mb:.0f} MB budget"
    )
    return {"budget_mb": round(budget_mb, 1), "peak_rss_mb": round(peak_mb, 1), "evictions": manager.evictions}


# ---- report ------------------------------------------------------------------------------------


def print_report(report: dict[str, Any], notes: list[str]) -> None:
    """The models table, then one line per other figure with its goal, then the notes."""
    print(f"device {report['device']} · torch {report['torch']} · {report['weights']} weights")
    rows = [("model", "cold load ms", "bare forward ms", "playground ms", "overhead")]
    for key, figures in report["models"].items():
        rows.append((key, *map(_fmt, figures.values())))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths)))
        )
    ratios = [f["overhead_ratio"] for f in report["models"].values() if f["overhead_ratio"] is not None]
    sam = report["sam_prompt"]
    lines = [
        ("overhead ratio (worst)", max(ratios) if ratios else None, GOALS["overhead_ratio"]),
        (
            f"sam prompt ms: first {_fmt(sam['first_ms'])}, second {_fmt(sam['second_ms'])}; ratio",
            sam["ratio"],
            GOALS["sam_prompt"],
        ),
        ("refilter ms (100 soft masks, 1024 px)", report["refilter_ms"], GOALS["refilter_ms"]),
        ("overlay ms (100 masks, 1024x1024)", report["overlay_100_masks_ms"], GOALS["overlay_100_masks_ms"]),
        ("startup to page s", report["startup_to_page_s"], GOALS["startup_to_page_s"]),
    ]
    for label, value, goal in lines:
        verdict = "n/a" if value is None else ("met" if value <= goal else "MISSED")
        print(f"{label}: {_fmt(value)} (goal <= {goal:g}: {verdict})")
    memory = report["memory"]
    print(
        f"memory: budget {_fmt(memory['budget_mb'])} MB, peak RSS {_fmt(memory['peak_rss_mb'])} MB, "
        f"evictions {_fmt(memory['evictions'])}"
    )
    for note in notes:
        print(f"note: {note}")


def _fmt(value: float | None) -> str:
    """``-`` for None, whole numbers from 100 up, three significant digits below."""
    if value is None:
        return "-"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
