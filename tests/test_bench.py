"""``python -m playground bench``: it runs, writes every JSON key with the right type, reports failures
without crashing, and its agreement measures give known answers.

Timings are never asserted: they depend on the machine. The bench itself judges its goals.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT

from playground import bench, cli
from playground.bench.agreement import instance_agreement, pixel_agreement
from playground.bench.first_click import FIELDS as FIRST_CLICK_FIELDS
from playground.bench.first_click import bench_first_click
from playground.bench.memory import STEADY_SLACK, request_allowance_mb
from playground.bench.models import AGREEMENT_FIELDS, MODEL_FIELDS, RUN_FIELDS, bench_model
from playground.core.errors import UnknownModelError
from playground.core.registry import REGISTRY
from playground.core.types import Prediction
from playground.runtime.manager import ModelManager

NUMBER = (int, float)
KEYS = {
    "device": str,
    "torch": str,
    "weights": str,
    "precision": str,
    "cpu_capability": str,
    "cpu_steal_percent": float,
    "models": dict,
    "sam_prompt": dict,
    "first_click_after_upload_ms": dict,
    "sam_encoder_ms": dict,
    "refilter_ms": float,
    "overlay_100_masks_ms": float,
    "startup_to_page_s": float,
    "startup_ratio": float,
    "memory": dict,
    # playground.bench.instant: null would mean the second visitor's results did not come from disk
    "first_panel_ms": float,
    "all_panels_ms": float,
    "first_panel_ratio": float,
    "example_first_ms": float,
    "example_repeat_ms": float,
    "example_repeat_ratio": float,
}
TIMINGS = (
    "cold_load_ms",
    "bare_forward_ms",
    "playground_ms",
    "overhead_ratio",
    "fp32_bare_ms",
    "speedup",
    "fp32_bare_cpu_ms",
    "playground_cpu_ms",
    "speedup_cpu",
)
MEMORY_KEYS = {
    "budget_mb",
    "baseline_mb",
    "steady_mb",
    "peak_mb",
    "growth_mb",
    "peak_rss_mb",
    "evictions",
    "request_peak_excess_mb",
}


def test_bench_smoke_writes_every_key(tmp_path):
    out = tmp_path / "out.json"
    command = [sys.executable, "-m", "playground", "bench", "--weights", "tiny", "--repeat", "1"]
    command += ["--models", "fcn,detr", "--precision", "auto", "--json", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert set(report) == set(KEYS)
    for name, kind in KEYS.items():
        assert isinstance(report[name], kind), (name, report[name])
    assert report["weights"] == "tiny"
    assert report["precision"] in ("fp32", "bf16")
    assert set(report["models"]) == {"fcn", "detr"}
    for key, figures in report["models"].items():
        assert set(figures) == set(MODEL_FIELDS), key
        assert figures["precision"] == report["precision"]
        assert all(isinstance(figures[name], float) for name in TIMINGS), (key, figures)
        assert set(figures["agreement"]) == set(AGREEMENT_FIELDS)
        assert isinstance(figures["agreement"]["raw_rel_error"], float)
        assert isinstance(figures["activation_peak_mb"], float) and figures["activation_peak_mb"] >= 0, figures
        assert figures["patches"] and all(
            {"replaced", "by", "why", "count", "devices"} == set(p) for p in figures["patches"]
        )
        # fp32 and the precision under test, each against fp32 on the CPU; no CUDA: no device memory
        assert set(figures["runs"]) == {"auto", "fp32"}, figures["runs"]
        for name, run in figures["runs"].items():
            assert set(run) == set(RUN_FIELDS) and set(run["cpu_agreement"]) == set(AGREEMENT_FIELDS), name
            assert run["max_memory_mb"] is None and run["encode_ms"] is None
            assert isinstance(run["playground_ms"], float) and isinstance(run["bare_forward_ms"], float)
        assert figures["runs"]["fp32"]["precision"] == "fp32"
        assert figures["runs"]["auto"]["cpu_agreement"] == figures["agreement"]  # on the CPU: the same reference
    assert any("batch norms" in patch["replaced"] for patch in report["models"]["fcn"]["patches"])
    fcn, detr = report["models"]["fcn"]["agreement"], report["models"]["detr"]["agreement"]
    assert isinstance(fcn["pixels"], float) and fcn["instances"] is None  # semantic: pixels only
    assert detr["pixels"] is None and isinstance(detr["instances"], float)  # tiny: no score floor
    assert detr["mask_iou"] is None  # boxes only
    assert set(report["sam_prompt"]) == {"first_ms", "second_ms", "ratio"}
    assert tuple(report["first_click_after_upload_ms"]) == FIRST_CLICK_FIELDS  # null: sam is not among --models
    assert report["sam_encoder_ms"] == {}  # sam is not among --models
    memory = report["memory"]
    assert set(memory) == MEMORY_KEYS
    assert all(isinstance(memory[name], NUMBER) for name in MEMORY_KEYS), memory
    # Two models under a budget smaller than both, three cycles: every load after the first evicts.
    assert memory["evictions"] >= 5
    assert "fcn" in result.stdout and "speedup" in result.stdout and "startup ratio" in result.stdout
    assert report["first_panel_ms"] <= report["all_panels_ms"]  # the first of five panels, then the last
    assert "compare, five models: first panel" in result.stdout


def test_default_models_are_the_built_single_models():
    keys = bench.model_keys(None)
    assert keys == [spec.key for spec in REGISTRY.values() if not spec.components and "video" not in spec.tasks]
    assert "grounded-sam" not in keys
    with pytest.raises(UnknownModelError, match="nope"):
        bench.model_keys("fcn,nope")


def test_a_failing_model_is_a_note_not_a_crash(tmp_path, monkeypatch, astronaut):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache, and HF_HUB_OFFLINE=1: no weights
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    notes: list[str] = []
    managers = [ModelManager(weights="pretrained", device="cpu", precision=p) for p in ("auto", "fp32")]
    figures, size = bench_model(*managers, "fcn", astronaut, 1, notes)
    assert figures == {**dict.fromkeys(MODEL_FIELDS), "agreement": dict.fromkeys(AGREEMENT_FIELDS), "runs": {}}
    assert size == 0
    assert len(notes) == 1 and notes[0].startswith("fcn: MissingWeightsError") and "download fcn" in notes[0]


def test_random_builds_are_seeded_so_two_runs_compare_the_same_weights(astronaut):
    runs = []
    for _ in range(2):
        managers = [ModelManager(weights="tiny", device="cpu", precision=p) for p in ("bf16", "fp32")]
        figures, size = bench_model(*managers, "fcn", astronaut, 1, [])
        runs.append((figures["agreement"], size))
    assert runs[0][1] > 0 and isinstance(runs[0][0]["raw_rel_error"], float) and runs[0][0]["raw_rel_error"] > 0
    assert runs[0] == runs[1]


def test_a_request_whose_model_is_evicted_after_it_is_allowed_that_models_weights():
    """SAM 3 (1064 MB) under a 1171 MB budget: loaded over a 1166 MB RSS, run, evicted, 962 MB after.
    Its weights were resident while it ran, so they count in the RSS around the request."""
    activation = 1000.0
    kept = request_allowance_mb(1166.0, 2030.0, 0.0, activation)
    evicted = request_allowance_mb(1166.0, 962.0, 1064.0, activation)
    assert kept == 2030.0 + activation * STEADY_SLACK
    assert evicted == 962.0 + 1064.0 + activation * STEADY_SLACK
    assert request_allowance_mb(1166.0, 962.0, 0.0, activation) == 1166.0 + activation * STEADY_SLACK


def test_fp16_is_refused_on_cpu(capsys):
    code = cli.main(["bench", "--device", "cpu", "--precision", "fp16", "--image", str(EXAMPLES / "astronaut.jpg")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "fp16 is for CUDA" in err


def test_dtype_flag_is_gone():
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["bench", "--dtype", "bfloat16"])


# ---- agreement -----------------------------------------------------------------------------------


def instances(boxes: list[list[float]], class_ids: list[int], masks: np.ndarray | None = None) -> Prediction:
    count = len(boxes)
    return Prediction(
        model="m",
        task="instance",
        weights="tiny",
        image_size=(100, 100),
        label_names={},
        boxes=np.array(boxes, np.float32).reshape(count, 4),
        scores=np.linspace(0.9, 0.5, count).astype(np.float32),
        class_ids=np.array(class_ids, np.int64),
        masks=masks,
    )


def test_identical_predictions_agree_fully():
    masks = np.zeros((2, 100, 100), bool)
    masks[0, 10:50, 10:50] = masks[1, 60:90, 20:80] = True
    prediction = instances([[10, 10, 50, 50], [20, 60, 80, 90]], [1, 2], masks)
    assert instance_agreement(prediction, prediction) == (1.0, 1.0)


def test_instances_with_equal_boxes_match_in_order():
    """SAM's three masks can share one box: each must match its own mask, not another."""
    masks = np.zeros((3, 100, 100), bool)
    masks[0, :, :] = True
    masks[1, :, :50] = masks[2, :50, :] = True
    masks[1, 99, 99] = masks[2, 99, 99] = True  # every mask spans the whole image: equal boxes
    prediction = instances([[0, 0, 99, 99]] * 3, [1, 1, 1], masks)
    assert instance_agreement(prediction, prediction) == (1.0, 1.0)


