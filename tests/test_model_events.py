"""Every event that runs models shares one group of queue slots, as many as the models run at once."""

from __future__ import annotations

import pytest

from playground.runtime.manager import ModelManager
from playground.runtime.service import Playground
from playground.ui.app import build_demo


def model_event_limits(manager: ModelManager) -> list[int | None]:
    demo = build_demo(Playground(manager))
    return [fn.concurrency_limit for fn in demo.fns.values() if fn.concurrency_id == "models"]


@pytest.mark.parametrize("slots", [ModelManager.concurrent_requests, 8])
def test_model_events_get_as_many_slots_as_the_models_run_at_once(slots: int) -> None:
    """2 for this process's manager; a Ray deployment of 2 replicas x 4 ongoing requests says 8."""
    manager = ModelManager(weights="tiny", device="cpu")
    manager.concurrent_requests = slots
    limits = model_event_limits(manager)
    assert len(limits) >= 15  # every tab's run events and every model endpoint
    assert set(limits) == {slots}
