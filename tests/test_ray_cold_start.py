"""tests/robustness/test_cold_start.py's crowd on the Ray backend: 3 fresh deployments, each with a fresh
app. In a module of its own: test_ray_serve.py keeps one cluster joined by the test process for its
whole module, and a deployment started beside it would join that cluster and take it down on stop."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import start_app
from test_ray_serve import start_serve, stop_serve

pytestmark = [
    pytest.mark.ray,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs pip install -r requirements-ray.txt"),
]


def test_nine_users_at_a_cold_start_through_ray_all_get_complete_answers(tmp_path) -> None:
    """tests/robustness/test_cold_start.py's crowd, on 3 fresh Ray deployments and apps: the replicas
    and the app import every adapter for the first time while the nine requests arrive."""
    from crowd import crowd_at_cold_start, crowd_image

    image = crowd_image(tmp_path)
    failures = []
    for start in range(3):  # 27 requests, each arriving at a cold start
        process, address = start_serve(tmp_path / f"serve-{start}.log")
        try:
            app = start_app(tmp_path, "--backend", "ray", "--address", address, timeout=120)
            try:
                failures += [f"start {start}: {line}" for line in crowd_at_cold_start(app.url, image)]
            finally:
                app.process.terminate()
                app.process.wait(timeout=30)
        finally:
            stop_serve(process)
    assert not failures, "\n".join(failures)
