"""``python -m playground bench``: it runs, writes every fixed JSON key, and reports failures without crashing.

Timings are never asserted: they depend on the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import EXAMPLES, ROOT

from playground import bench, cli
from playground.core.errors import UnknownModelError
from playground.core.registry import REGISTRY
from playground.manager import ModelManager

KEYS = {
    "device",
    "torch",
    "weights",
    "models",
    "sam_prompt",
    "refilter_ms",
    "overlay_100_masks_ms",
    "startup_to_page_s",
    "memory",
}
MODEL_KEYS = {"cold_load_ms", "bare_forward_ms", "playground_ms", "overhead_ratio"}


def test_bench_smoke_writes_every_key(tmp_path):
    out = tmp_path / "out.json"
    command = [sys.executable, "-m", "playground", "bench", "--weights", "tiny", "--repeat", "1"]
    command += ["--models", "fcn,detr", "--json", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert set(report) == KEYS
    assert report["weights"] == "tiny"
    assert set(report["models"]) == {"fcn", "detr"}
    for key, figures in report["models"].items():
        assert set(figures) == MODEL_KEYS, key
        assert all(isinstance(value, float) for value in figures.values()), (key, figures)
    assert set(report["sam_prompt"]) == {"first_ms", "second_ms", "ratio"}
    assert set(report["memory"]) == {"budget_mb", "peak_rss_mb", "evictions"}
    # Two models under a budget smaller than both: the second load evicts the first.
    assert report["memory"]["evictions"] >= 1
    for name in ("refilter_ms", "overlay_100_masks_ms", "startup_to_page_s"):
        assert isinstance(report[name], float), name
    assert "fcn" in result.stdout and "overlay" in result.stdout  # the printed table


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
    figures, size = bench.bench_model(ModelManager(weights="pretrained", device="cpu"), "fcn", astronaut, 1, notes)
    assert figures == dict.fromkeys(MODEL_KEYS) and size == 0
    assert len(notes) == 1 and notes[0].startswith("fcn: MissingWeightsError") and "download fcn" in notes[0]


def test_dtype_is_refused_on_cpu(capsys):
    code = cli.main(["bench", "--device", "cpu", "--dtype", "bfloat16", "--image", str(EXAMPLES / "astronaut.jpg")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "CUDA" in err and "bfloat16" in err
