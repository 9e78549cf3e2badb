"""SAM on a tiny random-weight build: prompts, the image-embedding cache and segment everything."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from models.sam import SAMAdapter
from playground.core.cache import LRUCache
from playground.core.errors import BadPromptError
from playground.runtime.manager import ModelManager

pytestmark = pytest.mark.usefixtures("fast_cpu")


@pytest.fixture
def image(astronaut: np.ndarray) -> np.ndarray:
    """(150, 200, 3): not square and not 256 wide, so a swapped x and y would show."""
    return np.ascontiguousarray(astronaut[:300:2, :400:2])


@pytest.fixture
def manager() -> ModelManager:
    """A fresh manager; the seed makes the random weights, and so the test, reproducible."""
    torch.manual_seed(0)
    return ModelManager(weights="tiny", device="cpu")


@pytest.fixture
def sam(manager: ModelManager, image: np.ndarray) -> Iterator[SAMAdapter]:
    """The manager's loaded SAM adapter, with its vision encoder's calls counted in ``encoder_calls``."""
    manager.predict("sam", image[:100], box=(0, 0, 50, 50))  # loads it, on another image
    with manager.use("sam") as (adapter, _):
        adapter.embeddings.clear()
    forward = adapter.model.vision_encoder.forward
    adapter.encoder_calls = 0

    def counted(*args, **kwargs):
        adapter.encoder_calls += 1
        return forward(*args, **kwargs)

    adapter.model.vision_encoder.forward = counted
    yield adapter


PROMPTS = {
    "points": {"points": ((100.0, 80.0, 1), (190.0, 125.0, 0))},
    "box": {"box": (25.0, 10.0, 150.0, 140.0)},
    "points+box": {"points": ((60.0, 45.0, 1),), "box": (25.0, 10.0, 150.0, 140.0)},
}


@pytest.mark.parametrize("prompt", PROMPTS.values(), ids=PROMPTS.keys())
def test_prompts_give_three_image_sized_masks_best_first(manager, image, prompt) -> None:
    prediction = manager.predict("sam", image, **prompt)
    assert prediction.task == "prompt"
    assert prediction.masks.shape == (3, 150, 200)
    assert prediction.mask_probs.shape == (3, 150, 200)
    assert prediction.boxes.shape == (3, 4)
    assert np.all(np.diff(prediction.scores) <= 0)
    assert np.all((prediction.scores >= 0) & (prediction.scores <= 1))


def test_prompts_reach_the_model_as_the_processor_scales_them(sam, manager, image) -> None:
    """Points and boxes in image pixels become the processor's resized coordinates."""
    seen = {}
    encode = sam.model.prompt_encoder.forward

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return encode(*args, **kwargs)

    sam.model.prompt_encoder.forward = spy
    manager.predict("sam", image, **PROMPTS["points+box"])
    expected = sam.processor(
        images=image, input_points=[[[60.0, 45.0]]], input_boxes=[[[25.0, 10.0, 150.0, 140.0]]], return_tensors="pt"
    )
    torch.testing.assert_close(seen["input_points"], expected["input_points"].float())
    torch.testing.assert_close(seen["input_boxes"], expected["input_boxes"].float())
    assert seen["input_labels"].tolist() == [[[1]]]


def test_a_second_prompt_on_the_same_image_skips_the_vision_encoder(sam, manager, image) -> None:
    first = manager.predict("sam", image, points=((100, 80, 1),))
    assert sam.encoder_calls == 1
    assert first.reuse.startswith("image encoded in ")
    assert first.meta["embedding_cached"] is False
    for prompt in PROMPTS.values():
        again = manager.predict("sam", image, **prompt)
        assert again.reuse == "cached"
    assert sam.encoder_calls == 1


def test_the_cache_key_changes_with_the_image(sam, manager, image) -> None:
    manager.predict("sam", image, points=((10, 10, 1),))
    other = image.copy()
    other[0, 0, 0] ^= 1  # one bit of one pixel
    assert manager.predict("sam", other, points=((10, 10, 1),)).meta["embedding_cached"] is False
    assert sam.encoder_calls == 2
    assert len(sam.embeddings) == 2


