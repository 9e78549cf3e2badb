"""U-Net (our own `models.parts.unet_network.UNet`) with the Carvana checkpoint of ``milesial/Pytorch-UNet``.

The checkpoint (torch hub release v3.0, ``unet_carvana_scale0.5_epoch2.pth``, GPL-3.0) was trained
on the Kaggle Carvana car-masking images at half resolution: 2 classes (background, car),
transposed-convolution upsampling (``bilinear=False``). Pre- and post-processing follow that
repository's ``predict.py``: resize the image by 0.5 (bicubic), divide by 255, and upsample the
logits bilinearly back to the image before the per-pixel arg-max.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from models.base import Adapter
from models.explain.unet import UNetExplainer
from models.parts.unet_network import CARVANA_WIDTHS, UNet
from playground.core.types import Prediction
from playground.core.weights import load_fitting, torchhub_state_dict

CARVANA_LABELS = {0: "background", 1: "car"}
"""The checkpoint's classes; it stores no names, only ``mask_values`` [0, 1] of its training masks."""
INPUT_SCALE = 0.5
"""The image scale the checkpoint was trained and evaluated at."""
TINY_WIDTHS = (4, 8, 16, 32, 64)
"""Channels of the tiny test build (the real one has 64..1024)."""


class UNetAdapter(Adapter):
    """The lecture's U-Net on the Carvana checkpoint (semantic: background / car)."""

    channels_last = True
    explainer = UNetExplainer

    def build(self) -> torch.nn.Module:
        self.label_names = dict(CARVANA_LABELS)
        if self.weights == "tiny":
            return UNet(3, len(CARVANA_LABELS), TINY_WIDTHS)
        state = torchhub_state_dict(self.spec, self.checkpoint) if self.weights == "pretrained" else None
        model = UNet(3, len(CARVANA_LABELS), CARVANA_WIDTHS)
        if state is not None:
            load_fitting(self.spec, model, carvana_state_dict(state), self.checkpoint)
        return model

    preprocess_params = frozenset({"scale"})

    def preprocess(self, image: np.ndarray, task: str, scale: float = INPUT_SCALE) -> torch.Tensor:
        """(H, W, 3) uint8 -> (1, 3, int(H * scale), int(W * scale)) float in [0, 1]."""
        return unet_input(image, scale).to(self.device)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(1, 3, h, w) -> (1, 2, h, w) class logits."""
        return self.model(inputs)

    def postprocess(self, outputs: torch.Tensor, image: np.ndarray, task: str) -> Prediction:
        """Logits upsampled bilinearly to (H, W), then the per-pixel arg-max."""
        logits = F.interpolate(outputs, size=image.shape[:2], mode="bilinear", align_corners=False)
        label_map = logits[0].argmax(dim=0).to(torch.int32).cpu().numpy()
        return self.new_prediction(image, "semantic", semantic_map=label_map)


def unet_input(image: np.ndarray, scale: float = INPUT_SCALE) -> torch.Tensor:
    """The repository's preprocessing: bicubic resize to ``int(scale * side)``, then / 255.

    (H, W, 3) uint8 -> (1, 3, h, w) float32.
    """
    height, width = image.shape[:2]
    size = (max(1, int(scale * width)), max(1, int(scale * height)))
    resized = np.asarray(Image.fromarray(image).resize(size, resample=Image.Resampling.BICUBIC))
    return torch.from_numpy(resized.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def carvana_state_dict(checkpoint: dict) -> dict:
    """The checkpoint's tensors: it also stores ``mask_values`` (the training masks' pixel values)."""
    return {name: value for name, value in checkpoint.items() if name != "mask_values"}
