"""SAM 2 video (transformers ``Sam2VideoModel``): prompt objects on one frame, follow them through a clip.

The library's own loop does the work: ``add_inputs_to_inference_session`` on the prompt frame,
then ``propagate_in_video_iterator`` forward and backward from it, and ``post_process_masks``
per frame. The session reads frames from disk on demand (`LazyFrames`) and moves memory the
model can no longer read to disk (`MemoryBank`), so memory stays flat over long clips.

A correcting click on an already tracked frame ``k`` runs the library on ``k`` with the click
(using the memory around ``k``), keeps ``k`` as a conditioning frame, as SAM 2's own predictor
does, and re-runs only the frames from ``k`` away from the prompt frame.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import (
    Sam2HieraDetConfig,
    Sam2ImageProcessor,
    Sam2VideoConfig,
    Sam2VideoModel,
    Sam2VideoProcessor,
    Sam2VideoVideoProcessor,
    Sam2VisionConfig,
)

from models.video.session import LazyFrames, MemoryBank, VideoAdapter, state_device
from playground.core.videos import Cancelled, FrameSource, ObjectPrompt, Progress, TrackedFrame, VideoPrompt
from playground.core.weights import hf_model, hf_processor

TINY_SIZE = 128
"""Input side of the tiny test build (the real model: 1024)."""


def tiny_sam2_video_config() -> Sam2VideoConfig:
    """A Hiera of width 12 on 128-pixel inputs (the sizes of transformers' SAM 2 vision tests) with a
    128-wide decoder and a one-layer memory attention; memory stays 64 channels, as the model requires."""
    backbone = Sam2HieraDetConfig(
        hidden_size=12,
        blocks_per_stage=[1, 2, 7, 2],
        embed_dim_per_stage=[12, 24, 48, 96],
        num_attention_heads_per_stage=[1, 2, 4, 8],
        image_size=[TINY_SIZE, TINY_SIZE],
    )
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=[96, 48, 24, 12],
        backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]],
        fpn_hidden_size=128,
    )
    return Sam2VideoConfig(
        vision_config=vision,
        image_size=TINY_SIZE,
        prompt_encoder_config={"hidden_size": 128, "image_size": TINY_SIZE, "mask_input_channels": 4},
        mask_decoder_config={"hidden_size": 128, "mlp_dim": 64, "num_attention_heads": 2, "iou_head_hidden_dim": 32},
        memory_attention_hidden_size=128,
        memory_attention_rope_feat_sizes=[8, 8],
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64,
        memory_encoder_hidden_size=128,
        mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=64,
        memory_fuser_num_layers=1,
    )


def tiny_sam2_video_processor() -> Sam2VideoProcessor:
    size = {"height": TINY_SIZE, "width": TINY_SIZE}
    return Sam2VideoProcessor(Sam2ImageProcessor(size=size), Sam2VideoVideoProcessor(size=size), target_size=TINY_SIZE)


@dataclass
class Sam2Session:
    """One clip's tracking state: the library's inference session, the prompt frame, the memory bank."""

    source: FrameSource
    session: object
    bank: MemoryBank
    prompt_frame: int = 0
    object_ids: list[int] = field(default_factory=list)

    def close(self) -> None:
        self.bank.close()


class Sam2VideoAdapter(VideoAdapter):
    """``facebook/sam2.1-hiera-tiny`` (video): clicks, boxes or masks on one frame, masks on every frame."""

    half_precision_regions = ("vision_encoder",)

    def build(self) -> torch.nn.Module:
        self.label_names = {}
        if self.weights == "pretrained":
            self.processor = hf_processor(self.spec, Sam2VideoProcessor, self.checkpoint)
            return hf_model(self.spec, Sam2VideoModel, self.checkpoint)
        if self.weights == "tiny":
            self.processor = tiny_sam2_video_processor()
            return Sam2VideoModel(tiny_sam2_video_config())
        self.processor = Sam2VideoProcessor(Sam2ImageProcessor(), Sam2VideoVideoProcessor())
        return Sam2VideoModel(Sam2VideoConfig())  # the defaults are the sam2.1-hiera-tiny layout

    # -- sessions ----------------------------------------------------------------------------

    def open_session(self, source: FrameSource) -> Sam2Session:
        """A session over ``source`` whose frames are read and processed on demand."""
        session = self.processor.init_video_session(
            inference_device=self.device,
            inference_state_device=state_device(self.device, len(source), self.model.config.image_size),
            video_storage_device="cpu",  # frames are read from disk on demand (`LazyFrames`)
            dtype=torch.float32,
        )
        session.processed_frames = LazyFrames(source, self.processor.video_processor, torch.float32)
        session.video_height, session.video_width = source.height, source.width
        return Sam2Session(source, session, MemoryBank(self.model.num_maskmem))

    def track(
        self,
        state: Sam2Session,
        prompt: VideoPrompt,
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> Iterator[TrackedFrame]:
        """Add ``prompt``'s objects on its frame (the processor's ``add_inputs_to_inference_session`` and
        a model call per object), then ``propagate_in_video_iterator`` forward and backward from it.

        Yields one `TrackedFrame` per frame: the prompt frame, the frames after it, then the
        frames before it (nearest first)."""
        state.session.reset_tracking_data()
        state.prompt_frame = prompt.frame
        for obj in prompt.objects:  # the library takes one object per call, each run on the frame at once
            self._add(state, prompt.frame, obj, clear=True)
            with torch.inference_mode():
                self.model(inference_session=state.session, frame_idx=prompt.frame)
        state.object_ids = [obj.obj_id for obj in prompt.objects]
        total = len(state.source)
        runs = [(prompt.frame, False), (prompt.frame, True)]
        yield from self._propagate(state, runs, total, cancel, progress)

    def correct(
        self,
        state: Sam2Session,
        frame: int,
        obj: ObjectPrompt,
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> Iterator[TrackedFrame]:
        """Add ``obj``'s clicks on ``frame`` and re-run only the frames from ``frame`` away from the prompt."""
        reverse = frame < state.prompt_frame
        session, outputs = state.session, state.session.output_dict_per_obj
        state.bank.restore(outputs, frame)
        if obj.obj_id in session.obj_ids:
            outputs[session.obj_id_to_idx(obj.obj_id)]["cond_frame_outputs"].pop(frame, None)
        self._add(state, frame, obj, clear=obj.box is not None)
        if obj.obj_id not in state.object_ids:
            state.object_ids.append(obj.obj_id)
        total = frame + 1 if reverse else len(state.source) - frame
        with torch.inference_mode():
            out = self.model(inference_session=session, frame_idx=frame, reverse=reverse)
        for obj_idx in range(session.get_obj_num()):  # a clicked frame conditions what follows
            per_obj = outputs[obj_idx]
            if frame in per_obj["non_cond_frame_outputs"] and session.obj_idx_to_id(obj_idx) == obj.obj_id:
                per_obj["cond_frame_outputs"][frame] = per_obj["non_cond_frame_outputs"].pop(frame)
        yield self._frame(state, out)
        if progress:
            progress(1, total)
        yield from self._propagate(state, [(frame + (-1 if reverse else 1), reverse)], total, cancel, progress, 1)

    # -- helpers -----------------------------------------------------------------------------

    def _add(self, state: Sam2Session, frame: int, obj: ObjectPrompt, clear: bool) -> None:
        """The processor's own ``add_inputs_to_inference_session`` for one object's points and box, or mask."""
        if obj.mask is not None:
            self.processor.add_inputs_to_inference_session(
                inference_session=state.session, frame_idx=frame, obj_ids=[obj.obj_id], input_masks=[obj.mask]
            )
            return
        inputs: dict[str, object] = {}
        if obj.points:
            inputs["input_points"] = [[[[x, y] for x, y, _ in obj.points]]]
            inputs["input_labels"] = [[[label for _, _, label in obj.points]]]
        if obj.box is not None:
            inputs["input_boxes"] = [[list(obj.box)]]
        self.processor.add_inputs_to_inference_session(
            inference_session=state.session, frame_idx=frame, obj_ids=obj.obj_id, clear_old_inputs=clear, **inputs
        )

    def _propagate(
        self,
        state: Sam2Session,
        runs: list[tuple[int, bool]],
        total: int,
        cancel: threading.Event | None,
        progress: Progress | None,
        done: int = 0,
    ) -> Iterator[TrackedFrame]:
        """``propagate_in_video_iterator`` from each (start, reverse), each frame yielded once."""
        seen: set[int] = set()
        for start, reverse in runs:
            if not 0 <= start < len(state.source):
                continue
            frames = self.model.propagate_in_video_iterator(
                inference_session=state.session, start_frame_idx=start, reverse=reverse
            )
            for out in frames:
                if out.frame_idx not in seen:
                    seen.add(out.frame_idx)
                    yield self._frame(state, out)
                    done += 1
                    if progress:
                        progress(done, total)
                state.bank.trim(state.session.output_dict_per_obj, out.frame_idx)
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"Cancelled after {done} of {total} frames.")

    def _frame(self, state: Sam2Session, out) -> TrackedFrame:
        """Masks at the clip's size (the processor's ``post_process_masks``) and object scores."""
        size = [[state.source.height, state.source.width]]
        masks = self.processor.post_process_masks([out.pred_masks], original_sizes=size, binarize=True)[0][:, 0]
        scores = torch.sigmoid(out.object_score_logits.float().reshape(-1))
        return TrackedFrame(
            index=int(out.frame_idx),
            object_ids=np.array(out.object_ids, np.int64),
            masks=masks.cpu().numpy(),
            scores=scores.cpu().numpy().astype(np.float32),
        )
