"""`Explainer`: forward hooks that keep what the Explain views need, and nothing else.

An adapter names an `Explainer` subclass; `Adapter.load` makes one on the model, which registers
a forward hook on each submodule in `Explainer.hooks`. During `Adapter.predict` the forward runs
inside `Explainer.recording`, so each hook stores a reduced copy of its module's output (`reduce`)
in a per-thread dict (two requests may run one model at once). After post-processing, `capture`
turns the records, the model's outputs and the prediction into small numpy arrays for
``Prediction.explain``. Outside `recording` the hooks do nothing, so a model run elsewhere (a test,
a second library call) is unaffected. The hooks sit on the submodules themselves, so they fire in
half-precision regions too (`models.layers.half_precision` wraps ``forward``, not ``__call__``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import torch

from playground.core.patches import Patch

Records = dict[str, Any]


class Explainer:
    """Records module outputs during one forward; subclasses say which (`hooks`) and what to keep."""

    hooks: ClassVar[tuple[str, ...]] = ()
    """Names of submodules (``model.get_submodule``) whose outputs are recorded."""

    def __init__(self, model: torch.nn.Module) -> None:
        self._local = threading.local()
        names = self.hook_names(model)
        self.handles = [model.get_submodule(name).register_forward_hook(self._hook(name)) for name in names]
        self.patches: list[Patch] = []
        if names:
            self.patches.append(
                Patch(
                    replaced=f"nothing: forward hooks added on {', '.join(names)}",
                    by=f"{type(self).__name__}, which keeps what the Explain views draw while a request records",
                    why="Explain views from the same forward pass, at no cost when not recording",
                    count=len(names),
                )
            )

    def hook_names(self, model: torch.nn.Module) -> tuple[str, ...]:
        """The submodules to hook on ``model`` (default: `hooks`)."""
        return self.hooks

    def reduce(self, name: str, module: torch.nn.Module, output: Any) -> Any:
        """What to keep of submodule ``name``'s output; the default keeps it as it is. Override to
        shrink a large activation at once, so it is not held until `capture`."""
        return output

    def _hook(self, name: str):
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            records = getattr(self._local, "records", None)
            if records is not None:
                records[name] = self.reduce(name, module, output)

        return hook

    @contextlib.contextmanager
    def recording(self) -> Iterator[Records]:
        """Hooks record into the yielded dict (this thread only) until the block ends."""
        records: Records = {}
        self._local.records = records
        try:
            yield records
        finally:
            self._local.records = None

    def capture(
        self, records: Records, adapter: Any, inputs: Any, outputs: Any, prediction: Any
    ) -> dict[str, np.ndarray]:
        """The arrays for ``prediction.explain``, from the hooks' ``records`` and the model's own
        ``inputs`` and ``outputs`` (as `Adapter.forward` took and gave them)."""
        raise NotImplementedError

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def numpy(tensor: torch.Tensor, dtype: type = np.float32) -> np.ndarray:
    """A detached CPU numpy copy of ``tensor`` in ``dtype``."""
    return tensor.detach().float().cpu().numpy().astype(dtype, copy=False)


def shrink(maps: torch.Tensor, longest: int) -> torch.Tensor:
    """(..., h, w) maps area-averaged down so the longer side is at most ``longest`` (kept if smaller)."""
    height, width = maps.shape[-2:]
    if max(height, width) <= longest:
        return maps
    scale = longest / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    flat = maps.reshape(-1, 1, height, width).float()
    return torch.nn.functional.adaptive_avg_pool2d(flat, size).reshape(*maps.shape[:-2], *size)
