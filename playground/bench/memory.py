"""Resident memory of this process, and the memory cycle: every model, three times, under a budget
smaller than all of them together, so each request loads a model and evicts another."""

from __future__ import annotations

import contextlib
import gc
from typing import TYPE_CHECKING

import numpy as np

from playground.bench.fixtures import prompt_params
from playground.bench.rss import peak_rss_mb, reset_peak_rss, rss_mb
from playground.core.errors import PlaygroundError

if TYPE_CHECKING:
    import torch

MB = 1024 * 1024
CYCLES = 3
STEADY_SLACK = 1.10
"""Steady RSS may exceed baseline + loaded models + caches by this factor."""
MEMORY_FIELDS = (
    "budget_mb",
    "baseline_mb",
    "steady_mb",
    "peak_mb",
    "growth_mb",
    "peak_rss_mb",
    "evictions",
    "request_peak_excess_mb",
)


def default_budget_mb(sizes_mb: list[float]) -> float:
    """The largest model with 10% to spare, but below the sum of all of them."""
    total, largest = sum(sizes_mb), max(sizes_mb)
    return min(largest * 1.1, (largest + total) / 2)


def request_allowance_mb(before_mb: float, after_mb: float, evicted_mb: float, activation_mb: float) -> float:
    """The most RSS one request may reach: the RSS around it (the higher of ``before_mb`` and
    ``after_mb``) plus its model's own activation peak x `STEADY_SLACK`. A model larger than what
    the budget leaves is evicted as soon as its request ends, so ``after_mb`` lacks the weights that
    were resident while it ran: ``evicted_mb`` (that model's bytes, else 0) adds them back."""
    return max(before_mb, after_mb + evicted_mb) + activation_mb * STEADY_SLACK


def bench_memory(
    weights: str,
    precision: str,
    device: torch.device,
    sizes: dict[str, int],
    image: np.ndarray,
    budget_mb: float | None,
    notes: list[str],
    activation_mb: dict[str, float | None] | None = None,
) -> dict[str, float | int | None]:
    """Run each model that loaded (``sizes``: key -> bytes) `CYCLES` times, in turn, under a budget
    below their sum; `MEMORY_FIELDS`.

    ``request_peak_excess_mb``: the most any request's peak RSS went over `request_allowance_mb`,
    with ``activation_mb[key]`` the model's own activation peak, measured alone by `bench_model`;
    <= 0 means every request stayed within.

    ``baseline_mb`` is the RSS before; ``steady_mb`` the highest RSS right after a request;
    ``growth_mb`` the RSS after the last cycle minus after the one before (memory that does not
    come back grows it); ``peak_mb`` (= ``peak_rss_mb``) the kernel's high-water mark meanwhile.
    """
    from playground.bench.models import predict_uncached
    from playground.core.registry import get_spec
    from playground.runtime.manager import ModelManager
    from playground.runtime.service import Playground

    loaded = {key: size / MB for key, size in sizes.items() if size}
    if not loaded:
        notes.append("memory: no model loaded, nothing to cycle")
        return dict.fromkeys(MEMORY_FIELDS)
    budget_mb = budget_mb or default_budget_mb(list(loaded.values()))
    if budget_mb >= sum(loaded.values()):
        notes.append(f"memory: the budget {budget_mb:.0f} MB holds all {sum(loaded.values()):.0f} MB: no eviction")
    gc.collect()
    baseline = reset_peak_rss()
    manager = ModelManager(weights=weights, device=device, budget_bytes=int(budget_mb * MB), precision=precision)
    playground = Playground(manager)
    steady: list[float] = []
    worst = (-np.inf, 0.0, 0.0)  # (RSS over its bound, RSS, bound)
    peak, request_excess, worst_request = baseline, -np.inf, ""
    activation_mb = activation_mb or {}
    for cycle in range(CYCLES):
        for key in loaded:
            task = get_spec(key).tasks[0]
            before = reset_peak_rss()
            with contextlib.suppress(PlaygroundError):
                predict_uncached(playground, key, image, task, prompt_params(task, image))
            steady.append(rss_mb())
            request_peak = peak_rss_mb()
            peak = max(peak, request_peak)
            if activation_mb.get(key) is not None:
                evicted_mb = 0.0 if manager.is_loaded(key) else loaded[key]
                allowed = request_allowance_mb(before, steady[-1], evicted_mb, activation_mb[key])
                if request_peak - allowed > request_excess:
                    request_excess, worst_request = request_peak - allowed, f"{key}, cycle {cycle + 1}"
            bound = (baseline + (manager.used_bytes + playground.cache.nbytes) / MB) * STEADY_SLACK
            worst = max(worst, (steady[-1] - bound, steady[-1], bound))
    per_cycle = steady[len(loaded) - 1 :: len(loaded)]
    verdict = "met" if worst[0] <= 0 else "MISSED"
    notes.append(
        f"memory: RSS {baseline:.0f} MB before, {', '.join(f'{mb:.0f}' for mb in per_cycle)} MB after each cycle, "
        f"peak {peak:.0f} MB, for models of {sum(loaded.values()):.0f} MB under a {budget_mb:.0f} MB budget; "
        f"steady <= (baseline + loaded + caches) x {STEADY_SLACK:g}: {verdict} "
        f"(worst: {worst[1]:.0f} MB against {worst[2]:.0f} MB); a request's peak <= the RSS around it + its "
        f"model's own activation peak x {STEADY_SLACK:g}: "
        + ("not measured" if not np.isfinite(request_excess) else "met" if request_excess <= 0 else "MISSED")
        + (f" (most over: {request_excess:+.0f} MB, {worst_request})" if np.isfinite(request_excess) else "")
    )
    return {
        "budget_mb": round(budget_mb, 1),
        "baseline_mb": round(baseline, 1),
        "steady_mb": round(max(steady), 1),
        "peak_mb": round(peak, 1),
        "growth_mb": round(per_cycle[-1] - per_cycle[-2], 1),
        "peak_rss_mb": round(peak, 1),
        "evictions": manager.evictions,
        "request_peak_excess_mb": round(request_excess, 1) if np.isfinite(request_excess) else None,
    }
