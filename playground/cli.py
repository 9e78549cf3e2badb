"""The command line, ``python -m playground``: models, predict, explain, score, track, label, download, bench, serve.

Runs the same `Playground` as the app. Errors a user can fix exit with status 2 and one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from playground.core.errors import BadPromptError, PlaygroundError
from playground.core.types import WEIGHT_MODES


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except PlaygroundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # one line here; the traceback goes to a log file the line names
        print(f"error: {logged_to_file(error, args)}", file=sys.stderr)
        return 1


def logged_to_file(error: Exception, args: argparse.Namespace) -> str:
    """`unexpected_error_line` for the CLI: its traceback goes to ``playground-errors.log`` in the
    system's temporary folder (the terminal gets one line that names it), not to the terminal."""
    import logging
    import tempfile

    from playground.core.errors import log, unexpected_error_line

    path = Path(tempfile.gettempdir()) / "playground-errors.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    propagate, log.propagate = log.propagate, False
    try:
        return unexpected_error_line(error, f"`{args.command}`", logged_in=str(path))
    finally:
        log.removeHandler(handler)
        handler.close()
        log.propagate = propagate


def build_parser() -> argparse.ArgumentParser:
    from playground.core.weights import weights_mode_from_env

    parser = argparse.ArgumentParser(prog="python -m playground", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = commands.add_parser("models", help="list every model: key, tasks, checkpoint, cached or not")
    models.add_argument("--layers", metavar="KEY", help="load KEY and list every layer swap or wrap made to it at load")
    models.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list instead: key, cached, default_score_threshold, checkpoint, size_mb, licence, gated",
    )
    add_model_arguments(models, weights_mode_from_env())
    models.set_defaults(run=run_models)

    predict = commands.add_parser("predict", help="run one model on one image; write an overlay and JSON")
    predict.add_argument("key", help="registry key, e.g. detr (see `models`)")
    predict.add_argument("image", type=Path, help="an image file")
    add_model_arguments(predict, weights_mode_from_env())
    predict.add_argument("--task", help="for models that serve several tasks, e.g. maskformer: panoptic")
    predict.add_argument(
        "--threshold",
        type=float,
        help="minimum score kept in the output (0..1) [default: the model's own, e.g. 0.5 for DETR, 0.3 for "
        "SAM 3, 0.0 (keep every candidate) for SAM, whose scores are predicted IoUs; `models --json` lists them]",
    )
    predict.add_argument("--points", help='SAM / SAM 2 points "x,y,label;x,y,label" (label 1 foreground, 0 background)')
    predict.add_argument("--box", help="SAM / SAM 2 / SAM 3 box x1,y1,x2,y2 in pixels")
    predict.add_argument(
        "--text", help='classes for the text models (Grounded-SAM, SAM 3, OWLv2, OWLv2 + SAM), e.g. "cat, dog"'
    )
    predict.add_argument("--out", type=Path, help="write the overlay PNG here")
    predict.add_argument("--json", type=Path, help="write the result JSON here (default: print it)")
    predict.add_argument("--coco", type=Path, help="write COCO results JSON here (bbox XYWH, RLE masks)")
    predict.set_defaults(run=run_predict)

    explain = commands.add_parser("explain", help="run one model and draw its Explain views: PNGs and views.json")
    explain.add_argument("key", help="registry key, e.g. fcn (see `models`)")
    explain.add_argument("image", type=Path, help="an image file")
    add_model_arguments(explain, weights_mode_from_env())
    explain.add_argument("--task", help="for models that serve several tasks, e.g. maskformer: panoptic")
    explain.add_argument("--points", help='SAM points "x,y,label;x,y,label" (label 1 foreground, 0 background)')
    explain.add_argument("--box", help="SAM box x1,y1,x2,y2 in pixels")
    explain.add_argument("--text", help='Grounding DINO / Grounded-SAM classes, e.g. "cat, dog"')
    explain.add_argument("--out", type=Path, required=True, help="folder for one PNG per view and views.json")
    explain.set_defaults(run=run_explain)

    download = commands.add_parser("download", help="fetch pretrained checkpoints into the local cache")
    download.add_argument("keys", nargs="+", metavar="KEY")
    download.set_defaults(run=run_download)

    track = commands.add_parser("track", help="follow objects through a clip; write an overlay mp4 and tracks JSON")
    from playground.video.cli import add_track_arguments, run_track

    add_track_arguments(track)
    add_model_arguments(track, weights_mode_from_env())
    track.set_defaults(run=lambda args: run_track(args, manager_from_args(args), prompt_params(args)))

    label = commands.add_parser("label", help="label a folder of images with a model; write COCO, YOLO and a report")
    from playground.dataengine import cli as label_cli

    label_cli.add_arguments(label)
    add_model_arguments(label, weights_mode_from_env())
    label.set_defaults(run=lambda args: label_cli.run_label(args, manager_from_args))

    from playground import bench
    from playground.scoring import cli as score_cli

    score_cli.add_arguments(commands.add_parser("score", help="score a predict result against ground truth"))

    bench.add_arguments(commands.add_parser("bench", help="time models, overlay, start-up and memory; write JSON"))

    from playground.backends import serve_cli

    serve = commands.add_parser("serve", help="serve the models on Ray Serve for `app.py --backend ray`")
    add_model_arguments(serve, weights_mode_from_env())
    serve_cli.add_arguments(serve, manager_from_args)
    return parser


