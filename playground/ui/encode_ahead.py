"""Encode on arrival: an image's embedding starts computing as soon as the image arrives.

SAM, SAM 2.1 and SAM 3 encode each image once (seconds on a CPU) and answer every prompt from that
embedding. The Prompt and Text tabs run `EncodeAhead.encode` as a model event (the shared queue
slots of `common.model_events`) right after an image arrives, so a click made later finds the
embedding cached, and one made during the encoding joins it (the adapters' embedding caches are
single-flight, `playground.core.cache.LRUCache.get_or_compute`) and waits only for what is left.

A newer image in the same browser session cancels the older one's encoding: a model not yet
started on the older image is skipped; one already running finishes into its cache, and nobody
waits on it. Only models whose weights are here are encoded (an upload never starts a download).
"""

from __future__ import annotations

import numpy as np

from playground.core.cache import MB, LRUCache
from playground.core.registry import get_spec
from playground.runtime.service import Outcome, Playground, failed

READY = "Ready for prompts:"
"""How the tab's encoding line starts once every embedding is there (the browser tests wait on it)."""
SESSIONS = 4096
"""Browser sessions whose newest image is remembered (a few bytes each)."""


def encoders(keys: list[str] | tuple[str, ...]) -> list[str]:
    """The models among ``keys`` (or their parts, for a composite such as Grounded-SAM) that encode an
    image once for all its prompts: those declaring an ``encode`` parameter; each once, in order."""
    found: list[str] = []
    for key in keys:
        for part in get_spec(key).components or (key,):
            if part not in found and "encode" in get_spec(part).load_class().preprocess_params:
                found.append(part)
    return found


class EncodeAhead:
    """Encodes each newly arrived image for a tab's models, newest image per session first.

    Args:
        playground: whose models run the encodings (a `ModelManager`, ZeroGPU or a Ray backend).
    """

    def __init__(self, playground: Playground) -> None:
        self.playground = playground
        self._newest: LRUCache[str] = LRUCache(SESSIONS, MB, sizeof=len)

    def arrived(self, session: str, source: str) -> None:
        """``source`` (the image's path) is now ``session``'s newest image."""
        self._newest.put(session, source)

    def is_newest(self, session: str, source: str) -> bool:
        return self._newest.get(session) == source

    def keys_for(self, keys: list[str] | tuple[str, ...]) -> list[str]:
        """`encoders` of ``keys`` whose weights are here (an upload never starts a download)."""
        return [key for key in encoders(keys) if self.playground.weights_local(key)]

    def encode(self, session: str, source: str, image: np.ndarray, keys: list[str]) -> list[Outcome] | None:
        """Each of ``keys`` encodes ``image`` (H, W, 3 uint8) from ``source``, one after another (each an
        empty prediction whose ``reuse`` says how); None when a newer image arrived before they all
        started: the rest are skipped. A failure is that model's error `Outcome`."""
        outcomes = []
        for key in keys:
            if not self.is_newest(session, source):
                return None
            try:
                outcomes.append(Outcome(key, self.playground.manager.predict(key, image, encode=True)))
            except Exception as error:  # the click will say it again, in that model's panel
                outcomes.append(failed(key, error))
        return outcomes


def encoding_line(keys: list[str]) -> str:
    """What the tab shows while the image is encoded for ``keys``."""
    titles = ", ".join(get_spec(key).title for key in keys)
    return f"Encoding the image for {titles} before your first prompt…" if keys else ""


def encoded_line(outcomes: list[Outcome]) -> str:
    """``"Ready for prompts: SAM: image encoded in 1.2 s · SAM 2.1: cached"``, with any
    model that failed named after the ready ones."""
    done = [f"{get_spec(o.key).title}: {o.prediction.reuse}" for o in outcomes if o.prediction is not None]
    failures = [f"{get_spec(o.key).title}: {o.error}" for o in outcomes if o.prediction is None]
    return " · ".join(filter(None, [f"{READY} {' · '.join(done)}" if done else "", *failures]))
