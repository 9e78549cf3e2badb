"""What the SAM 2 and SAM 3 video adapters share: frames read on demand and a memory bank on disk.

transformers' video sessions keep every processed frame and every frame's outputs in memory
(``processed_frames``, ``output_dict_per_obj``): a 300-frame clip at 1024 px is ~3.6 GB of
pixels alone. Two pieces keep memory flat while the library's own loops
(``propagate_in_video_iterator``) run unchanged:

- `LazyFrames` stands in for ``processed_frames``: frame ``i`` is read from the clip on disk and
  run through the processor's own video processor when the model asks for it (2 kept);
- `MemoryBank` moves what the model can no longer read to disk: a tracked (non-conditioning)
  frame's memory features are only read by the frames less than ``num_maskmem`` away from it,
  so once tracking is further on they are saved and dropped (object pointers, 1 KB each, stay).
  A correcting click reloads the ones around it first. Masks at full resolution
  (``high_res_masks``) and low-res logits of tracked frames are never read again and are dropped.
"""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.base import Adapter
from playground.core.errors import BadPromptError
from playground.core.videos import FrameSource

STATE_SHARE = 0.5
"""Most of a CUDA device's free memory a session's per-frame state may be sized for and stay there."""
SPILLED = ("maskmem_features", "maskmem_pos_enc")
"""Per-frame outputs that only nearby frames read: saved to disk once tracking has moved on."""
DROPPED = ("high_res_masks", "pred_masks")
"""Per-frame outputs of tracked frames that nothing reads after the frame is done."""


def state_device(device: torch.device, frames: int, image_size: int) -> torch.device:
    """Where a session keeps its per-frame state (``inference_state_device``): the model's device when
    ``frames`` frames of one object's state, as if nothing were spilled, fit in `STATE_SHARE` of its
    free memory, else the CPU. A CPU model's state is on the CPU, and MPS shares the host's memory.

    On a GPU, state offloaded to the CPU crosses the bus for every frame that reads it (the library's
    default keeps it on the device); `MemoryBank` keeps it to ``num_maskmem`` frames either way."""
    if device.type != "cuda":
        return device
    # a frame: its full-size and low-res mask logits, its 64-channel memory and position maps (float32)
    frame_bytes = 4 * (image_size**2 + (image_size // 4) ** 2 + 2 * 64 * (image_size // 16) ** 2)
    free, _ = torch.cuda.mem_get_info(device)
    return device if frames * frame_bytes <= free * STATE_SHARE else torch.device("cpu")


class LazyFrames(Mapping):
    """``processed_frames`` for a session: index -> (3, S, S) pixel values, made on demand.

    Args:
        source: the clip's frames (disk-backed).
        video_processor: the processor's ``video_processor`` (resize to S x S, normalise).
        dtype: the session's dtype.
    """

    def __init__(self, source: FrameSource, video_processor: Any, dtype: torch.dtype, keep: int = 2) -> None:
        self.source, self.video_processor, self.dtype, self.keep = source, video_processor, dtype, keep
        self._recent: OrderedDict[int, torch.Tensor] = OrderedDict()
        self.last = -1
        """The frame the model asked for last: the one it is processing."""

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.source)))

    def __getitem__(self, index: int) -> torch.Tensor:
        self.last = index
        if index in self._recent:
            self._recent.move_to_end(index)
            return self._recent[index]
        if not 0 <= index < len(self.source):
            raise KeyError(index)
        frame = self.source.frame(index)[None]  # (1, H, W, 3): a one-frame video
        pixels = self.video_processor(videos=[frame], return_tensors="pt").pixel_values_videos[0, 0]
        self._recent[index] = pixels = pixels.to(self.dtype)
        while len(self._recent) > self.keep:
            self._recent.popitem(last=False)
        return pixels


class MemoryBank:
    """Moves per-frame memory the model can no longer read from a session to disk, and back.

    Args:
        reach: how far (in frames) a frame's memory features are read: the model's ``num_maskmem``.
        keep: save what is spilled, for `restore` (a correcting click); False drops it (SAM 3 runs,
            which are never corrected).
    """

    def __init__(self, reach: int, keep: bool = True) -> None:
        self.reach, self.keep = reach, keep
        self._folder = tempfile.TemporaryDirectory(prefix="video-memory-")
        self.spilled: set[tuple[int, int]] = set()

    def _path(self, obj_idx: int, frame_idx: int) -> Path:
        return Path(self._folder.name) / f"{obj_idx}-{frame_idx}.pt"

    def trim(self, outputs_per_obj: dict[int, dict[str, dict]], current: int) -> None:
        """After frame ``current``: drop what tracked frames no longer need, spill far memories."""
        for obj_idx, outputs in outputs_per_obj.items():
            anchors = [current, *outputs["cond_frame_outputs"]]
            for frame_idx, out in outputs["non_cond_frame_outputs"].items():
                for key in DROPPED:
                    out.pop(key, None)
                far = all(abs(frame_idx - anchor) >= self.reach for anchor in anchors)
                if far and SPILLED[0] in out:
                    spilled = {key: out.pop(key) for key in SPILLED}
                    if self.keep:
                        torch.save(spilled, self._path(obj_idx, frame_idx))
                    self.spilled.add((obj_idx, frame_idx))

    def restore(self, outputs_per_obj: dict[int, dict[str, dict]], around: int) -> None:
        """Reload the spilled memories of the frames within ``reach`` of frame ``around``."""
        for obj_idx, frame_idx in sorted(self.spilled):
            if abs(frame_idx - around) < self.reach:
                out = outputs_per_obj[obj_idx]["non_cond_frame_outputs"].get(frame_idx)
                if out is not None:
                    out.update(torch.load(self._path(obj_idx, frame_idx), weights_only=True))
                self.spilled.discard((obj_idx, frame_idx))

    def close(self) -> None:
        self._folder.cleanup()


class VideoAdapter(Adapter):
    """A video model: it tracks clips (``track``), it does not take single images."""

    def preprocess(self, image: np.ndarray, task: str, **preprocess_params: Any) -> Any:
        raise BadPromptError(
            f"{self.spec.title} tracks video clips: use the Video tab or `python -m playground track`."
        )

    def forward(self, inputs: Any) -> Any:  # pragma: no cover - preprocess refuses first
        raise NotImplementedError

    def postprocess(self, outputs: Any, image: np.ndarray, task: str, **postprocess_params: Any) -> Any:
        raise NotImplementedError  # pragma: no cover