def add_model_arguments(parser: argparse.ArgumentParser, default_weights: str) -> None:
    """--weights, --device, --precision, --memory-budget and --checkpoint, shared by the CLI and the app."""
    from playground.core.precision import PRECISION_CHOICES, precision_from_env

    parser.add_argument(
        "--weights",
        choices=WEIGHT_MODES,
        default=default_weights,
        help="pretrained checkpoints, or random weights: full size (random) or small (tiny) "
        "[default: $PLAYGROUND_WEIGHTS or pretrained]",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N, mps")
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default=precision_from_env(),
        help="auto: bf16 where the CPU or GPU runs it natively, else fp16 (older CUDA cards, MPS: the models whose "
        "fp16 agreement was measured) or fp32; fp16 on CUDA and MPS only "
        "[default: $PLAYGROUND_PRECISION or auto]",
    )
    parser.add_argument("--memory-budget", type=float, metavar="MB", help="most MB of loaded model weights")
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="KEY=CHECKPOINT",
        help="the checkpoint KEY loads: a local file or folder, or a hub id org/name[@revision] (repeatable)",
    )


def manager_from_args(args: argparse.Namespace):  # -> ModelManager
    """A `ModelManager` configured by `add_model_arguments`' flags."""
    from playground.core.registry import get_spec
    from playground.runtime.manager import MB, ModelManager

    checkpoints = {}
    for item in args.checkpoint:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise BadPromptError(f"--checkpoint {item!r}: expected KEY=PATH or KEY=org/name[@revision].")
        checkpoints[get_spec(key).key] = value
    budget = int(args.memory_budget * MB) if args.memory_budget else None
    return ModelManager(
        weights=args.weights,
        device=args.device,
        budget_bytes=budget,
        checkpoints=checkpoints,
        precision=args.precision,
    )


def run_models(args: argparse.Namespace) -> int:
    from playground.core.registry import REGISTRY
    from playground.core.weights import is_cached

    if args.layers:
        return print_patches(args)
    if args.json:
        listed = [
            {
                "key": spec.key,
                "cached": bool(is_cached(spec)),
                "default_score_threshold": spec.default_score_threshold,
                "checkpoint": spec.checkpoint,
                "size_mb": spec.size_mb,
                "licence": spec.licence,
                "gated": spec.gated,
            }
            for spec in REGISTRY.values()
        ]
        print(json.dumps(listed, indent=2))
        return 0

    rows = [("KEY", "TASKS", "CHECKPOINT", "SIZE", "LOCAL WEIGHTS", "HALF PRECISION", "SCORE THRESHOLD")]
    for spec in REGISTRY.values():
        local = "yes" if is_cached(spec) else "no"
        half = "yes" if spec.half_precision else "no: fp32"
        threshold = f"{spec.default_score_threshold:g}"
        rows.append((spec.key, ",".join(spec.tasks), spec.checkpoint, f"{spec.size_mb:.0f} MB", local, half, threshold))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for spec in REGISTRY.values():
        if not spec.half_precision:
            print(f"{spec.key} runs fp32 at every --precision: {spec.precision_note}")
    return 0


def print_patches(args: argparse.Namespace) -> int:
    """``models --layers KEY``: load KEY (and a composite's parts) and print what was changed in each."""
    from playground.core.registry import get_spec

    spec = get_spec(args.layers)
    manager = manager_from_args(args)
    for key in spec.components or (spec.key,):
        with manager.use(key) as (adapter, _):
            print(f"{key} ({adapter.weights} weights, {adapter.device}, {adapter.precision}):")
            for patch in adapter.patches:
                where = f" (on {', '.join(patch.devices)} only)" if patch.devices else ""
                print(f"- {patch.replaced} [{patch.count}]{where}\n    by: {patch.by}\n    why: {patch.why}")
            if not adapter.patches:
                print("- nothing: the library's own layers, as loaded")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from playground.core.images import load_image
    from playground.core.registry import get_spec

    spec = get_spec(args.key)
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise BadPromptError(f"--threshold {args.threshold}: expected a number in 0..1.")
    loaded = load_image(args.image)
    params = prompt_params(args)
    task = args.task or prompt_task(spec.tasks, params)
    check_prompt_flags(spec.key, task, params)

    from playground.render.export import to_coco, to_json
    from playground.runtime.service import Playground

    playground = Playground(manager_from_args(args))
    try:
        prediction = playground.predict(args.key, loaded.pixels, task=task, **params)
    except BadPromptError as error:
        raise BadPromptError(flag_words(str(error))) from None
    # The same filter as the UI and API: the threshold given, else the model's own (SAM's: 0.0, every
    # candidate kept, as its scores are predicted IoUs).
    threshold = args.threshold if args.threshold is not None else spec.default_score_threshold
    shown = prediction.filtered(threshold)
    result = to_json(shown, score_threshold=threshold)
    if loaded.notice:
        result["notice"] = loaded.notice
    if args.out:
        from PIL import Image

        from playground.render.overlay import render

        drawn = shown[:1] if shown.mode == "prompt" else shown  # SAM: its best candidate, as the UI and API draw
        Image.fromarray(render(loaded.pixels, drawn)).save(args.out)
    if args.coco:
        args.coco.write_text(json.dumps(to_coco(shown)) + "\n")
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
        print(f"{spec.key}: {len(shown)} instances, {sum(shown.timings_ms.values()):.0f} ms -> {args.json}")
    else:
        print(text)
    return 0


