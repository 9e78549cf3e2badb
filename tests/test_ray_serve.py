"""The Ray backend on a one-machine cluster over loopback, with tiny weights and two replicas.

One cluster for the module: ``python -m playground serve`` as a subprocess (so the command itself is
tested), joined by this process through `RayModels`; shut down at the end. Every wait is bounded.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, start_app

from playground.core.errors import PlaygroundError
from playground.core.registry import get_spec
from playground.export import to_json
from playground.service import Playground

pytestmark = [
    pytest.mark.ray,
    pytest.mark.usefixtures("fast_cpu"),
    pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs pip install -r requirements-ray.txt"),
]

CASES = [
    ("fcn", "semantic", {}),
    ("detr", "detection", {}),
    ("mask-rcnn", "instance", {}),
    ("maskformer", "panoptic", {}),
    ("sam", "prompt", {"points": ((120.0, 90.0, 1), (30.0, 40.0, 0))}),
    ("grounded-sam", "text", {"text": "person, flag", "box_threshold": 0.0, "text_threshold": 0.0}),
]
RUN_DEPENDENT = ("device", "cold", "cached", "reuse", "raw_outputs")
"""JSON fields that say where and when a result was made, not what it is."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[str]:
    """``python -m playground serve --weights tiny --replicas 2`` on 127.0.0.1; yields its address."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "playground", "serve", "--weights", "tiny", "--replicas", "2"]
    process = subprocess.Popen(
        [*command, "--memory-budget", "400"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its Ray processes share its process group, so teardown can end them all
    )
    try:
        yield wait_for_address(process, log, timeout=300)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_for_address(process: subprocess.Popen, log: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"--backend ray --address (\S+)", log.read_text())
        if found:
            return found.group(1)
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode}:\n{log.read_text()}")
        time.sleep(0.5)
    raise RuntimeError(f"serve printed no address within {timeout} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def remote(cluster: str):
    """This process joined to the cluster: a `RayModels`."""
    from playground.backends import before_ray

    before_ray(cluster)
    from playground.backends.ray_client import RayModels

    models = RayModels.connect(cluster, timeout_s=120)
    yield models
    models.close()


@pytest.fixture(scope="module")
def image(astronaut: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(astronaut[:240, :320])


def comparable(result: dict) -> dict:
    """The JSON without timings and the fields that depend on where and when it ran."""
    meta = {k: v for k, v in result["meta"].items() if k not in RUN_DEPENDENT and not k.endswith("_ms")}
    return {**{k: v for k, v in result.items() if k != "timings_ms"}, "meta": meta}


def local_prediction(key: str, image: np.ndarray, task: str, params: dict):
    """``key`` on a fresh local manager, each part built from the seed the replicas use."""
    import torch

    from playground.backends.ray_serve import RANDOM_WEIGHTS_SEED
    from playground.manager import ModelManager

    manager = ModelManager(weights="tiny", device="cpu")
    for part in get_spec(key).components or (key,):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        with manager.use(part):
            pass
    return Playground(manager).predict(key, image, task=task, **params)


@pytest.mark.parametrize(("key", "task", "params"), CASES, ids=[case[0] for case in CASES])
def test_ray_gives_the_same_json_as_local(remote, image, key, task, params) -> None:
    remote_result = to_json(Playground(remote).predict(key, image, task=task, **params))
    local_result = to_json(local_prediction(key, image, task, params))
    assert remote_result["meta"]["device"] == "cpu"
    assert comparable(remote_result) == comparable(local_result)
    assert remote_result["instances"] or "semantic" in remote_result  # something was compared


def test_errors_come_back_as_they_are(remote, image) -> None:
    with pytest.raises(PlaygroundError, match="DETR ResNet-50 has no parameter 'treshold'"):
        remote.predict("detr", image, treshold=0.3)
    assert remote.is_loaded("detr") and remote.used_bytes > 0 and "replica" in remote.device


def test_an_image_keeps_going_to_the_replica_with_its_sam_embedding(remote, image) -> None:
    first = remote.predict("sam", image[::-1].copy(), points=((10.0, 10.0, 1),))
    again = remote.predict("sam", image[::-1].copy(), points=((50.0, 60.0, 1),))
    assert not first.meta["embedding_cached"] and again.meta["embedding_cached"]


def test_16_clients_x_10_requests_through_the_app_give_no_error(cluster, tmp_path) -> None:
    from gradio_client import Client, handle_file
    from PIL import Image

    app = start_app(tmp_path, "--backend", "ray", "--address", cluster, timeout=120)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(160):  # distinct images, so the app's result cache cannot answer for the models
        path = tmp_path / f"noise-{index}.png"
        Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))

    def client(number: int) -> list[str]:
        errors = []
        api = Client(app.url, verbose=False, httpx_kwargs={"timeout": 120})
        for request in range(10):
            image = handle_file(paths[number * 10 + request])
            try:
                if request % 2:
                    api.predict(image, ["detr"], 0.5, 0.5, api_name="/detection")
                else:
                    api.predict(image, [[30, 40, 1]], None, api_name="/prompt")
            except Exception as error:
                errors.append(f"client {number} request {request}: {error}")
        return errors

    pool = ThreadPoolExecutor(16)
    try:
        futures = [pool.submit(client, number) for number in range(16)]
        done, pending = wait(futures, timeout=240)
        assert not pending, "some clients did not finish in 240 s"
        errors = [error for future in done for error in future.result()]
        assert errors == [], "\n".join([*errors[:3], app.log_text()[-4000:]])
        assert len(re.findall(r"forward (detr|sam) on 128x96", app.log_text())) == 160
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        app.process.terminate()
        app.process.wait(timeout=20)


def test_killing_a_replica_mid_load_loses_no_request(remote, image, caplog) -> None:
    """Runs last: it leaves the deployment one replica short until Serve replaces it."""
    import ray

    from playground.core.types import Prediction

    remote.predict("detr", image)
    serving = min(remote.holders("detr"))  # Serve sends detr requests to the replicas holding it
    (replica,) = [
        actor for actor in ray.util.list_named_actors(all_namespaces=True) if actor["name"].endswith(f"#{serving}")
    ]
    images = [np.ascontiguousarray(np.roll(image, shift, axis=1)) for shift in range(24)]
    pool = ThreadPoolExecutor(8)
    futures = [pool.submit(remote.predict, "detr", picture) for picture in images]
    wait(futures[:2], timeout=120)
    ray.kill(ray.get_actor(replica["name"], namespace=replica["namespace"]), no_restart=True)
    done, pending = wait(futures, timeout=240)
    pool.shutdown(wait=False, cancel_futures=True)
    assert not pending, f"{len(pending)} requests hung"
    outcomes = [future.exception() or future.result() for future in done]
    unexpected = [o for o in outcomes if not isinstance(o, Prediction | PlaygroundError)]
    assert unexpected == []
    answered = sum(isinstance(o, Prediction) for o in outcomes)
    clear_errors = [str(o) for o in outcomes if isinstance(o, PlaygroundError)]
    assert all("model server" in message for message in clear_errors), clear_errors
    assert answered + len(clear_errors) == len(images)
    # The load noticed the dead replica: Serve's router moved requests off it, or RayModels re-sent them.
    assert re.search("because it has died|sending it again", caplog.text) or clear_errors, caplog.text
