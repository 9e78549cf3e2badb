"""Exports: COCO results with RLE masks that decode back exactly, label-map PNGs, mask zips."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from playground.cli import main
from playground.core.labels import coco_detection_labels
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
    written = json.loads(json.dumps(to_coco(prediction, image_id=42)))
    # Two names are not COCO's whole label set: the model's own ids, with its own category table.
    assert written["categories"] == [{"id": 1, "name": "person"}, {"id": 7, "name": "traffic light"}]
    entries = written["annotations"]
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
    written = to_coco(prediction)  # VOC-style names: the model's own ids, named in the file
    entries = written["annotations"]
    assert sorted(e["category_id"] for e in entries) == np.unique(label_map).tolist()
    assert [c["id"] for c in written["categories"]] == np.unique(label_map).tolist()
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
    out, result = tmp_path / "coco.json", tmp_path / "result.json"
    image = str(tmp_path.parent / "img.png")
    Image.fromarray(np.full((64, 80, 3), 120, np.uint8)).save(image)
    args = [
        "predict",
        "detr",
        image,
        "--weights",
        "tiny",
        "--threshold",
        "0",
        "--coco",
        str(out),
        "--json",
        str(result),
    ]
    assert main(args) == 0
    entries = json.loads(out.read_text())  # DETR's labels are COCO's: a bare results list
    instances = json.loads(result.read_text())["instances"]
    assert len(entries) == sum(i["label"] != "N/A" for i in instances)  # "N/A" is no COCO category
    assert all(len(e["bbox"]) == 4 and e["bbox"][2] >= 0 and e["bbox"][3] >= 0 for e in entries)
    names = coco_detection_labels()
    assert all(names[e["category_id"]] == e["category_name"] for e in entries)  # COCO's ids are DETR's


def test_json_of_a_prediction_with_no_instances_left():
    empty = instance_prediction()[np.zeros(3, bool)]
    assert empty.masks.shape == (0, 37, 53)
    assert to_json(empty)["instances"] == []
    assert to_coco(empty) == {"categories": [], "annotations": []}


def coco80_names() -> dict[int, str]:
    """D-FINE's numbering: COCO's 80 things, contiguous ids 0-79."""
    return dict(enumerate(n for n in coco_detection_labels().values() if n not in ("__background__", "N/A")))


def panoptic133_names() -> dict[int, str]:
    """MaskFormer's, Mask2Former's and EoMT's numbering: the 80 things, then the 53 stuff classes, 0-132."""
    from playground.core.coco_categories import COCO_PANOPTIC_STUFF

    return dict(enumerate([*coco80_names().values(), *COCO_PANOPTIC_STUFF]))


def test_coco_ids_are_cocos_own_whatever_the_models_numbering():
    from playground.core.coco_categories import COCO_PANOPTIC_STUFF, coco_category_ids

    assert len(COCO_PANOPTIC_STUFF) == 53 and len(set(COCO_PANOPTIC_STUFF.values())) == 53
    assert min(COCO_PANOPTIC_STUFF.values()) == 92 and max(COCO_PANOPTIC_STUFF.values()) == 200
    d_fine = {v: k for k, v in coco80_names().items()}
    ids = coco_category_ids(coco80_names())
    assert (ids[d_fine["person"]], ids[d_fine["dog"]], ids[d_fine["toothbrush"]]) == (1, 18, 90)
    panoptic = {v: k for k, v in panoptic133_names().items()}
    ids = coco_category_ids(panoptic133_names())
    assert len(ids) == 133 and (ids[panoptic["person"]], ids[panoptic["dog"]]) == (1, 18)
    assert (ids[panoptic["wall-other-merged"]], ids[panoptic["banner"]], ids[panoptic["rug-merged"]]) == (199, 92, 200)
    torchvision = coco_category_ids(coco_detection_labels())  # 91 slots: COCO's ids already, "N/A" left out
    assert torchvision[1] == 1 and torchvision[90] == 90 and 12 not in torchvision and 0 not in torchvision
    for own in ({0: "background", 1: "aeroplane", 8: "cat"}, {0: "background", 1: "car"}, {0: "cat", 1: "dog"}):
        assert coco_category_ids(own) is None  # VOC, U-Net's Carvana, typed phrases: not COCO's label set


