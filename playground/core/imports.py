"""Heavy imports, one thread at a time: every import of model code goes through `import_module`.

transformers 5 resolves its top-level names lazily (``_LazyModule.__getattr__``), and that is not
thread-safe: when several threads import different adapter modules at once in a fresh process,
most of them fail with ``ImportError: cannot import name 'DetrConfig' from 'transformers'``. That
is exactly what a shared demo link meets right after start-up. So adapter modules (and through
them transformers, torch, torchvision, supervision and timm) are imported under one process-wide
lock. A module already imported returns at once, without the lock, so a slow first import never
holds up a model that is already in use.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType

from playground.core.forks import fork_safe

_LOCK = fork_safe(threading.RLock())


def import_module(name: str) -> ModuleType:
    """``importlib.import_module(name)``, under the process-wide heavy-import lock unless ``name``
    is already fully imported."""
    module = sys.modules.get(name)
    if module is not None and not getattr(getattr(module, "__spec__", None), "_initializing", False):
        return module
    with _LOCK:
        return importlib.import_module(name)
