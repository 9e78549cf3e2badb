"""ModelManager: lazy loading, LRU eviction under a budget, pinning, threads, failures."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from playground.core.errors import ModelRunError, UnknownModelError
from playground.runtime.manager import MB, ModelManager


def image(seed: int, size: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (size, size + 8, 3), dtype=np.uint8)


def test_models_load_lazily_and_report_size():
    manager = ModelManager(weights="tiny", device="cpu")
    assert manager.loaded == []
    first = manager.predict("detr", image(0))
    second = manager.predict("detr", image(1))
    assert first.cold and first.timings_ms["load"] > 0
    assert not second.cold and second.timings_ms["load"] == 0
    [row] = manager.loaded
    assert row.key == "detr" and row.runs == 2 and row.running == 0
    assert row.megabytes == pytest.approx(manager.used_bytes / MB) and row.megabytes > 0


def test_least_recently_used_model_is_evicted_under_the_budget():
    probe = ModelManager(weights="tiny", device="cpu")
    probe.predict("fcn", image(0))
    probe.predict("detr", image(0))
    fcn_bytes, detr_bytes = (probe._entries[k].adapter.nbytes for k in ("fcn", "detr"))
    manager = ModelManager(weights="tiny", device="cpu", budget_bytes=fcn_bytes + detr_bytes - 1)
    manager.predict("fcn", image(0))
    manager.predict("detr", image(0))
    assert [m.key for m in manager.loaded] == ["detr"]
    assert manager.evictions == 1
    manager.predict("fcn", image(0))
    assert [m.key for m in manager.loaded] == ["fcn"]
    assert manager.used_bytes <= manager.budget_bytes


def test_a_running_model_is_never_evicted():
    manager = ModelManager(weights="tiny", device="cpu", budget_bytes=1)  # nothing fits
    with manager.use("fcn") as (fcn, cold):
        assert cold
        manager.predict("detr", image(0))  # would evict fcn if it were idle
        assert manager.is_loaded("fcn")
        assert fcn.model is not None
    assert not manager.is_loaded("fcn")  # released: now it can go


def test_concurrent_calls_from_many_threads_get_their_own_results():
    manager = ModelManager(weights="tiny", device="cpu", budget_bytes=60 * MB)
    errors: list[BaseException] = []
    results: dict[tuple[int, int], tuple[int, int]] = {}

    def worker(thread: int) -> None:
        try:
            for step in range(3):
                size = 40 + 8 * thread + step
                key = ("fcn", "detr")[(thread + step) % 2]
                prediction = manager.predict(key, image(thread, size))
                results[(thread, step)] = prediction.image_size
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert all(results[(t, s)] == (40 + 8 * t + s, 48 + 8 * t + s) for t in range(6) for s in range(3))
    assert all(row.running == 0 for row in manager.loaded)


def test_out_of_memory_evicts_idle_models_and_retries_once(monkeypatch):
    manager = ModelManager(weights="tiny", device="cpu")
    manager.predict("fcn", image(0))
    with manager.use("detr") as (detr, _):
        real_predict = detr.predict
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(detr, "predict", flaky)
    prediction = manager.predict("detr", image(1))
    assert len(calls) == 2 and prediction.model == "detr"
    assert not manager.is_loaded("fcn")  # the idle model was freed for the retry


def test_second_out_of_memory_is_a_clear_error_and_frees_the_lock(monkeypatch):
    manager = ModelManager(weights="tiny", device="cpu")
    with manager.use("detr") as (detr, _):
        pass

    def always_oom(*args, **kwargs):
        raise torch.OutOfMemoryError("simulated")

    monkeypatch.setattr(detr, "predict", always_oom)
    with pytest.raises(ModelRunError, match="ran out of memory"):
        manager.predict("detr", image(0))
    assert manager.loaded[0].running == 0
    done = threading.Event()
    threading.Thread(target=lambda: (manager.predict("fcn", image(0)), done.set())).start()
    assert done.wait(60), "the manager's lock was left held"


def test_a_model_that_raises_mid_request_leaves_the_manager_usable(monkeypatch):
    manager = ModelManager(weights="tiny", device="cpu")
    with manager.use("detr") as (detr, _):
        pass
    monkeypatch.setattr(detr, "forward", lambda inputs: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(ModelRunError, match="DETR ResNet-50 failed: RuntimeError: boom"):
        manager.predict("detr", image(0))
    assert manager.predict("fcn", image(0)).model == "fcn"
    assert all(row.running == 0 for row in manager.loaded)


def test_unknown_and_unbuilt_keys_are_clear_errors():
    manager = ModelManager(weights="tiny", device="cpu")
    with pytest.raises(UnknownModelError, match=r"Unknown model .yolo.\. Known models: fcn"):
        manager.predict("yolo", image(0))


def test_a_slow_load_never_holds_up_a_loaded_model(monkeypatch):
    """Loads run outside the table's lock: while one model loads (a download, a cold start), a model
    already in memory answers at once, and a second request for the loading model waits for that
    one load instead of starting another."""
    from playground.core.registry import get_spec

    manager = ModelManager(weights="tiny", device="cpu")
    manager.predict("fcn", image(0))
    detr_class = get_spec("detr").load_class()
    real_load, release, started, loads = detr_class.load, threading.Event(), threading.Event(), []

    def slow_load(self, *args, **kwargs):
        loads.append(1)
        started.set()
        assert release.wait(60)
        return real_load(self, *args, **kwargs)

    monkeypatch.setattr(detr_class, "load", slow_load)
    results: list[object] = []
    loaders = [threading.Thread(target=lambda: results.append(manager.predict("detr", image(1)))) for _ in range(2)]
    for loader in loaders:
        loader.start()
    assert started.wait(60)
    done = threading.Event()
    threading.Thread(target=lambda: (manager.predict("fcn", image(2)), done.set())).start()
    assert done.wait(30), "a loaded model waited for another model's load"
    assert not manager.is_loaded("detr") and manager.loaded[0].key == "fcn"
    release.set()
    for loader in loaders:
        loader.join(timeout=120)
    assert len(results) == 2 and len(loads) == 1 and sorted(p.cold for p in results) == [False, True]
    assert all(row.running == 0 for row in manager.loaded)
