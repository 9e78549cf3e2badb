"""`LoadedAdapter`: what the manager needs of an adapter, so nothing above ``models/`` imports it.

``models.base.Adapter`` satisfies it; the manager and the bench type against it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

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

    @property
    def nbytes(self) -> int:
        """Bytes of weights plus cache entries."""

    def load(self) -> None: ...

    def unload(self) -> None: ...

    def clear_caches(self) -> None: ...

    def preprocess(self, image: np.ndarray, task: str, **forward_params: Any) -> Any: ...

    def forward(self, inputs: Any) -> Any: ...

    def predict(self, image: np.ndarray, task: str | None = None, **params: Any) -> Prediction: ...
