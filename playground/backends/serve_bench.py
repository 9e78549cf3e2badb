"""``python -m playground serve --bench``: requests/s and latency percentiles for 1 and 2 replicas.

On the cluster `serve_cli` started, for each replica count: deploy, warm every replica, then
``--bench-clients`` threads each send ``--bench-requests`` requests for ``--bench-model`` through
`RayModels` (the app's path without its result cache), each on its own image. Latency is per
request, wall clock, at the client; requests/s is all requests over the wall time of the round.
Also SAM through the deployment: a first click on an image (encoder and decoder) against a
second click routed to the same replica (decoder only): what a lost image affinity costs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from playground.backends.ray_client import RayModels
from playground.backends.ray_serve import Scale, deploy
from playground.core.protocols import Models

SIDE = 320
"""Bench images are SIDE x SIDE noise, distinct per request."""
WAIT_S = 900


def run(make_manager: Callable[[], Models], args: argparse.Namespace) -> int:
    """Both rounds and the SAM figures; prints a table and writes ``args.json`` if given."""
    rounds = []
    for replicas in (1, 2):
        scale = Scale(replicas, args.num_cpus, args.num_gpus)
        handle = deploy(make_manager, scale, threads=max(1, int(args.num_cpus)))
        models = RayModels(handle, args.weights, timeout_s=120)
        warm(models, args.bench_model, replicas)
        rounds.append(measure(models, args.bench_model, replicas, args.bench_clients, args.bench_requests))
    report = {
        "model": args.bench_model,
        "weights": args.weights,
        "clients": args.bench_clients,
        "requests_per_client": args.bench_requests,
        "rounds": rounds,
        "sam_click_ms": sam_click_ms(models, replicas=2),
    }
    for row in rounds:
        print(
            f"{row['replicas']} replica(s): {row['requests_per_s']:.1f} requests/s, "
            f"p50 {row['p50_ms']:.0f} ms, p95 {row['p95_ms']:.0f} ms, {row['errors']} errors"
        )
    sam = report["sam_click_ms"]
    print(f"SAM click on a new image {sam['new_image']:.0f} ms, on the same image {sam['same_image']:.0f} ms")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)


def warm(models: RayModels, key: str, replicas: int, **params: object) -> None:
    """Send bursts of requests until every replica holds ``key`` loaded (at most 10 bursts): Serve
    sends a model's requests to the replicas that have it, and to others only when those are full."""
    burst = 4 * Scale().max_ongoing_requests * replicas
    pool = ThreadPoolExecutor(burst)
    try:
        for round_ in range(10):
            seeds = range(10_000 + round_ * burst, 10_000 + (round_ + 1) * burst)
            list(pool.map(lambda seed: models.predict(key, image(seed), **params), seeds, timeout=WAIT_S))
            if len(models.holders(key)) >= replicas:
                return
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def measure(models: RayModels, key: str, replicas: int, clients: int, requests: int) -> dict[str, object]:
    latencies: list[float] = []
    errors: list[str] = []

    def client(number: int) -> None:
        for request in range(requests):
            picture = image(number * requests + request)
            start = time.perf_counter()
            try:
                models.predict(key, picture)
            except Exception as error:
                errors.append(str(error))
                continue
            latencies.append((time.perf_counter() - start) * 1000)

    pool = ThreadPoolExecutor(clients)
    start = time.perf_counter()
    _, pending = wait([pool.submit(client, number) for number in range(clients)], timeout=WAIT_S)
    wall = time.perf_counter() - start
    pool.shutdown(wait=False, cancel_futures=True)
    cuts = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else [float("nan")] * 19
    return {
        "replicas": replicas,
        "requests": len(latencies),
        "errors": len(errors) + len(pending) * requests,
        "requests_per_s": round(len(latencies) / wall, 2),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(cuts[18], 1),
    }


def sam_click_ms(models: RayModels, replicas: int) -> dict[str, float]:
    """Median over 5 images of a first click (encodes the image) and a second click (cached), with
    SAM loaded on every replica first."""
    warm(models, "sam", replicas, points=((10.0, 10.0, 1),))
    first, second = [], []
    for seed in range(5):
        picture = image(20_000 + seed)
        for clicks, point in ((first, (20.0, 20.0, 1)), (second, (40.0, 30.0, 1))):
            start = time.perf_counter()
            models.predict("sam", picture, points=(point,))
            clicks.append((time.perf_counter() - start) * 1000)
    return {"new_image": round(statistics.median(first), 1), "same_image": round(statistics.median(second), 1)}
