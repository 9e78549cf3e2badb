"""`replace_forwards` finds layers by class name, subclasses included, and binds the new forward to
those layers only: other classes, and other models of the same class, keep their own."""

from __future__ import annotations

import torch
from torch import nn

from models.layers.forward_swap import replace_forwards


class Scale(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


class ScaleSubclass(Scale):
    pass


class Shift(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


def negate_and_count(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    self.calls = getattr(self, "calls", 0) + 1
    return -x


def test_layers_of_the_class_and_its_subclasses_get_the_forward_bound_to_them() -> None:
    model = nn.Sequential(Scale(), ScaleSubclass(), Shift(), nn.Sequential(Scale()))
    untouched = Scale()
    assert replace_forwards(model, "Scale", negate_and_count) == 3
    x = torch.ones(2)
    torch.testing.assert_close(model(x), -(x + 1))  # negated twice, shifted by its own + 1, negated
    assert [getattr(layer, "calls", 0) for layer in (model[0], model[1], model[2], model[3][0])] == [1, 1, 0, 1]
    torch.testing.assert_close(untouched(x), x * 2)
    assert replace_forwards(model, "Missing", negate_and_count) == 0
