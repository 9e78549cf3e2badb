"""`roi_align_levels` pools what torchvision's ``MultiScaleRoIAlign`` pools, and Faster and Mask R-CNN
builds use it (the bench's ``library_kernels`` reference keeps torchvision's)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from conftest import count_calls
from torchvision.ops import MultiScaleRoIAlign

from models.layers import roi_align
from models.layers.roi_align import replace_multiscale_roi_align
from playground.runtime.manager import ModelManager

IMAGE = (200, 272)
NAMES = ["0", "1", "2", "3"]


def fpn_maps(dtype: torch.dtype, channels_last: bool = False) -> OrderedDict[str, torch.Tensor]:
    """Two images' FPN maps at strides 4 to 32, plus a "pool" level that is not pooled."""
    generator = torch.Generator().manual_seed(0)
    height, width = IMAGE
    maps = OrderedDict(
        (str(level), torch.randn(2, 6, height >> level + 2, width >> level + 2, generator=generator, dtype=dtype))
        for level in range(4)
    )
    maps["pool"] = torch.randn(2, 6, 4, 5, generator=generator, dtype=dtype)
    if channels_last:
        maps = OrderedDict((name, level.contiguous(memory_format=torch.channels_last)) for name, level in maps.items())
    return maps


def boxes_of_two_images(dtype: torch.dtype) -> list[torch.Tensor]:
    """Boxes of every size, some partly or wholly outside the image, some thinner than a pixel."""
    generator = torch.Generator().manual_seed(1)
    height, width = IMAGE
    centres = torch.rand(300, 2, generator=generator, dtype=dtype) * torch.tensor([width, height]) * 1.2 - 10
    sizes = torch.rand(300, 2, generator=generator, dtype=dtype) ** 3 * torch.tensor([width, height]) + 0.1
    boxes = torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1)
    edges = [
        [0, 0, width, height],
        [-5, -5, 3, 3],
        [width - 1, height - 1, width + 20, height + 20],
        [10, 10, 10.2, 10.3],
    ]
    boxes[:4] = torch.tensor(edges, dtype=dtype)
    return [boxes[:150], boxes[150:]]


def pools(output_size: int, sampling_ratio: int = 2) -> tuple[MultiScaleRoIAlign, MultiScaleRoIAlign]:
    """(torchvision's pool, the same pool replaced)."""
    library, fast = (MultiScaleRoIAlign(NAMES, output_size, sampling_ratio) for _ in range(2))
    assert replace_multiscale_roi_align(torch.nn.Sequential(fast)) == 1
    return library, fast


@pytest.mark.parametrize("output_size", [7, 14])
def test_it_is_torchvisions_pooling_exactly_in_float64(output_size) -> None:
    library, fast = pools(output_size)
    maps, boxes = fpn_maps(torch.float64), boxes_of_two_images(torch.float64)
    expected = library(maps, boxes, [IMAGE, IMAGE])
    found = fast(maps, boxes, [IMAGE, IMAGE])
    assert found.shape == expected.shape == (300, 6, output_size, output_size)
    torch.testing.assert_close(found, expected, rtol=0, atol=1e-12)


def test_it_matches_in_float32_on_channels_last_maps() -> None:
    library, fast = pools(7)
    maps, boxes = fpn_maps(torch.float32, channels_last=True), boxes_of_two_images(torch.float32)
    found = fast(maps, boxes, [IMAGE, IMAGE])
    assert found.dtype == torch.float32
    torch.testing.assert_close(found, library(maps, boxes, [IMAGE, IMAGE]), rtol=1e-4, atol=1e-4)


def test_no_boxes_and_an_adaptive_grid() -> None:
    maps = fpn_maps(torch.float32)
    library, fast = pools(7)
    empty = [torch.zeros(0, 4), torch.zeros(0, 4)]
    assert fast(maps, empty, [IMAGE, IMAGE]).shape == (0, 6, 7, 7)
    library, fast = pools(7, sampling_ratio=0)  # a per-RoI grid: torchvision's own code runs
    boxes = boxes_of_two_images(torch.float32)
    assert torch.equal(fast(maps, boxes, [IMAGE, IMAGE]), library(maps, boxes, [IMAGE, IMAGE]))


@pytest.fixture
def counted(monkeypatch) -> list[int]:
    """Counts the calls of `roi_align_levels` made by replaced pools."""
    return count_calls(monkeypatch, roi_align, "roi_align_levels")


@pytest.mark.parametrize("key", ["faster-rcnn", "mask-rcnn"])
def test_the_two_stage_detectors_pool_with_it_and_find_the_same(key, astronaut, counted) -> None:
    """The playground build pools with `roi_align_levels`, a ``library_kernels`` build with
    torchvision's; from the same weights they find the same boxes, scores and masks."""
    image = np.ascontiguousarray(astronaut[:96, :128])
    fast = ModelManager(weights="tiny", device="cpu", precision="fp32")
    library = ModelManager(weights="tiny", device="cpu", precision="fp32", library_kernels=True)
    with fast.use(key) as (adapter, _), library.use(key) as (reference, _):
        adapter.adopt(reference.model)
        with torch.inference_mode():
            found = adapter.forward(adapter.preprocess(image, "detection"))
            assert counted, "the playground build did not pool with roi_align_levels"
            del counted[:]
            expected = reference.forward(reference.preprocess(image, "detection"))
            assert not counted, "the library_kernels build was replaced"
    assert len(expected["boxes"]) > 0
    assert found.keys() == expected.keys()
    for name in found:
        torch.testing.assert_close(found[name], expected[name], rtol=1e-4, atol=1e-4)
