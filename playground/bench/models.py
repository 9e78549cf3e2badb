"""Per-model figures: load time, the library's bare forward (fp32 and at the precision under test),
the whole playground path, and how the precision under test agrees with fp32."""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from playground.bench.drawing import draw
from playground.bench.fixtures import prompt_params
from playground.bench.rss import peak_rss_mb, reset_peak_rss
from playground.bench.timing import interleaved_medians
from playground.core.types import Prediction
from playground.runtime import heap

if TYPE_CHECKING:
    from playground.runtime.manager import ModelManager
    from playground.runtime.service import Playground

MODEL_FIELDS = (
    "precision",
    "cold_load_ms",
    "bare_forward_ms",
    "playground_ms",
    "overhead_ratio",
    "fp32_bare_ms",
    "speedup",
    "fp32_bare_cpu_ms",
    "playground_cpu_ms",
    "speedup_cpu",
    "agreement",
    "activation_peak_mb",
    "patches",
)
AGREEMENT_FIELDS = ("pixels", "instances", "mask_iou", "raw_rel_error")
RANDOM_SEED = 0
"""Seeds torch before each model's random build, so two runs of the bench time and compare the same
weights. Random weights' agreement depends on them: on 8 seeds, FCN's logits differ from fp32 by
0.8-1.0 % (relative L2) every time, yet their arg-max agrees on 97.2-99.9 % of pixels, as the
top-two logits of an untrained net are near-tied on more or fewer pixels."""


def failed_figures() -> dict[str, Any]:
    """The figures of a model that could not be measured: every one None."""
    return {**dict.fromkeys(MODEL_FIELDS), "agreement": dict.fromkeys(AGREEMENT_FIELDS)}


def bench_model(
    manager: ModelManager, reference: ModelManager, key: str, image: np.ndarray, repeat: int, notes: list[str]
) -> tuple[dict[str, Any], int]:
    """(the model's figures, its bytes of weights); a failing model gets Nones and a note.

    ``manager`` runs the precision under test; ``reference`` builds the same model in fp32 (with
    ``library_kernels``) and gets the same weights (random ones from `RANDOM_SEED`), for
    ``fp32_bare_ms`` and the agreement.
    """
    import torch

    from playground.core.registry import get_spec
    from playground.runtime.service import Playground

    task = get_spec(key).tasks[0]
    params = prompt_params(task, image)
    torch.manual_seed(RANDOM_SEED)
    try:
        with manager.use(key) as (adapter, _), reference.use(key) as (fp32, _):
            adapter.adopt(fp32.model)
            playground = Playground(manager)
            shown: list[Prediction] = []
            stages: dict[str, float] = {}
            activation_mb: list[float] = []

            def full() -> None:
                before = reset_peak_rss()
                prediction = predict_uncached(playground, key, image, task, params)
                start = time.perf_counter()
                draw(image, prediction)
                activation_mb.append(peak_rss_mb() - before)
                stages.update(prediction.timings_ms, overlay=(time.perf_counter() - start) * 1000)
                shown[:] = [prediction]

            def clear() -> None:
                adapter.clear_caches()
                fp32.clear_caches()
                heap.trim()  # else what the call before freed is still resident, and hides this one's rise

            # The playground run first: its warm-up is the model's first request, whose one-time
            # allocations count in its activation peak as they do in a user's first request.
            # The reference is timed even when the model runs fp32: its layers are the library's own.
            timed = [full, bare_forward(adapter, image, task, params), bare_forward(fp32, image, task, params)]
            full, bare, fp32_bare = interleaved_medians(timed, repeat, before=clear)
            stages.pop("load", None)
            notes.append(
                f"{key} ({adapter.precision}): last playground run: "
                + ", ".join(f"{k} {v:.0f}" for k, v in stages.items())
                + " ms"
            )
            clear()
            figures = {
                "precision": adapter.precision,
                "cold_load_ms": round(adapter.load_ms, 2),
                "bare_forward_ms": bare.wall_ms,
                "playground_ms": full.wall_ms,
                "overhead_ratio": round(full.wall_ms / bare.wall_ms, 3),
                "fp32_bare_ms": fp32_bare.wall_ms,
                "speedup": round(fp32_bare.wall_ms / full.wall_ms, 3),
                "fp32_bare_cpu_ms": fp32_bare.cpu_ms,
                "playground_cpu_ms": full.cpu_ms,
                "speedup_cpu": round(fp32_bare.cpu_ms / full.cpu_ms, 3),
                "agreement": measure_agreement(fp32, adapter, shown[0], image, task, params),
                "activation_peak_mb": round(max(activation_mb), 1),
                "patches": [patch.as_dict() for patch in adapter.patches],
            }
            size = adapter.nbytes
            if figures["agreement"]["pixels"] is None and figures["agreement"]["instances"] is None:
                notes.append(f"{key}: no fp32 instance above the score floor {fp32.floor():g}: no instance agreement")
    except Exception as error:  # one failing model (not built, no weights, a library error) is a note
        notes.append(f"{key}: {type(error).__name__}: {error}".splitlines()[0])
        return failed_figures(), 0
    finally:
        manager.unload(key)
        reference.unload(key)
    return figures, size


def bare_forward(adapter: Any, image: np.ndarray, task: str, params: dict) -> Any:
    """A call of the library's own model (``adapter.forward``) on the adapter's own ``preprocess``
    output, prepared once, now."""
    import torch

    with torch.inference_mode():
        inputs = adapter.preprocess(image, task, **params)

    def bare() -> None:
        with torch.inference_mode():
            adapter.forward(inputs)
        if adapter.device.type == "cuda":
            torch.cuda.synchronize(adapter.device)

    return bare


def measure_agreement(
    fp32: Any, adapter: Any, prediction: Prediction, image: np.ndarray, task: str, params: dict
) -> dict[str, float | None]:
    """`AGREEMENT_FIELDS` of ``prediction`` (from ``adapter``) against the fp32 build's prediction
    on the same image, and of the raw outputs of ``adapter``'s half-precision regions."""
    from playground.bench.agreement import instance_agreement, pixel_agreement, raw_relative_errors, region_calls

    found: list[Prediction] = []
    calls = region_calls(fp32, lambda: found.append(fp32.predict(image, task, **params)))
    instances, mask_iou = instance_agreement(found[0], prediction, fp32.floor())
    errors = raw_relative_errors(fp32, adapter, calls)
    return {
        "pixels": _round(pixel_agreement(found[0], prediction)),
        "instances": _round(instances),
        "mask_iou": _round(mask_iou),
        "raw_rel_error": _round(max(errors.values(), default=None), 6),
    }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def predict_uncached(playground: Playground, key: str, image: np.ndarray, task: str, params: dict) -> Prediction:
    """``playground.predict`` with an empty result cache, so the model runs."""
    from playground.runtime.service import new_result_cache

    playground.cache = new_result_cache()
    return playground.predict(key, image, task=task, **params)


def bench_sam_prompt(
    manager: ModelManager, keys: list[str], image: np.ndarray, repeat: int, notes: list[str]
) -> dict[str, float | None]:
    """First point prompt (encoder + decoder) vs a second point on the same image (decoder only)."""
    from playground.runtime.service import Playground

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
