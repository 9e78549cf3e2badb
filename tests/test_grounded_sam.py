"""Grounding DINO and Grounded-SAM on tiny random-weight builds, run through one `ModelManager`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from playground.core.errors import BadPromptError
from playground.runtime.manager import ModelManager
from playground.runtime.service import Playground

TEXT = "Husky, a red car; person"  # "husky" is five word pieces in the stand-in vocabulary
LOW = {"box_threshold": 0.0, "text_threshold": 0.0}


pytestmark = pytest.mark.usefixtures("fast_cpu")


@pytest.fixture
def image(astronaut: np.ndarray) -> np.ndarray:
    """(300, 400, 3): the tiny SAM resizes it by 256 / 400."""
    return np.ascontiguousarray(astronaut[:300, :400])


@pytest.fixture
def manager() -> ModelManager:
    """A fresh manager; the seed makes the random weights, and so the test, reproducible."""
    torch.manual_seed(0)
    return ModelManager(weights="tiny", device="cpu")


@pytest.fixture
def playground(manager: ModelManager) -> Playground:
    """Runs the Grounded-SAM composite, through ``manager``, with a result cache of its own."""
    return Playground(manager)


def count_calls(module: torch.nn.Module, calls: list[dict]) -> None:
    """Record the keyword arguments of every call to ``module.forward`` in ``calls``."""
    forward: Callable = module.forward

    def recorded(*args, **kwargs):
        calls.append(kwargs)
        return forward(*args, **kwargs)

    module.forward = recorded


def test_grounding_dino_labels_are_the_users_names(manager, image) -> None:
    prediction = manager.predict("grounding-dino", image, task="text", text=TEXT, **LOW)
    assert prediction.label_names == {0: "Husky", 1: "a red car", 2: "person"}
    assert len(prediction) == 10  # every query of the tiny model passes thresholds of 0
    assert set(prediction.labels) <= {"Husky", "a red car", "person"}
    assert np.all((prediction.boxes >= 0) & (prediction.boxes <= [400, 300, 400, 300]))
    assert prediction.meta["text"] == "husky. a red car. person."


def test_grounding_dino_detection_defaults_to_cocos_names(manager, image) -> None:
    prediction = manager.predict("grounding-dino", image, task="detection")
    assert prediction.task == "detection"
    assert len(prediction.label_names) == 80 and prediction.label_names[0] == "person"


def test_the_processor_decodes_no_text_label(manager, image, monkeypatch) -> None:
    """Boxes are named by `assign_classes`, so the processor's per-box label decoding gets no tokens."""
    with manager.use("grounding-dino") as (dino, _):
        decoded: list[list[int]] = []
        decode = dino.processor.batch_decode
        monkeypatch.setattr(dino.processor, "batch_decode", lambda ids, **kw: decoded.extend(ids) or decode(ids, **kw))
    prediction = manager.predict("grounding-dino", image, task="text", text=TEXT, **LOW)
    assert len(prediction) == len(decoded) == 10
    assert all(len(token_ids) == 0 for token_ids in decoded)


def test_thresholds_refilter_cached_raw_outputs(manager, image) -> None:
    low = manager.predict("grounding-dino", image, task="text", text=TEXT, **LOW)
    with manager.use("grounding-dino") as (dino, _):
        calls: list[dict] = []
        count_calls(dino.model, calls)
    threshold = float(np.median(low.scores))
    high = manager.predict("grounding-dino", image, task="text", text=TEXT, box_threshold=threshold)
    assert calls == []
    assert high.reuse == "cached"
    assert 0 < len(high) < len(low)
    assert {tuple(box) for box in high.boxes.tolist()} <= {tuple(box) for box in low.boxes.tolist()}
    manager.predict("grounding-dino", image, task="text", text="cat")
    assert len(calls) == 1  # new text: the model runs


