import numpy as np
import pytest

from playground.core.types import Prediction


def make(n: int = 3, with_masks: bool = True) -> Prediction:
    masks = np.zeros((n, 4, 5), bool)
    for i in range(n):
        masks[i, i % 4, i % 5] = True
    return Prediction(
        model="m",
        task="instance",
        weights="tiny",
        image_size=(4, 5),
        label_names={0: "cat", 1: "dog"},
        boxes=np.arange(n * 4).reshape(n, 4),
        scores=np.linspace(0.1, 0.9, n),
        class_ids=np.arange(n) % 2,
        masks=masks if with_masks else None,
    )


def test_boolean_index_filters_every_instance_field():
    prediction = make()
    kept = prediction[prediction.scores > 0.4]
    assert len(kept) == 2
    assert kept.labels == ["dog", "cat"]
    np.testing.assert_array_equal(kept.masks, prediction.masks[1:])
    np.testing.assert_array_equal(kept.boxes, prediction.boxes[1:])


def test_filtered_by_score_and_labels():
    prediction = make()
    assert prediction.filtered(0.0, frozenset({"cat"})).labels == ["cat", "cat"]
    assert len(prediction.filtered(0.95)) == 0


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        Prediction("m", "detection", "tiny", (4, 5), {}, boxes=np.zeros((2, 4)), scores=[0.5], class_ids=[0, 1])


def test_masks_must_match_the_image_size():
    with pytest.raises(ValueError, match="masks"):
        Prediction("m", "instance", "tiny", (4, 5), {}, np.zeros((1, 4)), [0.5], [0], masks=np.zeros((1, 3, 3)))


def test_mask_threshold_rebinarises_soft_masks():
    probs = np.array([[[0, 127, 128, 255]]], np.uint8)
    prediction = Prediction("m", "instance", "tiny", (1, 4), {}, np.zeros((1, 4)), [0.9], [0], mask_probs=probs)
    assert prediction.with_mask_threshold(0.5).masks.tolist() == [[[False, False, True, True]]]
    assert prediction.with_mask_threshold(0.9).masks.tolist() == [[[False, False, False, True]]]


def test_semantic_areas_sum_to_one_and_name_classes():
    label_map = np.array([[0, 0, 1, 1], [1, 1, 1, 2]], np.int32)
    prediction = Prediction("m", "semantic", "tiny", (2, 4), {0: "bg", 1: "cat"}, semantic_map=label_map)
    areas = prediction.semantic_areas()
    assert list(areas) == ["cat", "bg", "class 2"]
    assert areas["cat"] == pytest.approx(5 / 8)
    assert sum(areas.values()) == pytest.approx(1.0)
