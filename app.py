"""Start the Vision Playground: ``python app.py [--weights tiny] [--port 7860] [--backend ray --address A]``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from playground.cli import add_model_arguments, manager_from_args
from playground.core.errors import PlaygroundError
from playground.core.weights import weights_mode_from_env

MAX_UPLOAD = "20mb"
QUEUE_PER_MODEL_SLOT = 32
"""Requests that may wait per request the models run at once (64 in one process, more on Ray)."""
PRELOAD_AFTER_S = 10.0
"""Seconds after launch at which the heavy imports start if no page has loaded by then."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="also serve a temporary public link (needs internet)")
    add_model_arguments(parser, weights_mode_from_env())
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: models in this process; ray: on the Ray Serve deployment at --address, "
        "whose model flags then apply (see `python -m playground serve`) [local]",
    )
    parser.add_argument("--address", help="--backend ray: the cluster address `python -m playground serve` printed")
    parser.add_argument(
        "--preload",
        metavar="KEY,KEY",
        help="models to load at start-up, before the first request [default: $PLAYGROUND_PRELOAD; on a "
        "ZeroGPU Space: sam, grounding-dino, detr, fcn, mask2former, sam2-video; elsewhere none]",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        metavar="N",
        help=f"most requests waiting at once; more are told the queue is full "
        f"[default: {QUEUE_PER_MODEL_SLOT} per request the models run at once]",
    )
    parser.add_argument(
        "--example-cache",
        type=Path,
        metavar="DIR",
        help="where the bundled examples' results are kept across restarts (safe to delete) "
        "[default: $PLAYGROUND_EXAMPLE_CACHE or $XDG_CACHE_HOME/vision-playground/examples]",
    )
    parser.add_argument(
        "--example-cache-mb",
        type=float,
        metavar="MB",
        help="most MB that folder holds, least recently used dropped first; 0: keep nothing on disk "
        "[default: $PLAYGROUND_EXAMPLE_CACHE_MB or 256]",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        manager = manager_from_args(args) if args.backend == "local" else ray_models(args.address)
        if args.backend == "local":
            from playground.runtime.zerogpu import models_for_this_host, preload_keys

            manager = models_for_this_host(manager, preload_keys(args.preload))
        examples = example_cache(args)
    except PlaygroundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    from playground.runtime.service import Playground
    from playground.ui.app import build_demo
    from playground.ui.common import EXAMPLES_DIR
    from playground.ui.style import CSS, HEAD, THEME

    preload = Preload()
    playground = Playground(manager, examples=examples)
    demo = build_demo(playground, on_page_load=lambda: preload.start("the first page load"))
    demo.queue(
        default_concurrency_limit=4, max_size=args.max_queue or QUEUE_PER_MODEL_SLOT * manager.concurrent_requests
    )
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        max_file_size=MAX_UPLOAD,
        allowed_paths=[str(EXAMPLES_DIR)],
        footer_links=["api"],
        css=CSS,
        head=HEAD,
        theme=THEME,
        prevent_thread_lock=True,
    )
    fallback = threading.Timer(PRELOAD_AFTER_S, preload.start, args=(f"{PRELOAD_AFTER_S:g} s after launch",))
    fallback.daemon = True
    fallback.start()
    demo.block_thread()
    return 0


def example_cache(args: argparse.Namespace):  # -> playground.runtime.example_cache.ExampleCache | None
    """The bundled examples' results on disk that ``--example-cache`` and ``--example-cache-mb`` ask
    for; None when the bound is 0."""
    from playground.runtime.example_cache import ExampleCache, default_folder, default_max_mb

    max_mb = args.example_cache_mb if args.example_cache_mb is not None else default_max_mb()
    return ExampleCache(args.example_cache or default_folder(), max_mb) if max_mb > 0 else None


def ray_models(address: str | None):  # -> playground.backends.ray_client.RayModels
    """The models on the Ray Serve deployment at ``address``."""
    if not address:
        raise PlaygroundError("--backend ray needs --address (the line `python -m playground serve` printed).")
    from playground.backends import before_ray

    before_ray(address)
    try:
        from playground.backends.ray_client import RayModels
    except ImportError:
        raise PlaygroundError("--backend ray needs Ray Serve: pip install -r requirements-ray.txt") from None
    return RayModels.connect(address)


class Preload:
    """Imports torch, torchvision and supervision in a background thread, once, so the first Run
    (or the first bundled example served from disk, whose captions read torchvision's weights
    metadata) does not wait for them. It starts when the first page has loaded, or `PRELOAD_AFTER_S` after
    launch if no page loads before: importing holds the GIL, and a page served meanwhile waits
    for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def start(self, reason: str) -> None:
        """Start the imports unless they have started; ``reason`` goes to the log."""
        with self._lock:
            if self.thread is None:
                logging.getLogger("playground.app").info("importing torch, torchvision and supervision: %s", reason)
                self.thread = threading.Thread(target=preload_libraries, name="preload", daemon=True)
                self.thread.start()


def preload_libraries() -> None:
    """torch, torchvision, then supervision, through the heavy-import lock the adapters' imports take too."""
    from playground.core.imports import import_module

    for name in ("torch", "torchvision", "supervision"):
        import_module(name)


if __name__ == "__main__":
    sys.exit(main())
