"""`pasted_masks` gives what torchvision's own full-stack paste gives, converted as the playground
stores it (boxes inside, across the border and outside the image, and an all-zero mask), with the
extents a scan would find, pasting one mask at a time (CPU) or a few (CUDA, MPS); `upsampled_argmax`
gives the argmax of the whole upsampled stack."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image

from models.layers import image_masks
from models.layers.image_masks import pasted_masks
from playground.core.mask_extents import extents_of


@pytest.mark.parametrize("device_path", [False, True], ids=["one at a time (CPU)", "in chunks (CUDA, MPS)"])
def test_masks_pasted_one_at_a_time_equal_the_librarys_stack(device_path, monkeypatch) -> None:
    """On a CPU each mask is pasted alone; off it, `MASKS_PER_PASTE` at once (here 2, run on the CPU)."""
    if device_path:
        monkeypatch.setattr(image_masks, "ONE_AT_A_TIME", ())
        monkeypatch.setattr(image_masks, "MASKS_PER_PASTE", 2)
    torch.manual_seed(0)
    size = (90, 120)
    roi_masks = torch.rand(5, 1, 28, 28)
    roi_masks[3] = 0.0
    inside, across, edge = [10.0, 5.0, 60.0, 40.0], [-20.0, 70.0, 30.0, 130.0], [100.5, 0.0, 119.0, 89.0]
    boxes = torch.tensor([inside, across, edge, [5.0, 5.0, 50.0, 50.0], [200.0, 200.0, 260.0, 240.0]])
    library = paste_masks_in_image(roi_masks, boxes, size)[:, 0]  # (N, H, W) float32
    found, extents = pasted_masks(roi_masks, boxes, size)
    np.testing.assert_array_equal(found["mask_probs"], (library * 255).round().to(torch.uint8).numpy())
    np.testing.assert_array_equal(found["masks"], (library >= 0.5).numpy())
    assert found["mask_probs"].shape == (5, *size) and found["masks"][:3].any(axis=(1, 2)).all()
    assert not found["masks"][3:].any() and not found["mask_probs"][3:].any()  # zero mask; box off the image
    np.testing.assert_array_equal(extents, extents_of(found["masks"], found["mask_probs"]))


def test_no_detections_give_empty_stacks() -> None:
    found, extents = pasted_masks(torch.zeros(0, 1, 28, 28), torch.zeros(0, 4), (30, 40))
    assert extents.shape == (0, 4)
    assert found["mask_probs"].shape == found["masks"].shape == (0, 30, 40)


def library_argmax(scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The processors' way: upsample every class at once, then argmax."""
    return torch.nn.functional.interpolate(scores[None], size=size, mode="bilinear", align_corners=False)[0].argmax(0)


def test_the_argmax_of_class_scores_upsampled_a_chunk_at_a_time_is_the_whole_stacks() -> None:
    """40 classes (three chunks), with ties across chunks: the earlier class wins them."""
    from models.layers.image_masks import CLASSES_PER_CHUNK, upsampled_argmax

    torch.manual_seed(0)
    scores, size = torch.rand(40, 7, 9), (50, 61)
    scores[2, :3, :3] += 1.0  # class 2 wins the top-left corner...
    scores[CLASSES_PER_CHUNK + 3] = scores[2]  # ...tied everywhere by a class of the next chunk
    found = upsampled_argmax(scores, size)
    assert found.shape == size and (found[:10, :10] == 2).all()
    assert not (found == CLASSES_PER_CHUNK + 3).any()
    torch.testing.assert_close(found, library_argmax(scores, size), rtol=0, atol=0)
    scores[:] = 0.5  # every class tied at every pixel
    assert (upsampled_argmax(scores, size) == 0).all() and (library_argmax(scores, size) == 0).all()
