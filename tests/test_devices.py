"""Devices without the hardware: ``auto`` tries CUDA, then MPS, then the CPU; ``--device mps`` and
``--device cuda`` are checked; precision follows what the requested device runs natively; clocks
wait for the device they timed. CUDA and MPS are mocked (``torch.cuda``, ``torch.backends.mps``)."""

from __future__ import annotations

import pytest
import torch

from playground.core import devices
from playground.core.errors import PlaygroundError
from playground.core.precision import resolve_precision
from playground.runtime.manager import ModelManager, pick_device

CPU, MPS = torch.device("cpu"), torch.device("mps")
CAPABILITIES = {0: (7, 5), 1: (8, 0)}
"""A Turing card (T4) as cuda:0 and an Ampere card (A100) as cuda:1."""


@pytest.fixture
def hardware(monkeypatch):
    """Set which devices exist: ``hardware(cuda=True, mps=False)``; CUDA cards as in `CAPABILITIES`."""

    def set_hardware(cuda: bool = False, mps: bool = False, macos_14: bool = True) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: len(CAPABILITIES) if cuda else 0)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        monkeypatch.setattr(torch.backends.mps, "is_built", lambda: mps)
        monkeypatch.setattr(torch.backends.mps, "is_macos_or_newer", lambda major, minor: macos_14)

    def capability(device=None):
        return CAPABILITIES[torch.device(device).index or 0]

    def emulation_counts(including_emulation: bool = True) -> bool:
        raise AssertionError("is_bf16_supported counts emulation and reads the current device")

    monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: f"card {capability(device)}")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", emulation_counts)
    return set_hardware


def test_auto_picks_cuda_then_mps_then_the_cpu(hardware) -> None:
    hardware(cuda=True, mps=True)
    assert pick_device() == pick_device("auto") == torch.device("cuda")
    hardware(cuda=False, mps=True)
    assert pick_device() == MPS
    hardware()
    assert pick_device() == CPU


def test_a_requested_device_is_checked(hardware) -> None:
    hardware()
    with pytest.raises(PlaygroundError, match="--device mps: this torch was built without MPS"):
        pick_device("mps")
    with pytest.raises(PlaygroundError, match="--device cuda: no CUDA device"):
        pick_device("cuda")
    with pytest.raises(PlaygroundError, match="--device gpu: use auto"):
        pick_device("gpu")
    hardware(cuda=True, mps=True)
    assert pick_device("mps") == MPS and pick_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(PlaygroundError, match="has 2 CUDA device"):
        pick_device("cuda:2")


def test_auto_on_cuda_is_bf16_only_where_the_requested_card_runs_it_natively(hardware) -> None:
    hardware(cuda=True)
    ampere, turing = torch.device("cuda", 1), torch.device("cuda", 0)
    assert resolve_precision("auto", ampere) == "bf16"
    assert resolve_precision("auto", turing) == "fp16"  # for a model whose fp16 agreement holds
    assert resolve_precision("auto", turing, fp16_agrees=False) == "fp32"
    assert resolve_precision("fp16", turing) == "fp16" and resolve_precision("bf16", ampere) == "bf16"
    with pytest.raises(PlaygroundError, match=r"card \(7, 5\) \(compute capability 7.5\) only emulates bf16"):
        resolve_precision("bf16", turing)


def test_auto_on_mps_is_fp16_where_it_agrees_and_bf16_needs_macos_14(hardware) -> None:
    hardware(mps=True, macos_14=False)
    assert resolve_precision("auto", MPS) == "fp16"
    assert resolve_precision("auto", MPS, fp16_agrees=False) == "fp32"
    assert resolve_precision("fp16", MPS) == "fp16"
    with pytest.raises(PlaygroundError, match="MPS runs bf16 from macOS 14"):
        resolve_precision("bf16", MPS)
    hardware(mps=True, macos_14=True)
    assert resolve_precision("bf16", MPS) == "bf16"
    assert resolve_precision("auto", MPS) == "fp16"  # bf16 on MPS is unmeasured: auto never picks it
    with pytest.raises(PlaygroundError, match="fp16 is for CUDA and MPS devices only"):
        resolve_precision("fp16", CPU)


def test_auto_gives_fp16_only_to_models_whose_agreement_holds(hardware, monkeypatch) -> None:
    from models.fcn import FCNAdapter

    hardware(cuda=True)
    manager = ModelManager(weights="tiny", device=torch.device("cuda", 0), precision="auto")
    assert manager.precision == "fp16"
    assert FCNAdapter.fp16_agrees is False  # no model has fp16 agreement data yet: fp32 for all
    assert manager.precision_for("fcn") == "fp32"
    monkeypatch.setattr(FCNAdapter, "fp16_agrees", True)
    assert manager.precision_for("fcn") == "fp16"
    monkeypatch.setattr(FCNAdapter, "fp16_agrees", False)
    asked = ModelManager(weights="tiny", device=torch.device("cuda", 0), precision="fp16")
    assert asked.precision_for("fcn") == "fp16"  # asked for by name: every model that allows half precision
    assert ModelManager(weights="tiny", device=torch.device("cuda", 1)).precision_for("fcn") == "bf16"


def test_clocks_wait_for_the_device_they_timed(monkeypatch) -> None:
    from models.fcn import FCNAdapter
    from playground.core.registry import get_spec

    waited = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: waited.append(("cuda", device)))
    monkeypatch.setattr(torch.mps, "synchronize", lambda: waited.append(("mps", None)))
    devices.synchronize(CPU)
    assert waited == []
    for device in (torch.device("cuda", 1), MPS):
        FCNAdapter(get_spec("fcn"), "tiny", device)._sync_clock()
    assert waited == [("cuda", torch.device("cuda", 1)), ("mps", None)]
