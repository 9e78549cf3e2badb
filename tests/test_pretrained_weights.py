"""The real checkpoints give real answers (``pytest -m weights``).

Each test is skipped unless its checkpoint is already in the local cache (fetch them with
``python -m playground download KEY``). Images are scikit-image's bundled photographs.
"""

from __future__ import annotations

import numpy as np
import pytest

from playground.core.registry import get_spec
from playground.runtime.manager import ModelManager

pytestmark = pytest.mark.weights


def needs_weights(key: str) -> None:
    from playground.core.weights import is_cached

    if not is_cached(get_spec(key)):
        pytest.skip(f"{key}: checkpoint not in the local cache (python -m playground download {key})")


@pytest.fixture(scope="module")
def manager() -> ModelManager:
    return ModelManager(weights="pretrained")


def skimage_image(name: str) -> np.ndarray:
    from skimage import data

    return getattr(data, name)()


@pytest.mark.parametrize("key", ["faster-rcnn", "retinanet", "detr", "mask-rcnn"])
def test_a_person_on_astronaut(manager, key):
    needs_weights(key)
    prediction = manager.predict(key, skimage_image("astronaut"))
    person = prediction[np.array([label == "person" for label in prediction.labels], bool)]
    assert len(person) and person.scores.max() > 0.9, prediction.labels[:10]


def test_a_person_segment_on_astronaut_with_maskformer(manager):
    needs_weights("maskformer")
    prediction = manager.predict("maskformer", skimage_image("astronaut"), task="panoptic")
    persons = [i for i, label in enumerate(prediction.labels) if label == "person"]
    assert persons and prediction.is_thing[persons].all() and prediction.masks[persons].mean() > 0.1


def test_a_cat_on_chelsea_with_fcn(manager):
    needs_weights("fcn")
    prediction = manager.predict("fcn", skimage_image("chelsea"))
    assert prediction.semantic_areas().get("cat", 0.0) > 0.3, prediction.semantic_areas()


@pytest.mark.parametrize("key", ["faster-rcnn", "detr"])
def test_a_cup_on_coffee(manager, key):
    needs_weights(key)
    prediction = manager.predict(key, skimage_image("coffee"))
    cups = [score for label, score in zip(prediction.labels, prediction.scores) if label == "cup"]
    assert cups and max(cups) > 0.5, list(zip(prediction.labels, prediction.scores))[:10]
