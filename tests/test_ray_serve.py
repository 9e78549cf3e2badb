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
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import ROOT, start_app

from playground.core.errors import ModelRunError, PlaygroundError
from playground.core.registry import get_spec
from playground.render.export import to_json
from playground.runtime.service import Playground

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
    process, address = start_serve(tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield address
    finally:
        stop_serve(process)


def start_serve(log: Path) -> tuple[subprocess.Popen, str]:
    """A fresh ``serve --weights tiny --replicas 2`` (its own process group); (process, address)."""
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
        return process, wait_for_address(process, log, timeout=300)
    except BaseException:
        stop_serve(process)
        raise


def stop_serve(process: subprocess.Popen) -> None:
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
    try:
        yield models
    finally:
        models.close()  # before the cluster stops: a joined driver exits when its cluster goes away


@pytest.fixture(scope="module")
def ray_client():
    """`playground.backends.ray_client`, imported as the app does (`before_ray` first), no cluster."""
    from playground.backends import before_ray

    before_ray(None)
    from playground.backends import ray_client

    return ray_client


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
    from playground.runtime.manager import ModelManager

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


def test_the_app_learns_how_many_requests_the_deployment_takes(remote) -> None:
    """2 replicas x 4 ongoing requests each: the app's model events get 8 queue slots."""
    assert remote.concurrent_requests == 8


def test_errors_come_back_as_they_are(remote, image) -> None:
    with pytest.raises(PlaygroundError, match="DETR ResNet-50 has no parameter 'treshold'"):
        remote.predict("detr", image, treshold=0.3)
    assert remote.is_loaded("detr") and remote.used_bytes > 0 and "replica" in remote.device


def test_an_image_keeps_going_to_the_replica_with_its_sam_embedding(remote, image) -> None:
    """Four images, a first click on each, then a second: all second clicks find their embedding
    (random routing over two replicas would pass 1 time in 16). Serve learns which replica holds a
    routing id from that replica's report to its controller (every 0.1 s, then a long poll to the
    router); a click sent before then may go elsewhere, so the second clicks wait past that, as a
    person's second click does. The images are picked with four different routing ids: two images
    on one id, clicked in quick succession, can leave that id on both replicas."""
    from playground.backends.ray_client import route_id

    by_route: dict[str, np.ndarray] = {}
    for shift in range(64):
        picture = np.ascontiguousarray(np.roll(image[::-1], 7 * shift, axis=0))
        by_route.setdefault(route_id("sam", picture), picture)
    pictures = list(by_route.values())[:4]
    assert len(pictures) == 4
    first = [remote.predict("sam", picture, points=((10.0, 10.0, 1),)) for picture in pictures]
    time.sleep(3)
    again = [remote.predict("sam", picture, points=((50.0, 60.0, 1),)) for picture in pictures]
    assert [p.meta["embedding_cached"] for p in first] == [False] * 4
    assert [p.meta["embedding_cached"] for p in again] == [True] * 4


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


class FailingResponse:
    """A deployment response whose ``result`` raises ``error``, one of Ray's own exceptions."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.cancelled = False

    def result(self, timeout_s: float) -> object:
        raise self.error

    def cancel(self) -> None:
        self.cancelled = True


class ScriptedHandle:
    """A deployment handle whose first requests fail with ``failures`` (one each, in order); the
    next ones go to the ``real`` handle, so their answers are the deployment's own."""

    def __init__(self, failures: list[Exception], real=None) -> None:
        self.failures = list(failures)
        self.real = real
        self.options_: dict[str, object] = {}
        self.responses: list[object] = []
        self.predict = SimpleNamespace(remote=self.send)

    def options(self, **options: object) -> ScriptedHandle:
        self.options_ = options
        return self

    def send(self, *args: object) -> object:
        if self.failures:
            response = FailingResponse(self.failures.pop(0))
        else:
            response = self.real.options(**self.options_).predict.remote(*args)
        self.responses.append(response)
        return response


def test_a_request_whose_replica_died_is_sent_again(remote, ray_client, image, caplog) -> None:
    from ray.exceptions import ActorDiedError

    handle = ScriptedHandle([ActorDiedError(), ActorDiedError()], real=remote.handle)
    retried = ray_client.RayModels(handle, remote.weights, timeout_s=120).predict("detr", image)
    direct = remote.predict("detr", image)
    assert len(handle.responses) == 3 and caplog.text.count("sending it again") == 2
    assert np.array_equal(retried.boxes, direct.boxes) and np.array_equal(retried.scores, direct.scores)


def test_a_request_lost_every_time_is_one_clear_error(ray_client) -> None:
    from ray.exceptions import ActorDiedError

    attempts = ray_client.RETRIES + 1
    handle = ScriptedHandle([ActorDiedError() for _ in range(attempts)])
    with pytest.raises(ModelRunError, match=f"DETR ResNet-50: the model server lost the request {attempts} times"):
        ray_client.RayModels(handle, "tiny", timeout_s=5).predict("detr", np.zeros((32, 32, 3), np.uint8))
    assert len(handle.responses) == attempts


def test_no_answer_in_time_is_one_clear_error_and_cancels_the_request(ray_client) -> None:
    handle = ScriptedHandle([TimeoutError()])
    with pytest.raises(ModelRunError, match="DETR ResNet-50: no answer from the model server in 5 s"):
        ray_client.RayModels(handle, "tiny", timeout_s=5).predict("detr", np.zeros((32, 32, 3), np.uint8))
    (response,) = handle.responses
    assert response.cancelled


@pytest.mark.parametrize("where", ["replica", "app"])
def test_no_room_in_the_object_store_or_on_disk_is_one_clear_error(ray_client, where) -> None:
    """Ray refuses an object when its store is full and its disk over 95 % used: on the replica (the
    error comes wrapped in a `RayTaskError`) or in the app's own process (as it is); never retried."""
    from ray.exceptions import OutOfDiskError, RayTaskError

    error = OutOfDiskError("Local disk is full")
    if where == "replica":
        error = RayTaskError("predict", "Traceback: ...", error)
    handle = ScriptedHandle([error])
    with pytest.raises(ModelRunError) as raised:
        ray_client.RayModels(handle, "tiny", timeout_s=5).predict("fcn", np.zeros((32, 32, 3), np.uint8))
    assert str(raised.value) == ray_client.no_room_message("FCN ResNet-50")
    assert "free disk space on the Ray node" in str(raised.value) and "\n" not in str(raised.value)
    assert len(handle.responses) == 1


def replica_actors() -> list:
    """The deployment's live replica actors."""
    import ray

    from playground.backends.ray_serve import APP_NAME

    prefix = f"SERVE_REPLICA::{APP_NAME}#Models#"
    named = ray.util.list_named_actors(all_namespaces=True)
    return [ray.get_actor(a["name"], namespace=a["namespace"]) for a in named if a["name"].startswith(prefix)]


def ongoing(replica) -> int:
    """Requests ``replica`` has accepted and not yet answered."""
    import ray

    return ray.get(replica.get_num_ongoing_requests.remote(), timeout=30)


def replica_taking(replicas: list, deadline: float):
    """The first of ``replicas`` seen with a request in progress (the others idle before it)."""
    while time.monotonic() < deadline:
        for replica in replicas:
            if ongoing(replica):
                return replica
        time.sleep(0.02)
    raise AssertionError("no replica took the request")


def test_killing_a_replica_mid_load_loses_no_request(remote, caplog) -> None:
    """Runs last: it leaves the deployment one replica short until Serve replaces it.

    With both replicas idle, one long FCN request (6144 x 6144, seconds on one thread) goes first;
    the replica that takes it is the one killed. A request counts as accepted once the replica's
    reply to it reaches Serve's router; one that dies before that is Serve's to send elsewhere, one
    that dies after is not: it dies with the replica (``ActorDiedError``) and `RayModels` must send
    it again. So the long request gets 1 s alone to be accepted, then 8 clients send 1024 x 1024
    images one after another until the kill, and one more each. Every request then answers or
    fails with one clear error, within a bounded wait, and the long one answers after a retry.
    """
    import ray

    from playground.core.types import Prediction

    rng = np.random.default_rng(1)
    long_image = rng.integers(0, 256, (6144, 6144, 3), dtype=np.uint8)  # long enough under any load
    images = [rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8) for _ in range(8)]
    remote.predict("fcn", images[0][:64, :64].copy())
    replicas = replica_actors()
    assert len(replicas) == 2
    deadline = time.monotonic() + 60
    while any(ongoing(replica) for replica in replicas):  # so the replica seen busy below has the long request
        assert time.monotonic() < deadline, "the replicas never went idle"
        time.sleep(0.1)
    killed = threading.Event()

    def client(picture: np.ndarray) -> list[object]:
        """Outcomes of FCN requests on ``picture``, sent until the kill and one after it."""
        outcomes: list[object] = []
        for _ in range(500):
            after_kill = killed.is_set()
            try:
                outcomes.append(remote.predict("fcn", picture))
            except Exception as error:
                outcomes.append(error)
            if after_kill:
                break
        return outcomes

    pool = ThreadPoolExecutor(9)
    long_request = pool.submit(remote.predict, "fcn", long_image)
    futures = []
    try:
        target = replica_taking(replicas, deadline + 60)
        time.sleep(1.0)
        futures = [pool.submit(client, picture) for picture in images]
        time.sleep(0.5)
        assert not long_request.done(), "the long request ended before the kill: make it longer"
        ray.kill(target, no_restart=True)
    finally:
        killed.set()
    pending = wait([long_request, *futures], timeout=240).not_done
    pool.shutdown(wait=False, cancel_futures=True)
    assert not pending, f"{len(pending)} clients hung"
    assert isinstance(long_request.result(), Prediction)
    assert "fcn: replica lost the request (ActorDiedError); sending it again" in caplog.text, caplog.text
    outcomes = [outcome for future in futures for outcome in future.result()]
    unexpected = [o for o in outcomes if not isinstance(o, Prediction | PlaygroundError)]
    assert unexpected == []
    clear_errors = [str(o) for o in outcomes if isinstance(o, PlaygroundError)]
    assert all("model server" in message for message in clear_errors), clear_errors


def test_autoscaling_counts_the_largest_replica_count(ray_client) -> None:
    from playground.backends.ray_serve import Scale

    assert Scale(replicas=2).concurrent_requests == 8
    assert Scale(replicas=1, min_replicas=1, max_replicas=5).concurrent_requests == 20
    assert Scale(replicas=3, max_ongoing_requests=2).concurrent_requests == 6
