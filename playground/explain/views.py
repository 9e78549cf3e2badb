"""Explain views: each model's mechanism, drawn from what its forward pass recorded.

`explain_views(prediction, image)` turns ``prediction.explain`` (small arrays the adapter's
`Explainer` kept from the same forward pass, see ``models/explain``) into pictures, each with a
title and a one- or two-sentence caption in the lecture's terms. Nothing here runs a model, and
nothing imports torch. Views describe the prediction as the model returned it (before the UI's
score threshold): per-instance arrays line up with its instances.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from playground.core.types import Prediction
from playground.explain.drawing import bars, boxes_drawn, classes, fit, heat, over, resize, stacked, titled, with_scale
from playground.render.views import side_by_side

INSTANCES_SHOWN = 4
"""Views for at most this many instances (best score first) per model."""


@dataclass(frozen=True)
class View:
    """One Explain picture: ``image`` (H, W, 3) uint8, a short ``title`` and a plain ``caption``."""

    title: str
    caption: str
    image: np.ndarray


HEAT_TITLES = ("Score heatmap", "Level ", "Bottleneck", "Best class score", "Mask head", "Query ", "Low-resolution")
"""The views drawn as heat maps (viridis): each gets its colour scale below it."""


def explain_views(prediction: Prediction, image: np.ndarray) -> list[View]:
    """The Explain views of ``prediction`` on ``image`` (H, W, 3 uint8); [] if nothing was recorded.
    Heat-map views come with their colour scale (each map from its own low to its own high)."""
    draw = VIEWS.get(prediction.model)
    if draw is None or not prediction.explain:
        return []
    views = [
        View(view.title, view.caption, with_scale(view.image)) if view.title.startswith(HEAT_TITLES) else view
        for view in draw(prediction, fit(image))
    ]
    return views or [
        View(
            "Nothing found",
            "The model found nothing on this image, so there is nothing per instance to show.",
            fit(image),
        )
    ]


def write_views(views: list[View], folder: Path) -> list[dict[str, str]]:
    """Each view as ``NN-title.png`` in ``folder`` and the list of {title, caption, file} (views.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    listed = []
    for index, view in enumerate(views):
        slug = "-".join("".join(c if c.isalnum() else " " for c in view.title.lower()).split())[:40]
        name = f"{index:02d}-{slug}.png"
        Image.fromarray(view.image).save(folder / name)
        listed.append({"title": view.title, "caption": view.caption, "file": name})
    (folder / "views.json").write_text(json.dumps(listed, indent=2) + "\n")
    return listed


def best_first(prediction: Prediction, limit: int = INSTANCES_SHOWN) -> list[int]:
    return [int(i) for i in np.argsort(-prediction.scores, kind="stable")[:limit]]


def label(prediction: Prediction, index: int) -> str:
    return f"{prediction.labels[index]} {prediction.scores[index]:.2f}"


# ---- one function per family ------------------------------------------------------------------


def fcn_views(prediction: Prediction, image: np.ndarray) -> list[View]:
    logits = prediction.explain["coarse_logits"]
    grid_h, grid_w = logits.shape[1:]
    input_h, input_w = prediction.explain["input_size"].tolist()
    size = image.shape[:2]
    coarse = classes(resize(logits.argmax(0), size, nearest=True))
    final = classes(resize(prediction.semantic_map, size, nearest=True))
    probs = np.exp(logits - logits.max(0))
    probs /= probs.sum(0)
    areas = prediction.semantic_areas()
    named = [name for name in areas if name not in ("__background__", "background")]
    ids = {name: i for i, name in prediction.label_names.items()}
    chosen = ids[named[0]] if named else int(probs[1:].mean((1, 2)).argmax()) + 1
    name = prediction.label_name(chosen)
    return [
        View(
            "Coarse grid beside the final map",
            f"FCN's classifier predicts one class per cell of a {grid_h}x{grid_w} grid "
            f"(about 1/{round(input_h / grid_h)} "
            f"of its {input_h}x{input_w} input), shown with nearest so the grid shows; the map it returns is "
            "that grid's scores upsampled bilinearly, then the arg-max per pixel.",
            side_by_side([titled(coarse, f"coarse {grid_h}x{grid_w}"), titled(final, "upsampled")]),
        ),
        View(
            f"Score heatmap: {name}",
            f"The probability of '{name}' on the coarse grid (nearest, left) and upsampled (right): every "
            "detail in the final map comes from interpolating these few cells.",
            side_by_side([over(image, probs[chosen], nearest=True), over(image, probs[chosen])]),
        ),
    ]


UNET_PAIRS = (("inc", "up4"), ("down1", "up3"), ("down2", "up2"), ("down3", "up1"))


def unet_views(prediction: Prediction, image: np.ndarray) -> list[View]:
    explain = prediction.explain
    views = []
    for depth, (encoder, decoder) in enumerate(UNET_PAIRS):
        channels, height, width = explain[f"shape.{encoder}"].tolist()
        decoder_channels = int(explain[f"shape.{decoder}"][0])
        tiles = [
            titled(
                heat(resize(explain[f"energy.{encoder}"], image.shape[:2], True)), f"encoder {encoder} ({channels} ch)"
            ),
            titled(
                heat(resize(explain[f"energy.{decoder}"], image.shape[:2], True)),
                f"decoder {decoder} ({decoder_channels} ch)",
            ),
        ]
        views.append(
            View(
                f"Level {depth + 1}: {height}x{width} (1/{2**depth})",
                f"Activation energy (mean squared activation over channels) at {height}x{width}: the contracting "
                f"path's features (left) are copied by the skip connection into the expanding path (right), "
                "which is how U-Net gets fine detail back after downsampling.",
                side_by_side(tiles),
            )
        )
    channels, height, width = explain["shape.down4"].tolist()
    views.append(
        View(
            f"Bottleneck: {height}x{width} (1/16)",
            f"The deepest level, {channels} channels at {height}x{width}: rich in what is there, poor in where; "
            "without the skips the decoder would have only this to upsample.",
            heat(resize(explain["energy.down4"], image.shape[:2], True)),
        )
    )
    return views


def retinanet_views(prediction: Prediction, image: np.ndarray) -> list[View]:
    explain = prediction.explain
    resized, padded = explain["resized_size"], explain["padded_size"]
    tiles = []
    for level in range(sum(name.startswith("level_scores.") for name in explain)):
        scores = explain[f"level_scores.{level}"]
        rows, cols = (np.ceil(np.array(scores.shape) * resized / padded)).astype(int)
        valid = scores[: max(rows, 1), : max(cols, 1)]
        tiles.append(
            titled(
                fit(heat(resize(valid, image.shape[:2], True), 0, 1), 200),
                f"P{level + 3}: {valid.shape[0]}x{valid.shape[1]}",
            )
        )
    scored, above = explain["anchor_counts"].tolist()
    floor = float(explain["score_floor"])
    counts = explain["anchor_histogram"]
    edges = np.linspace(0, 1, len(counts) + 1)
    step = len(counts) // 10
    labels = [f"{edges[i]:.1f}-{edges[i + step]:.1f}" for i in range(0, len(counts), step)]
    grouped = counts.reshape(-1, step).sum(1)
    return [
        View(
            "Best class score per anchor location, per FPN level",
            "One stage: the head scores every anchor at every location of every pyramid level (P3 fine, "
            "for small objects, to P7 coarse, for large ones); each cell shows its best class score (0 to 1).",
            side_by_side(tiles),
        ),
        View(
            "Anchor scores: almost all easy background",
            f"{scored:,} anchors scored, {above:,} above the score floor {floor:.2f}, "
            f"{len(prediction)} boxes after NMS. "
            "Most anchors score near 0 (log-scaled counts): focal loss down-weights these easy negatives so they "
            "do not drown the few real objects in training.",
            bars(labels, grouped.astype(np.float64), log=True),
        ),
    ]


def two_stage_views(prediction: Prediction, image: np.ndarray) -> list[View]:
    explain = prediction.explain
    proposals = explain["proposals"]
    size = prediction.image_size
    count, anchors = int(explain["proposal_count"]), int(explain["anchor_count"])
    return [
        View(
            "Stage 1 proposals beside stage 2 detections",
            f"Stage 1: the region proposal network scored {anchors:,} anchors and kept {count} proposals after NMS "
            f"(the best {len(proposals)} drawn, left). Stage 2: RoIAlign features of each proposal are classified "
            f"and refined, leaving {len(prediction)} detections (right).",
            side_by_side(
                [
                    titled(boxes_drawn(image, proposals, size, (255, 170, 0)), f"RPN: top {len(proposals)} of {count}"),
                    titled(boxes_drawn(image, prediction.boxes, size), f"final: {len(prediction)}"),
                ]
            ),
        )
    ]


def mask_rcnn_views(prediction: Prediction, image: np.ndarray) -> list[View]:
    views = two_stage_views(prediction, image)
    roi_masks = prediction.explain["roi_masks"]
    for index in best_first(prediction):
        small = heat(resize(roi_masks[index], (168, 168), nearest=True), 0, 1)
        pasted = over(image, prediction.mask_probs[index] / 255.0)
        pasted = boxes_drawn(pasted, prediction.boxes[index], prediction.image_size)
        views.append(
            View(
                f"Mask head: {label(prediction, index)}",
                "The mask head predicts a 28x28 probability grid inside the RoIAlign box (left, one cell per "
                "square); it is resized into the box and pasted into the full image (right).",
                side_by_side([titled(small, "28x28"), titled(pasted, "pasted")]),
            )
        )
    return views


def detr_views(prediction: Prediction, image: np.ndarray) -> list[View]:
    explain = prediction.explain
    attention = explain["attention"].astype(np.float32)
    panoptic = "query_boxes" in explain
    boxes = explain["query_boxes"] if panoptic else prediction.boxes
    scores = explain["query_scores"] if panoptic else prediction.scores
    names = [prediction.label_name(int(c)) for c in explain["query_classes"]] if panoptic else prediction.labels
    no_object, total = int(explain["no_object"]), int(explain["num_queries"])
    views = [
        View(
            "Queries that said 'no object'",
            f"{no_object} of DETR's {total} object queries predicted 'no object'; only the rest can become "
            "objects, so no NMS is needed.",
            bars(["no object", "an object"], np.array([no_object, total - no_object], np.float64), log=True),
        )
    ]
    for index in np.argsort(-scores, kind="stable")[:INSTANCES_SHOWN]:
        query = int(explain["queries"][index])
        views.append(
            View(
                f"Query {query}: {names[index]} {scores[index]:.2f}",
                f"Where object query {query} looked: its last decoder layer's cross-attention over the image "
                "features (mean over heads, left), beside the box it predicted (right).",
                side_by_side([over(image, attention[index]), boxes_drawn(image, boxes[index], prediction.image_size)]),
            )
        )
    return views


def maskformer_views(prediction: Prediction, image: np.ndarray) -> list[View]:
    explain = prediction.explain
    no_object, total = int(explain["no_object"]), int(explain["num_queries"])
    views = []
    for index, query in enumerate(explain["queries"][:INSTANCES_SHOWN]):
        names = [prediction.label_name(int(c)) for c in explain["query_classes"][index]]
        chart = bars(names, explain["query_probs"][index])
        views.append(
            View(
                f"Query {int(query)}: {names[0]}",
                "Mask classification: this query predicts one whole mask (left) and one class distribution "
                f"for it (right), where per-pixel classification would give every pixel its own class. "
                f"{no_object} of {total} queries said 'no object'.",
                side_by_side([over(image, explain["query_masks"][index].astype(np.float32)), chart]),
            )
        )
    return views


def sam_views(prediction: Prediction, image: np.ndarray) -> list[View]:
    explain = prediction.explain
    size = prediction.image_size
    prompt = prompt_drawn(image, explain, size)
    views = []
    if "low_res_logits" in explain and prediction.masks is not None and prediction.mode == "prompt":
        tiles = [
            titled(over(prompt, prediction.masks[i].astype(np.float32), nearest=True), f"mask {i + 1}: IoU {iou:.2f}")
            for i, iou in enumerate(explain["iou"])
        ]
        views.append(
            View(
                "Three candidate masks",
                "One prompt is ambiguous (a part, the object, the whole), so SAM returns three masks, each with "
                "its own predicted IoU, best first.",
                side_by_side(tiles),
            )
        )
    if "low_res_logits" in explain:
        logits = explain["low_res_logits"].astype(np.float32)
        views.append(
            View(
                f"Low-resolution logits ({logits.shape[1]}x{logits.shape[2]})",
                f"The mask decoder's raw output: logits on a {logits.shape[1]}x{logits.shape[2]} grid over the padded "
                "model input; they are "
                "upsampled to the image and thresholded at 0 to make the masks.",
                side_by_side(
                    [titled(heat(resize(map_, (200, 200))), f"mask {i + 1}") for i, map_ in enumerate(logits)]
                ),
            )
        )
    shape = "x".join(str(v) for v in explain["embedding_shape"].tolist())
    cached = bool(explain["embedding_cached"])
    views.append(
        View(
            "The prompt, and what was cached",
            f"The image was encoded once into a {shape} embedding "
            f"({'found in the cache' if cached else 'computed now and cached'}); "
            "each new click runs only the light prompt encoder and mask decoder on it.",
            titled(prompt, f"embedding {shape}: {'cached' if cached else 'computed'}"),
        )
    )
    return views


def prompt_drawn(image: np.ndarray, explain: dict[str, np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """SAM's points (green foreground, red background) and boxes drawn on the view image."""
    canvas = Image.fromarray(boxes_drawn(image, explain["boxes"], size, (255, 215, 0)))
    pen = ImageDraw.Draw(canvas)
    scale = image.shape[0] / size[0]
    for (x, y), kind in zip(explain["points"] * scale, explain["point_labels"]):
        pen.ellipse((x - 5, y - 5, x + 5, y + 5), fill=(40, 220, 80) if kind else (235, 50, 50), outline="white")
    return np.asarray(canvas)


WORDS_SHOWN = 8
"""Words in a Grounding DINO chart: the best-scoring ones (the detection tab's prompt is COCO's 80
names, 177 tokens: a row for each drew a chart ten times taller than wide, a strip in the gallery)."""


def prompt_words(tokens: list[str]) -> list[int]:
    """Indices of the prompt's word tokens: [CLS], [SEP] and punctuation left out."""
    return [i for i, token in enumerate(tokens) if token not in ("[CLS]", "[SEP]") and any(c.isalnum() for c in token)]


def grounding_views(prediction: Prediction, image: np.ndarray) -> list[View]:
    explain = prediction.explain
    tokens = [str(token) for token in explain["tokens"]]
    words = prompt_words(tokens)
    views = []
    for index in best_first(prediction):
        scores = explain["token_scores"][index]
        shown = sorted(sorted(words, key=lambda i: -scores[i])[:WORDS_SHOWN])  # the best, in the prompt's order
        chart = bars([tokens[i] for i in shown], scores[shown], width=max(160, image.shape[1] - 160), size=18)
        left_out = len(words) - len(shown)
        trimmed = f" Shown: this box's {len(shown)} best words of the prompt's {len(words)}." if left_out else ""
        views.append(
            View(
                f"Box {index + 1}: {label(prediction, index)}",
                "Which words produced this box: each query scores every token of the prompt; the box is named by "
                "the phrase whose tokens score highest." + trimmed,
                # the chart under the picture, in large type: beside it, a thumbnail shrank it to a strip
                stacked([boxes_drawn(image, prediction.boxes[index], prediction.image_size), chart]),
            )
        )
    return views


VIEWS: dict[str, Callable[[Prediction, np.ndarray], list[View]]] = {
    "fcn": fcn_views,
    "unet": unet_views,
    "retinanet": retinanet_views,
    "faster-rcnn": two_stage_views,
    "mask-rcnn": mask_rcnn_views,
    "detr": detr_views,
    "detr-panoptic": detr_views,
    "maskformer": maskformer_views,
    "mask2former": maskformer_views,
    "eomt": maskformer_views,
    "sam": sam_views,
    "sam2": sam_views,
    "grounding-dino": grounding_views,
    "grounded-sam": grounding_views,
}
"""Registry key -> its views."""
