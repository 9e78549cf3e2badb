"""The models as a Ray Serve deployment: each replica owns a `ModelManager` with its own budget.

Requests are multiplexed by a routing id that the app chooses (`playground.backends.ray_client.route_id`):
the model key, or ``key#bucket`` for models whose adapters cache work per image (SAM's embedding,
Grounding DINO's and MaskFormer's raw outputs), so that one image's requests keep reaching the
replica that holds its cache. Serve's ``@serve.multiplexed`` LRU is routing bookkeeping only: what
stays in memory is the replica's manager's decision, by its budget, as in the one-process app.

Random and tiny weights are built from one seed (`RANDOM_WEIGHTS_SEED`) on every replica, so every
replica gives the same answer, and the same as a local manager seeded the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import ray
from ray import serve

from playground.core.errors import PlaygroundError
from playground.core.protocols import Models
from playground.core.registry import REGISTRY
from playground.core.types import Prediction
from playground.runtime.manager import LoadedModel

log = logging.getLogger(__name__)

APP_NAME = "playground"
"""The Serve application `RayModels` looks up."""
RANDOM_WEIGHTS_SEED = 0
AFFINITY_BUCKETS = 16
"""Routing ids per image-caching model: ``key#0`` .. ``key#15`` (see `ray_client.route_id`)."""
ROUTING_IDS_PER_REPLICA = len(REGISTRY) * AFFINITY_BUCKETS
"""Serve's per-replica id LRU, large enough never to evict: memory is the manager's budget."""
OBJECT_STORE_BYTES = 200 * 1024**2
"""A local cluster's shared-memory object store: images and predictions pass through it."""
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ReplicaStats:
    """What one replica's manager holds, sent with every reply for the app's memory report."""

    replica: str
    device: str
    budget_bytes: int
    used_bytes: int
    evictions: int
    loaded: list[LoadedModel] = field(default_factory=list)


@dataclass(frozen=True)
class Reply:
    """A prediction, or the `PlaygroundError` that stopped it (re-raised as is by the app)."""

    stats: ReplicaStats
    prediction: Prediction | None = None
    error: PlaygroundError | None = None


class ModelReplica:
    """One replica: a `ModelManager` from ``make_manager()``, running ``threads`` torch threads.
    ``concurrent_requests``: how many requests the whole deployment takes at once, for the app.

    Subnormal floats are flushed to zero, as inference servers do: random initialisations make
    them, and they are about 15x slower on CPUs.
    """

    def __init__(self, make_manager: Callable[[], Models], threads: int, concurrent_requests: int) -> None:
        import torch

        torch.set_num_threads(threads)
        torch.set_flush_denormal(True)
        self.manager = make_manager()
        self.replica = serve.get_replica_context().replica_id.unique_id
        self.concurrent_requests = concurrent_requests
        self._loads = threading.Lock()

    @serve.multiplexed(max_num_models_per_replica=ROUTING_IDS_PER_REPLICA)
    async def route(self, routing_id: str) -> str:
        """The model key of a routing id (``detr``, ``sam#3``); registering it is Serve's job."""
        return routing_id.partition("#")[0]

    async def predict(self, image: np.ndarray, params: dict[str, object]) -> Reply:
        """The model named by the request's multiplexed id on ``image`` (H, W, 3 uint8)."""
        key = await self.route(serve.get_multiplexed_model_id())
        return await asyncio.to_thread(self._predict, key, image, params)

    def describe(self) -> dict[str, object]:
        """The deployment's weights mode and capacity, and this replica's id, for the app at connect time."""
        return {
            "weights": self.manager.weights,
            "replica": self.replica,
            "concurrent_requests": self.concurrent_requests,
        }

    def _predict(self, key: str, image: np.ndarray, params: dict[str, object]) -> Reply:
        import torch

        try:
            if self.manager.weights == "pretrained" or self.manager.is_loaded(key):
                prediction = self.manager.predict(key, image, **params)
            else:
                with self._loads:  # one seeded build at a time: the same random weights everywhere
                    torch.manual_seed(RANDOM_WEIGHTS_SEED)
                    prediction = self.manager.predict(key, image, **params)
        except PlaygroundError as error:
            return Reply(self.stats(), error=error)
        return Reply(self.stats(), prediction=prediction)

    def stats(self) -> ReplicaStats:
        manager = self.manager
        return ReplicaStats(
            self.replica,
            str(manager.device),
            manager.budget_bytes,
            manager.used_bytes,
            manager.evictions,
            list(manager.loaded),
        )


