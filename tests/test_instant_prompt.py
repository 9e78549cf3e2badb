"""Issue 34's prompt work on tiny builds: the image encoded on arrival (joined by a click, cancelled by a
newer image), and dense prompts (the previous best mask fed back as ``mask_input``, a brushed mask, undo)
equal to transformers' own ``SamModel`` / ``Sam2Model`` calls."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from models.parts.sam_prompts import BRUSH_BIAS, BRUSH_SCALE
from playground.core.errors import BadPromptError
from playground.core.prompts import BrushedMask, EarlierPrompt, PromptHistory
from playground.runtime.manager import ModelManager
from playground.runtime.service import Playground
from playground.ui.encode_ahead import READY, EncodeAhead, encoded_line, encoders
from playground.ui.prompt_tab import brushed_mask, dense_note, how_answered

pytestmark = pytest.mark.usefixtures("fast_cpu")

FIRST, SECOND = (100.0, 80.0, 1), (60.0, 110.0, 0)


@pytest.fixture
def image(astronaut: np.ndarray) -> np.ndarray:
    """(150, 200, 3): not square, so a swapped x and y would show."""
    return np.ascontiguousarray(astronaut[:300:2, :400:2])


@pytest.fixture
def playground() -> Playground:
    """Tiny SAM and SAM 2.1 with the libraries' own layers, so they compute what a direct call does."""
    torch.manual_seed(0)
    return Playground(ModelManager(weights="tiny", device="cpu", library_kernels=True))


def adapter(playground: Playground, key: str):
    with playground.manager.use(key) as (loaded, _):
        return loaded


# -- encode on arrival ------------------------------------------------------------------------


def test_the_prompt_and_text_routes_encode_sams_and_sam3s_images() -> None:
    assert encoders(["sam", "sam2"]) == ["sam", "sam2"]
    assert encoders(["grounded-sam", "sam3", "owlv2-sam"]) == ["sam", "sam3"]  # one SAM for both composites
    assert encoders(["detr", "grounding-dino"]) == []


def test_a_first_click_after_the_encoding_on_arrival_reuses_the_embedding(playground, image) -> None:
    ahead = EncodeAhead(playground)
    ahead.arrived("visitor", "a.jpg")
    outcomes = ahead.encode("visitor", "a.jpg", image, ["sam", "sam2"])
    assert [o.prediction.reuse.startswith("image encoded in ") for o in outcomes] == [True, True]
    assert all(len(o.prediction) == 0 for o in outcomes)
    assert encoded_line(outcomes).startswith(READY)
    for key in ("sam", "sam2"):
        click = playground.predict(key, image, task="prompt", points=(FIRST,))
        assert click.reuse == "cached" and click.meta["embedding_cached"] is True
        assert adapter(playground, key).embeddings.computes == 1


def test_a_click_during_the_encoding_joins_it_instead_of_encoding_again(playground, image) -> None:
    """The click arrives while the encoding on arrival runs: it waits for that one, no second encode."""
    sam = adapter(playground, "sam")
    encode, started, joined = sam._encode, threading.Event(), threading.Event()

    def slow_encode(pixels):
        started.set()
        pending = next(iter(sam.embeddings._pending.values()))
        result = pending.result
        pending.result = lambda *args: joined.set() or result(*args)  # the click is now waiting on it
        assert joined.wait(30)
        return encode(pixels)

    sam._encode = slow_encode
    ahead = EncodeAhead(playground)
    ahead.arrived("visitor", "a.jpg")
    background = threading.Thread(target=ahead.encode, args=("visitor", "a.jpg", image, ["sam"]))
    background.start()
    assert started.wait(30)
    click = playground.predict("sam", image, task="prompt", points=(FIRST,))
    background.join(30)
    assert sam.embeddings.computes == 1
    assert click.meta["embedding_cached"] is True and click.meta["encode_wait_ms"] > 0
    assert click.reuse.startswith("cached, after ")


def test_a_newer_image_skips_the_older_ones_encoding_not_yet_started(playground, image) -> None:
    ahead = EncodeAhead(playground)
    ahead.arrived("visitor", "a.jpg")
    ahead.arrived("visitor", "b.jpg")
    ahead.arrived("someone else", "a.jpg")  # another session's image does not count
    assert ahead.encode("visitor", "a.jpg", image, ["sam", "sam2"]) is None
    assert adapter(playground, "sam").embeddings.computes == 0


