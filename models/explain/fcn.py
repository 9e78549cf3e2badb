"""FCN: the classifier's own coarse score map, before the upsampling to the input's size."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from models.explain.capture import Explainer, Records, numpy


class FCNExplainer(Explainer):
    """Keeps ``classifier``'s output: (C, h, w) logits on the backbone's 1/8 grid (float32, about
    0.5 MB at 520 px), and the network input's (height, width) it is upsampled to."""

    hooks = ("classifier",)

    def capture(
        self, records: Records, adapter: Any, inputs: torch.Tensor, outputs: Any, prediction: Any
    ) -> dict[str, np.ndarray]:
        coarse = records["classifier"][0]
        return {
            "coarse_logits": numpy(coarse),
            "input_size": np.array(inputs.shape[-2:], np.int32),
        }
