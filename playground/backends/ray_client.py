"""`RayModels`: the app's side of the Ray backend, a `Models` whose predictions run on Ray Serve.

`Playground` keeps its result cache and the UI stays in the app's process; only model calls
(composites' parts included) cross to the deployment in `playground.backends.ray_serve`.

Every wait has a timeout. A request whose replica dies is sent again (to another replica, or the
one Serve starts in its place) up to `RETRIES` times; after that, or after `TIMEOUT_S`, it fails
with one clear `ModelRunError`. Model calls are pure functions of their inputs, so a retry is safe.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

import numpy as np
import ray
from ray import serve
from ray.exceptions import ObjectStoreFullError, OutOfDiskError, RayActorError, RayTaskError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, RequestCancelledError

from playground.backends.ray_serve import AFFINITY_BUCKETS, APP_NAME, ReplicaStats
from playground.core.errors import ModelRunError, PlaygroundError
from playground.core.images import image_digest
from playground.core.registry import get_spec
from playground.core.types import Prediction, WeightsMode
from playground.runtime.manager import LoadedModel, ModelManager

log = logging.getLogger(__name__)

IMAGE_AFFINITY = frozenset({"sam", "sam2", "sam3", "grounding-dino", "maskformer"})
"""Models whose adapters cache work per image (the SAMs' embeddings, encoded on arrival; the others' raw outputs)."""
TIMEOUT_S = 300.0
"""Longest wait for one answer: a cold pretrained load plus a CPU forward fit well inside it."""
RETRIES = 3
RETRYABLE = (RayActorError, BackPressureError, RequestCancelledError)
"""A replica that died or refused the request: another one can answer it."""
NO_ROOM = (OutOfDiskError, ObjectStoreFullError)
"""Ray could not store an image or a result: its object store was full, and so was the disk it spills to."""


def no_room_message(title: str) -> str:
    """One line for `NO_ROOM`: Ray spills objects to disk and refuses them once the disk is 95 % used."""
    return (
        f"{title}: the model server has no room for this image and its result (Ray's object store is "
        "full and its disk over 95 % used); free disk space on the Ray node, or send a smaller image."
    )


def route_id(key: str, image: np.ndarray) -> str:
    """Serve's multiplexed id for ``key`` on ``image``: ``key``, or ``key#bucket`` (from the image
    digest) for `IMAGE_AFFINITY` models, so one image keeps going where its cache is."""
    if key not in IMAGE_AFFINITY:
        return key
    return f"{key}#{int(image_digest(image)[:8], 16) % AFFINITY_BUCKETS}"


class RayModels:
    """Runs models on the `APP_NAME` Serve app through ``handle``; ``weights`` is the deployment's.

    The memory report aggregates the latest `ReplicaStats` each replica sent with a reply.
    ``concurrent_requests``: what the deployment takes at once (`ray_serve.Scale.concurrent_requests`).
    """

    def __init__(
        self,
        handle: serve.handle.DeploymentHandle,
        weights: WeightsMode,
        timeout_s: float = TIMEOUT_S,
        concurrent_requests: int = ModelManager.concurrent_requests,
    ) -> None:
        self.handle = handle
        self.weights = weights
        self.timeout_s = timeout_s
        self.concurrent_requests = concurrent_requests
        self._stats: dict[str, ReplicaStats] = {}
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, address: str, timeout_s: float = TIMEOUT_S) -> RayModels:
        """Join the cluster at ``address`` (as `python -m playground serve` printed it) and find the app."""
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise PlaygroundError(f"--address {address}: no Ray cluster answers there ({error}).") from None
        try:
            handle = serve.get_app_handle(APP_NAME)
            info = handle.describe.remote().result(timeout_s=timeout_s)
        except BaseException as error:
            # Leave the cluster whatever failed: a driver still joined when the cluster goes away
            # exits its whole process about a minute later (Ray's GCS reconnect timeout).
            ray.shutdown()
            if not isinstance(error, (DeploymentUnavailableError, TimeoutError, ValueError, RayActorError)):
                raise
            raise PlaygroundError(
                f"The Ray cluster at {address} serves no models ({type(error).__name__}): "
                "start them with `python -m playground serve`."
            ) from None
        return cls(handle, info["weights"], timeout_s, info["concurrent_requests"])

    def predict(self, key: str, image: np.ndarray, **params: object) -> Prediction:
        """Model ``key`` on ``image`` (H, W, 3 uint8) on a replica; ``params`` include ``task``."""
        title = get_spec(key).title
        handle = self.handle.options(multiplexed_model_id=route_id(key, image))
        lost: Exception | None = None
        for attempt in range(RETRIES + 1):
            if attempt:
                time.sleep(0.5 * 2 ** (attempt - 1))
            response = handle.predict.remote(image, params)
            try:
                reply = response.result(timeout_s=self.timeout_s)
            except TimeoutError:
                response.cancel()
                raise ModelRunError(f"{title}: no answer from the model server in {self.timeout_s:.0f} s.") from None
            except NO_ROOM:
                raise ModelRunError(no_room_message(title)) from None
            except RETRYABLE as error:
                lost = error
                log.warning("%s: replica lost the request (%s); sending it again", key, type(error).__name__)
                continue
            except RayTaskError as error:
                if isinstance(error.cause, NO_ROOM):
                    raise ModelRunError(no_room_message(title)) from None
                raise ModelRunError(f"{title} failed on the model server: {error.cause!r}") from None
            with self._lock:
                self._stats[reply.stats.replica] = reply.stats
            if reply.error is not None:
                raise reply.error
            return reply.prediction
        raise ModelRunError(f"{title}: the model server lost the request {RETRIES + 1} times ({lost}); try again.")

    def ensure_available(self, key: str) -> None:
        """Only checks the key here: the replicas check the weights where they load them."""
        get_spec(key)

    def is_loaded(self, key: str) -> bool:
        """Whether some replica held ``key`` at its latest reply."""
        return bool(self.holders(key))

    def holders(self, key: str) -> set[str]:
        """The replicas that held ``key`` at their latest reply."""
        with self._lock:
            return {s.replica for s in self._stats.values() if any(row.key == key for row in s.loaded)}

    @property
    def device(self) -> str:
        with self._lock:
            devices = sorted({s.device for s in self._stats.values()})
            count = len(self._stats)
        return f"ray: {count} replica(s) reported, on {', '.join(devices) or 'no device yet'}"

    @property
    def budget_bytes(self) -> int:
        """The replicas' budgets, summed."""
        with self._lock:
            return sum(s.budget_bytes for s in self._stats.values())

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(s.used_bytes for s in self._stats.values())

    @property
    def evictions(self) -> int:
        with self._lock:
            return sum(s.evictions for s in self._stats.values())

    @property
    def loaded(self) -> list[LoadedModel]:
        """Every replica's models, each key suffixed with its replica: ``detr @ a1b2c3d4``."""
        with self._lock:
            stats = list(self._stats.values())
        return [replace(row, key=f"{row.key} @ {s.replica[:8]}") for s in stats for row in s.loaded]

    def close(self) -> None:
        """Leave the cluster (the deployment keeps running)."""
        ray.shutdown()