def test_a_newer_image_during_an_encoding_lets_it_finish_and_skips_the_rest(playground, image) -> None:
    sam, sam2 = adapter(playground, "sam"), adapter(playground, "sam2")
    ahead = EncodeAhead(playground)
    encode = sam._encode

    def superseded(pixels):
        ahead.arrived("visitor", "b.jpg")  # the visitor picks another image while SAM encodes this one
        return encode(pixels)

    sam._encode = superseded
    ahead.arrived("visitor", "a.jpg")
    assert ahead.encode("visitor", "a.jpg", image, ["sam", "sam2"]) is None
    assert sam.embeddings.computes == 1 and len(sam.embeddings) == 1  # it landed in the cache
    assert sam2.embeddings.computes == 0  # never started


def test_sam3_encodes_on_arrival_too(image) -> None:
    manager = ModelManager(weights="tiny", device="cpu")
    encoded = manager.predict("sam3", image, encode=True)
    assert len(encoded) == 0 and encoded.reuse.startswith("image encoded in ")
    assert manager.predict("sam3", image, task="text", text="cat").reuse == "cached"


# -- dense prompts ----------------------------------------------------------------------------


def test_each_click_feeds_the_previous_prompt_back_and_undo_restores_it() -> None:
    one = PromptHistory().add("foreground", *FIRST[:2])
    two = one.add("background", *SECOND[:2])
    three = two.add("corner", 10, 10)  # a first corner adds no prompt: SAM is not asked again
    four = three.add("corner", 150, 140)
    assert "mask_input" not in one.params()
    assert two.params()["mask_input"] == EarlierPrompt((FIRST,))
    assert three.params() == two.params() | {"mask_input": EarlierPrompt((FIRST,))}
    assert four.params()["mask_input"] == EarlierPrompt((FIRST, SECOND), None, EarlierPrompt((FIRST,)))
    assert four.undo().undo() == two and four.undo().undo().params() == two.params()
    assert dense_note(two) == "refined from the previous best mask" and dense_note(one) == ""


def test_a_brushed_mask_starts_the_chain_and_undo_drops_it_last() -> None:
    mask = np.zeros((150, 200), bool)
    mask[40:90, 60:140] = True
    brushed = PromptHistory(brush=BrushedMask.from_mask(mask))
    assert brushed.ready and brushed.params() == {"mask_input": brushed.brush}
    clicked = brushed.add("foreground", *FIRST[:2])
    assert clicked.params()["mask_input"] == EarlierPrompt((), None, brushed.brush)
    assert clicked.undo() == brushed and not brushed.undo().ready
    np.testing.assert_array_equal(brushed.brush.mask(), mask)


def sam_direct(adapter, image, points, dense):
    """transformers' own call: the processor's inputs, ``SamModel`` / ``Sam2Model`` on the pixels, with
    ``input_masks``; -> scores (3,), low-res logits (3, h, w), masks (3, H, W) bool, best first."""
    given = {"input_points": [[[list(p[:2]) for p in points]]], "input_labels": [[[p[2] for p in points]]]}
    inputs = adapter.processor(images=image, return_tensors="pt", **(given if points else {}))
    prompt = {name: inputs[name] for name in given if points}
    extra = {"input_masks": dense} if dense is not None else {}
    out = adapter.model(pixel_values=inputs["pixel_values"], multimask_output=True, **prompt, **extra)
    scores, low_res = out.iou_scores[0, 0], out.pred_masks[0, 0]
    sizes = {"reshaped_input_sizes": inputs["reshaped_input_sizes"]} if "reshaped_input_sizes" in inputs else {}
    masks = adapter.processor.post_process_masks([low_res[None]], inputs["original_sizes"], **sizes)[0][0]
    order = scores.argsort(descending=True)
    return scores[order], low_res[order], masks[order]


