"""U-Net: activation energy at each level of the contracting and expanding paths."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from models.explain.capture import Explainer, Records, numpy, shrink

ENCODER = ("inc", "down1", "down2", "down3", "down4")
"""Contracting path, full resolution down to the 1/16 bottleneck."""
DECODER = ("up4", "up3", "up2", "up1")
"""Expanding path, listed by the encoder level each one's skip comes from (inc, down1, down2, down3)."""
LONGEST = 128
"""Longest side (pixels) an energy map is kept at: a picture, not the activation itself."""


class UNetExplainer(Explainer):
    """Per level: the mean squared activation over channels, (h, w) float32 shrunk to `LONGEST`,
    and the level's real (channels, height, width)."""

    hooks = ENCODER + DECODER

    def reduce(self, name: str, module: torch.nn.Module, output: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        # One fp32-accumulating pass over the (bf16, channels-last) activation, no full fp32 copy.
        energy = torch.linalg.vector_norm(output[0], dim=0, dtype=torch.float32).square_() / output.shape[1]
        return shrink(energy, LONGEST), tuple(output.shape[1:])

    def capture(
        self, records: Records, adapter: Any, inputs: Any, outputs: Any, prediction: Any
    ) -> dict[str, np.ndarray]:
        captured: dict[str, np.ndarray] = {}
        for name in self.hooks:
            energy, shape = records[name]
            captured[f"energy.{name}"] = numpy(energy)
            captured[f"shape.{name}"] = np.array(shape, np.int32)
        return captured
