"""The hand-written mask composite in playground/render/overlay.py matches supervision's MaskAnnotator, and
panoptic, semantic and hidden classes are drawn as documented."""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv

from playground.core.types import Prediction, boxes_from_masks
from playground.render import overlay

H, W = 120, 160


def blobs(count: int, seed: int = 0) -> np.ndarray:
    """(count, H, W) bool overlapping ellipses of distinct areas."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((count, H, W), np.uint8)
    for index in range(count):
        center = (int(rng.integers(20, W - 20)), int(rng.integers(20, H - 20)))
        cv2.ellipse(masks[index], center, (8 + 3 * index, 5 + 2 * index), 0, 0, 360, 1, -1)
    return masks.astype(bool)


def photo(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), np.uint8)


def test_mask_composite_matches_supervision():
    masks, scene = blobs(12), photo()
    class_ids = np.arange(12) * 5
    shown = np.arange(12)
    slots = np.zeros((H, W), np.uint8)
    prediction = Prediction(
        "mask-rcnn", "instance", "tiny", (H, W), {}, boxes_from_masks(masks), np.ones(12), class_ids, masks
    )
    overlay.paint_masks(slots, overlay.mask_crops(prediction, shown), class_ids)
    ours = overlay.blend(scene.copy(), slots, 0.6)
    detections = sv.Detections(xyxy=sv.mask_to_xyxy(masks).astype(np.float32), mask=masks, class_id=class_ids)
    theirs = sv.MaskAnnotator(color=overlay.PALETTE, opacity=0.6).annotate(scene.copy(), detections)
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1


def panoptic() -> Prediction:
    """Two stuff segments (sky on top, road below) and two things (person, car) inside them."""
    sky = np.zeros((H, W), bool)
    sky[: H // 2] = True
    things = blobs(2, seed=3)
    road = ~sky & ~things.any(0)
    sky &= ~things.any(0)
    masks = np.stack([sky, road, *things])
    return Prediction(
        model="maskformer",
        task="panoptic",
        weights="tiny",
        image_size=(H, W),
        label_names={0: "person", 1: "car", 2: "sky", 3: "road"},
        boxes=sv.mask_to_xyxy(masks).astype(np.float32),
        scores=[0.9, 0.8, 0.95, 0.7],
        class_ids=[2, 3, 0, 1],
        masks=masks,
        is_thing=[False, False, True, True],
    )


def test_panoptic_things_get_their_own_colours_and_outlines():
    prediction = panoptic()
    shown = np.arange(4)
    colours = overlay.instance_colours(prediction, shown)
    assert list(colours[:2]) == [2, 3]  # stuff keeps its class colour
    assert len({int(c) % len(overlay.PALETTE.colors) for c in colours}) == 4  # things differ from all
    drawn = overlay.render(photo(), prediction, opacity=0.5, legend=False)
    for index in (2, 3):  # each thing's outline is in its own colour
        mask = prediction.masks[index].astype(np.uint8)
        edge = (mask - cv2.erode(mask, np.ones((3, 3), np.uint8))).astype(bool)
        colour = overlay.PALETTE.by_idx(int(colours[index])).as_rgb()
        assert (np.abs(drawn[edge].astype(int) - colour).sum(1) == 0).mean() > 0.5


def test_panoptic_legend_lists_each_segment_with_its_area():
    prediction = panoptic()
    shown = np.arange(4)
    crops = overlay.mask_crops(prediction, shown)
    entries = overlay.segment_entries(prediction, shown, overlay.instance_colours(prediction, shown), crops)
    areas = {text.rsplit(" ", 1)[0]: float(text.rsplit(" ", 1)[1][:-1]) for _, text in entries}
    assert set(areas) == {"sky", "road", "person", "car"}
    assert abs(sum(areas.values()) - 100.0) < 0.5  # segments tile the image
    assert list(areas.values()) == sorted(areas.values(), reverse=True)


def test_background_and_hidden_classes_are_left_untouched():
    image = photo()
    semantic = np.zeros((H, W), np.int32)
    semantic[:, W // 2 :] = 1
    prediction = Prediction("fcn", "semantic", "tiny", (H, W), {0: "__background__", 1: "cat"}, semantic_map=semantic)
    drawn = overlay.render(image, prediction, legend=False)
    assert np.array_equal(drawn[:, : W // 2], image[:, : W // 2])
    assert not np.array_equal(drawn[:, W // 2 :], image[:, W // 2 :])
    assert np.array_equal(overlay.render(image, prediction, hidden_labels=frozenset({"cat"}), legend=False), image)


def test_hundred_masks_with_tags_and_a_legend_render():
    masks = np.zeros((100, 256, 256), bool)
    for index in range(100):
        masks[index, index : index + 40, 2 * index : 2 * index + 30] = True
    prediction = Prediction(
        "mask-rcnn",
        "instance",
        "tiny",
        (256, 256),
        {i: f"class {i}" for i in range(100)},
        boxes=sv.mask_to_xyxy(masks).astype(np.float32),
        scores=np.linspace(0.5, 1, 100),
        class_ids=np.arange(100),
        masks=masks,
    )
    drawn = overlay.render(np.zeros((256, 256, 3), np.uint8), prediction)
    assert drawn.shape[1] == 256 and drawn.shape[0] > 256 + 100  # many legend rows below the image