def run_explain(args: argparse.Namespace) -> int:
    from playground.core.images import load_image
    from playground.core.registry import get_spec
    from playground.explain.views import explain_views, write_views
    from playground.runtime.service import Playground

    spec = get_spec(args.key)
    loaded = load_image(args.image)
    playground = Playground(manager_from_args(args))
    prediction = playground.predict(args.key, loaded.pixels, task=args.task, **prompt_params(args))
    listed = write_views(explain_views(prediction, loaded.pixels), args.out)
    print(f"{spec.key}: {len(listed)} views -> {args.out / 'views.json'}")
    return 0


def prompt_params(args: argparse.Namespace) -> dict[str, object]:
    """Prompt flags as the hashable params the adapters take."""
    params: dict[str, object] = {}
    if args.points:
        params["points"] = parse_points(args.points)
    if args.box:
        params["box"] = parse_box(args.box)
    if args.text is not None:
        params["text"] = args.text
    return params


def prompt_task(tasks: tuple[str, ...], params: dict[str, object]) -> str:
    """The task the given flags ask for: text with --text, prompt with --points/--box, else the first."""
    if "text" in params and "text" in tasks:
        return "text"
    if {"points", "box"} & set(params) and "prompt" in tasks:
        return "prompt"
    return tasks[0]


def check_prompt_flags(key: str, task: str, params: dict[str, object]) -> None:
    """A prompt model given no prompt: name the flags that give one."""
    if task == "prompt" and not ({"points", "box"} & set(params)):
        raise BadPromptError(f"{key} needs a prompt: --points x,y[,label];... and/or --box x1,y1,x2,y2 (pixels).")
    if task == "text" and not str(params.get("text", "")).strip():
        raise BadPromptError(f'{key} needs --text naming what to find, e.g. --text "cat, dog".')


def flag_words(message: str) -> str:
    """A prompt error as the CLI words it: prefixed with the flag it concerns."""
    for prefix, flag in (("point", "--points"), ("box", "--box"), ("The text", "--text"), ("text", "--text")):
        if message.startswith(prefix):
            return f"{flag}: {message}"
    return message


def parse_points(text: str) -> tuple[tuple[float, float, int], ...]:
    """``"x,y,1;x,y,0"`` -> ((x, y, 1), (x, y, 0)); the label defaults to 1 (foreground)."""
    points = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        values = item.split(",")
        try:
            if len(values) not in (2, 3):
                raise ValueError
            x, y = float(values[0]), float(values[1])
            label = int(values[2]) if len(values) == 3 else 1
        except ValueError:
            raise BadPromptError(f"--points {text!r}: expected x,y or x,y,label separated by ';'.") from None
        if label not in (0, 1):
            raise BadPromptError(f"--points: label {label} must be 1 (foreground) or 0 (background).")
        points.append((x, y, label))
    if not points:
        raise BadPromptError("--points is empty: give at least one x,y.")
    return tuple(points)


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"x1,y1,x2,y2"`` -> (x1, y1, x2, y2) with x1 < x2 and y1 < y2."""
    try:
        x1, y1, x2, y2 = (float(v) for v in text.split(","))
    except ValueError:
        raise BadPromptError(f"--box {text!r}: expected four numbers x1,y1,x2,y2.") from None
    if x1 >= x2 or y1 >= y2:
        raise BadPromptError(f"--box {text!r}: x1 < x2 and y1 < y2 are needed.")
    return (x1, y1, x2, y2)


def run_download(args: argparse.Namespace) -> int:
    from playground.core.registry import get_spec
    from playground.core.weights import download

    for key in args.keys:
        spec = get_spec(key)
        print(f"{spec.key}: {download(spec)}")
    return 0
