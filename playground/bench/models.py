"""Per-model figures: load time, the library's bare forward (fp32 and at the precision under test),
the whole playground path, and how the precision under test agrees with fp32."""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from playground.bench.drawing import draw
from playground.bench.fixtures import prompt_params
from playground.bench.rss import peak_rss_mb, reset_peak_rss
from playground.bench.timing import interleaved_medians
from playground.core.devices import synchronize
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
    "runs",
)
AGREEMENT_FIELDS = ("pixels", "instances", "mask_iou", "raw_rel_error")
RUN_FIELDS = ("precision", "playground_ms", "bare_forward_ms", "max_memory_mb", "encode_ms", "cpu_agreement")
"""Each of ``runs`` (fp32, and the precision under test) on the device: its synced timings, the device
memory one request takes (weights, caches and the request's peak; CUDA only), SAM's "image encoded
in" time, and `AGREEMENT_FIELDS` against an fp32 build of the same weights on the CPU."""
MB = 1024 * 1024
RANDOM_SEED = 0
"""Seeds torch before each model's random build, so two runs of the bench time and compare the same
weights. Random weights' agreement depends on them: on 8 seeds, FCN's logits differ from fp32 by
0.8-1.0 % (relative L2) every time, yet their arg-max agrees on 97.2-99.9 % of pixels, as the
top-two logits of an untrained net are near-tied on more or fewer pixels."""


def failed_figures() -> dict[str, Any]:
    """The figures of a model that could not be measured: every one None (and no runs)."""
    return {**dict.fromkeys(MODEL_FIELDS), "agreement": dict.fromkeys(AGREEMENT_FIELDS), "runs": {}}


class PlaygroundRun:
    """One timed call of the whole playground path for ``adapter``'s manager: predict with an empty
    result cache, then the first overlay; keeps the last prediction, its stages and what it cost."""

    def __init__(self, adapter: Any, playground: Playground, key: str, image: np.ndarray, task: str, params: dict):
        self.adapter, self.playground, self.key = adapter, playground, key
        self.image, self.task, self.params = image, task, params
        self.shown: Prediction | None = None
        self.stages: dict[str, float] = {}
        self.activation_mb: list[float] = []
        self.encode_ms: list[float] = []

    def __call__(self) -> None:
        before = reset_peak_rss()
        prediction = predict_uncached(self.playground, self.key, self.image, self.task, self.params)
        start = time.perf_counter()
        draw(self.image, prediction)
        self.activation_mb.append(peak_rss_mb() - before)
        self.stages.update(prediction.timings_ms, overlay=(time.perf_counter() - start) * 1000)
        if "encode_ms" in prediction.meta and not prediction.meta.get("embedding_cached"):
            self.encode_ms.append(prediction.meta["encode_ms"])
        self.shown = prediction

    def encode_median_ms(self) -> float | None:
        """SAM's "image encoded in" time: the median after the warm-up; None for other models."""
        timed = self.encode_ms[1:] or self.encode_ms
        return round(statistics.median(timed), 2) if timed else None


