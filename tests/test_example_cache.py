"""The bundled examples' results on disk (`playground.runtime.example_cache`): served after a restart,
bounded, safe to delete, corrupt entries are misses, and weights modes never mix."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import EXAMPLES

from playground.core.images import image_digest, load_image
from playground.core.types import Prediction
from playground.runtime.example_cache import ExampleCache, result_key
from playground.runtime.manager import ModelManager
from playground.runtime.service import Playground


@pytest.fixture(scope="module")
def example() -> np.ndarray:
    return load_image(EXAMPLES / "coffee.jpg").pixels


def fresh(folder, weights: str = "tiny", max_mb: float = 64) -> Playground:
    """What a restarted app has: new models, an empty result cache, and the same folder."""
    return Playground(ModelManager(weights=weights, device="cpu"), examples=ExampleCache(folder, max_mb))


def prediction(masks: int, size: int = 64) -> Prediction:
    rng = np.random.default_rng(masks)
    stack = np.zeros((masks, size, size), bool)
    stack[:, 5:20, 10:40] = rng.random((masks, 15, 30)) > 0.5  # zero outside each mask's extent
    return Prediction(
        model="detr",
        task="detection",
        weights="tiny",
        image_size=(size, size),
        label_names={1: "person"},
        boxes=np.tile([[1, 2, 3, 4]], (masks, 1)),
        scores=np.full(masks, 0.5),
        class_ids=np.ones(masks),
        masks=stack,
        mask_probs=(stack * 200).astype(np.uint8),
        meta={"tokens": ["a", "b"], "encode_ms": np.float32(3.5)},
        explain={"heat": np.arange(6, dtype=np.float32).reshape(2, 3)},
    )


def test_an_example_after_a_restart_comes_from_disk_equal_and_says_so(tmp_path, example):
    first = fresh(tmp_path).predict("detr", example, task="detection")
    assert first.state != "from disk"
    restarted = fresh(tmp_path)
    again = restarted.predict("detr", example, task="detection")
    assert again.cached and again.state == "from disk" and again.meta["served_from"] == "disk"
    assert restarted.forward_count == 0 and not restarted.manager.is_loaded("detr")
    for name in ("boxes", "scores", "class_ids"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))
    assert again.label_names == first.label_names and again.timings_ms == first.timings_ms
    assert again.explain.keys() == first.explain.keys()


def test_an_upload_is_never_written(tmp_path, example):
    upload = example.copy()
    upload[0, 0] ^= 1  # one pixel off: not the bundled file
    fresh(tmp_path).predict("fcn", upload, task="semantic")
    assert not list(tmp_path.glob("*"))


def test_weights_modes_parameters_and_tasks_are_kept_apart(tmp_path, example):
    tiny = fresh(tmp_path)
    key = result_key(tiny.manager, "detr", "digest", "detection", {})
    tiny.examples.put(key, prediction(2))
    others = [
        result_key(ModelManager(weights=weights, device="cpu"), "detr", "digest", "detection", {})
        for weights in ("random", "pretrained")
    ]
    others.append(result_key(tiny.manager, "detr", "digest", "panoptic", {}))
    others.append(result_key(tiny.manager, "detr", "digest", "detection", {"score_threshold": 0.3}))
    elsewhere = ModelManager(weights="tiny", device="cpu", checkpoints={"detr": "org/other"})
    others.append(result_key(elsewhere, "detr", "digest", "detection", {}))
    assert len({key, *others}) == len(others) + 1
    assert all(tiny.examples.get(other) is None for other in others)
    assert tiny.examples.get(key) is not None
    # through the service too: an example's tiny result on disk is not what a random-weight app shows
    fresh(tmp_path).predict("fcn", example, task="semantic")
    digest = image_digest(example)
    random_app, tiny_app = fresh(tmp_path, weights="random"), fresh(tmp_path)
    assert tiny_app.examples.get(result_key(tiny_app.manager, "fcn", digest, "semantic", {})) is not None
    assert random_app.examples.get(result_key(random_app.manager, "fcn", digest, "semantic", {})) is None


def test_entries_round_trip_without_pickle(tmp_path):
    cache = ExampleCache(tmp_path)
    stored = prediction(3)
    cache.put("k", stored)
    back = cache.get("k")
    np.testing.assert_array_equal(back.masks, stored.masks)
    np.testing.assert_array_equal(back.mask_probs, stored.mask_probs)
    np.testing.assert_array_equal(back.mask_extents(), stored.mask_extents())
    np.testing.assert_array_equal(back.explain["heat"], stored.explain["heat"])
    assert back.meta == {"tokens": ["a", "b"], "encode_ms": 3.5, "served_from": "disk"}
    with np.load(cache.path("k"), allow_pickle=False) as raw:  # nothing in the file needs pickle
        assert all(raw[name].dtype != object for name in raw.files)


def test_a_result_that_is_not_plain_data_is_not_stored(tmp_path):
    cache = ExampleCache(tmp_path)
    odd = prediction(1)
    odd.meta["thing"] = object()
    cache.put("k", odd)
    assert cache.get("k") is None and not list(tmp_path.glob("*.npz"))


def test_the_folder_stays_within_its_bound_dropping_the_least_recently_used(tmp_path):
    probe = ExampleCache(tmp_path / "probe")
    probe.put("probe", prediction(8))
    cache = ExampleCache(tmp_path / "bounded", max_mb=2.5 * probe.nbytes / 2**20)  # two entries, not three
    cache.put("a", prediction(8))
    cache.put("b", prediction(8))
    past = os.path.getmtime(cache.path("b")) - 100
    os.utime(cache.path("a"), (past, past))
    os.utime(cache.path("b"), (past + 1, past + 1))
    assert cache.get("a") is not None  # a hit: "a" is now the most recently used
    cache.put("c", prediction(8))
    assert cache.nbytes <= cache.max_bytes
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None


@pytest.mark.parametrize("damage", ["truncated", "garbage", "pickle", "other key"])
def test_a_corrupt_partial_or_foreign_entry_is_a_miss(tmp_path, damage):
    cache = ExampleCache(tmp_path)
    cache.put("k", prediction(2))
    path = cache.path("k")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip at all")
    elif damage == "pickle":
        import pickle

        path.write_bytes(pickle.dumps({"boxes": np.zeros((1, 4))}))
    else:
        cache.put("x", prediction(1))
        os.replace(cache.path("x"), path)  # the file at k's name holds x's entry
    assert cache.get("k") is None


def test_deleting_the_folder_at_any_time_is_a_miss_then_a_rerun(tmp_path, example):
    folder = tmp_path / "cache"
    fresh(folder).predict("fcn", example, task="semantic")
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    restarted = fresh(folder)
    again = restarted.predict("fcn", example, task="semantic")
    assert restarted.forward_count == 1 and again.state != "from disk"
    assert list(folder.glob("*.npz"))  # written again


def test_a_write_that_died_leaves_no_entry_and_a_stale_temporary_file_is_removed(tmp_path):
    cache = ExampleCache(tmp_path)
    left = tmp_path / "dead.tmp"
    left.write_bytes(b"half an entry")
    os.utime(left, (0, 0))
    cache.put("k", prediction(1))
    assert not left.exists() and cache.get("k") is not None
    assert [path.suffix for path in tmp_path.iterdir()] == [".npz"]
