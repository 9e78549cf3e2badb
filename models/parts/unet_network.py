"""The U-Net of Ronneberger et al. (2015), small enough to read in one sitting.

Contracting path: four times "halve the size, double the channels". Expanding path: four times
"double the size, halve the channels, then concatenate the feature map of the same size from the
contracting path" (the skip connection). A 1x1 convolution turns the last features into class
logits. Convolutions are padded, so the output has the input's height and width.

Module names follow the classic ``milesial/Pytorch-UNet`` code, so its published Carvana
checkpoint loads into this module unchanged: ``inc``, ``down1``..``down4`` (``maxpool_conv``),
``up1``..``up4`` (``up``: a transposed convolution, ``conv``) and ``outc`` (``conv``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CARVANA_WIDTHS = (64, 128, 256, 512, 1024)
"""Channels at each of the five depths of the published Carvana U-Net (bilinear=False)."""


class DoubleConv(nn.Module):
    """(3x3 conv -> batch norm -> ReLU) twice: (B, C_in, H, W) -> (B, C_out, H, W).

    The convolutions have no bias: the batch norm right after them has its own (the published
    v3.0 checkpoints were saved this way; the older v2.0 ones had conv biases).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class Down(nn.Module):
    """One step down the contracting path: 2x2 max-pool, then `DoubleConv`.

    (B, C_in, H, W) -> (B, C_out, H // 2, W // 2).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)


class Up(nn.Module):
    """One step up the expanding path: upsample x2, concatenate the skip, then `DoubleConv`.

    ``x`` (B, C_in, h, w) is upsampled to (B, C_in / 2, 2h, 2w) by a learned 2x2 transposed
    convolution, padded to the skip's size when an odd size was floored on the way down, and
    concatenated after the skip (B, C_in / 2, H, W) along channels: (B, C_in, H, W) -> `DoubleConv`.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        dy, dx = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], dim=1))  # the skip connection


class UNet(nn.Module):
    """U-Net: (B, in_channels, H, W) float -> (B, num_classes, H, W) logits.

    Args:
        in_channels: input channels (3 for RGB).
        num_classes: output channels, one logit map per class.
        widths: channels at the five depths, from full resolution down to 1/16.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, widths: tuple[int, ...] = CARVANA_WIDTHS) -> None:
        super().__init__()
        w1, w2, w3, w4, w5 = widths
        # contracting path
        self.inc = DoubleConv(in_channels, w1)  # 1
        self.down1 = Down(w1, w2)  # 1/2
        self.down2 = Down(w2, w3)  # 1/4
        self.down3 = Down(w3, w4)  # 1/8
        self.down4 = Down(w4, w5)  # 1/16, the bottleneck
        # expanding path
        self.up1 = Up(w5, w4)  # 1/8
        self.up2 = Up(w4, w3)  # 1/4
        self.up3 = Up(w3, w2)  # 1/2
        self.up4 = Up(w2, w1)  # 1
        self.outc = OutConv(w1, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        x = self.up1(x5, x4)
        x = self.up2(x, x3)
        x = self.up3(x, x2)
        x = self.up4(x, x1)
        return self.outc(x)


class OutConv(nn.Module):
    """1x1 convolution from features to class logits: (B, C, H, W) -> (B, num_classes, H, W)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)
