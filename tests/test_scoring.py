"""Scoring against ground truth: known answers, agreement with pycocotools, bad truth, the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT
from PIL import Image

from playground.core.types import Prediction
from playground.scoring.metrics import published, score
from playground.scoring.truth import BadTruthError, GroundTruth, TruthObject, canonical_label, from_boxes, load_truth

SIZE = (200, 300)  # (height, width)
NAMES = {1: "person", 2: "dog", 3: "cat"}


def detections(boxes, labels, scores=None, task="detection", masks=None) -> Prediction:
    ids = {name: key for key, name in NAMES.items()}
    return Prediction(
        model="detr",
        task=task,
        weights="pretrained",
        image_size=SIZE,
        label_names=NAMES,
        boxes=boxes,
        scores=scores if scores is not None else [0.9] * len(boxes),
        class_ids=[ids[label] for label in labels],
        masks=masks,
    )


def coco_truth(boxes, labels, masks=False) -> dict:
    """A COCO instances dict for one SIZE image; box truth, or box-shaped RLE masks when ``masks``."""
    from pycocotools import mask as mask_utils

    annotations = []
    for index, (x1, y1, x2, y2) in enumerate(boxes):
        ann = {"id": index + 1, "image_id": 7, "category_id": index + 1, "bbox": [x1, y1, x2 - x1, y2 - y1]}
        if masks:
            rle = mask_utils.encode(np.asfortranarray(box_mask((x1, y1, x2, y2)).astype(np.uint8)))
            ann["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
        annotations.append(ann | {"iscrowd": 0, "area": (x2 - x1) * (y2 - y1)})
    categories = [{"id": index + 1, "name": label} for index, label in enumerate(labels)]
    return {
        "images": [{"id": 7, "width": SIZE[1], "height": SIZE[0]}],
        "annotations": annotations,
        "categories": categories,
    }


def box_mask(box) -> np.ndarray:
    mask = np.zeros(SIZE, bool)
    x1, y1, x2, y2 = box
    mask[y1:y2, x1:x2] = True
    return mask


BOXES = [(10, 10, 110, 110), (150, 50, 250, 150)]


def test_identical_boxes_score_one():
    metrics = score(detections(BOXES, ["person", "dog"]), load_truth(coco_truth(BOXES, ["person", "dog"]))).metrics
    assert (metrics["ap"], metrics["ap50"], metrics["ap75"]) == (1.0, 1.0, 1.0)
    assert (metrics["precision"], metrics["recall"], metrics["tp"], metrics["fp"], metrics["fn"]) == (1, 1, 2, 0, 0)
    assert metrics["iou_type"] == "bbox"


def test_identical_masks_score_one_with_segm():
    masks = np.stack([box_mask(box) for box in BOXES])
    prediction = detections(BOXES, ["person", "dog"], task="instance", masks=masks)
    metrics = score(prediction, load_truth(coco_truth(BOXES, ["person", "dog"], masks=True))).metrics
    assert metrics["iou_type"] == "segm" and metrics["ap"] == 1.0


def test_box_at_iou_two_thirds_counts_at_50_not_75():
    # shifted 20 px: overlap 80x100, union 120x100, IoU 0.667: passes 0.50..0.65, fails 0.70..0.95
    metrics = score(detections([(30, 10, 130, 110)], ["person"]), load_truth(coco_truth(BOXES[:1], ["person"]))).metrics
    assert metrics["ap50"] == 1.0 and metrics["ap75"] == 0.0
    assert metrics["ap"] == pytest.approx(0.4)
    assert metrics["tp"] == 1


def test_one_false_positive_and_one_miss():
    truth = load_truth(coco_truth(BOXES, ["person", "cat"]))
    prediction = detections([BOXES[0], (200, 150, 290, 190)], ["person", "dog"], scores=[0.9, 0.8])
    metrics = score(prediction, truth).metrics
    assert (metrics["tp"], metrics["fp"], metrics["fn"]) == (1, 1, 1)
    assert metrics["precision"] == 0.5 and metrics["recall"] == 0.5


def test_threshold_limits_tp_fp_but_not_ap():
    prediction = detections(BOXES, ["person", "dog"], scores=[0.9, 0.3])
    metrics = score(prediction, load_truth(coco_truth(BOXES, ["person", "dog"])), threshold=0.5).metrics
    assert (metrics["tp"], metrics["fn"], metrics["ap"]) == (1, 1, 1.0)


def test_agrees_with_pycocotools_on_files(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(0)
    truth_boxes = [(int(x), int(y), int(x) + 60, int(y) + 50) for x, y in rng.integers(0, 140, (6, 2))]
    truth_labels = ["person", "dog", "cat", "person", "dog", "person"]
    pred_boxes = [
        (x + int(dx), y + int(dy), x2 + int(dx), y2 + int(dy))
        for (x, y, x2, y2), (dx, dy) in zip(truth_boxes * 2, rng.integers(-15, 15, (12, 2)))
    ]
    pred_labels = [*truth_labels[:4], "cat", "cat", *truth_labels[::-1]]
    scores = rng.uniform(0.1, 1.0, 12).round(3).tolist()
    truth = coco_truth(truth_boxes, truth_labels)
    ids = {"person": 1, "dog": 2, "cat": 3}
    truth["categories"] = [{"id": i, "name": n} for n, i in ids.items()]
    for ann, label in zip(truth["annotations"], truth_labels):
        ann["category_id"] = ids[label]
    results = [
        {"image_id": 7, "category_id": ids[label], "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s}
        for (x1, y1, x2, y2), label, s in zip(pred_boxes, pred_labels, scores)
    ]
    (tmp_path / "gt.json").write_text(json.dumps(truth))
    (tmp_path / "dt.json").write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(tmp_path / "gt.json"))
        evaluation = COCOeval(gt, gt.loadRes(str(tmp_path / "dt.json")), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    metrics = score(detections(pred_boxes, pred_labels, scores), load_truth(truth)).metrics
    assert 0 < metrics["ap"] < metrics["ap50"] < 1  # a case that is neither trivial nor empty
    assert [metrics["ap"], metrics["ap50"], metrics["ap75"]] == pytest.approx(evaluation.stats[:3].tolist(), abs=1e-4)


def semantic(ids: np.ndarray, names: dict[int, str]) -> Prediction:
    return Prediction("fcn", "semantic", "pretrained", ids.shape, names, semantic_map=ids)


def test_semantic_identical_gives_miou_one_and_voc_names_map_to_coco():
    ids = np.zeros(SIZE, np.int32)
    ids[50:150, 100:200] = 14  # VOC "motorbike"
    names = {0: "__background__", 14: "motorbike"}
    truth = GroundTruth(SIZE, (TruthObject("motorcycle", (100, 50, 200, 150), ids == 14),))
    result = score(semantic(ids, names), truth)
    assert result.metrics["miou"] == 1.0
    assert result.metrics["per_class_iou"] == {"background": 1.0, "motorcycle": 1.0}
    assert score(semantic(ids, names), GroundTruth(SIZE, label_map=ids)).metrics["miou"] == 1.0


def test_semantic_half_overlap():
    predicted = np.zeros(SIZE, np.int32)
    predicted[:, :150] = 1  # left half "cat"; truth: the top half is the cat
    truth = np.zeros(SIZE, np.int32)
    truth[:100] = 1
    metrics = score(semantic(predicted, {0: "background", 1: "cat"}), GroundTruth(SIZE, label_map=truth)).metrics
    assert metrics["per_class_iou"] == {
        "background": pytest.approx(1 / 3, abs=1e-4),
        "cat": pytest.approx(1 / 3, abs=1e-4),
    }


def test_panoptic_quality_on_a_hand_built_case():
    # person: one match at IoU 0.8 (tp), one predicted segment matching nothing (fp), one missed truth (fn)
    truth_a, truth_b = box_mask((0, 0, 100, 100)), box_mask((200, 100, 300, 200))
    match, stray = box_mask((0, 0, 100, 80)), box_mask((120, 0, 180, 60))  # IoU 8000/10000 = 0.8
    prediction = detections([(0, 0, 100, 80), (120, 0, 180, 60)], ["person", "person"], task="panoptic")
    prediction.masks = np.stack([match, stray])
    truth = GroundTruth(
        SIZE, (TruthObject("person", (0, 0, 100, 100), truth_a), TruthObject("person", (200, 100, 300, 200), truth_b))
    )
    metrics = score(prediction, truth).metrics
    assert (
        metrics["sq"] == pytest.approx(0.8)
        and metrics["rq"] == pytest.approx(0.5)
        and metrics["pq"] == pytest.approx(0.4)
    )
    assert metrics["per_class"]["person"] | {} == {"pq": 0.4, "sq": 0.8, "rq": 0.5, "tp": 1, "fp": 1, "fn": 1}


def test_prompt_mask_iou_of_the_object_under_the_click():
    truth = GroundTruth(
        SIZE,
        (
            TruthObject("cat", (0, 0, 100, 100), box_mask((0, 0, 100, 100))),
            TruthObject("dog", (150, 50, 250, 150), box_mask((150, 50, 250, 150))),
        ),
    )
    prediction = detections([(150, 50, 250, 100)], ["dog"], task="prompt")
    prediction.masks = box_mask((150, 50, 250, 100))[None]
    metrics = score(prediction, truth, point=(200, 60)).metrics
    assert metrics == {"mask_iou": 0.5, "object": "dog"}


def test_canonical_labels():
    assert canonical_label("Motorbike") == "motorcycle" and canonical_label("tvmonitor") == "tv"
    assert canonical_label("__background__") == "background" and canonical_label(" A  Red car ") == "a red car"


def test_published_numbers_come_from_torchvision_metadata_and_model_cards():
    assert published("retinanet", "detection").value == 41.5
    assert published("mask-rcnn", "instance").metric == "mask AP"
    assert published("detr", "detection").value == 42.0
    assert published("sam", "prompt") is None


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee", "motorcycle"])
def test_shipped_annotations_fit_their_examples(name):
    size = Image.open(EXAMPLES / f"{name}.jpg").size
    truth = load_truth(EXAMPLES / "annotations" / f"{name}.json", (size[1], size[0]))
    assert truth.has_masks and all(obj.mask.any() for obj in truth.objects)


BAD_TRUTH = [
    (b"{not json", "valid JSON"),
    (json.dumps({"images": [], "annotations": []}).encode(), "no image"),
    (json.dumps(coco_truth(BOXES, ["person", "dog"]) | {"categories": []}).encode(), "category id"),
    (json.dumps(coco_truth(BOXES, ["person", "dog"]) | {"annotations": []}).encode(), "no annotations"),
    (json.dumps({"a": 1}).encode(), "COCO instances"),
]


@pytest.mark.parametrize(("raw", "message"), BAD_TRUTH)
def test_bad_truth_gets_one_clear_error(raw, message):
    with pytest.raises(BadTruthError, match=message):
        load_truth(raw, SIZE)


def test_truth_for_another_image_is_refused():
    with pytest.raises(BadTruthError, match="300x200 image; this image is 512x512"):
        load_truth(coco_truth(BOXES, ["person", "dog"]), (512, 512))
    with pytest.raises(BadTruthError, match="no image id 3"):
        load_truth(coco_truth(BOXES, ["person", "dog"]), SIZE, image_id=3)
    png = io.BytesIO()
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(png, "PNG")
    with pytest.raises(BadTruthError, match="10x10 image"):
        load_truth(png.getvalue(), SIZE)
    with pytest.raises(BadTruthError, match="label"):
        from_boxes([("", 1, 1, 5, 5)], SIZE)


def run_score(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "playground", "score", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_cli_scores_predict_json_and_coco_results(tmp_path):
    truth = EXAMPLES / "annotations" / "astronaut.json"
    person = load_truth(truth).objects[0]
    result = {
        "model": "detr",
        "task": "detection",
        "weights": "pretrained",
        "image_size": [512, 512],
        "instances": [{"label": "person", "class_id": 1, "score": 0.9, "box": list(person.box)}],
    }
    (tmp_path / "result.json").write_text(json.dumps(result))
    start = time.perf_counter()
    done = run_score(str(tmp_path / "result.json"), str(truth), "--json", str(tmp_path / "score.json"))
    print(f"score CLI wall time: {time.perf_counter() - start:.2f} s")
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "score.json").read_text())
    assert written["model"] == "detr" and written["task"] == "detection"
    assert set(written["metrics"]) >= {"ap", "ap50", "ap75", "precision", "recall", "tp", "fp", "fn"}
    assert written["metrics"]["ap"] == 1.0 and written["published"]["value"] == 42.0

    x1, y1, x2, y2 = person.box
    coco = [
        {"image_id": 0, "category_id": 1, "category_name": "person", "bbox": [x1, y1, x2 - x1, y2 - y1], "score": 0.9}
    ]
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    done = run_score(str(tmp_path / "coco.json"), str(truth), "--model", "faster-rcnn")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["metrics"]["ap50"] == 1.0


def test_cli_bad_truth_exits_2_with_one_line(tmp_path):
    result = {"model": "detr", "task": "detection", "image_size": [100, 100], "instances": []}
    (tmp_path / "result.json").write_text(json.dumps(result))
    done = run_score(str(tmp_path / "result.json"), str(EXAMPLES / "annotations" / "astronaut.json"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "512x512 image; this image is 100x100" in done.stderr


def test_drawn_boxes_score_and_draw_in_three_colours():
    from playground.scoring.views import FP, MISS, TP, draw_matches

    truth = from_boxes([("Person", *BOXES[0]), ("cat", *BOXES[1])], SIZE)
    result = score(detections([BOXES[0], (0, 150, 40, 190)], ["person", "dog"]), truth)
    assert (result.metrics["tp"], result.metrics["fp"], result.metrics["fn"]) == (1, 1, 1)
    drawing = draw_matches(np.zeros((*SIZE, 3), np.uint8), result.matches)
    assert drawing.shape[1] == SIZE[1] and drawing.shape[0] > SIZE[0]  # the legend strip below
    for colour in (TP, FP, MISS):
        assert (drawing[: SIZE[0]] == colour).all(axis=2).any()
