"""``python -m playground track VIDEO``: follow objects through a clip; write the overlay mp4 and tracks JSON.

The flags besides the model flags (`playground.cli.add_model_arguments`) are added by
`add_track_arguments`; `run_track` gets the parsed prompt from `playground.cli.prompt_params`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from playground.core.errors import BadPromptError
from playground.core.videos import ObjectPrompt, VideoPrompt


def add_track_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, help="a clip: mp4, webm, mov or gif (at most 20 MB)")
    parser.add_argument(
        "--model",
        choices=("sam2", "sam3", "grounded-sam2", "panoptic-sam2"),
        default=None,
        help="sam2: clicks or a box; sam3 or grounded-sam2: text; panoptic-sam2: no prompt (every MaskFormer "
        "panoptic segment on --frame) [default: sam2, or grounded-sam2 with --text]",
    )
    prompt = parser.add_mutually_exclusive_group()
    prompt.add_argument("--points", help='clicks on the prompt frame "x,y,1;x,y,0" (1 foreground, 0 background)')
    prompt.add_argument("--box", help="a box on the prompt frame x1,y1,x2,y2 in pixels")
    prompt.add_argument("--text", help='what to track, e.g. "cat" (sam3 or grounded-sam2)')
    parser.add_argument("--frame", type=int, default=0, help="the prompt frame, an index after sampling [default: 0]")
    parser.add_argument("--fps", type=float, help="sampling rate [default: the clip's own, up to 10]")
    parser.add_argument("--out", type=Path, required=True, help="write the overlay mp4 here")
    parser.add_argument("--json", type=Path, help="write the tracks JSON here [default: tracks.json beside --out]")
    parser.add_argument("--coco", type=Path, help="also write a COCO-style JSON with RLE masks per frame")


def run_track(args: argparse.Namespace, manager, params: dict[str, object]) -> int:  # manager: ModelManager
    """Decode, track (printing progress on stderr), then write the outputs; 0 on success."""
    from playground.video.clips import open_clip
    from playground.video.output import tracks_coco, tracks_json, write_overlay
    from playground.video.tracker import VideoTracker

    route = args.model or ("grounded-sam2" if args.text is not None else "sam2")
    if args.text is not None and route == "sam2":
        raise BadPromptError("--text needs --model sam3 or grounded-sam2; sam2 takes --points or --box.")
    if route == "panoptic-sam2":
        if params:
            raise BadPromptError("--model panoptic-sam2 tracks every panoptic segment of --frame: give no prompt.")
    elif args.text is None and route != "sam2":
        raise BadPromptError(f"--model {route} tracks text: give --text.")
    elif not params:
        raise BadPromptError("give a prompt: --points, --box or --text (or --model panoptic-sam2, which needs none).")
    clip = open_clip(args.video, fps=args.fps)
    objects = ()
    if "points" in params or "box" in params:
        objects = (ObjectPrompt(1, points=params.get("points", ()), box=params.get("box")),)
    prompt = VideoPrompt(args.frame, objects, str(params.get("text", "")))

    def progress(done: int, total: int) -> None:
        print(f"\rtracking: {done}/{total} frames", end="", file=sys.stderr, flush=True)

    tracks = VideoTracker(manager, clip).track(route, prompt, progress=progress)
    print(file=sys.stderr)
    tracks.notices[:0] = clip.notices
    count = write_overlay(clip, tracks, args.out)
    args.json = args.json or args.out.with_name("tracks.json")
    args.json.write_text(json.dumps(tracks_json(tracks, clip), indent=1) + "\n")
    if args.coco:
        args.coco.write_text(json.dumps(tracks_coco(tracks, clip)) + "\n")
    ids = sorted({i for result in tracks.frames.values() for i in result.object_ids})
    seconds = tracks.timings_ms["total"] / 1000
    print(f"{route}: {len(ids)} objects over {count} frames, {seconds:.1f} s -> {args.out}, {args.json}")
    return 0