def test_a_box_moved_below_iou_0_9_or_relabelled_is_not_matched():
    reference = instances([[0, 0, 100, 100], [0, 0, 10, 10]], [1, 2])
    shifted = instances([[6, 0, 106, 100], [0, 0, 10, 10]], [1, 2])  # IoU 94 / 106 = 0.887
    assert instance_agreement(reference, shifted) == (0.5, None)
    nudged = instances([[4, 0, 104, 100], [0, 0, 10, 10]], [1, 2])  # IoU 96 / 104 = 0.923
    assert instance_agreement(reference, nudged) == (1.0, None)
    relabelled = instances([[0, 0, 100, 100], [0, 0, 10, 10]], [1, 3])
    assert instance_agreement(reference, relabelled) == (0.5, None)
    assert instance_agreement(instances([], []), reference) == (None, None)  # nothing to agree on


def test_equal_boxes_of_zero_area_match_and_different_ones_do_not():
    """Random-weight OWLv2 boxes clipped to the image are often lines; the same line is the same box."""
    lines = instances([[256, 0, 512, 0], [0, 40, 0, 90]], [7, 7])
    assert instance_agreement(lines, lines) == (1.0, None)
    moved = instances([[256, 0, 512, 0], [0, 40, 0, 91]], [7, 7])
    assert instance_agreement(lines, moved) == (0.5, None)


