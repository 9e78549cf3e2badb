"""``python -m playground bench --labelers KEYS``: images per minute of each data-engine labeler.

Each labeler runs a whole job (`playground.dataengine.job.run_job`: decode with read-ahead, label,
write the store) over the bundled photos (``examples/*.jpg``), in a temporary folder, after its
models are loaded (``load_s``, not counted in the rate). Not part of the default bench: with random
(full-size) weights a labeler takes minutes on a CPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from playground.core.errors import BadPromptError
from playground.dataengine.labelers import EVERYTHING, TEXT_ROUTES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DEFAULT_LABELERS = (*TEXT_ROUTES, "mask-rcnn", "detr", EVERYTHING)
CLASSES = "person, cat, cup, motorcycle"
"""What the bundled photos show (their annotations' classes, bar the bicycle and the spoon)."""


def bench_labeler(key: str, weights: str, device: str, classes: str = CLASSES) -> dict[str, Any]:
    """One labeler over the bundled photos: ``images``, ``load_s``, ``label_s`` and ``images_per_minute``
    (labelling only), ``annotations``; or ``error``."""
    from playground.dataengine.intake import list_folder
    from playground.dataengine.job import run_job
    from playground.dataengine.labelers import make_labeler
    from playground.dataengine.store import JobStore
    from playground.runtime.manager import ModelManager
    from playground.runtime.service import Playground

    playground = Playground(ModelManager(weights=weights, device=device))  # type: ignore[arg-type]
    start = time.perf_counter()
    try:
        labeler = make_labeler(playground, key, "" if key == EVERYTHING else classes)
    except BadPromptError as error:
        return {"error": str(error)}
    load_s = time.perf_counter() - start
    names = [name for name in list_folder(EXAMPLES) if name.endswith(".jpg")]
    with tempfile.TemporaryDirectory() as folder, JobStore(Path(folder) / "job.sqlite") as store:
        result = run_job(EXAMPLES, names, labeler, store)
        annotations = len(store.annotations())
    return {
        "images": result.labelled,
        "load_s": round(load_s, 2),
        "label_s": round(result.seconds, 2),
        "images_per_minute": round(result.images_per_minute, 1),
        "annotations": annotations,
    }


def run_labelers(args: argparse.Namespace) -> int:
    """Bench each labeler in ``args.labelers`` (comma list, or ``all``); print a table, write ``--json``."""
    from playground.core.registry import get_spec

    keys = DEFAULT_LABELERS if args.labelers == "all" else tuple(k.strip() for k in args.labelers.split(",") if k)
    for key in keys:
        get_spec(key)
    results = {key: bench_labeler(key, args.weights, args.device) for key in keys}
    print(f"labelers on {len(list(EXAMPLES.glob('*.jpg')))} bundled photos, {args.weights} weights, {args.device}:")
    for key, result in results.items():
        if "error" in result:
            print(f"  {key:15} {result['error']}")
        else:
            print(
                f"  {key:15} {result['images_per_minute']:8.1f} images/min  (load {result['load_s']} s, "
                f"{result['annotations']} annotations)"
            )
    if args.json:
        args.json.write_text(json.dumps({"weights": args.weights, "labelers": results}, indent=2) + "\n")
    return 0
