"""Numeric precision: which dtype models run in, chosen from what the hardware does natively.

``auto`` picks bfloat16 where the hardware runs it natively: a CPU with AMX or AVX512-BF16 (read
from torch's own CPU feature checks, with ``/proc/cpuinfo`` flags as the fallback), or a CUDA
device of compute capability 8.0 or more (Ampere and later) -- the device asked for, not the
current one, and not ``torch.cuda.is_bf16_supported()``, which counts emulation. On an older CUDA
card and on MPS (Apple GPUs run fp16 natively; bf16 needs macOS 14 and is unmeasured here) it
picks fp16 for the models whose fp16 agreement with fp32 was measured (the adapter's
``fp16_agrees``), fp32 for the rest. On a CPU without native bf16 (AVX2 only) it picks fp32: every
bf16 op is emulated there, far slower. ``fp16`` is for CUDA and MPS.

Only a model's heavy, numerically robust part runs in half precision (its adapter names those
submodules, `half_precision_regions`); their outputs are cast back to float32, so box decoding,
mask upsampling and softmax over classes stay in float32.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from playground.core.errors import PlaygroundError

if TYPE_CHECKING:
    import torch

Precision = Literal["fp32", "bf16", "fp16"]
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")
TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
"""Half precisions by their torch dtype name (fp32 runs without autocast)."""


def precision_from_env(default: str = "auto") -> str:
    """``PLAYGROUND_PRECISION`` if set (auto, fp32, bf16 or fp16), else ``default``."""
    value = os.environ.get("PLAYGROUND_PRECISION", default)
    if value not in PRECISION_CHOICES:
        raise PlaygroundError(f"PLAYGROUND_PRECISION={value!r}; use one of {', '.join(PRECISION_CHOICES)}.")
    return value


BF16_UNITS = {
    "AMX": ("_is_amx_tile_supported", " amx_bf16"),
    "AVX512-BF16": ("_is_avx512_bf16_supported", " avx512_bf16"),
}
"""CPU units that compute bf16 in hardware: torch's own check, and the ``/proc/cpuinfo`` flag as the
fallback. AMX tiles run bf16 matmuls several times faster than AVX512-BF16's dot products, so the
same model gains much more from bf16 on a CPU that has them."""


@cache
def cpu_bf16_units() -> tuple[str, ...]:
    """The `BF16_UNITS` this CPU has, e.g. ``("AMX", "AVX512-BF16")``; empty without native bf16."""
    import torch

    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    return tuple(
        unit
        for unit, (torch_check, flag) in BF16_UNITS.items()
        if getattr(torch.cpu, torch_check, lambda: False)() or flag in flags
    )


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 in hardware (AMX tiles or AVX512-BF16)."""
    return bool(cpu_bf16_units())


def cpu_capability() -> str:
    """What the CPU offers, e.g. ``"AVX2"`` or ``"AVX512 + native bf16 (AVX512-BF16, no AMX)"``:
    torch's vector ISA, and which bf16 units it has (`cpu_bf16_units`)."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    units = cpu_bf16_units()
    if not units:
        return capability
    return f"{capability} + native bf16 ({', '.join(units)}{'' if 'AMX' in units else ', no AMX'})"


NATIVE_BF16_CAPABILITY = (8, 0)
"""CUDA compute capability from which bf16 runs in hardware (Ampere); older cards emulate it."""


def cuda_native_bf16(device: torch.device) -> bool:
    """True when the CUDA ``device`` (not the current one) computes bf16 in hardware."""
    import torch

    return tuple(torch.cuda.get_device_capability(device)) >= NATIVE_BF16_CAPABILITY


def resolve_precision(requested: str, device: torch.device, fp16_agrees: bool = True) -> Precision:
    """The precision to run in on ``device`` for ``requested`` (auto, fp32, bf16 or fp16).

    ``fp16_agrees``: the model's fp16 agreement with fp32 was measured; without it ``auto`` gives
    fp32 where it would give fp16 (an older CUDA card, MPS). The default answers for such a model.
    Raises `PlaygroundError` for fp16 on a CPU, or bf16 on a device that only emulates it.
    """
    import torch

    if requested not in PRECISION_CHOICES:
        raise PlaygroundError(f"--precision {requested}: use one of {', '.join(PRECISION_CHOICES)}.")
    kind = device.type
    if requested == "auto":
        if kind == "cpu":
            return "bf16" if cpu_has_native_bf16() else "fp32"
        if kind == "cuda" and cuda_native_bf16(device):
            return "bf16"
        return "fp16" if fp16_agrees else "fp32"  # an older CUDA card, or MPS
    if requested == "fp16" and kind == "cpu":
        raise PlaygroundError("--precision fp16 is for CUDA and MPS devices only; on a CPU use bf16 or fp32.")
    if requested == "bf16" and kind == "cuda" and not cuda_native_bf16(device):
        major, minor = torch.cuda.get_device_capability(device)
        raise PlaygroundError(
            f"--precision bf16: {torch.cuda.get_device_name(device)} (compute capability {major}.{minor}) only "
            "emulates bf16; use fp16 or fp32."
        )
    if requested == "bf16" and kind == "mps" and not torch.backends.mps.is_macos_or_newer(14, 0):
        raise PlaygroundError("--precision bf16: MPS runs bf16 from macOS 14 on; use fp16 or fp32.")
    return requested  # type: ignore[return-value]


def torch_dtype(precision: Precision) -> torch.dtype:
    """The torch dtype of a half ``precision`` (bf16 or fp16)."""
    import torch

    return getattr(torch, TORCH_DTYPES[precision])
