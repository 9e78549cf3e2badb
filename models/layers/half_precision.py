"""Run chosen submodules of a model in half precision, and hand float32 back to the rest.

`use_half_precision` stores each named submodule's weights in the half dtype once, wraps its
``forward`` in ``torch.autocast`` and casts what it returns to float32, so the heads, box
decoding, mask upsampling and the libraries' post-processing after it all see float32, as they
would in a float32 run. The submodules keep their names (hooks and state-dict keys are
unchanged; ``load_state_dict`` casts float32 weights in).

Why both: autocast alone keeps fp32 weights and casts every one of them again on every forward,
a copy of every weight per call; weights cast once give the same error against fp32 without it.
Autocast stays on around the cast weights, so a float32 tensor that meets them (an input,
a positional encoding the model builds in float32) is cast per op instead of raising.
Normalisation layers keep float32 parameters, as in the usual mixed-precision recipe: they are
few bytes, torch's CPU kernels take a bf16 input with float32 parameters, and a float32 input
that meets bf16 LayerNorm parameters raises ("mixed dtype (CPU)").

`created_in` makes a random build create its weights in the half dtype to begin with, and
`float32_outside` casts what lies outside the regions back up: a float32 build cast afterwards
holds the whole float32 model first, a transient memory peak above where the load settles.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from playground.core.patches import Patch
from playground.core.precision import Precision, torch_dtype

NORMALISATION_LAYERS = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._NormBase)
"""Layers whose parameters stay float32 inside a half-precision region."""
HALF_DTYPES = (torch.bfloat16, torch.float16)
FLOAT_FACTORIES = frozenset({torch.empty, torch.zeros, torch.ones, torch.rand, torch.randn, torch.empty_strided})
"""Factories that make torch's default float dtype when given none, whatever their arguments
(unlike ``full`` or ``arange``, whose dtype follows their values): the ones layers build weights with."""


class _FactoryDtype(TorchFunctionMode):
    """Gives `FLOAT_FACTORIES` called without a dtype ``dtype`` instead of float32. A torch function
    mode holds for the thread that enters it, unlike ``torch.set_default_dtype``, which would reach
    the other requests' threads."""

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FLOAT_FACTORIES and kwargs.get("dtype") is None:
            kwargs = {**kwargs, "dtype": self.dtype}
        return func(*args, **kwargs)


@contextlib.contextmanager
def created_in(precision: Precision) -> Iterator[None]:
    """Weights and buffers that this thread's layers create inside are ``precision`` (fp32: no change)."""
    if precision == "fp32":
        yield
        return
    with _FactoryDtype(torch_dtype(precision)):
        yield


def float32_outside(model: torch.nn.Module, regions: Iterable[str]) -> None:
    """Cast every half-precision weight and buffer of ``model`` outside ``regions`` to float32."""
    inside = {id(part) for name in regions for part in model.get_submodule(name).modules()}
    for module in model.modules():
        if id(module) in inside:
            continue
        for name, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            if tensor.dtype in HALF_DTYPES:
                if isinstance(tensor, torch.nn.Parameter):
                    tensor.data = tensor.data.float()
                else:
                    persistent = name not in module._non_persistent_buffers_set
                    module.register_buffer(name, tensor.float(), persistent=persistent)


def to_float32(value: Any) -> Any:
    """``value`` with every half-precision tensor in it cast to float32: a tensor, or a dict
    (model outputs included, changed in place), list or tuple holding them."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype in HALF_DTYPES else value
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = to_float32(item)
        return value
    if isinstance(value, list):
        return [to_float32(item) for item in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(to_float32(item) for item in value)
    return value


CHANNELS_LAST = Patch(
    replaced="the weights' memory format (contiguous, NCHW)",
    by="channels-last (NHWC)",
    why="the layout oneDNN's and cuDNN's half-precision convolution kernels read fastest",
    count=1,
)


def use_half_precision(
    model: torch.nn.Module, regions: Iterable[str], precision: Precision, channels_last: bool = False
) -> tuple[torch.nn.Module, list[Patch]]:
    """Run each submodule of ``model`` named in ``regions`` ("" is the whole model) at ``precision``
    (bf16 or fp16): its floating-point weights and buffers cast to that dtype, its forward under
    autocast, its outputs cast back to float32; everything outside stays float32, and a
    ``channels_last`` (convolutional) model changes memory format. Returns the model and one
    `Patch` per change."""
    regions = tuple(regions)
    float32_outside(model, regions)
    patches = []
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        patches.append(CHANNELS_LAST)
    device_type = next(model.parameters()).device.type
    dtype = torch_dtype(precision)
    for name in regions:
        module = model.get_submodule(name)
        module.to(dtype)
        for part in module.modules():
            if isinstance(part, NORMALISATION_LAYERS):
                part.float()
        module.forward = _autocast_forward(module.forward, device_type, dtype)
        patches.append(
            Patch(
                replaced=f"{type(module).__name__}.forward ({name or 'the whole model'})",
                by=f"the same forward under torch.autocast({device_type}, {precision}), outputs cast to float32",
                why="the heavy part in half precision; norms, heads and post-processing stay float32",
                count=1,
            )
        )
    return model, patches


def _autocast_forward(forward: Any, device_type: str, dtype: torch.dtype) -> Any:
    @functools.wraps(forward)
    def half_forward(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast(device_type, dtype=dtype):
            outputs = forward(*args, **kwargs)
        return to_float32(outputs)

    return half_forward
