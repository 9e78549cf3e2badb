"""Run chosen submodules of a model in half precision, and hand float32 back to the rest.

`use_half_precision` wraps each named submodule's ``forward`` in ``torch.autocast`` and casts
what it returns to float32, so the heads, box decoding, mask upsampling and the libraries'
post-processing after it all see float32, as they would in a float32 run. The submodules keep
their names (hooks and state dicts are unchanged); the weights stay float32 and autocast casts
them per op, which is what makes a bf16 run agree with fp32 to within rounding.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import torch

from playground.core.precision import Precision, torch_dtype


def to_float32(value: Any) -> Any:
    """``value`` with every half-precision tensor in it cast to float32: a tensor, or a dict
    (model outputs included, changed in place), list or tuple holding them."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype in (torch.bfloat16, torch.float16) else value
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = to_float32(item)
        return value
    if isinstance(value, list):
        return [to_float32(item) for item in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(to_float32(item) for item in value)
    return value


def use_half_precision(model: torch.nn.Module, regions: Iterable[str], precision: Precision) -> None:
    """Run each submodule of ``model`` named in ``regions`` ("" is the whole model) under autocast at
    ``precision`` (bf16 or fp16), its outputs cast back to float32."""
    device_type = next(model.parameters()).device.type
    dtype = torch_dtype(precision)
    for name in regions:
        module = model.get_submodule(name)
        module.forward = _autocast_forward(module.forward, device_type, dtype)


def _autocast_forward(forward: Any, device_type: str, dtype: torch.dtype) -> Any:
    @functools.wraps(forward)
    def half_forward(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast(device_type, dtype=dtype):
            outputs = forward(*args, **kwargs)
        return to_float32(outputs)

    return half_forward