def test_mask_iou_of_matched_instances():
    first, second = np.zeros((1, 100, 100), bool), np.zeros((1, 100, 100), bool)
    first[0, :, :50] = True
    second[0, :, 25:50] = True
    reference = instances([[0, 0, 100, 100]], [1], first)
    other = instances([[0, 0, 100, 100]], [1], second)
    assert instance_agreement(reference, other) == (1.0, 0.5)


def test_pixel_agreement_counts_changed_pixels():
    semantic = np.random.default_rng(0).integers(0, 21, (100, 100)).astype(np.int32)
    reference = replace(instances([], []), task="semantic", semantic_map=semantic)
    changed = semantic.copy()
    changed.flat[[3, 700, 1999]] += 1
    assert pixel_agreement(reference, reference) == 1.0
    assert pixel_agreement(reference, replace(reference, semantic_map=changed)) == pytest.approx(1 - 3 / 10_000)
    assert pixel_agreement(instances([], []), reference) is None


def test_each_run_times_sams_image_encoder(astronaut):
    """``runs`` holds fp32 and the precision under test; SAM's carries its "image encoded in" time."""
    tested = ModelManager(weights="tiny", device="cpu", precision="bf16")
    reference = ModelManager(weights="tiny", device="cpu", precision="fp32", library_kernels=True)
    fp32 = ModelManager(weights="tiny", device="cpu", precision="fp32")
    figures, _ = bench_model(tested, reference, "sam", astronaut, 1, [], fp32, label="bf16")
    assert set(figures["runs"]) == {"bf16", "fp32"}
    assert [run["precision"] for run in figures["runs"].values()] == ["bf16", "fp32"]
    assert all(isinstance(run["encode_ms"], float) and run["encode_ms"] > 0 for run in figures["runs"].values())
    assert figures["runs"]["fp32"]["cpu_agreement"]["instances"] == 1.0  # the same weights, both fp32


def test_device_memory_is_the_weights_and_one_requests_peak(monkeypatch):
    """On CUDA: the weights (caches emptied) plus max_memory_allocated over what was allocated before."""
    import torch

    from playground.bench.models import MB, device_memory_mb

    allocated = {"now": 500 * MB, "peak": 0}
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: allocated["now"])
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: allocated.update(peak=0))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: allocated["peak"])

    class Adapter:
        device, nbytes = torch.device("cuda"), 100 * MB

        def clear_caches(self) -> None:
            pass

    class Run:
        adapter = Adapter()

        def __call__(self) -> None:
            allocated["peak"] = allocated["now"] + 40 * MB

    assert device_memory_mb(Run()) == 140.0
    Run.adapter.device = torch.device("cpu")
    assert device_memory_mb(Run()) is None


def test_the_first_click_after_upload_is_timed_against_the_encoding(astronaut):
    """SAM's first click 1 s and 5 s after the upload, each with its ratio to the encoding alone."""
    notes: list[str] = []
    figures = bench_first_click(ModelManager(weights="tiny", device="cpu"), ["sam"], astronaut[:128, :160], 1, notes)
    assert not notes and tuple(figures) == FIRST_CLICK_FIELDS
    assert all(isinstance(value, float) and value > 0 for value in figures.values()), figures