def test_grounded_sam_prompts_sam_with_exactly_the_dino_boxes(manager, playground, image) -> None:
    manager.predict("sam", image, box=(0, 0, 100, 100))  # load SAM and encode the image
    with manager.use("sam") as (sam, _):
        decoder_calls: list[dict] = []
        encoder_calls: list[dict] = []
        count_calls(sam.model, decoder_calls)
        count_calls(sam.model.vision_encoder, encoder_calls)
    prediction = playground.predict("grounded-sam", image, text=TEXT, **LOW)
    boxes = manager.predict("grounding-dino", image, task="text", text=TEXT, **LOW)

    assert prediction.task == "text" and len(prediction) == len(boxes) == 10
    np.testing.assert_array_equal(prediction.boxes, boxes.boxes)
    assert prediction.labels == boxes.labels
    np.testing.assert_array_equal(prediction.scores, boxes.scores)
    assert prediction.masks.shape == (10, 300, 400)

    # SAM saw the DINO boxes (in its 256-pixel input frame, the tiny build's) and no points.
    (call,) = decoder_calls
    assert "input_points" not in call and "input_labels" not in call
    scale = 256 / 400
    np.testing.assert_allclose(call["input_boxes"][0].numpy(), boxes.boxes * scale, rtol=1e-5)
    assert encoder_calls == []
    assert prediction.reuse == "cached"

    # and the masks are SAM's answer to those boxes, one per box, in order.
    direct = manager.predict("sam", image, boxes=tuple(map(tuple, boxes.boxes.tolist())))
    np.testing.assert_array_equal(prediction.masks, direct.masks)


def test_grounded_sam_masks_depend_on_the_boxes(manager, playground, image) -> None:
    """The mask decoder is conditioned on each box: other boxes, other masks."""
    prediction = playground.predict("grounded-sam", image, text=TEXT, **LOW)
    shifted = np.clip(prediction.boxes[:1] + 40.0, 0, 300)
    other = manager.predict("sam", image, boxes=tuple(map(tuple, shifted.tolist())))
    assert (other.masks[0] != prediction.masks[0]).mean() > 0.1


def test_one_sam_serves_both_tabs(manager, playground, image) -> None:
    manager.predict("sam", image, points=((200, 200, 1),))
    with manager.use("sam") as (sam, _):
        first_sam = sam
    playground.predict("grounded-sam", image, text="person", **LOW)
    assert sorted(model.key for model in manager.loaded) == ["grounding-dino", "sam"]
    with manager.use("sam") as (sam, _):
        assert sam is first_sam
        assert sam.embeddings.computes == 1


def test_grounded_sam_timings_and_threshold_changes(manager, playground, image) -> None:
    cold = playground.predict("grounded-sam", image, text=TEXT, **LOW)
    assert cold.cold is True
    assert cold.reuse.startswith("image encoded in ")
    assert set(cold.timings_ms) == {"load", "preprocess", "forward", "postprocess"}
    parts = cold.meta["grounding-dino_ms"] + cold.meta["sam_ms"]
    assert sum(cold.timings_ms.values()) == pytest.approx(parts, abs=0.2)

    warm = playground.predict("grounded-sam", image, text=TEXT, box_threshold=float(np.median(cold.scores)))
    assert warm.cold is False
    assert warm.meta["raw_outputs"] == "cached" and warm.reuse == "cached"
    assert 0 < len(warm) < len(cold)


def test_grounded_sam_without_boxes_runs_no_sam(manager, playground, image) -> None:
    prediction = playground.predict("grounded-sam", image, text="person", box_threshold=1.0)
    assert len(prediction) == 0 and prediction.masks.shape == (0, 300, 400)
    assert not manager.is_loaded("sam")


def test_grounded_sam_passes_the_token_warning_on(manager, playground, image) -> None:
    names = [f"{x} {y}" for x in "abcdefghij" for y in "abcdefghij"]  # 100 classes, 302 tokens
    prediction = playground.predict("grounded-sam", image, text=", ".join(names), box_threshold=1.0)
    assert "over Grounding DINO's limit of 256" in prediction.warning


def test_grounded_sam_segments_at_most_max_boxes(manager, playground, image, monkeypatch) -> None:
    monkeypatch.setattr("playground.runtime.composites.MAX_BOXES", 3)
    prediction = playground.predict("grounded-sam", image, text=TEXT, **LOW)
    boxes = manager.predict("grounding-dino", image, task="text", text=TEXT, **LOW)
    assert len(prediction) == 3 and prediction.masks.shape == (3, 300, 400)
    np.testing.assert_array_equal(np.sort(prediction.scores), np.sort(boxes.scores)[-3:])
    assert "Segmented the 3 best of 10 boxes" in prediction.warning


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"text": " ; "}, "names no class"),
        ({"text": "cat", "box_threshold": 1.5}, "box_threshold 1.5: expected a number in 0..1"),
        ({"text": "cat", "text_threshold": -0.1}, "text_threshold -0.1: expected a number in 0..1"),
    ],
)
def test_bad_text_params_give_one_clear_line(manager, playground, image, params, message) -> None:
    with pytest.raises(BadPromptError, match=message) as error:
        playground.predict("grounded-sam", image, **params)
    assert "\n" not in str(error.value)