def test_the_adapter_cache_is_bounded_and_counted_in_the_models_bytes(sam, manager, image) -> None:
    sam.embeddings.max_items = 2
    sam.clear_caches()
    model_bytes = sam.nbytes
    manager.predict("sam", image, points=((10, 10, 1),))
    one = sam.embeddings.nbytes
    for value in range(3):
        manager.predict("sam", np.full_like(image, value * 50), points=((10, 10, 1),))
    assert len(sam.embeddings) == 2
    assert sam.embeddings.nbytes == 2 * one > 0
    assert sam.nbytes == model_bytes + 2 * one + sam.best_logits.nbytes  # and each prompt's best mask logits
    assert len(sam.best_logits) == 4


def test_cache_bounds_in_count_and_bytes() -> None:
    cache: LRUCache[torch.Tensor] = LRUCache(max_items=3, max_bytes=2500)
    for key in "abcd":
        cache.get_or_compute(key, lambda: torch.zeros(256))  # 1024 bytes each
    assert len(cache) == 2 and cache.nbytes == 2048
    assert "d" in cache and "c" in cache and "a" not in cache
    cache.get_or_compute("c", lambda: torch.zeros(1))  # a hit refreshes "c"
    cache.get_or_compute("e", lambda: torch.zeros(256))
    assert "c" in cache and "d" not in cache


def test_concurrent_misses_compute_once_and_errors_reach_every_waiter() -> None:
    cache: LRUCache[torch.Tensor] = LRUCache(max_items=16, max_bytes=1 << 20)

    def slow() -> torch.Tensor:
        time.sleep(0.2)
        return torch.ones(4)

    with ThreadPoolExecutor(8) as pool:
        lookups = list(pool.map(lambda _: cache.get_or_compute("img", slow), range(8)))
    assert cache.computes == 1
    assert sum(lookup.computed for lookup in lookups) == 1

    def broken() -> torch.Tensor:
        time.sleep(0.1)
        raise RuntimeError("encoder failed")

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(cache.get_or_compute, "bad", broken) for _ in range(4)]
    assert all(isinstance(future.exception(), RuntimeError) for future in futures)
    assert cache.get_or_compute("bad", lambda: torch.zeros(1)).computed  # a later call retries


def test_eight_threads_prompting_two_new_images_encode_each_once(sam, manager, image) -> None:
    images = [image, np.ascontiguousarray(image[:, ::-1])]
    barrier = threading.Barrier(8)

    def prompts(worker: int) -> list[tuple[int, ...]]:
        barrier.wait()
        picture = images[worker % 2]
        return [manager.predict("sam", picture, points=((10 + worker, 20 + step, 1),)).masks.shape for step in range(3)]

    with ThreadPoolExecutor(8) as pool:
        shapes = [shape for result in pool.map(prompts, range(8)) for shape in result]
    assert shapes == [(3, 150, 200)] * 24
    assert sam.encoder_calls == 2
    assert len(sam.embeddings) == 2


def test_evicting_sam_drops_its_embeddings(sam, manager, image) -> None:
    manager.predict("sam", image, points=((10, 10, 1),))
    assert len(sam.embeddings) == 1
    assert manager.unload("sam")
    assert len(sam.embeddings) == 0 and sam.model is None
    again = manager.predict("sam", image, points=((10, 10, 1),))
    assert again.cold and again.meta["embedding_cached"] is False


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ({}, "SAM needs a prompt"),
        ({"points": ((300, 10, 1),)}, r"point \(300, 10\) is outside the 200x150 image"),
        ({"points": ((10, -1, 1),)}, "is outside the 200x150 image"),
        ({"points": ((10, 10, 2),)}, "label 1 .foreground. or 0"),
        ({"points": ((10,),)}, r"expected \(x, y, label\)"),
        ({"points": 5}, r"points: expected"),
        ({"box": (10, 10, 300, 100)}, r"box \(10, 10, 300, 100\) is outside the 200x150 image"),
        ({"box": (100, 10, 50, 100)}, "x1 <= x2 and y1 <= y2"),
        ({"box": (1, 2, 3)}, r"expected \(x1, y1, x2, y2\)"),
        ({"boxes": ((0, 0, 10, 10),), "box": (0, 0, 5, 5)}, "cannot be combined"),
        ({"everything": True, "points": ((1, 1, 1),)}, "takes no points"),
        ({"everything": True, "nms_thresh": 2.0}, "nms_thresh 2.0: expected a number in 0..1"),
    ],
)
def test_bad_prompts_give_one_clear_line(manager, image, prompt, message) -> None:
    with pytest.raises(BadPromptError, match=message) as error:
        manager.predict("sam", image, **prompt)
    assert "\n" not in str(error.value)


