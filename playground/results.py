"""`ResultCache`: raw predictions keyed by (image content, model, forward parameters).

Predictions are stored above the adapters' low score floor, so thresholds, class toggles and
opacity re-render from here without a forward pass, for every user who sends the same image.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from playground.types import Prediction

ResultKey = tuple[str, str, Hashable]
"""(image digest, model key, frozen forward parameters)."""


def prediction_nbytes(prediction: Prediction) -> int:
    arrays = [prediction.boxes, prediction.scores, prediction.class_ids, prediction.masks, prediction.semantic_map]
    return sum(a.nbytes for a in arrays if a is not None)


class ResultCache:
    """A thread-safe LRU of predictions, bounded in count and in bytes of arrays."""

    def __init__(self, max_items: int = 64, max_bytes: int = 1024 * 1024 * 1024) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: OrderedDict[ResultKey, Prediction] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: ResultKey) -> Prediction | None:
        with self._lock:
            prediction = self._items.get(key)
            if prediction is not None:
                self._items.move_to_end(key)
            return prediction

    def put(self, key: ResultKey, prediction: Prediction) -> None:
        with self._lock:
            if key in self._items:
                self._bytes -= prediction_nbytes(self._items.pop(key))
            self._items[key] = prediction
            self._bytes += prediction_nbytes(prediction)
            while len(self._items) > 1 and (len(self._items) > self.max_items or self._bytes > self.max_bytes):
                _, dropped = self._items.popitem(last=False)
                self._bytes -= prediction_nbytes(dropped)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
