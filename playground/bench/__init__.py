"""``python -m playground bench``: how fast the playground is, what it costs over each library, how
a half precision compares with fp32, and whether memory comes back.

Measured (wall clock; each model figure is the median of ``--repeat`` runs after one warm-up, the
timed calls interleaved so they see the same load):

- ``precision``: what ``--precision`` resolves to here; ``cpu_capability``: what the CPU offers
  (no native bf16 means ``auto`` is fp32, and bf16 is emulated and slow; AMX gains far more from
  bf16 than AVX512-BF16 alone, so speedups compare only between hosts with the same units).
- ``models.KEY``: ``cold_load_ms`` (`Adapter.load`); ``bare_forward_ms``: the library's own call,
  ``adapter.forward``, on the adapter's own ``preprocess`` output, at the precision under test
  (with the adapter's faster layers, `Adapter.use_faster_layers`); ``fp32_bare_ms``: the same for
  an fp32 build of the same weights with the library's own layers only (``library_kernels``);
  ``playground_ms``: our whole path, ``Playground.predict`` with an empty result cache and the
  first overlay; ``overhead_ratio`` = playground_ms / bare_forward_ms;
  ``speedup`` = fp32_bare_ms / playground_ms; ``fp32_bare_cpu_ms``, ``playground_cpu_ms`` and
  ``speedup_cpu``: the same in process CPU time, which leaves out time a shared host stole from
  this machine (``cpu_steal_percent``: how much it took during the model figures); ``agreement``:
  pixels, instances, mask_iou and raw_rel_error of the precision under test against the fp32
  build (`playground.bench.agreement`).
  ``runs``: the precision under test (named as ``--precision`` names it, e.g. ``auto``) and ``fp32``, each
  on the device: ``precision``, synced ``playground_ms`` and ``bare_forward_ms``, ``max_memory_mb`` (CUDA:
  weights plus the peak of ``torch.cuda.max_memory_allocated`` over one request; null elsewhere),
  ``encode_ms`` (SAM's "image encoded in") and ``cpu_agreement``: `AGREEMENT_FIELDS` against an fp32
  build of the same weights on the CPU (with ``--device cuda``, how the GPU agrees with the CPU).
  ``activation_peak_mb``: the most RSS rose during one playground run, the model already loaded.
  Per-image caches are emptied before every run, so every run pays for the whole model.
- ``sam_prompt``: a first point prompt (encoder and decoder) against a second one on the same image.
- ``first_click_after_upload_ms``: SAM's first click 1 s and 5 s after the upload, the image encoded on
  arrival, against the encoding alone (`first_click`).
- ``first_panel_ms``, ``all_panels_ms``, ``first_panel_ratio``: the Compare tab's five default models
  streamed, until the first panel is drawn and until the last; ``example_first_ms``,
  ``example_repeat_ms``, ``example_repeat_ratio``: the same on a bundled example for its first visitor,
  then for a second one after a restart (a new process), from the disk cache (`instant`).
- ``sam_encoder_ms``: SAM's image encoder (ViT-B with random or pretrained weights) per run, from ``runs``.
- ``refilter_ms``, ``overlay_100_masks_ms``: drawing 100 soft masks at 1024x1024 (`drawing`).
- ``startup_to_page_s``: ``app.py --weights tiny`` until ``GET /`` answers 200; ``startup_ratio``:
  that over the same for an empty ``gr.Blocks()`` page (`startup`).
- ``memory``: every model three times under a budget below their sum (`memory`): steady RSS
  against baseline + models + caches, growth between cycles, and each request's peak against the
  RSS around it (with the model's weights, where it is evicted right after) plus its model's
  ``activation_peak_mb``.

A figure that could not be measured is null, and the printed report says why.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from playground.core.errors import BadPromptError
from playground.core.types import WEIGHT_MODES

if TYPE_CHECKING:
    import torch

ROOT = Path(__file__).resolve().parents[2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench flags; ``parser.set_defaults(run=run)`` included."""
    from playground.core.devices import DEVICE_CHOICES
    from playground.core.precision import PRECISION_CHOICES, precision_from_env

    parser.add_argument("--models", help="comma-separated keys [default: every model that is not a composite]")
    parser.add_argument("--image", type=Path, default=ROOT / "examples" / "astronaut.jpg", help="the image to time")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure after one warm-up (median)")
    parser.add_argument("--device", default="auto", help=DEVICE_CHOICES)
    parser.add_argument("--weights", choices=WEIGHT_MODES, default="random", help="default: full-size random weights")
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default=precision_from_env(),
        help="precision under test, compared with an fp32 build of the same weights; auto: bf16 where "
        "the CPU or GPU runs it natively, else fp16 where a model's fp16 agreement was measured (older CUDA "
        "cards, MPS), else fp32; fp32 runs too, for runs.fp32 (this replaces the old CUDA-only --dtype) "
        "[default: $PLAYGROUND_PRECISION or auto]",
    )
    parser.add_argument(
        "--memory-budget",
        type=float,
        metavar="MB",
        help="budget of the memory cycle [default: the largest model + 10%%, below their sum]",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--labelers",
        metavar="KEYS",
        help="instead: images per minute of these data-engine labelers (comma-separated, or all) on the bundled "
        "photos (`playground.bench.labelers`)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Measure everything, print the report, write ``--json``; 0 even when a model fails."""
    if args.labelers:
        from playground.bench.labelers import run_labelers

        return run_labelers(args)
    import torch

    from playground.bench.drawing import bench_overlay, bench_refilter
    from playground.bench.first_click import bench_first_click
    from playground.bench.instant import bench_instant
    from playground.bench.memory import bench_memory
    from playground.bench.models import bench_model, bench_sam_prompt
    from playground.bench.report import print_report
    from playground.bench.startup import bench_startup
    from playground.bench.timing import cpu_ticks, steal_percent
    from playground.core.images import load_image
    from playground.core.precision import cpu_capability, resolve_precision
    from playground.runtime.manager import ModelManager, pick_device

    if args.repeat < 1:
        raise BadPromptError(f"--repeat {args.repeat}: expected at least 1.")
    keys = model_keys(args.models)
    device = pick_device(args.device)
    precision = resolve_precision(args.precision, device)
    image = load_image(args.image).pixels
    notes: list[str] = []
    if precision == "fp32":
        notes.append(
            f"--precision {args.precision} runs fp32 on {describe_device(device)} ({cpu_capability()}): the speedup "
            "and agreement compare fp32 with fp32; their goals are for a half precision"
        )
    load_before = os.getloadavg()[0]
    ticks_before = cpu_ticks()
    # The precision as asked, so that each model gets its own (auto: fp16 only where its agreement holds).
    manager = ModelManager(weights=args.weights, device=device, precision=args.precision)
    reference = ModelManager(weights=args.weights, device=device, precision="fp32", library_kernels=True)
    fp32 = ModelManager(weights=args.weights, device=device, precision="fp32")
    on_cpu = reference
    if device.type != "cpu":  # the agreement's reference: the same weights in fp32 on the CPU
        on_cpu = ModelManager(weights=args.weights, device="cpu", precision="fp32", library_kernels=True)
    models, sizes = {}, {}
    for key in keys:
        models[key], sizes[key] = bench_model(
            manager, reference, key, image, args.repeat, notes, fp32, on_cpu, label=args.precision
        )
    steal = steal_percent(ticks_before, cpu_ticks())
    sam_prompt = bench_sam_prompt(manager, keys, image, args.repeat, notes)
    first_click = bench_first_click(manager, keys, image, args.repeat, notes)
    del manager, reference, fp32, on_cpu
    activation = {key: figures["activation_peak_mb"] for key, figures in models.items()}
    memory = bench_memory(args.weights, args.precision, device, sizes, image, args.memory_budget, notes, activation)
    startup_s, startup_ratio = bench_startup(notes, runs=min(args.repeat, 2))
    instant = bench_instant(args.weights, args.precision, device, image, args.repeat, notes)
    report = {
        "device": describe_device(device),
        "torch": torch.__version__,
        "weights": args.weights,
        "precision": precision,
        "cpu_capability": cpu_capability(),
        "cpu_steal_percent": steal,
        "models": models,
        "sam_prompt": sam_prompt,
        "first_click_after_upload_ms": first_click,
        "sam_encoder_ms": {name: run["encode_ms"] for name, run in models.get("sam", {}).get("runs", {}).items()},
        "refilter_ms": bench_refilter(args.repeat),
        "overlay_100_masks_ms": bench_overlay(args.repeat),
        "startup_to_page_s": startup_s,
        "startup_ratio": startup_ratio,
        "memory": memory,
        **instant,
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
    """``--models`` as registry keys (unknown keys are an error), or every built non-composite model."""
    from playground.core.registry import REGISTRY, get_spec

    if selection is None:
        return [spec.key for spec in REGISTRY.values() if not spec.components and "video" not in spec.tasks]
    keys = [key.strip() for key in selection.split(",") if key.strip()]
    if not keys:
        raise BadPromptError("--models is empty: give keys such as fcn,detr.")
    return [get_spec(key).key for key in keys]


def describe_device(device: torch.device) -> str:
    """``"cpu (2 cores, 2 torch threads)"``, ``"cuda:0 (NVIDIA H100, compute capability 9.0)"`` or ``"mps"``."""
    import torch

    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"{device} ({torch.cuda.get_device_name(device)}, compute capability {major}.{minor})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"{device} ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
