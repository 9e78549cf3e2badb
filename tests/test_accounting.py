"""The memory the manager reports is every byte an adapter holds: parameters, buffers and every
cache entry; the result cache counts whole predictions (soft masks included); unknown parameters
are refused and post-processing parameters stay out of the result-cache key."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from playground.core.cache import deep_nbytes
from playground.core.errors import UnknownParameterError
from playground.core.types import Prediction, boxes_from_masks
from playground.runtime.manager import MB, ModelManager
from playground.runtime.service import Playground

pytestmark = pytest.mark.usefixtures("fast_cpu")


def weights_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


@pytest.mark.parametrize("key", ["fcn", "maskformer", "sam", "grounding-dino"])
def test_reported_bytes_are_weights_plus_cache_entries(key, astronaut) -> None:
    manager = ModelManager(weights="tiny", device="cpu")
    image = astronaut[:96, :128]
    params = {"sam": {"points": ((10, 10, 1),)}, "grounding-dino": {"text": "cat"}}.get(key, {})
    manager.predict(key, image, **params)
    with manager.use(key) as (adapter, _):
        cached = sum(deep_nbytes(value) for cache in adapter.caches for value in cache._items.values())
        expected = weights_bytes(adapter.model) + cached
    if key != "fcn":
        assert cached > 0  # these adapters keep an embedding or raw outputs per image
    (row,) = manager.loaded
    assert row.megabytes * MB == pytest.approx(expected)
    assert manager.used_bytes == expected


def test_unloading_frees_the_caches(astronaut) -> None:
    manager = ModelManager(weights="tiny", device="cpu")
    manager.predict("sam", astronaut[:96, :128], points=((10, 10, 1),))
    with manager.use("sam") as (adapter, _):
        assert adapter.embeddings.nbytes > 0
    assert manager.unload("sam")
    assert adapter.embeddings.nbytes == 0 and adapter.nbytes == 0


def test_a_cached_prediction_counts_its_soft_masks() -> None:
    masks = np.zeros((3, 40, 50), bool)
    probs = np.full((3, 40, 50), 200, np.uint8)
    prediction = Prediction("mask-rcnn", "instance", "tiny", (40, 50), {}, np.zeros((3, 4)), np.ones(3), np.ones(3))
    without = prediction.nbytes
    prediction.masks, prediction.mask_probs = masks, probs
    assert prediction.nbytes == without + masks.nbytes + probs.nbytes
    playground = Playground(ModelManager(weights="tiny", device="cpu"))
    playground.cache.put("key", prediction)
    assert playground.cache.nbytes == prediction.nbytes


def test_unknown_parameters_are_refused_before_anything_runs(astronaut) -> None:
    playground = Playground(ModelManager(weights="tiny", device="cpu"))
    with pytest.raises(UnknownParameterError, match="has no parameter 'treshold'; it takes no parameters"):
        playground.predict("detr", astronaut, treshold=0.3)
    with pytest.raises(UnknownParameterError, match="it takes box_threshold, text, text_threshold"):
        playground.predict("grounded-sam", astronaut, text="cat", box_treshold=0.3)
    assert playground.forward_count == 0 and not playground.manager.loaded


def test_only_forward_parameters_key_the_result_cache(astronaut) -> None:
    playground = Playground(ModelManager(weights="tiny", device="cpu"))
    image = astronaut[:96, :128]
    low = playground.predict("grounding-dino", image, task="text", text="cat", box_threshold=0.0)
    with playground.manager.use("grounding-dino") as (adapter, _):
        runs = adapter.raw_outputs.computes
    high = playground.predict("grounding-dino", image, task="text", text="cat", box_threshold=0.9)
    assert len(playground.cache) == 1  # one entry per forward, whatever the threshold
    assert len(high) <= len(low) and adapter.raw_outputs.computes == runs  # no second forward
    again = playground.predict("grounding-dino", image, task="text", text="cat", box_threshold=0.9)
    assert again.cached and len(again) == len(high)
    playground.predict("grounding-dino", image, task="text", text="dog", box_threshold=0.9)
    assert len(playground.cache) == 2


def test_boxes_from_masks_match_supervision() -> None:
    """One box convention: XYXY pixels with the right and bottom edges inclusive."""
    import supervision as sv

    masks = np.zeros((2, 10, 12), bool)
    masks[0, 2:5, 3:8] = True  # rows 2..4, columns 3..7
    masks[1, 9, 11] = True
    boxes = boxes_from_masks(masks)
    np.testing.assert_array_equal(boxes[0], [3, 2, 7, 4])
    np.testing.assert_array_equal(boxes, sv.mask_to_xyxy(masks))
    np.testing.assert_array_equal(boxes_from_masks(np.zeros((1, 4, 4), bool)), [[0, 0, 0, 0]])


def test_a_cached_prediction_counts_its_explain_arrays() -> None:
    prediction = Prediction("fcn", "semantic", "tiny", (40, 50), {})
    without = prediction.nbytes
    prediction.explain = {"coarse_logits": np.zeros((21, 5, 7), np.float32), "input_size": np.array([40, 56])}
    assert prediction.nbytes == without + 21 * 5 * 7 * 4 + prediction.explain["input_size"].nbytes
    assert prediction[[]].explain.keys() == prediction.explain.keys()  # kept when instances are filtered