def test_boxes_give_one_mask_per_box_in_order(manager, image) -> None:
    boxes = ((0.0, 0.0, 100.0, 100.0), (100.0, 50.0, 200.0, 150.0), (10.0, 10.0, 10.0, 10.0))
    prediction = manager.predict("sam", image, boxes=boxes)
    assert prediction.masks.shape == (3, 150, 200)
    assert prediction.mode == "boxes"
    reverse = manager.predict("sam", image, boxes=boxes[::-1])
    # the same masks, up to float rounding of near-zero random logits
    assert (reverse.masks != prediction.masks[::-1]).mean() < 1e-3
    np.testing.assert_allclose(reverse.scores, prediction.scores[::-1], rtol=1e-4, atol=1e-7)


def test_segment_everything_suppresses_overlapping_masks(sam, manager, image) -> None:
    """On a random encoder with spread-out weights (masks vary), box NMS keeps no overlapping pair."""
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in sam.model.vision_encoder.parameters():
            parameter.normal_(0, 0.1)
    grid = {"points_per_side": 2, "points_per_batch": 3, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    every = manager.predict("sam", image, everything=True, nms_thresh=1.0, **grid)
    kept = manager.predict("sam", image, everything=True, nms_thresh=0.5, **grid)
    assert len(every) == 4 * 3  # nothing suppressed at IoU 1.0
    assert 1 <= len(kept) < len(every)
    assert kept.masks.shape == (len(kept), 150, 200) and kept.mode == "everything"
    assert np.all(np.diff(kept.scores) <= 0) and np.all((kept.scores >= 0) & (kept.scores <= 1))
    ious = box_iou(torch.from_numpy(kept.boxes), torch.from_numpy(kept.boxes)).fill_diagonal_(0)
    assert ious.max() <= 0.5
    assert sam.encoder_calls == 1  # both runs decoded the one cached embedding


def test_segment_everything_can_keep_nothing(manager, image) -> None:
    """Random weights predict IoUs near 0, so SAM's default 0.88 threshold leaves an empty result."""
    prediction = manager.predict("sam", image, everything=True, points_per_side=2)
    assert len(prediction) == 0 and prediction.masks.shape == (0, 150, 200)


@pytest.mark.parametrize("key", ["sam", "sam2"])
def test_box_masks_are_the_processors_upsampled_logits_across_chunks(manager, image, key) -> None:
    """More boxes than `MASK_CHUNK`: the masks and soft masks, upsampled a chunk at a time, are the
    processor's ``post_process_masks`` of all the low-res logits at once."""
    from models.parts.sam_everything import MASK_CHUNK

    corners = np.random.default_rng(0).uniform(0, 120, (MASK_CHUNK + 3, 2))
    boxes = tuple((x, y, x + 60, y + 25) for x, y in corners.tolist())
    manager.predict(key, image, boxes=boxes)  # loads it
    with manager.use(key) as (adapter, _), torch.inference_mode():
        outputs = adapter.forward(adapter.preprocess(image, "prompt", boxes=boxes))
        prediction = adapter.postprocess(outputs, image, "prompt")
        resized = outputs.lookup.value.get("reshaped_input_sizes")  # SAM 2's processor needs none
        extra = {"reshaped_input_sizes": [resized.tolist()]} if resized is not None else {}
        logits = adapter.processor.post_process_masks(
            [outputs.low_res[:, None]], [image.shape[:2]], binarize=False, **extra
        )[0][:, 0]
    assert prediction.masks.shape == (MASK_CHUNK + 3, *image.shape[:2]) and prediction.masks.any()
    np.testing.assert_array_equal(prediction.masks, (logits > 0).numpy())
    np.testing.assert_array_equal(prediction.mask_probs, (logits.sigmoid() * 255).round().to(torch.uint8).numpy())
