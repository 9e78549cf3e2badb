"""Tensors inside nested values (tuples, lists, dicts, dataclasses, transformers' ModelOutput),
mapped without the caller knowing the structure: how cached entries move between devices."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


def map_tensors(value: Any, function: Callable[[Any], Any]) -> Any:
    """``value`` with ``function`` applied to every torch tensor in it; containers are rebuilt only
    where a tensor changed, so a no-op (``t.to(its own device)``) returns ``value`` itself."""
    import torch

    if isinstance(value, torch.Tensor):
        return function(value)
    if isinstance(value, dict):
        mapped = {key: map_tensors(item, function) for key, item in value.items()}
        if all(mapped[key] is item for key, item in value.items()):
            return value
        return type(value)(**mapped) if dataclasses.is_dataclass(value) else type(value)(mapped)
    if isinstance(value, (list, tuple)):
        mapped = [map_tensors(item, function) for item in value]
        if all(new is old for new, old in zip(mapped, value)):
            return value
        return type(value)(*mapped) if hasattr(value, "_fields") else type(value)(mapped)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            field.name: map_tensors(getattr(value, field.name), function)
            for field in dataclasses.fields(value)
            if field.init
        }
        if all(changes[name] is getattr(value, name) for name in changes):
            return value
        return dataclasses.replace(value, **changes)
    return value


def to_device(value: Any, device: Any) -> Any:
    """``value`` with every tensor on ``device`` (itself when they already are)."""
    return map_tensors(value, lambda tensor: tensor.to(device))


def to_cpu(value: Any) -> Any:
    """``value`` with every tensor on the CPU: what may cross a process boundary."""
    return map_tensors(value, lambda tensor: tensor.detach().cpu())