def perfect_prediction(label_names: dict[int, str], objects: list[tuple[str, list[float]]], size) -> Prediction:
    """A prediction equal to ``objects`` ((name, XYXY box) each), with masks filling the boxes."""
    by_name = {name: i for i, name in label_names.items()}
    masks = np.zeros((len(objects), *size), bool)
    for mask, (_, (x1, y1, x2, y2)) in zip(masks, objects):
        mask[int(y1) : int(y2), int(x1) : int(x2)] = True
    return Prediction(
        "d-fine",
        "instance",
        "pretrained",
        size,
        label_names,
        boxes=[box for _, box in objects],
        scores=[0.9] * len(objects),
        class_ids=[by_name[name] for name, _ in objects],
        masks=masks,
    )


def coco_truth(entries: list[dict], size) -> dict:
    """A COCO instances file (COCO's ids and names) with the same objects as ``entries``."""
    from playground.core.coco_categories import coco_ids_by_name

    annotations = [
        {k: v for k, v in e.items() if k in ("image_id", "category_id", "bbox", "segmentation")}
        | {"id": i + 1, "iscrowd": 0, "area": e["bbox"][2] * e["bbox"][3]}
        for i, e in enumerate(entries)
    ]
    categories = [{"id": i, "name": name} for name, i in coco_ids_by_name().items()]
    return {
        "images": [{"id": 7, "height": size[0], "width": size[1]}],
        "annotations": annotations,
        "categories": categories,
    }


@pytest.mark.parametrize("numbering", [coco80_names, panoptic133_names, coco_detection_labels])
def test_a_perfect_prediction_scores_ap_1_against_truth_in_cocos_ids(numbering):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    size = (120, 160)
    objects = [("person", [10, 20, 50, 100]), ("dog", [60, 40, 150, 110]), ("toothbrush", [5, 5, 25, 15])]
    if numbering is panoptic133_names:
        objects.append(("wall-other-merged", [100, 0, 160, 30]))
    prediction = perfect_prediction(numbering(), objects, size)
    entries = json.loads(json.dumps(to_coco(prediction, image_id=7)))
    assert isinstance(entries, list)  # COCO's label set: a bare results list, as loadRes reads it
    expected = {"person": 1, "dog": 18, "toothbrush": 90, "wall-other-merged": 199}
    assert [e["category_id"] for e in entries] == [expected[name] for name, _ in objects]
    truth = COCO()
    truth.dataset = coco_truth(entries, size)
    truth.createIndex()
    for iou_type in ("bbox", "segm"):
        evaluation = COCOeval(truth, truth.loadRes(entries), iou_type)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
        assert evaluation.stats[0] == pytest.approx(1.0), iou_type


def test_score_reads_back_a_self_describing_coco_file(tmp_path, capsys):
    from playground.scoring.truth import load_truth

    truth = Path(__file__).resolve().parents[1] / "examples" / "annotations" / "astronaut.json"
    person = load_truth(truth).objects[0]
    prediction = Prediction(
        "grounded-sam",
        "text",
        "pretrained",
        (512, 512),
        {0: "person", 1: "flag"},  # typed phrases: not COCO's label set
        boxes=[list(person.box)],
        scores=[0.9],
        class_ids=[0],
    )
    written = to_coco(prediction)
    assert written["categories"] == [{"id": 0, "name": "person"}]
    path = tmp_path / "grounded-sam_coco.json"
    path.write_text(json.dumps(written))
    assert main(["score", str(path), str(truth), "--model", "grounded-sam", "--task", "detection"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["ap50"] == 1.0
