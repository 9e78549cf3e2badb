"""The real checkpoints give real answers (``pytest -m weights``): every checkpoint, each with an
object it must find on the bundled photos.

Each test is skipped unless its checkpoint is already in the local cache (fetch them with
``python -m playground download KEY``). Images are scikit-image's bundled photographs (examples/).
The expectations were written without the weights at hand (none can be fetched where this was
built): a failure here is either a real defect or an expectation to correct, and says which value.
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


@pytest.mark.parametrize("key", ["faster-rcnn", "retinanet", "detr", "mask-rcnn", "ssdlite", "d-fine"])
def test_a_person_on_astronaut(manager, key):
    needs_weights(key)
    prediction = manager.predict(key, skimage_image("astronaut"))
    person = prediction[np.array([label == "person" for label in prediction.labels], bool)]
    assert len(person) and person.scores.max() > 0.9, prediction.labels[:10]


@pytest.mark.parametrize("key", ["maskformer", "mask2former", "eomt", "detr-panoptic"])
def test_a_person_segment_on_astronaut(manager, key):
    needs_weights(key)
    prediction = manager.predict(key, skimage_image("astronaut"), task="panoptic")
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


def test_the_carvana_unet_finds_no_car_on_a_cat(manager):
    """U-Net's only checkpoint knows cars (Carvana); on a close-up of a cat it must not call most of
    the picture a car, and on the motorcycle it must find some foreground vehicle pixels."""
    needs_weights("unet")
    assert manager.predict("unet", skimage_image("chelsea")).semantic_areas().get("car", 0.0) < 0.5
    assert manager.predict("unet", skimage_image("stereo_motorcycle")[0]).semantic_areas().get("car", 0.0) > 0.01


@pytest.mark.parametrize("key", ["sam", "sam2"])
def test_a_click_on_the_cat_masks_the_cat(manager, key):
    needs_weights(key)
    prediction = manager.predict(key, skimage_image("chelsea"), task="prompt", points=((200.0, 150.0, 1),))
    best = int(np.argmax(prediction.scores))
    area = prediction.masks[best].mean()
    assert prediction.scores[best] > 0.8 and 0.1 < area < 0.9, (prediction.scores, area)


@pytest.mark.parametrize(
    ("key", "floor"),
    [("grounding-dino", 0.35), ("owlv2", 0.1), ("sam3", 0.3), ("grounded-sam", 0.35), ("owlv2-sam", 0.1)],
)
def test_the_text_cat_finds_the_cat(key, floor):
    needs_weights(key)
    from playground.runtime.service import Playground

    playground = Playground(ModelManager(weights="pretrained"))
    prediction = playground.predict(key, skimage_image("chelsea"), task="text", text="cat")
    cats = [score for label, score in zip(prediction.labels, prediction.scores) if label == "cat"]
    assert cats and max(cats) > floor, list(zip(prediction.labels, prediction.scores))[:10]


@pytest.mark.parametrize(("route", "prompt"), [("sam2", {"points": ((150.0, 120.0, 1),)}), ("sam3", {"text": "cat"})])
def test_the_cat_is_tracked_through_the_clip(manager, route, prompt):
    needs_weights(f"{route}-video")
    from pathlib import Path

    from playground.core.videos import ObjectPrompt, VideoPrompt
    from playground.video.clips import open_clip
    from playground.video.tracker import VideoTracker

    clip = open_clip(Path(__file__).resolve().parents[1] / "examples" / "chelsea_pan.mp4", fps=2)
    objects = (ObjectPrompt(1, points=prompt["points"]),) if "points" in prompt else ()
    tracks = VideoTracker(manager, clip).track(route, VideoPrompt(0, objects, prompt.get("text", "")))
    tracked = [frame for frame, result in tracks.frames.items() if result.object_ids]
    assert len(tracked) == len(clip), f"the cat was lost on {len(clip) - len(tracked)} of {len(clip)} frames"
