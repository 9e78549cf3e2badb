"""Panels as they finish, and examples answered from disk after a restart (the bench's "instant" figures).

- ``first_panel_ms``, ``all_panels_ms``: the Compare tab's five default models on the bench image,
  streamed through `compare_outcomes` (what the tab streams), each panel drawn as the tab draws it
  (`make_panel`): until the first panel is drawn, and until the last. Medians of ``--repeat`` runs
  after one warm-up that loads the models; the result cache and the models' own caches are emptied
  before each run. ``first_panel_ratio`` = first / all.
- ``example_repeat_ms``: the same five models and panels on a bundled example for a second visitor
  after a restart: a new process (torch, torchvision and supervision imported, as the app does on
  its first page load), new models and an empty result cache, and the disk cache (`ExampleCache`, in a temporary
  folder) that the first visitor's run filled. ``example_first_ms``: that first visitor's run, in a
  fresh `Playground` whose models were not loaded; ``example_repeat_ratio`` = repeat / first.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from playground.core.images import load_image
from playground.core.types import WeightsMode
from playground.render.views import ViewOptions, make_panel
from playground.runtime.example_cache import EXAMPLES_DIR, ExampleCache
from playground.runtime.manager import ModelManager
from playground.runtime.service import Playground, new_result_cache
from playground.ui.compare_tab import DEFAULT_MODELS, DEFAULT_PROMPT, compare_outcomes

FIELDS = (
    "first_panel_ms",
    "all_panels_ms",
    "first_panel_ratio",
    "example_first_ms",
    "example_repeat_ms",
    "example_repeat_ratio",
)
EXAMPLE = EXAMPLES_DIR / "astronaut.jpg"
ROOT = Path(__file__).resolve().parents[2]

if TYPE_CHECKING:
    import torch


def panel_times_ms(playground: Playground, pixels: np.ndarray) -> tuple[list[float], list[str]]:
    """(ms from the start until each of the five panels was drawn, the error lines of the models that failed)."""
    start, times, errors = time.perf_counter(), [], []
    for outcome in compare_outcomes(playground, list(DEFAULT_MODELS), pixels, DEFAULT_PROMPT):
        make_panel(pixels, outcome, ViewOptions(), legend=False)
        times.append((time.perf_counter() - start) * 1000)
        errors += [f"{outcome.key}: {outcome.error}"] if outcome.error else []
    return times, errors


def bench_instant(
    weights: WeightsMode, precision: str, device: torch.device | str, image: np.ndarray, repeat: int, notes: list[str]
) -> dict:
    """`FIELDS` for ``image`` (H, W, 3 uint8); a figure that could not be measured is None, with a note."""
    manager = ModelManager(weights=weights, device=device, precision=precision)
    playground = Playground(manager)
    _, errors = panel_times_ms(playground, image)  # warm-up: loads the five models
    if errors:
        notes.append("instant: " + "; ".join(errors))
    firsts, alls = [], []
    for _ in range(repeat):
        playground.cache = new_result_cache()
        for key in DEFAULT_MODELS:
            if manager.is_loaded(key):
                with manager.use(key) as (adapter, _):
                    adapter.clear_caches()
        times, _ = panel_times_ms(playground, image)
        firsts.append(times[0])
        alls.append(times[-1])
    first, every = float(np.median(firsts)), float(np.median(alls))
    del manager, playground
    example_first, example_repeat = example_times_ms(weights, precision, device, notes)
    return {
        "first_panel_ms": round(first, 1),
        "all_panels_ms": round(every, 1),
        "first_panel_ratio": round(first / every, 3),
        "example_first_ms": example_first,
        "example_repeat_ms": example_repeat,
        "example_repeat_ratio": round(example_repeat / example_first, 4) if example_first and example_repeat else None,
    }


def example_times_ms(
    weights: WeightsMode, precision: str, device: torch.device | str, notes: list[str]
) -> tuple[float, float | None]:
    """(first visitor's ms, second visitor's ms after a restart) on `EXAMPLE`, through a temporary
    disk cache; the second is None, with a note, when its process fails or a model ran in it."""
    pixels = load_image(EXAMPLE).pixels
    with tempfile.TemporaryDirectory() as folder:
        first = Playground(
            ModelManager(weights=weights, device=device, precision=precision), examples=ExampleCache(Path(folder))
        )
        times, _ = panel_times_ms(first, pixels)
        del first
        command = [sys.executable, "-m", "playground.bench.instant", folder, weights, precision, str(device)]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        notes.append(f"instant: the second visitor's process failed: {result.stderr.strip()[-300:]}")
        return round(times[-1], 1), None
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    if answer["ran"]:
        notes.append(f"instant: after the restart {answer['ran']} model(s) ran instead of coming from disk")
        return round(times[-1], 1), None
    return round(times[-1], 1), round(answer["ms"], 1)


def second_visitor(folder: str, weights: WeightsMode, precision: str, device: str) -> dict:
    """In a new process: the five panels on `EXAMPLE` from the disk cache in ``folder``, as a
    restarted app serves them ({"ms": all five drawn, "ran": models that ran instead})."""
    from playground.core.imports import import_module

    for name in ("torch", "torchvision", "supervision"):  # what app.py imports on its first page load
        import_module(name)
    pixels = load_image(EXAMPLE).pixels
    manager = ModelManager(weights=weights, device=device, precision=precision)
    playground = Playground(manager, examples=ExampleCache(Path(folder)))
    times, _ = panel_times_ms(playground, pixels)
    return {"ms": times[-1], "ran": playground.forward_count}


if __name__ == "__main__":
    folder, weights, precision, device = sys.argv[1:5]
    print(json.dumps(second_visitor(folder, weights, precision, device)))  # type: ignore[arg-type]
