"""Cold start under load: a shared demo link opened by many people right after start-up.

- Many threads importing every adapter at once in a fresh process (transformers' lazy imports are
  not thread-safe): no failure in 20 fresh processes.
- Nine gradio_client users at once, each asking a different model through a different endpoint of
  a freshly started app: every answer complete, no error, on 5 fresh starts (the Ray backend's
  version, on 3, is in test_ray_cold_start.py).
- One model that fails in an unexpected way stays in its own result; the others still run.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from conftest import ROOT, start_app
from crowd import crowd_at_cold_start, crowd_image

from playground.runtime.manager import ModelManager
from playground.runtime.service import Playground

IMPORT_RACE = """
import json, threading
from playground.core.registry import REGISTRY
specs = list(REGISTRY.values())
start, failures = threading.Barrier(len(specs)), []
def load(spec):
    start.wait()
    try:
        spec.load_class()
    except Exception as error:
        failures.append(f"{spec.key}: {type(error).__name__}: {error}".splitlines()[0])
threads = [threading.Thread(target=load, args=(spec,)) for spec in specs]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"threads": len(specs), "failures": failures}))
"""
FRESH_PROCESSES = 20


def race_once(_: int) -> dict:
    result = subprocess.run([sys.executable, "-c", IMPORT_RACE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_threads_importing_every_adapter_at_once_never_fail() -> None:
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(race_once, range(FRESH_PROCESSES)))
    failures = [failure for run in runs for failure in run["failures"]]
    assert all(run["threads"] >= 20 for run in runs)
    assert not failures, f"{len(failures)} failures in {FRESH_PROCESSES} processes:\n" + "\n".join(failures[:20])


def test_nine_users_at_a_cold_start_all_get_complete_answers(tmp_path) -> None:
    image = crowd_image(tmp_path)
    failures = []
    for start in range(5):
        app = start_app(tmp_path, "--weights", "tiny")
        try:
            failures += [f"start {start}: {line}" for line in crowd_at_cold_start(app.url, str(image))]
        finally:
            app.process.terminate()
            app.process.wait(timeout=30)
    assert not failures, "\n".join(failures)


def test_an_unexpected_failure_stays_in_its_models_result(monkeypatch, caplog, image) -> None:
    """Any exception (not only a PlaygroundError) becomes that model's error, with an id the log
    files its traceback under; the other models in the request still run."""
    manager = ModelManager(weights="tiny", device="cpu", precision="fp32")
    library_predict = manager.predict

    def predict(key, *args, **kwargs):
        if key == "detr":
            raise ImportError("cannot import name 'DetrConfig' from 'transformers'")
        return library_predict(key, *args, **kwargs)

    monkeypatch.setattr(manager, "predict", predict)
    with caplog.at_level(logging.ERROR, logger="playground"):
        fcn, detr, unet = Playground(manager).predict_many(["fcn", "detr", "unet"], image)
    assert fcn.prediction is not None and unet.prediction is not None
    assert detr.prediction is None and detr.error.startswith("DETR")
    assert "ImportError: cannot import name 'DetrConfig'" in detr.error
    error_id = detr.error.rsplit("id ", 1)[1].rstrip(".")
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
