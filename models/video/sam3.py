"""SAM 3 video (transformers ``Sam3VideoModel``): a noun phrase in, every matching object tracked.

On each frame SAM 3's detector finds the phrase's instances and a SAM 2-style tracker carries the
objects found before (memory attention over recent frames); the library matches the two by mask
IoU, starts new objects, and drops those it stops seeing (its "hotstart" heuristics hold the
output back a few frames while it decides). The playground runs the library's own loop:
``add_text_prompt``, ``propagate_in_video_iterator`` forward then backward from the prompt frame,
and ``postprocess_outputs`` per frame. As in the SAM 2 route, frames are read from the clip on
disk when the model asks (`LazyFrames`) and per-frame memories the tracker can no longer read are
dropped (`MemoryBank`), so memory stays flat over long clips.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from transformers import Sam2VideoVideoProcessor, Sam3VideoConfig, Sam3VideoModel, Sam3VideoProcessor
from transformers.image_utils import IMAGENET_STANDARD_MEAN, IMAGENET_STANDARD_STD
from transformers.models.sam3.image_processing_sam3 import Sam3ImageProcessor
from transformers.models.sam3_tracker_video.configuration_sam3_tracker_video import Sam3TrackerVideoConfig

from models.layers.rope_attention import COMPLEX_ROTATION, use_rope_attention
from models.owlv2 import stand_in_clip_tokenizer
from models.sam3 import MAX_CLASSES, TINY_SIZE, tiny_sam3_config
from models.video.session import LazyFrames, MemoryBank, VideoAdapter, state_device
from playground.core.errors import BadPromptError
from playground.core.patches import Patch
from playground.core.text_prompts import split_classes
from playground.core.videos import Cancelled, FrameSource, Progress, TrackedFrame, VideoPrompt
from playground.core.weights import hf_model, hf_processor

TINY_WIDTH = 128
"""Width of the tiny build's FPN, detector and tracker: above the tracker's 64-channel memories,
which it splits object pointers into (the library needs the width to be a multiple of 64, above 64)."""
TINY_THRESHOLDS = {
    "score_threshold_detection": 0.2,
    "new_det_thresh": 0.2,
    "hotstart_delay": 4,
    "hotstart_unmatch_thresh": 3,
    "hotstart_dup_thresh": 3,
    "max_num_objects": 4,
}
"""Random weights score every query near 0.25: detect from 0.2 so the tiny build finds objects, a
short hotstart so its delay and removals show on a short clip, and at most 4 objects (CPU time)."""


def tiny_sam3_video_config(vocab_size: int) -> Sam3VideoConfig:
    """transformers' SAM 3 test layout (`tiny_sam3_config`) 128 wide with a 4-level FPN, and a
    one-layer tracker on its 16x16 features keeping 3 memories (the real model: 7)."""
    detector = tiny_sam3_config(vocab_size, width=TINY_WIDTH, scale_factors=(4.0, 2.0, 1.0, 0.5))
    tracker = Sam3TrackerVideoConfig(
        vision_config=detector.vision_config.to_dict(),
        prompt_encoder_config={"hidden_size": TINY_WIDTH, "mask_input_channels": 4},
        mask_decoder_config={"hidden_size": TINY_WIDTH, "mlp_dim": 64, "num_attention_heads": 2},
        num_maskmem=3,
        memory_attention_hidden_size=TINY_WIDTH,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64,
        memory_encoder_hidden_size=TINY_WIDTH,
        mask_downsampler_embed_dim=TINY_WIDTH,
        memory_fuser_embed_dim=TINY_WIDTH,
        memory_fuser_intermediate_dim=64,
        memory_fuser_num_layers=1,
    )
    low_res = TINY_SIZE // detector.vision_config.backbone_config.patch_size * 4
    config = Sam3VideoConfig(
        detector_config=detector, tracker_config=tracker, low_res_mask_size=low_res, **TINY_THRESHOLDS
    )
    config.image_size = TINY_SIZE  # sets the tracker's feature and rope sizes to match
    return config


def sam3_video_processor(size: int | None = None) -> Sam3VideoProcessor:
    """The processor for a random build: SAM 3's image processor and a video processor with its
    normalisation (mean and std 0.5), at ``size`` (default 1008), with a stand-in CLIP tokenizer."""
    sized = {"size": {"height": size, "width": size}} if size else {}
    images = Sam3ImageProcessor(**sized)
    video = Sam2VideoVideoProcessor(
        size=dict(images.size), image_mean=IMAGENET_STANDARD_MEAN, image_std=IMAGENET_STANDARD_STD
    )
    return Sam3VideoProcessor(images, video, stand_in_clip_tokenizer(), target_size=images.size["height"])


@dataclass
class Sam3Session:
    """One clip's run: the library's inference session over frames read on demand, its memory bank."""

    source: FrameSource
    session: object
    frames: LazyFrames
    bank: MemoryBank

    def close(self) -> None:
        self.bank.close()


class Sam3VideoAdapter(VideoAdapter):
    """``facebook/sam3`` (video; gated: see the README), or a random build (tiny: see above)."""

    half_precision_regions = ("detector_model.vision_encoder", "detector_model.text_encoder")

    def use_faster_layers(self, model: torch.nn.Module) -> list[Patch]:
        """The detector's ViT turns its rotary positions as one complex product (`models.layers.rope_attention`)."""
        return [*super().use_faster_layers(model), self.faster(COMPLEX_ROTATION, use_rope_attention, model)]

    def build(self) -> torch.nn.Module:
        self.label_names = {}
        if self.weights == "pretrained":
            self.processor = hf_processor(self.spec, Sam3VideoProcessor, self.checkpoint)
            return hf_model(self.spec, Sam3VideoModel, self.checkpoint)
        if self.weights == "tiny":
            self.processor = sam3_video_processor(TINY_SIZE)
            return Sam3VideoModel(tiny_sam3_video_config(len(self.processor.tokenizer)))
        self.processor = sam3_video_processor()
        text = {"text_config": {"vocab_size": len(self.processor.tokenizer)}}
        return Sam3VideoModel(Sam3VideoConfig(detector_config=text))

    def open_session(self, source: FrameSource) -> Sam3Session:
        """A session over ``source`` whose frames are read and processed on demand (state: `state_device`)."""
        session = self.processor.init_video_session(
            inference_device=self.device,
            inference_state_device=state_device(self.device, len(source), self.model.config.image_size),
            video_storage_device="cpu",  # frames are read from disk on demand (`LazyFrames`)
            dtype=torch.float32,
        )
        frames = LazyFrames(source, self.processor.video_processor, torch.float32)
        session.processed_frames = frames
        session.video_height, session.video_width = source.height, source.width
        return Sam3Session(source, session, frames, MemoryBank(self.model.tracker_model.num_maskmem, keep=False))

    def track(
        self,
        state: Sam3Session,
        prompt: VideoPrompt,
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> Iterator[TrackedFrame]:
        """The processor's ``add_text_prompt`` (one prompt per class name in ``prompt.text``), then
        ``propagate_in_video_iterator`` forward from the prompt frame and backward from it.

        Yields one `TrackedFrame` per frame (the prompt frame, those after it, then those before it,
        nearest first), each object labelled with its phrase. A session tracks once."""
        phrases = split_classes(prompt.text)
        if not phrases:
            raise BadPromptError("SAM 3 video tracks what you type: give a phrase, e.g. 'cat'.")
        if len(phrases) > MAX_CLASSES:
            raise BadPromptError(f"{len(phrases)} phrases: SAM 3 here takes at most {MAX_CLASSES}.")
        self.processor.add_text_prompt(state.session, phrases)
        done, total = 0, len(state.source)
        for reverse in (False, True):
            frames = self.model.propagate_in_video_iterator(
                inference_session=state.session, start_frame_idx=prompt.frame, reverse=reverse
            )
            for out in frames:
                yield self._frame(state, out)
                done += 1
                if progress:
                    progress(done, total)
                # output lags the model by the hotstart delay: trim around the frame it last read
                state.bank.trim(state.session.output_dict_per_obj, state.frames.last)
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"Cancelled after {done} of {total} frames.")

    def _frame(self, state: Sam3Session, out) -> TrackedFrame:
        """The processor's ``postprocess_outputs``: masks at the clip's size, detection scores, phrases."""
        result = self.processor.postprocess_outputs(state.session, out)
        labels = {int(i): phrase for phrase, ids in result["prompt_to_obj_ids"].items() for i in ids}
        return TrackedFrame(
            index=int(out.frame_idx),
            object_ids=result["object_ids"].cpu().numpy().astype(np.int64),
            masks=result["masks"].cpu().numpy().astype(bool),
            scores=result["scores"].float().cpu().numpy(),
            meta={"labels": labels},
        )
