"""``first_click_after_upload_ms``: what the first SAM click waits for when the image was encoded on arrival.

The upload starts the image's encoding in the background, as the Prompt tab does
(`playground.ui.encode_ahead.EncodeAhead`, on its own thread here instead of a queue slot); the
click comes `CLICK_DELAYS_S` after the upload and joins whatever is left of the encoding. Figures
(wall clock, median of ``repeat`` runs after one warm-up, each on an image no run saw before):

- ``encode_ms``: SAM's image encoding alone, the first click's cost without encoding on arrival;
- ``click_after_1s_ms``, ``click_after_5s_ms``: the click, from the moment it is made until its
  overlay is drawn (the rest of the encoding, the decoder, the masks);
- ``ratio_after_1s``, ``ratio_after_5s``: click / ``encode_ms`` (below 1: the wait encoding on
  arrival saved; near 0 once the encoding was done before the click).
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from playground.bench.drawing import draw

if TYPE_CHECKING:
    from playground.runtime.manager import ModelManager

CLICK_DELAYS_S = (1.0, 5.0)
"""Seconds from the upload to the first click."""
KEY = "sam"
FIELDS = (
    "encode_ms",
    *(
        f"{kind}_after_{delay:.0f}s{unit}"
        for delay in CLICK_DELAYS_S
        for kind, unit in (("click", "_ms"), ("ratio", ""))
    ),
)
"""The keys of ``first_click_after_upload_ms``."""


def fresh(image: np.ndarray, number: int) -> np.ndarray:
    """``image`` with one pixel changed by ``number``: another digest, so nothing of it is cached."""
    changed = image.copy()
    changed[0, 0] = (number % 256, number // 256 % 256, 7)
    return changed


def bench_first_click(
    manager: ModelManager, keys: list[str], image: np.ndarray, repeat: int, notes: list[str]
) -> dict[str, float | None]:
    """The figures above for SAM on ``image`` (H, W, 3 uint8); all null, with a note, when sam is not among ``keys``."""
    from playground.runtime.service import Playground
    from playground.ui.encode_ahead import EncodeAhead

    empty: dict[str, float | None] = dict.fromkeys(FIELDS)
    if KEY not in keys:
        notes.append(f"first_click_after_upload_ms: {KEY} is not among --models")
        return empty
    height, width = image.shape[:2]
    click = {"points": ((width / 2, height / 2, 1),)}
    playground = Playground(manager)
    ahead = EncodeAhead(playground)
    numbers = iter(range(1, 1 << 16))
    encodes: list[float] = []
    clicks: dict[float, list[float]] = {delay: [] for delay in CLICK_DELAYS_S}
    try:
        manager.predict(KEY, fresh(image, next(numbers)), encode=True)  # warm-up: loads the model
        for _ in range(repeat):
            start = time.perf_counter()
            manager.predict(KEY, fresh(image, next(numbers)), encode=True)
            encodes.append((time.perf_counter() - start) * 1000)
            for delay, times in clicks.items():
                uploaded, source = fresh(image, next(numbers)), f"upload {len(encodes)} {delay}"
                ahead.arrived("bench", source)
                upload = time.perf_counter()
                background = threading.Thread(target=ahead.encode, args=("bench", source, uploaded, [KEY]))
                background.start()
                time.sleep(max(0.0, delay - (time.perf_counter() - upload)))
                start = time.perf_counter()
                draw(uploaded, playground.predict(KEY, uploaded, task="prompt", **click))
                times.append((time.perf_counter() - start) * 1000)
                background.join()
    except Exception as error:
        notes.append(f"first_click_after_upload_ms: {type(error).__name__}: {error}".splitlines()[0])
        return empty
    finally:
        manager.unload(KEY)
    encode_ms = statistics.median(encodes)
    figures: dict[str, float | None] = {"encode_ms": round(encode_ms, 2)}
    for delay, times in clicks.items():
        click_ms = statistics.median(times)
        figures[f"click_after_{delay:.0f}s_ms"] = round(click_ms, 2)
        figures[f"ratio_after_{delay:.0f}s"] = round(click_ms / encode_ms, 4)
    return figures
