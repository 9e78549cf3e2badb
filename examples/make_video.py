"""Make ``chelsea_pan.mp4``: a slow pan and zoom over ``chelsea.jpg`` (CC0), so a tracker has motion to follow.

Run: ``python examples/make_video.py``. 72 frames of 320x240 at 12 fps (6 s), H.264 through
PyAV; the crop window slides left to right while it closes in by a quarter. The licence is the
photo's (see examples/LICENSES.md).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

FRAMES = 72
FPS = 12
SIZE = (320, 240)


def crop_boxes(width: int, height: int) -> list[tuple[float, float, float, float]]:
    """One crop (left, top, right, bottom) per frame: 4:3, from 90% of the height to 70%, left to right."""
    boxes = []
    for index in range(FRAMES):
        t = index / (FRAMES - 1)
        eased = 0.5 - 0.5 * np.cos(np.pi * t)  # start and stop gently
        crop_h = height * (0.9 - 0.2 * eased)
        crop_w = crop_h * SIZE[0] / SIZE[1]
        left = (width - crop_w) * (0.1 + 0.8 * eased)
        top = (height - crop_h) * 0.5
        boxes.append((left, top, left + crop_w, top + crop_h))
    return boxes


def main(folder: Path = Path(__file__).parent) -> Path:
    photo = Image.open(folder / "chelsea.jpg").convert("RGB")
    path = folder / "chelsea_pan.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"crf": "28", "preset": "veryslow"})
        stream.width, stream.height, stream.pix_fmt = *SIZE, "yuv420p"
        for box in crop_boxes(*photo.size):
            frame = photo.resize(SIZE, Image.Resampling.LANCZOS, box=box)
            container.mux(stream.encode(av.VideoFrame.from_image(frame)))
        container.mux(stream.encode())
    print(f"{path}: {path.stat().st_size / 1024:.0f} KB")
    return path


if __name__ == "__main__":
    main()
