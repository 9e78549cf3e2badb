"""Batch norms folded into the convolutions that feed them, for inference.

In eval mode a batch norm after a convolution is a per-channel scale and shift, so it can be
merged into the convolution's weights and bias (``torch.nn.utils.fusion.fuse_conv_bn_weights``): one
pass over the activations instead of two, and no float32 normalisation between bf16 convolutions.

The norms folded: ``nn.BatchNorm2d`` in eval mode, and the frozen batch norms that detection
backbones hold (torchvision's ``FrozenBatchNorm2d``, which its detectors use with trained weights,
and transformers' DETR and D-FINE copies of it, which add a fixed 1e-5 before the square root).

Only pairs whose data flow is certain are folded: neighbours in a container that runs its children
in order (``nn.Sequential`` and the subclasses that keep its forward, such as torchvision's
``Conv2dNormActivation``; torchvision's ``IntermediateLayerGetter``, timm's ``FeatureListNet``), and the named pairs of
blocks whose forward feeds the convolution straight into the norm. Classes are named by their
qualified names, so this module imports no model library. The fold is computed in float32 and cast
back to the convolution's dtype, so a float32 checkpoint's folded weights are rounded once, as its
unfolded ones would be.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from playground.core.patches import Patch

FOLDED = Patch(
    replaced="batch norms (BatchNorm2d, torchvision's and transformers' FrozenBatchNorm2d) after a Conv2d",
    by="nn.Identity, their scale and shift folded into the convolution's weights (torch's fuse_conv_bn_weights)",
    why="one pass over the activations instead of two; equal to the library to about 1e-6 in float32",
    devices=(),  # every device: the folded network does strictly less work, whatever runs it
)

IN_ORDER = frozenset({"torchvision.models._utils.IntermediateLayerGetter", "timm.models._features.FeatureListNet"})
"""Containers besides ``nn.Sequential`` (and its subclasses that keep its forward) whose forward runs
each child on the previous child's output."""
CONVOLUTION_THEN_NORM = (("convolution", "normalization"),)
NAMED_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "torchvision.models.resnet.Bottleneck": (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")),
    "torchvision.models.resnet.BasicBlock": (("conv1", "bn1"), ("conv2", "bn2")),
    "torchvision.models.resnet.ResNet": (("conv1", "bn1"),),
    "timm.models.resnet.Bottleneck": (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")),
    "timm.models.resnet.BasicBlock": (("conv1", "bn1"), ("conv2", "bn2")),
    "transformers.models.resnet.modeling_resnet.ResNetConvLayer": CONVOLUTION_THEN_NORM,
    "transformers.models.resnet.modeling_resnet.ResNetShortCut": CONVOLUTION_THEN_NORM,
    "transformers.models.hgnet_v2.modeling_hgnet_v2.HGNetV2ConvLayer": CONVOLUTION_THEN_NORM,
    "transformers.models.d_fine.modeling_d_fine.DFineConvNormLayer": (("conv", "norm"),),
}
"""Modules whose forward feeds ``conv`` straight into ``norm`` and nowhere else."""
FIXED_EPSILON = {
    "transformers.models.detr.modeling_detr.DetrFrozenBatchNorm2d": 1e-5,
    "transformers.models.d_fine.modeling_d_fine.DFineFrozenBatchNorm2d": 1e-5,
}
"""Frozen batch norms without an ``eps`` attribute, and the epsilon their forward adds."""
WITH_EPSILON = frozenset({"torch.nn.modules.batchnorm.BatchNorm2d", "torchvision.ops.misc.FrozenBatchNorm2d"})
"""Batch norms whose ``eps`` attribute is the epsilon their forward adds."""


def fold_batch_norms(model: nn.Module) -> int:
    """Fold every certain ``Conv2d`` -> batch norm pair of ``model`` (in eval mode) into one
    ``Conv2d``, the norm replaced by ``nn.Identity``; returns how many were folded."""
    folded = 0
    for module in list(model.modules()):
        for conv_name, norm_name in _pairs(module):
            conv, norm = module._modules[conv_name], module._modules[norm_name]
            epsilon = _epsilon(norm)
            if epsilon is None or type(conv) is not nn.Conv2d or conv.out_channels != norm.running_mean.numel():
                continue
            _fold_into(conv, norm, epsilon)
            module._modules[norm_name] = nn.Identity()
            folded += 1
    return folded


def _fold_into(conv: nn.Conv2d, norm: nn.Module, epsilon: float) -> None:
    """Give ``conv`` the weights and bias of ``conv`` then ``norm``, computed in float32 one layer
    at a time (a float32 copy of the whole model first raised the load's memory peak)."""

    def as_float(tensor: torch.Tensor | None) -> torch.Tensor | None:
        return None if tensor is None else tensor.detach().float()

    weight, bias = fuse_conv_bn_weights(
        as_float(conv.weight),
        as_float(conv.bias),
        as_float(norm.running_mean),
        as_float(norm.running_var),
        epsilon,
        as_float(norm.weight),
        as_float(norm.bias),
    )
    dtype = conv.weight.dtype
    conv.weight = nn.Parameter(weight.detach().to(dtype), requires_grad=False)
    conv.bias = nn.Parameter(bias.detach().to(dtype), requires_grad=False)


def _pairs(module: nn.Module) -> Iterator[tuple[str, str]]:
    name = _qualified_name(module)
    if type(module).forward is nn.Sequential.forward or name in IN_ORDER:
        yield from pairwise(module._modules)
    yield from NAMED_PAIRS.get(name, ())


def _epsilon(norm: nn.Module | None) -> float | None:
    """The epsilon of ``norm`` if it is a batch norm that computes with its running statistics, else None."""
    name = _qualified_name(norm)
    if name in FIXED_EPSILON:
        return FIXED_EPSILON[name]
    if name in WITH_EPSILON and not norm.training and norm.running_mean is not None:
        return norm.eps
    return None


def _qualified_name(module: nn.Module | None) -> str:
    kind = type(module)
    return f"{kind.__module__}.{kind.__qualname__}"
