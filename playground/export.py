"""A `Prediction` as the JSON the CLI writes and the API returns."""

from __future__ import annotations

from typing import Any

from playground.types import Prediction

RANDOM_WEIGHTS_NOTE = "random weights: these outputs show the architecture running, not what it learned"


def to_json(prediction: Prediction) -> dict[str, Any]:
    """JSON-ready dict of an (already filtered) prediction.

    Keys: model, task, weights, checkpoint, image_size ([width, height] in pixels), timings_ms,
    instances (label, class_id, score, box as XYXY pixels, mask_area in pixels when there are
    masks), semantic (label -> fraction of the image, for semantic models), meta.
    """
    height, width = prediction.image_size
    instances = []
    for index, (label, class_id, score, box) in enumerate(
        zip(prediction.labels, prediction.class_ids.tolist(), prediction.scores.tolist(), prediction.boxes.tolist())
    ):
        instance: dict[str, Any] = {
            "label": label,
            "class_id": class_id,
            "score": round(score, 4),
            "box": [round(v, 2) for v in box],
        }
        if prediction.masks is not None:
            instance["mask_area"] = int(prediction.masks[index].sum())
        instances.append(instance)
    meta = {k: v for k, v in prediction.meta.items() if isinstance(v, (str, int, float, bool))}
    result: dict[str, Any] = {
        "model": prediction.model,
        "task": prediction.task,
        "weights": prediction.weights,
        "checkpoint": meta.pop("checkpoint", None),
        "image_size": [width, height],
        "timings_ms": {k: round(v, 2) for k, v in prediction.timings_ms.items()},
        "instances": instances,
        "meta": meta,
    }
    if prediction.semantic_map is not None:
        result["semantic"] = {label: round(area, 5) for label, area in prediction.semantic_areas().items()}
    if prediction.weights != "pretrained":
        result["note"] = RANDOM_WEIGHTS_NOTE
    return result
