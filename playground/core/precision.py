"""Numeric precision: which dtype models run in, chosen from what the hardware does natively.

``auto`` picks bfloat16 where the hardware runs it natively: a CPU with AMX or AVX512-BF16 (read
from torch's own CPU feature checks, with ``/proc/cpuinfo`` flags as the fallback), or a CUDA
device that supports it. Everywhere else it picks float32: on a CPU without native bf16 (AVX2
only) every bf16 op is emulated, far slower than fp32. ``fp16`` is for CUDA only.

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


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """The precision to run in on ``device`` for ``requested`` (auto, fp32, bf16 or fp16).

    Raises `PlaygroundError` for fp16 on a CPU, or a half precision the CUDA device lacks.
    """
    import torch

    if requested not in PRECISION_CHOICES:
        raise PlaygroundError(f"--precision {requested}: use one of {', '.join(PRECISION_CHOICES)}.")
    cuda = device.type == "cuda"
    if requested == "auto":
        native = torch.cuda.is_bf16_supported() if cuda else cpu_has_native_bf16()
        return "bf16" if native else "fp32"
    if requested == "fp16" and not cuda:
        raise PlaygroundError("--precision fp16 is for CUDA devices only; on a CPU use bf16 or fp32.")
    if requested == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise PlaygroundError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bf16 support.")
    return requested  # type: ignore[return-value]


def torch_dtype(precision: Precision) -> torch.dtype:
    """The torch dtype of a half ``precision`` (bf16 or fp16)."""
    import torch

    return getattr(torch, TORCH_DTYPES[precision])
