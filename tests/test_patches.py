"""Every swap or wrap made at load is recorded on the adapter, and `models --layers KEY` lists it."""

from __future__ import annotations

import pytest

from playground.cli import main
from playground.core.registry import REGISTRY
from playground.runtime.manager import ModelManager

EXPECTED = {
    "fcn": "batch norms",
    "mask-rcnn": "MultiScaleRoIAlign",
    "sam": "SamVisionAttention",
    "sam3": "Sam3ViTRoPEAttention",
    "grounding-dino": "MultiScaleDeformableAttention",
    "mask2former": "multi_scale_deformable_attention",
    "detr": "eager",
}
"""A change each of these models' tiny builds must list (by a word of its ``replaced`` or ``by``)."""


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_each_faster_layer_is_recorded_with_its_count(key: str) -> None:
    manager = ModelManager(weights="tiny", device="cpu", precision="fp32")
    with manager.use(key) as (adapter, _):
        found = [p for p in adapter.patches if EXPECTED[key] in p.replaced + p.by]
        assert found and all(p.count > 0 for p in found), adapter.patches
        assert all(p.why for p in adapter.patches)


def test_library_kernels_record_no_swap_and_half_precision_records_its_regions() -> None:
    library = ModelManager(weights="tiny", device="cpu", precision="fp32", library_kernels=True)
    with library.use("fcn") as (adapter, _):
        assert not [p for p in adapter.patches if "batch norms" in p.replaced]
    half = ModelManager(weights="tiny", device="cpu", precision="bf16")
    with half.use("fcn") as (adapter, _):
        kinds = " | ".join(p.by for p in adapter.patches)
        assert "autocast(cpu, bf16)" in kinds and "channels-last" in kinds, kinds


def test_models_layers_lists_every_patch(capsys) -> None:
    assert main(["models", "--layers", "grounded-sam", "--weights", "tiny", "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "grounding-dino (tiny weights, cpu, fp32):" in out and "sam (tiny weights, cpu, fp32):" in out
    assert "MultiScaleDeformableAttention" in out and "SamVisionAttention" in out
    assert out.count("    why: ") == out.count("    by: ") >= 2


def test_models_layers_on_the_cpu_lists_the_cpu_only_layers_as_such(capsys) -> None:
    """The faster layers measured on CPUs only are made on a CPU (the library's kernels run elsewhere)."""
    assert main(["models", "--layers", "sam", "--weights", "tiny", "--device", "cpu", "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "SamVisionAttention.forward" in line)
    assert line.endswith("] (on cpu only)"), line


def test_models_layers_refuses_an_unknown_key(capsys) -> None:
    assert main(["models", "--layers", "nope", "--weights", "tiny"]) == 2
    assert "Unknown model 'nope'" in capsys.readouterr().err
    assert "nope" not in REGISTRY
