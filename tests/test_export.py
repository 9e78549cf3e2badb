"""Exports: COCO results with RLE masks that decode back exactly, label-map PNGs, mask zips."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from playground.cli import main
from playground.core.types import Prediction
from playground.render.export import export_files, label_map_png, masks_zip, to_coco, to_json


def instance_prediction() -> Prediction:
    rng = np.random.default_rng(0)
    masks = rng.random((3, 37, 53)) > 0.6
    return Prediction(
        "m",
        "instance",
        "tiny",
        (37, 53),
        {1: "person", 7: "traffic light"},
        boxes=[[1, 2, 11, 22], [0, 0, 53, 37], [5.5, 6.5, 7.5, 9.5]],
        scores=[0.9, 0.5, 0.25],
        class_ids=[1, 7, 1],
        masks=masks,
    )


def test_coco_entries_have_xywh_boxes_and_rle_that_round_trips_exactly():
    prediction = instance_prediction()
    entries = json.loads(json.dumps(to_coco(prediction, image_id=42)))
    assert [e["category_name"] for e in entries] == ["person", "traffic light", "person"]
    assert entries[0]["bbox"] == [1, 2, 10, 20] and entries[2]["bbox"] == [5.5, 6.5, 2, 3]
    assert all(e["image_id"] == 42 for e in entries)
    for entry, mask in zip(entries, prediction.masks):
        rle = {"size": entry["segmentation"]["size"], "counts": entry["segmentation"]["counts"].encode()}
        np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), mask)
        assert mask_utils.area(rle) == mask.sum()


def test_semantic_map_exports_as_label_png_and_coco_stuff_entries():
    label_map = np.random.default_rng(1).integers(0, 21, (30, 40)).astype(np.int32)
    prediction = Prediction("fcn", "semantic", "tiny", (30, 40), {0: "bg", 8: "cat"}, semantic_map=label_map)
    decoded = np.asarray(Image.open(io.BytesIO(label_map_png(prediction))))
    np.testing.assert_array_equal(decoded, label_map)
    entries = to_coco(prediction)
    assert sorted(e["category_id"] for e in entries) == np.unique(label_map).tolist()
    for entry in entries:
        rle = {**entry["segmentation"], "counts": entry["segmentation"]["counts"].encode()}
        np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), label_map == entry["category_id"])


def test_masks_zip_holds_one_binary_png_per_instance():
    prediction = instance_prediction()
    with zipfile.ZipFile(io.BytesIO(masks_zip(prediction))) as archive:
        names = archive.namelist()
        assert names == ["000_person_0.90.png", "001_traffic-light_0.50.png", "002_person_0.25.png"]
        for name, mask in zip(names, prediction.masks):
            np.testing.assert_array_equal(np.asarray(Image.open(archive.open(name))) > 0, mask)


def test_export_files_writes_what_a_panel_offers(tmp_path):
    prediction = instance_prediction()
    overlay = np.zeros((40, 53, 3), np.uint8)
    names = [path.name for path in export_files(prediction, overlay, tmp_path)]
    assert names == ["m_overlay.png", "m_coco.json", "m_masks.zip"]


def test_cli_coco_flag_writes_valid_results(tmp_path):
    out = tmp_path / "coco.json"
    image = str(tmp_path.parent / "img.png")
    Image.fromarray(np.full((64, 80, 3), 120, np.uint8)).save(image)
    assert main(["predict", "detr", image, "--weights", "tiny", "--threshold", "0", "--coco", str(out)]) == 0
    entries = json.loads(out.read_text())
    assert len(entries) == 10
    assert all(len(e["bbox"]) == 4 and e["bbox"][2] >= 0 and e["bbox"][3] >= 0 for e in entries)


def test_json_of_a_prediction_with_no_instances_left():
    empty = instance_prediction()[np.zeros(3, bool)]
    assert empty.masks.shape == (0, 37, 53)
    assert to_json(empty)["instances"] == []
    assert to_coco(empty) == []
