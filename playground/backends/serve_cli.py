"""``python -m playground serve``: the models on Ray Serve, for ``app.py --backend ray``.

Without ``--address`` it starts a one-machine cluster on 127.0.0.1; with one, it deploys onto that
cluster. It prints the command that points the app at the deployment, then serves until Ctrl-C
(or SIGTERM), and removes what it started. ``--bench`` measures instead of serving
(`playground.backends.serve_bench`). Needs ``requirements-ray.txt``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from playground.backends import before_ray
from playground.core.errors import PlaygroundError

MODEL_FLAGS = ("weights", "device", "precision", "memory_budget", "checkpoint")
"""The shared model flags (`playground.cli.add_model_arguments`) each replica's manager is built from."""


def add_arguments(parser: argparse.ArgumentParser, make_manager: Callable[[argparse.Namespace], object]) -> None:
    """The serve flags; ``make_manager(args)`` builds a manager from the shared model flags."""
    parser.add_argument("--replicas", type=int, default=1, help="replicas, each with its own models [1]")
    parser.add_argument("--address", help="an existing Ray cluster (host:port); default: start one on 127.0.0.1")
    parser.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per replica (also its torch threads) [1]")
    parser.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per replica, fractions allowed [0]")
    parser.add_argument("--min-replicas", type=int, help="autoscale between --min-replicas and --max-replicas")
    parser.add_argument("--max-replicas", type=int, help="autoscale between --min-replicas and --max-replicas")
    parser.add_argument("--bench", action="store_true", help="measure requests/s and p50/p95 for 1 and 2 replicas")
    parser.add_argument("--bench-model", default="detr", help="model the bench sends [detr]")
    parser.add_argument("--bench-clients", type=int, default=8, help="concurrent bench clients [8]")
    parser.add_argument("--bench-requests", type=int, default=10, help="requests per bench client [10]")
    parser.add_argument("--json", type=Path, help="--bench: write the numbers here")
    parser.set_defaults(run=partial(run, make_manager=make_manager))


def run(args: argparse.Namespace, make_manager: Callable[[argparse.Namespace], object]) -> int:
    if args.replicas < 1:
        raise PlaygroundError(f"--replicas {args.replicas}: need at least 1.")
    model_args = argparse.Namespace(**{name: getattr(args, name) for name in MODEL_FLAGS})
    make_manager(model_args)  # a bad flag fails here, in one line, before any cluster starts
    factory = partial(make_manager, model_args)
    before_ray(args.address)
    try:
        from playground.backends import ray_serve
    except ImportError:
        raise PlaygroundError("Ray Serve is not installed: pip install -r requirements-ray.txt") from None
    total_cpus = max(os.cpu_count() or 1, args.num_cpus * max(args.replicas, args.max_replicas or 0, 2))
    address = ray_serve.start_cluster(args.address, num_cpus=None if args.address else total_cpus)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if args.bench:
            from playground.backends import serve_bench

            return serve_bench.run(factory, args)
        scale = ray_serve.Scale(args.replicas, args.num_cpus, args.num_gpus, args.min_replicas, args.max_replicas)
        ray_serve.deploy(factory, scale, threads=max(1, int(args.num_cpus)))
        print(
            f"Serving the models ({args.weights} weights) on Ray Serve at {address}, "
            f"{describe(scale)}. Point the app at it:\n"
            f"  python app.py --backend ray --address {address}\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        while True:
            time.sleep(3600)
    finally:
        ray_serve.stop(started_here=not args.address)


def describe(scale) -> str:
    """``2 replicas x (1 CPU, 0 GPU)``, or the autoscaling bounds."""
    each = f"({scale.num_cpus:g} CPU, {scale.num_gpus:g} GPU each)"
    options = scale.deployment_options()
    if "autoscaling_config" in options:
        bounds = options["autoscaling_config"]
        return f"autoscaling {bounds['min_replicas']}..{bounds['max_replicas']} replicas {each}"
    return f"{scale.replicas} replica(s) {each}"
