"""What a run gives: the overlay mp4 (PyAV), ``tracks.json`` and a COCO-style export with RLE masks.

Every frame of the clip is in each output, in order; frames a cancelled run did not reach have
no objects (``"tracked": false`` in the JSON). Each object keeps its colour (its id picks the
palette slot) and its ``label #id`` tag on every frame.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from playground.core.types import Prediction
from playground.core.videos import FrameSource
from playground.render.export import RANDOM_WEIGHTS_NOTE
from playground.video.tracker import FrameResult, Tracks

CODECS = ("libx264", "h264", "mpeg4")
"""Encoders tried in order: H.264 when PyAV's ffmpeg has one, else MPEG-4 part 2."""


def video_codec() -> str:
    """The first of `CODECS` this PyAV build can encode with."""
    import av  # here, not at start-up: only the Video tab needs PyAV

    return next(name for name in CODECS if name in av.codecs_available)


def frame_prediction(tracks: Tracks, result: FrameResult | None, height: int, width: int) -> Prediction:
    """One frame's objects as a `Prediction` whose class ids are the object ids (stable colours)."""
    ids = result.object_ids if result else []
    return Prediction(
        model=tracks.key,
        task="video",
        weights=tracks.weights,  # type: ignore[arg-type]
        image_size=(height, width),
        label_names={obj_id: tracks.tag(obj_id) for obj_id in ids},
        boxes=result.boxes if result else np.zeros((0, 4), np.float32),
        scores=np.array(result.scores if result else [], np.float32),
        class_ids=np.array(ids, np.int64),
        masks=result.masks(height, width) if result else np.zeros((0, height, width), bool),
    )


def overlay_frame(source: FrameSource, tracks: Tracks, index: int) -> np.ndarray:
    """(H, W, 3) uint8: frame ``index`` with its tracked objects drawn."""
    frame = source.frame(index)
    prediction = frame_prediction(tracks, tracks.frames.get(index), source.height, source.width)
    from playground.render.overlay import render  # supervision: imported on the first frame, not with the app

    return render(frame, prediction, legend=False) if len(prediction) else frame


def write_overlay(
    source: FrameSource, tracks: Tracks, path: Path, progress: Callable[[int, int], None] | None = None
) -> int:
    """Encode every frame, overlaid, to ``path`` (mp4) at the clip's sampled rate; returns the count."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(video_codec(), rate=Fraction(source.fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = source.width, source.height, "yuv420p"
        for index in range(len(source)):
            frame = av.VideoFrame.from_ndarray(overlay_frame(source, tracks, index), format="rgb24")
            container.mux(stream.encode(frame))
            if progress:
                progress(index + 1, len(source))
        container.mux(stream.encode())
    return len(source)


def tracks_json(tracks: Tracks, source: FrameSource) -> dict[str, Any]:
    """``{"frames": [{"index", "tracked", "objects": [{"id", "label", "box", "mask_area", "score"}]}], ...}``:
    one entry per output frame; boxes XYXY pixels (right and bottom inclusive)."""
    frames = []
    for index in range(len(source)):
        result = tracks.frames.get(index)
        objects = []
        if result:
            for obj_id, box, area, score in zip(result.object_ids, result.boxes.tolist(), result.areas, result.scores):
                box = [round(v, 1) for v in box]
                objects.append(
                    {"id": obj_id, "label": tracks.label(obj_id), "box": box, "mask_area": area, "score": score}
                )
        frames.append({"index": index, "tracked": result is not None, "objects": objects})
    summary: dict[str, Any] = {
        "model": tracks.key,
        "weights": tracks.weights,
        "fps": round(source.fps, 3),
        "size": [source.width, source.height],
        "frames": frames,
        "timings_ms": tracks.timings_ms,
    }
    if tracks.notices:
        summary["notice"] = " ".join(tracks.notices)
    if tracks.weights != "pretrained":
        summary["note"] = RANDOM_WEIGHTS_NOTE
    return summary


def tracks_coco(tracks: Tracks, source: FrameSource) -> dict[str, Any]:
    """COCO-style: ``images`` (one per frame), ``categories`` (one per object), ``annotations`` with
    RLE ``segmentation``, XYWH ``bbox``, ``area``, ``score`` and ``track_id`` (the object id)."""
    images = [{"id": i, "frame_index": i, "width": source.width, "height": source.height} for i in range(len(source))]
    ids = sorted({obj_id for result in tracks.frames.values() for obj_id in result.object_ids})
    annotations = []
    for index in sorted(tracks.frames):
        result = tracks.frames[index]
        for obj_id, box, area, score, rle in zip(
            result.object_ids, result.boxes.tolist(), result.areas, result.scores, result.rles
        ):
            if not area:
                continue
            x1, y1, x2, y2 = box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index,
                    "category_id": obj_id,
                    "track_id": obj_id,
                    "bbox": [x1, y1, x2 - x1 + 1, y2 - y1 + 1],
                    "area": area,
                    "score": score,
                    "segmentation": {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")},
                }
            )
    categories = [{"id": obj_id, "name": tracks.label(obj_id)} for obj_id in ids]
    return {"images": images, "categories": categories, "annotations": annotations}