def bench_model(
    manager: ModelManager,
    reference: ModelManager,
    key: str,
    image: np.ndarray,
    repeat: int,
    notes: list[str],
    fp32: ModelManager | None = None,
    cpu_reference: ModelManager | None = None,
    label: str | None = None,
) -> tuple[dict[str, Any], int]:
    """(the model's figures, its bytes of weights); a failing model gets Nones and a note.

    ``manager`` runs the precision under test; ``reference`` builds the same model in fp32 (with
    ``library_kernels``) and gets the same weights (random ones from `RANDOM_SEED`), for
    ``fp32_bare_ms`` and the agreement. ``runs`` (`RUN_FIELDS`) holds the precision under test
    (named ``label``, default its precision) and fp32: ``fp32``'s build where given and the precision
    under test is not fp32 already. Their ``cpu_agreement`` is against ``cpu_reference`` (an fp32
    library build on the CPU), or ``reference`` where it runs on the CPU.
    """
    import torch

    from playground.core.registry import get_spec
    from playground.runtime.service import Playground

    task = get_spec(key).tasks[0]
    params = prompt_params(task, image)
    torch.manual_seed(RANDOM_SEED)
    managers = [manager, reference, fp32, cpu_reference]
    try:
        with contextlib.ExitStack() as stack:
            adapter, _ = stack.enter_context(manager.use(key))
            fp32_ref, _ = stack.enter_context(reference.use(key))
            adapter.adopt(fp32_ref.model)
            runs = {label or adapter.precision: PlaygroundRun(adapter, Playground(manager), key, image, task, params)}
            if fp32 is not None and adapter.precision != "fp32":
                fp32_adapter, _ = stack.enter_context(fp32.use(key))
                fp32_adapter.adopt(fp32_ref.model)
                runs["fp32"] = PlaygroundRun(fp32_adapter, Playground(fp32), key, image, task, params)
            cpu_ref = fp32_ref
            if cpu_reference is not None and cpu_reference is not reference:
                cpu_ref, _ = stack.enter_context(cpu_reference.use(key))
                cpu_ref.adopt(fp32_ref.model)
            adapters = [run.adapter for run in runs.values()]

            def clear() -> None:
                for each in {id(a): a for a in [*adapters, fp32_ref, cpu_ref]}.values():
                    each.clear_caches()
                heap.trim()  # else what the call before freed is still resident, and hides this one's rise

            # The playground run first: its warm-up is the model's first request, whose one-time
            # allocations count in its activation peak as they do in a user's first request.
            # The reference is timed even when the model runs fp32: its layers are the library's own.
            tested = next(iter(runs.values()))
            timed = [tested, bare_forward(adapter, image, task, params), bare_forward(fp32_ref, image, task, params)]
            for run in list(runs.values())[1:]:
                timed += [run, bare_forward(run.adapter, image, task, params)]
            medians = interleaved_medians(timed, repeat, before=clear)
            full, bare, fp32_bare = medians[:3]
            stages = {k: v for k, v in tested.stages.items() if k != "load"}
            notes.append(
                f"{key} ({adapter.precision}): last playground run: "
                + ", ".join(f"{k} {v:.0f}" for k, v in stages.items())
                + " ms"
            )
            clear()
            expected = ReferenceResult(fp32_ref, image, task, params)
            on_cpu = expected if cpu_ref is fp32_ref else ReferenceResult(cpu_ref, image, task, params)
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
                "agreement": expected.agreement(adapter, tested.shown),
                "activation_peak_mb": round(max(tested.activation_mb), 1),
                "patches": [patch.as_dict() for patch in adapter.patches],
                "runs": {},
            }
            timings = [(full, bare), *zip(medians[3::2], medians[4::2])]
            for (name, run), (run_full, run_bare) in zip(runs.items(), timings):
                same = on_cpu is expected and run is tested  # on a CPU: the agreement above
                figures["runs"][name] = {
                    "precision": run.adapter.precision,
                    "playground_ms": run_full.wall_ms,
                    "bare_forward_ms": run_bare.wall_ms,
                    "encode_ms": run.encode_median_ms(),
                    "cpu_agreement": figures["agreement"] if same else on_cpu.agreement(run.adapter, run.shown),
                }
                figures["runs"][name]["max_memory_mb"] = device_memory_mb(run)  # runs it once more
            if fp32 is not None and "fp32" not in figures["runs"]:  # the precision under test is fp32
                figures["runs"]["fp32"] = figures["runs"][next(iter(runs))]
            size = adapter.nbytes
            if figures["agreement"]["pixels"] is None and figures["agreement"]["instances"] is None:
                notes.append(
                    f"{key}: no fp32 instance above the score floor {fp32_ref.floor():g}: no instance agreement"
                )
    except Exception as error:  # one failing model (not built, no weights, a library error) is a note
        notes.append(f"{key}: {type(error).__name__}: {error}".splitlines()[0])
        return failed_figures(), 0
    finally:
        for each in managers:
            if each is not None:
                each.unload(key)
    return figures, size


def device_memory_mb(run: PlaygroundRun) -> float | None:
    """What one request of ``run`` takes on a CUDA device: the weights and caches it holds, plus
    ``torch.cuda.max_memory_allocated`` over what was allocated before (other builds included); None
    elsewhere (the CPU's figure is ``activation_peak_mb``)."""
    import torch

    adapter = run.adapter
    if adapter.device.type != "cuda":
        return None
    adapter.clear_caches()
    weights = adapter.nbytes  # with its caches empty: the weights alone
    torch.cuda.synchronize(adapter.device)
    before = torch.cuda.memory_allocated(adapter.device)
    torch.cuda.reset_peak_memory_stats(adapter.device)
    run()
    torch.cuda.synchronize(adapter.device)
    peak = torch.cuda.max_memory_allocated(adapter.device) - before
    adapter.clear_caches()
    return round((weights + peak) / MB, 1)


def bare_forward(adapter: Any, image: np.ndarray, task: str, params: dict) -> Any:
    """A call of the library's own model (``adapter.forward``) on the adapter's own ``preprocess``
    output, prepared once, now."""
    import torch

    with torch.inference_mode():
        inputs = adapter.preprocess(image, task, **params)

    def bare() -> None:
        with torch.inference_mode():
            adapter.forward(inputs)
        synchronize(adapter.device)

    return bare


class ReferenceResult:
    """An fp32 build's prediction on ``image``, and what its half-precision regions were called with
    and returned: the reference that `agreement` compares other builds of the same weights with."""

    def __init__(self, fp32: Any, image: np.ndarray, task: str, params: dict) -> None:
        from playground.bench.agreement import region_calls, region_outputs

        found: list[Prediction] = []
        self.fp32 = fp32
        self.calls = region_calls(fp32, lambda: found.append(fp32.predict(image, task, **params)))
        self.prediction = found[0]
        self.outputs = {region: region_outputs(fp32, region, call) for region, call in self.calls.items()}

    def agreement(self, adapter: Any, prediction: Prediction) -> dict[str, float | None]:
        """`AGREEMENT_FIELDS` of ``prediction`` (from ``adapter``) against the reference's prediction,
        and of the raw outputs of ``adapter``'s half-precision regions (fed the reference's inputs)."""
        from playground.bench.agreement import instance_agreement, pixel_agreement, raw_relative_errors

        instances, mask_iou = instance_agreement(self.prediction, prediction, self.fp32.floor())
        errors = raw_relative_errors(self.fp32, adapter, self.calls, self.outputs)
        return {
            "pixels": _round(pixel_agreement(self.prediction, prediction)),
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
