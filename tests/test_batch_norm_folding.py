"""`fold_batch_norms` merges each batch norm into the convolution that feeds it, only where that is
certain, and leaves every output as it was (to float32 rounding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import resnet18, resnet50
from torchvision.ops.misc import FrozenBatchNorm2d

from models.layers.batch_norm_folding import FIXED_EPSILON, WITH_EPSILON, fold_batch_norms
from playground.runtime.manager import ModelManager


def batch_norms(model: nn.Module) -> list[nn.Module]:
    """The batch norms `fold_batch_norms` knows in ``model``: torch's, and the frozen ones."""
    known = WITH_EPSILON | FIXED_EPSILON.keys()
    return [module for module in model.modules() if f"{type(module).__module__}.{type(module).__qualname__}" in known]


def trained_statistics(model: nn.Module) -> nn.Module:
    """Give every batch norm the non-trivial statistics and affine terms a trained net has."""
    generator = torch.Generator().manual_seed(0)
    for norm in batch_norms(model):
        size = norm.running_mean.numel()
        norm.running_mean.copy_(torch.randn(size, generator=generator) * 0.5)
        norm.running_var.copy_(torch.rand(size, generator=generator) * 2.5 + 0.3)
        norm.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
        norm.bias.data.copy_(torch.randn(size, generator=generator) * 0.3)
    return model.eval()


def norms(model: nn.Module) -> int:
    return len(batch_norms(model))


def frozen_resnet50(num_classes: int) -> nn.Module:
    """ResNet-50 with the frozen norms torchvision's detectors build with trained weights."""
    return resnet50(num_classes=num_classes, norm_layer=FrozenBatchNorm2d)


@pytest.mark.parametrize(
    "build", [resnet18, resnet50, frozen_resnet50], ids=["basic-blocks", "bottlenecks", "frozen-norms"]
)
def test_a_resnet_folds_every_norm_and_gives_the_same_logits(build) -> None:
    """Relative L2 error at float32 rounding (about 1e-6 measured) after 20 or 53 folds."""
    torch.manual_seed(0)
    model = trained_statistics(build(num_classes=10))
    image = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model(image)
    count = norms(model)
    assert fold_batch_norms(model) == count and norms(model) == 0
    with torch.inference_mode():
        assert (model(image) - expected).norm() / expected.norm() < 1e-5


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50"])
def test_a_timm_backbone_in_detr_folds_every_frozen_norm(backbone) -> None:
    """DETR checkpoints name a timm ResNet (DETR-panoptic's does): its frozen norms fold too."""
    from transformers import DetrConfig, DetrForObjectDetection

    torch.manual_seed(0)
    layout = {"d_model": 32, "encoder_layers": 1, "decoder_layers": 1, "encoder_ffn_dim": 32, "decoder_ffn_dim": 32}
    heads = {"num_queries": 5, "encoder_attention_heads": 2, "decoder_attention_heads": 2}
    config = DetrConfig(use_timm_backbone=True, backbone=backbone, use_pretrained_backbone=False, **layout, **heads)
    model = trained_statistics(DetrForObjectDetection(config))
    image = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        expected = model(pixel_values=image).logits
    count = norms(model)
    assert count > 0 and fold_batch_norms(model) == count and norms(model) == 0
    with torch.inference_mode():
        torch.testing.assert_close(model(pixel_values=image).logits, expected, rtol=1e-4, atol=1e-5)


class SideBySide(nn.Module):
    """A conv and a norm registered next to each other whose data flow is not conv -> norm."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.norm(x)


class NormFirst(nn.Sequential):
    """A ``Sequential`` whose own forward runs its second child before its first."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self[0](self[1](x))


def test_only_certain_pairs_are_folded() -> None:
    model = nn.Sequential(
        SideBySide(),
        NormFirst(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)),  # registered conv -> norm, run norm -> conv
        nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU(), nn.BatchNorm2d(4)),  # a ReLU between
        nn.Sequential(nn.ConvTranspose2d(4, 4, 2), nn.BatchNorm2d(4)),  # not a Conv2d
        nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)),  # the one certain pair
    )
    trained_statistics(model)
    image = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        expected = model(image)
    assert fold_batch_norms(model) == 1 and norms(model) == 4
    assert isinstance(model[4][1], nn.Identity)
    with torch.inference_mode():
        torch.testing.assert_close(model(image), expected, rtol=1e-4, atol=1e-5)


def test_a_norm_in_training_mode_is_left_alone() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).train()
    assert fold_batch_norms(model) == 0 and norms(model) == 1


def test_a_bf16_conv_stays_bf16_and_agrees() -> None:
    model = trained_statistics(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)))
    image = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        expected = model(image)
    model[0].bfloat16()
    fold_batch_norms(model)
    assert model[0].weight.dtype == model[0].bias.dtype == torch.bfloat16
    with torch.inference_mode():
        found = model(image.bfloat16()).float()
    assert (found - expected).norm() / expected.norm() < 0.01


DENSE_PARTS = {
    "faster-rcnn": ("backbone", "rpn.head"),
    "mask-rcnn": ("backbone", "rpn.head"),
    "retinanet": ("backbone", "head"),
    "ssdlite": ("backbone", "head"),
    "d-fine": ("model.backbone", "model.encoder"),
}
"""A detector's parts whose outputs do not depend on sorting near-tied scores (NMS, top-k); the
other models are compared on their whole output."""


def flat_tensors(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [tensor for item in value for tensor in flat_tensors(item)] if isinstance(value, list | tuple) else []


def dense_outputs(model: nn.Module, key: str, run) -> list[torch.Tensor]:
    """The outputs of ``model``'s `DENSE_PARTS` while ``run()`` runs it (the whole model if it has none)."""
    recorded: list[torch.Tensor] = []
    parts = [model.get_submodule(name) for name in DENSE_PARTS.get(key, ())]
    hooks = [part.register_forward_hook(lambda _m, _i, out: recorded.extend(flat_tensors(out))) for part in parts]
    try:
        output = run()
    finally:
        for hook in hooks:
            hook.remove()
    return recorded if parts else flat_tensors(output)


@pytest.mark.parametrize(
    "key", ["fcn", "unet", "faster-rcnn", "mask-rcnn", "retinanet", "ssdlite", "detr", "detr-panoptic", "d-fine"]
)
def test_the_conv_net_adapters_fold_their_norms_and_keep_their_outputs(key, astronaut) -> None:
    """A ``library_kernels`` build keeps its norms; given trained-like statistics, the adapter's
    faster layers fold every one of them and the model's outputs stay the same (a detector's
    backbone and dense heads: the boxes it keeps after NMS may swap near-tied ones)."""
    image = np.ascontiguousarray(astronaut[:96, :128])
    task = {"fcn": "semantic", "unet": "semantic", "detr-panoptic": "panoptic"}.get(key, "detection")
    manager = ModelManager(weights="tiny", device="cpu", precision="fp32", library_kernels=True)
    with manager.use(key) as (adapter, _), torch.inference_mode():
        trained_statistics(adapter.model)
        assert norms(adapter.model) > 0
        inputs = adapter.preprocess(image, task)
        expected = dense_outputs(adapter.model, key, lambda: adapter.forward(inputs))
        adapter.use_faster_layers(adapter.model)
        assert norms(adapter.model) == 0
        found = dense_outputs(adapter.model, key, lambda: adapter.forward(inputs))
    assert len(found) == len(expected) > 0
    for folded, library in zip(found, expected, strict=True):
        torch.testing.assert_close(folded, library, rtol=1e-4, atol=1e-4)
