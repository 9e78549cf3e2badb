"""The ZeroGPU hook: spaces.GPU where the package exists (on Spaces), a no-op elsewhere."""

from __future__ import annotations

import sys
import types

from playground.ui.common import on_gpu


def run(x: int) -> int:
    return x + 1


def test_without_spaces_the_function_is_unchanged(monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", None)  # import spaces -> ImportError
    assert on_gpu(run) is run


def test_with_spaces_the_function_is_wrapped_by_spaces_gpu(monkeypatch):
    wrapped = []
    fake = types.ModuleType("spaces")
    fake.GPU = lambda function: wrapped.append(function) or (lambda *a, **k: function(*a, **k))
    monkeypatch.setitem(sys.modules, "spaces", fake)
    decorated = on_gpu(run)
    assert wrapped == [run] and decorated is not run
    assert decorated(1) == 2
