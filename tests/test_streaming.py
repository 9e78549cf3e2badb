"""`Playground.predict_each`: each outcome as soon as its model is done, and no model after the
consumer stops (a closed page's Compare run loads and runs nothing more)."""

from __future__ import annotations

from playground.runtime.service import Playground


def test_outcomes_come_one_at_a_time_and_closing_runs_no_further_model(tiny_playground: Playground, image):
    started: list[str] = []
    outcomes = tiny_playground.predict_each(
        ["fcn", "nope-not-a-model", "detr"], image, on_start=lambda index, key: started.append(key)
    )
    first = next(outcomes)
    assert first.key == "fcn" and first.prediction is not None and started == ["fcn"]
    assert tiny_playground.forward_count == 1  # the later models have not run yet
    failed = next(outcomes)
    assert failed.prediction is None and "nope-not-a-model" in failed.error  # its own line, the run goes on
    outcomes.close()
    assert started == ["fcn", "nope-not-a-model"] and not tiny_playground.manager.is_loaded("detr")


def test_predict_many_is_every_outcome_of_predict_each(tiny_playground: Playground, image):
    streamed = [o.key for o in tiny_playground.predict_each(["fcn", "unet"], image)]
    collected = tiny_playground.predict_many(["fcn", "unet"], image)
    assert [o.key for o in collected] == streamed == ["fcn", "unet"]
    assert all(o.prediction.cached for o in collected)  # the second time from the result cache
