"""Masks worked on inside their extents give exactly what the whole-image numpy operations give, and a
panel re-drawn from a stored prediction at new thresholds equals the one drawn from a filtered copy."""

from __future__ import annotations

import numpy as np
import pytest

from playground.bench.fixtures import blob_prediction, noise_image
from playground.core import mask_extents
from playground.core.types import boxes_from_masks
from playground.render.export import to_json
from playground.render.overlay import render
from playground.render.views import ViewOptions, make_panel, shown_prediction
from playground.runtime.service import Outcome


@pytest.fixture
def stored():
    """40 soft blob masks on 256 px, two of them empty (all-zero soft mask)."""
    prediction = blob_prediction(side=256, count=40, seed=3)
    prediction.mask_probs[[5, 17]] = 0
    prediction.masks = prediction.mask_probs >= 128
    return prediction


def test_extents_bound_each_mask_and_soft_mask(stored):
    extents = stored.mask_extents()
    boxes = boxes_from_masks(stored.mask_probs > 0)
    nonempty = stored.mask_probs.any(axis=(1, 2))
    assert not nonempty[[5, 17]].any() and (extents[[5, 17], 0] == extents[[5, 17], 2]).all()
    # the soft masks' tight boxes (inclusive edges) are the extents (exclusive ends)
    np.testing.assert_array_equal(
        extents[nonempty], boxes[nonempty][:, [1, 0, 3, 2]].astype(int) + np.array([0, 0, 1, 1])
    )


def test_take_binarise_and_areas_equal_whole_image_numpy(stored):
    extents = stored.mask_extents()
    chosen = np.array([3, 0, 17, 39, 3])
    np.testing.assert_array_equal(mask_extents.take(stored.mask_probs, chosen, extents), stored.mask_probs[chosen])
    np.testing.assert_array_equal(
        mask_extents.binarise(stored.mask_probs, extents, 0.3), stored.mask_probs >= 0.3 * 255
    )
    np.testing.assert_array_equal(mask_extents.areas(stored.masks, extents), stored.masks.sum(axis=(1, 2)))


def test_selection_and_rethreshold_keep_the_dense_results(stored):
    keep = stored.scores > 0.4
    selected = stored[keep]
    np.testing.assert_array_equal(selected.masks, stored.masks[keep])
    np.testing.assert_array_equal(selected.mask_probs, stored.mask_probs[keep])
    np.testing.assert_array_equal(selected.mask_extents(), stored.mask_extents()[keep])
    np.testing.assert_array_equal(stored.with_mask_threshold(0.7).masks, stored.mask_probs >= 0.7 * 255)
    np.testing.assert_array_equal(stored.with_mask_threshold(0.0).masks, np.ones_like(stored.masks))


def test_extents_follow_masks_assigned_later(stored):
    before = stored.mask_extents()
    stored.masks = np.zeros_like(stored.masks)
    stored.masks[0, :, :] = True  # now reaches outside the soft mask's extent
    stored.mask_probs = None
    assert stored.mask_extents()[0].tolist() == [0, 0, 256, 256]
    assert not np.array_equal(before, stored.mask_extents())


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
def test_panel_at_new_thresholds_equals_the_dense_path(stored, threshold):
    image = noise_image(256)
    options = ViewOptions(score_threshold=threshold, mask_threshold=threshold)
    panel = make_panel(image, Outcome("mask-rcnn", stored), options, legend=False)
    dense = shown_prediction(stored, options)
    assert 0 < len(dense) < len(stored)
    np.testing.assert_array_equal(panel.overlay, render(image, dense, options.opacity, legend=False))
    expected = to_json(dense)["instances"]
    assert [i["mask_area"] for i in panel.result["instances"]] == [i["mask_area"] for i in expected]
    assert panel.result["instances"] == expected