@pytest.mark.parametrize("key", ["sam", "sam2"])
def test_a_second_click_with_the_first_ones_best_mask_is_the_librarys_own_call(playground, image, key) -> None:
    first = playground.predict(key, image, task="prompt", points=(FIRST,))
    second = playground.predict(key, image, task="prompt", points=(FIRST, SECOND), mask_input=EarlierPrompt((FIRST,)))
    loaded = adapter(playground, key)
    with torch.inference_mode():
        scores, low_res, _ = sam_direct(loaded, image, [FIRST], None)
        expected_scores, _, expected_masks = sam_direct(loaded, image, [FIRST, SECOND], low_res[:1][None])
    np.testing.assert_allclose(first.scores, scores.clamp(0, 1).numpy(), atol=1e-5)
    np.testing.assert_allclose(second.scores, expected_scores.clamp(0, 1).numpy(), atol=1e-5)
    np.testing.assert_array_equal(second.masks, expected_masks.numpy())
    plain = playground.predict(key, image, task="prompt", points=(FIRST, SECOND))
    assert not np.array_equal(second.scores, plain.scores)  # the dense prompt changed the answer


@pytest.mark.parametrize("key", ["sam", "sam2"])
def test_an_earlier_prompt_no_longer_kept_is_decoded_again_to_the_same_answer(playground, image, key) -> None:
    """A link (or undo after eviction) asks for a chain the adapter never saw: it decodes it link by link."""
    chain = {"points": (FIRST, SECOND), "mask_input": EarlierPrompt((FIRST,))}
    kept = playground.manager.predict(key, image, task="prompt", **chain)
    adapter(playground, key).best_logits.clear()
    again = playground.manager.predict(key, image, task="prompt", **chain)
    np.testing.assert_array_equal(again.masks, kept.masks)
    np.testing.assert_array_equal(again.scores, kept.scores)


@pytest.mark.parametrize("key", ["sam", "sam2"])
def test_a_brushed_mask_is_the_processors_low_res_mask_as_logits(playground, image, key) -> None:
    mask = np.zeros((150, 200), bool)
    mask[40:90, 60:140] = True
    brushed = BrushedMask.from_mask(mask)
    prediction = playground.predict(key, image, task="prompt", mask_input=brushed)
    assert prediction.masks.shape == (3, 150, 200)
    loaded = adapter(playground, key)
    with torch.inference_mode():
        sizes = loaded.mask_sizes()
        labels = loaded.processor.image_processor(
            images=image, segmentation_maps=mask.astype(np.uint8), return_tensors="pt", **sizes
        )["labels"]
        dense = labels.reshape(1, 1, *labels.shape[-2:]).float() * BRUSH_SCALE + BRUSH_BIAS
        side = 4 * loaded.model.prompt_encoder.image_embedding_size[0]
        assert dense.shape[-1] == side and set(dense.unique().tolist()) == {BRUSH_BIAS, BRUSH_SCALE + BRUSH_BIAS}
        scores, _, masks = sam_direct(loaded, image, [], dense)
    np.testing.assert_allclose(prediction.scores, scores.clamp(0, 1).numpy(), atol=1e-5)
    np.testing.assert_array_equal(prediction.masks, masks.numpy())


def test_a_brushed_mask_of_another_size_or_empty_is_refused(playground, image) -> None:
    with pytest.raises(BadPromptError, match="brushed mask is 20x10"):
        playground.predict("sam", image, task="prompt", mask_input=BrushedMask.from_mask(np.ones((10, 20), bool)))
    with pytest.raises(BadPromptError, match="empty"):
        playground.predict("sam", image, task="prompt", mask_input=BrushedMask.from_mask(np.zeros((150, 200), bool)))


def test_the_brush_layers_alpha_is_the_mask_at_the_images_size() -> None:
    layer = np.zeros((75, 100, 4), np.uint8)
    layer[10:20, 30:50, 3] = 255
    mask = brushed_mask({"background": None, "layers": [layer], "composite": None}, (150, 200))
    assert mask.shape == (150, 200) and mask[20:40, 60:100].all() and mask.sum() == 20 * 40
    assert brushed_mask({"layers": [np.zeros((150, 200, 4), np.uint8)]}, (150, 200)) is None
    assert brushed_mask(None, (150, 200)) is None


def test_the_status_says_a_repeated_prompts_answer_was_cached_not_encoded(playground, image) -> None:
    """Undo back to, or a link to, clicks already answered: the result cache answers, and the status
    must not claim an encoding (or a decoder run) that did not happen."""
    first = playground.predict("sam", image, task="prompt", points=(FIRST,))
    again = playground.predict("sam", image, task="prompt", points=(FIRST,))
    assert how_answered(first).startswith("image encoded in ")
    assert again.reuse == first.reuse and how_answered(again) == "answer cached"