@dataclass(frozen=True)
class Scale:
    """Replicas and what each one asks of the cluster. ``min_replicas``/``max_replicas`` set
    turn on Serve's autoscaling (on ongoing requests per replica) instead of a fixed count."""

    replicas: int = 1
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    min_replicas: int | None = None
    max_replicas: int | None = None
    max_ongoing_requests: int = 4

    @property
    def concurrent_requests(self) -> int:
        """Requests the deployment takes at once at its largest: replicas x ``max_ongoing_requests``."""
        return max(self.replicas, self.max_replicas or 0) * self.max_ongoing_requests

    def deployment_options(self) -> dict[str, object]:
        options: dict[str, object] = {
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
            "max_ongoing_requests": self.max_ongoing_requests,
            "graceful_shutdown_timeout_s": 5,
        }
        if self.min_replicas is None and self.max_replicas is None:
            options["num_replicas"] = self.replicas
        else:
            low = self.min_replicas if self.min_replicas is not None else 1
            high = self.max_replicas if self.max_replicas is not None else max(low, self.replicas)
            if not 0 <= low <= high or high < 1:
                raise PlaygroundError(f"--min-replicas {low} / --max-replicas {high}: need 0 <= min <= max, max >= 1.")
            options["autoscaling_config"] = {
                "min_replicas": low,
                "max_replicas": high,
                "initial_replicas": min(max(self.replicas, low), high),
                "target_ongoing_requests": 2,
            }
        return options


def start_cluster(address: str | None, num_cpus: float | None = None) -> str:
    """Connect to the Ray cluster at ``address``, or start one on 127.0.0.1 (no dashboard, a small
    object store). Returns the address `RayModels.connect` takes."""
    env = {"env_vars": {"PYTHONPATH": str(ROOT)}}
    if address:
        ray.init(address=address, runtime_env=env, log_to_driver=False)
    else:
        # Patience for a busy machine: Ray's agents and workers may take longer to start than its defaults.
        os.environ.setdefault("RAY_agent_register_timeout_ms", "120000")
        os.environ.setdefault("RAY_worker_register_timeout_seconds", "180")
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            object_store_memory=OBJECT_STORE_BYTES,
            runtime_env=env,
            log_to_driver=False,
            _node_ip_address="127.0.0.1",
        )
    return ray.get_runtime_context().gcs_address


def deploy(make_manager: Callable[[], Models], scale: Scale, threads: int = 1) -> serve.handle.DeploymentHandle:
    """Deploy (or redeploy with a new scale) the models as `APP_NAME`, with no HTTP proxy: the app
    calls it through deployment handles. Returns once every replica is up."""
    serve.start(proxy_location="Disabled")
    deployment = serve.deployment(ModelReplica, name="Models", **scale.deployment_options())
    bound = deployment.bind(make_manager, threads, scale.concurrent_requests)
    return serve.run(bound, name=APP_NAME, route_prefix=None)


def app(args: dict[str, str]) -> serve.Application:
    """The deployment for a Serve config file (KubeRay's ``serveConfigV2``: ``import_path:
    playground.backends.ray_serve:app``). ``args``: ``weights``, ``device``, ``precision``,
    ``memory_budget`` (MB), ``threads`` and ``concurrent_requests`` (the config's largest replica count
    x its ``max_ongoing_requests``, for the app's queue; default: one replica's), all optional; scale
    comes from the config's deployment."""
    from functools import partial

    from playground.runtime.manager import MB, ModelManager

    budget = float(args["memory_budget"]) if "memory_budget" in args else None
    make_manager = partial(
        ModelManager,
        weights=args.get("weights", "pretrained"),
        device=args.get("device", "auto"),
        precision=args.get("precision", "auto"),
        budget_bytes=int(budget * MB) if budget else None,
    )
    concurrent_requests = int(args.get("concurrent_requests", Scale().concurrent_requests))
    return serve.deployment(ModelReplica, name="Models").bind(
        make_manager, int(args.get("threads", 4)), concurrent_requests
    )


def stop(started_here: bool) -> None:
    """Remove the app; shut the cluster down too when ``started_here``."""
    try:
        if started_here:
            serve.shutdown()
        else:
            serve.delete(APP_NAME)
    finally:
        ray.shutdown()
