"""`LoadedAdapter`: what the manager needs of an adapter, so nothing above ``models/`` imports it.
`Models`: what `Playground`, the composites and the UI need of "the models", so the front end runs
the same on a local `ModelManager` or on a remote backend (``playground.backends.ray_client.RayModels``).

``models.base.Adapter`` satisfies `LoadedAdapter`; the manager and the bench type against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from playground.core.patches import Patch
from playground.core.precision import Precision
from playground.core.registry import ModelSpec
from playground.core.types import Prediction, WeightsMode

if TYPE_CHECKING:
    import torch


class LoadedAdapter(Protocol):
    """One model family's adapter (see ``models/base.py`` for the contract)."""

    spec: ModelSpec
    weights: WeightsMode
    device: torch.device
    load_ms: float
    precision: Precision
    patches: list[Patch]

    @property
    def nbytes(self) -> int:
        """Bytes of weights plus cache entries."""

    def load(self) -> None: ...

    def unload(self) -> None: ...

    def clear_caches(self) -> None: ...

    def preprocess(self, image: np.ndarray, task: str, **preprocess_params: Any) -> Any: ...

    def forward(self, inputs: Any) -> Any: ...

    def predict(self, image: np.ndarray, task: str | None = None, **params: Any) -> Prediction: ...


class ModelInMemory(Protocol):
    """One row of the memory report: a model loaded somewhere, how big, how often it ran."""

    key: str
    weights: WeightsMode
    megabytes: float
    runs: int


class Models(Protocol):
    """Runs registry models on images: `playground.runtime.manager.ModelManager`, or a remote backend."""

    weights: WeightsMode
    concurrent_requests: int
    """How many predictions it runs at once; the app's queue gives model events that many slots."""

    def predict(self, key: str, image: np.ndarray, **params: Any) -> Prediction:
        """Model ``key`` (not a composite) on ``image`` (H, W, 3 uint8); ``params`` include ``task``."""

    def ensure_available(self, key: str) -> None:
        """Raise `MissingWeightsError` at once where ``key``'s weights cannot be had."""

    def is_loaded(self, key: str) -> bool: ...

    @property
    def device(self) -> object: ...

    @property
    def budget_bytes(self) -> int: ...

    @property
    def used_bytes(self) -> int: ...

    @property
    def evictions(self) -> int: ...

    @property
    def loaded(self) -> Sequence[ModelInMemory]: ...
