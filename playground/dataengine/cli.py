"""``python -m playground label DIR --model KEY --classes "a,b" --out OUT [--truth GT.json] [--format coco,yolo]``.

Labels every file of DIR into ``OUT/job.sqlite`` (run it again to resume), then writes
``OUT/report.json`` and the formats asked for. With ``--truth`` every model of ``--model`` (a comma
list) is scored on the images that have truth first, the table is printed (and written to
``OUT/labelers.json``), and the best one labels the folder. ``--backend ray`` runs the job on Ray Data
(`playground.backends.ray_label`): ``--workers`` labelling actors on the cluster at ``--address``, or
on one started here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from playground.core.errors import BadPromptError
from playground.core.registry import get_spec

if TYPE_CHECKING:
    from tqdm import tqdm

    from playground.dataengine.job import JobResult, Progress
    from playground.dataengine.labelers import Labeler


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, metavar="DIR", help="the folder of images to label (searched recursively)")
    parser.add_argument(
        "--model",
        required=True,
        help="a text route (grounded-sam, owlv2-sam, sam3, grounding-dino, owlv2), a detection, instance or "
        "panoptic model (its labels narrowed to --classes), or sam (every object, class-agnostic); with "
        "--truth, a comma list of candidates",
    )
    parser.add_argument("--classes", default="", help='the class names to label, e.g. "bottle, can"')
    parser.add_argument("--out", type=Path, required=True, help="the job's folder: job.sqlite, report.json, exports")
    parser.add_argument(
        "--truth",
        type=Path,
        help="ground truth for some of the images: a COCO instances JSON, a PNG label map named like its image "
        "(id 1 is the first of --classes, 0 background), or a folder of both",
    )
    parser.add_argument("--format", default="coco,yolo", help="exports, comma-separated: coco, yolo [default: both]")
    parser.add_argument(
        "--threshold", type=float, help="least score kept (0..1) [default: each model's own, as `models` lists]"
    )
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: this process; ray: Ray Data, files decoded in Ray tasks and labelled by --workers actors [local]",
    )
    parser.add_argument("--address", help="--backend ray: a Ray cluster (host:port, or auto); default: start one here")
    parser.add_argument("--workers", type=int, default=1, help="--backend ray: labelling actors, own models each [1]")
    parser.add_argument("--num-cpus", type=float, default=1.0, help="--backend ray: CPUs per actor (its threads) [1]")
    parser.add_argument("--num-gpus", type=float, default=0.0, help="--backend ray: GPUs per actor (fractions) [0]")


def run_label(args: argparse.Namespace, manager_from_args: Callable[[argparse.Namespace], object]) -> int:
    from tqdm import tqdm

    from playground.dataengine.choose import choose_labeler, load_truths, truth_for
    from playground.dataengine.exports import FORMATS, export, weights_note
    from playground.dataengine.intake import decode, list_folder
    from playground.dataengine.job import run_job
    from playground.dataengine.labelers import make_labeler
    from playground.dataengine.store import STORE_NAME, JobStore
    from playground.runtime.service import Playground

    keys = [key.strip() for key in args.model.split(",") if key.strip()]
    if not keys:
        raise BadPromptError("--model is empty: name a model, e.g. --model grounded-sam.")
    for key in keys:
        get_spec(key)
    formats = tuple(name.strip() for name in args.format.split(",") if name.strip())
    if unknown := [name for name in formats if name not in FORMATS]:
        raise BadPromptError(f"--format {', '.join(unknown)}: choose from {', '.join(FORMATS)}.")
    if len(keys) > 1 and args.truth is None:
        raise BadPromptError("--model lists several models: give --truth to score them and label with the best.")
    if args.backend == "ray" and (args.workers < 1 or args.num_cpus <= 0 or args.num_gpus < 0):
        raise BadPromptError("--workers must be at least 1, --num-cpus above 0 and --num-gpus at least 0.")
    names = list_folder(args.folder, exclude=args.out)
    playground = Playground(manager_from_args(args))  # type: ignore[arg-type]
    labelers = [make_labeler(playground, key, args.classes, args.threshold) for key in keys]
    for labeler in labelers:
        if labeler.note:
            print(f"note: {labeler.note}")
    chosen = labelers[0]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.truth is not None:
        truths = load_truths(args.truth)
        with_truth = [decode(args.folder, name) for name in names if truth_for(name, truths) is not None]
        table = choose_labeler(
            labelers, with_truth, truths, on_labeler=lambda key: print(f"scoring {key} ...", file=sys.stderr)
        )
        print(table.text())
        (args.out / "labelers.json").write_text(json.dumps(table.to_json(), indent=2) + "\n")
        if table.best is None:
            raise BadPromptError("every candidate failed on the images with truth; see the table above.")
        chosen = next(labeler for labeler in labelers if labeler.key == table.best)
        print(
            f"labelling with {chosen.key}: the best on the {table.rows[0].images} images with truth "
            "(by box AP, then mask AP, then PQ)"
        )
        if playground.manager.weights != "pretrained":
            print(f"note: {playground.manager.weights} weights: these scores are those of random-weight models")
    runner = run_job if args.backend == "local" else ray_runner(args, chosen, manager_from_args)
    with JobStore(args.out / STORE_NAME) as store:
        with tqdm(total=len(names), unit="file", file=sys.stderr, dynamic_ncols=True) as bar:
            result = runner(args.folder, names, chosen, store, on_progress=lambda progress: show(bar, progress))
        written = export(store, args.folder, args.out, formats)
        note = weights_note(store)
    counts = result.counts
    print(
        f"{chosen.key}: {counts['labelled'] + counts['edited'] + counts['accepted']} images labelled "
        f"({result.labelled} this run, {result.images_per_minute:.1f} images/min), {counts['duplicate']} duplicates, "
        f"{counts['skipped']} skipped -> {args.out}"
    )
    if note:
        print(f"note: {note}")
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def ray_runner(
    args: argparse.Namespace, labeler: Labeler, manager_from_args: Callable[[argparse.Namespace], object]
) -> Callable[..., JobResult]:
    """`playground.backends.ray_label.run_job` on the cluster at ``--address`` (or one started here), its
    actors' labelers built from ``labeler`` and the model flags."""
    from functools import partial

    from playground.backends import before_ray
    from playground.backends.serve_cli import MODEL_FLAGS

    before_ray(args.address)
    try:
        from playground.backends import ray_label
    except ImportError:
        raise BadPromptError("Ray Data is not installed: pip install -r requirements-ray.txt") from None
    options = ray_label.RayOptions(args.workers, args.num_cpus, args.num_gpus)
    ray_label.start(args.address, options)
    model_args = argparse.Namespace(**{name: getattr(args, name) for name in MODEL_FLAGS})
    build = ray_label.remote_labeler(labeler, partial(manager_from_args, model_args))  # type: ignore[arg-type]
    return partial(ray_label.run_job, build=build, options=options)


def show(bar: tqdm, progress: Progress) -> None:
    """Move the bar to ``progress``, with images per minute and the time left."""
    bar.n = progress.done
    left = "?" if progress.seconds_left is None else f"{progress.seconds_left:.0f} s"
    bar.set_postfix_str(f"{progress.images_per_minute:.1f} img/min, {left} left", refresh=False)
    bar.refresh()
