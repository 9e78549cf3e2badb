"""A crowd at a cold start: nine gradio_client users at once, each asking a different model through a
different endpoint of a freshly started app (tests/robustness/test_cold_start.py, test_ray_serve.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from gradio_client import Client, handle_file
from PIL import Image


def crowd_image(folder: Path) -> str:
    """A 128 x 96 noise PNG in ``folder``; its path."""
    path = folder / "crowd.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 128, 3), np.uint8)).save(path)
    return str(path)


def cold_requests(image: str) -> dict[str, tuple]:
    """Nine requests, each a different model through a different endpoint: (args, api_name, keys)."""
    picture = handle_file(image)
    return {
        "fcn": ((picture, ["fcn"], 0.5, 0.5), "/semantic", ["fcn"]),
        "detr": ((picture, ["detr"], 0.5, 0.5), "/detection", ["detr"]),
        "mask-rcnn": ((picture, ["mask-rcnn"], 0.5, 0.5), "/instance", ["mask-rcnn"]),
        "maskformer": ((picture, ["maskformer"], 0.5, 0.5), "/panoptic", ["maskformer"]),
        "sam": ((picture, [[40, 30, 1]], None), "/prompt", ["sam"]),
        "grounded-sam": ((picture, "person, flag"), "/text", ["grounded-sam"]),
        "d-fine": ((picture, ["d-fine", "eomt"], ""), "/compare", ["d-fine", "eomt"]),
        "owlv2": ((picture, ["owlv2"], 0.5, 0.5), "/detection", ["owlv2"]),
        "unet": ((picture, "unet"), "/explain", None),
    }


def crowd_at_cold_start(url: str, image: str) -> list[str]:
    """Send the requests at once, one client each; the failures, as lines."""
    requests = cold_requests(image)
    clients = [Client(url, verbose=False, httpx_kwargs={"timeout": 300}) for _ in requests]

    def ask(item: tuple[Client, tuple[str, tuple]]) -> list[str]:
        client, (name, (args, api_name, keys)) = item
        try:
            first, second = client.predict(*args, api_name=api_name)
        except Exception as error:  # every error is a failure here
            return [f"{name} via {api_name}: {type(error).__name__}: {error}"]
        if keys is None:  # /explain: one picture per view
            return [] if first and second else [f"{name} via {api_name}: no views"]
        got = [result.get("model") for result in second]
        errors = [f"{r.get('model')}: {r['error']}" for r in second if "error" in r]
        if got != keys or errors or not Path(first).is_file():
            return [f"{name} via {api_name}: got {got}, errors {errors}"]
        return []

    with ThreadPoolExecutor(len(clients)) as pool:
        return [line for lines in pool.map(ask, zip(clients, requests.items())) for line in lines]
