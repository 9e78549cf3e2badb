"""Every named endpoint answers through gradio_client against a live app on localhost."""

from __future__ import annotations

import json
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import EXAMPLES
from gradio_client import Client, handle_file
from PIL import Image

ASTRONAUT = str(EXAMPLES / "astronaut.jpg")

CLOSED_SET = [
    ("semantic", ["fcn"]),
    ("detection", ["detr", "retinanet"]),
    ("instance", ["mask-rcnn"]),
    ("panoptic", ["maskformer", "detr-panoptic"]),
]


@pytest.fixture(scope="module")
def client(live_app) -> Client:
    return Client(live_app.url, verbose=False)


def test_named_endpoints_are_listed(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    for name in ("/semantic", "/detection", "/instance", "/panoptic", "/prompt", "/text", "/compare", "/label"):
        assert name in endpoints
    parameters = [p["parameter_name"] for p in endpoints["/detection"]["parameters"]]
    assert parameters == ["image", "models", "score_threshold", "mask_threshold"]


@pytest.mark.parametrize(("task", "models"), CLOSED_SET)
def test_task_endpoint_returns_overlay_and_cli_json(client, task, models):
    overlay_path, results = client.predict(handle_file(ASTRONAUT), models, 0.0, 0.5, api_name=f"/{task}")
    overlay = np.asarray(Image.open(overlay_path))
    assert overlay.shape[1] >= 512 * len(models)  # the panels side by side
    assert [r["model"] for r in results] == models
    for result in results:
        assert result["task"] == task and result["weights"] == "tiny" and result["image_size"] == [512, 512]
        assert {"instances", "timings_ms"} <= set(result)


def test_a_score_threshold_left_out_is_each_models_own_and_one_given_applies_to_all(client):
    image = handle_file(ASTRONAUT)
    _, results = client.predict(image, ["detr", "faster-rcnn"], api_name="/detection")
    assert [r["score_threshold"] for r in results] == [0.5, 0.8]  # DETR's and Faster R-CNN's own
    assert all(i["score"] >= r["score_threshold"] for r in results for i in r["instances"])
    _, results = client.predict(image, ["detr", "faster-rcnn"], 0.5, 0.5, api_name="/detection")  # an older caller
    assert [r["score_threshold"] for r in results] == [0.5, 0.5]
    _, results = client.predict(image, ["detr", "mask-rcnn"], "person", api_name="/compare")
    assert [r["score_threshold"] for r in results] == [0.5, 0.75]
    _, results = client.predict(image, ["detr", "mask-rcnn"], "person", 0.0, api_name="/compare")
    assert [r["score_threshold"] for r in results] == [0.0, 0.0]


def test_compare_endpoint_runs_models_across_tasks(client):
    models = ["fcn", "detr", "mask-rcnn"]
    overlay_path, results = client.predict(handle_file(ASTRONAUT), models, "person", 0.5, api_name="/compare")
    assert [r["task"] for r in results] == ["semantic", "detection", "instance"]
    assert Image.open(overlay_path).width >= 3 * 512


def test_prompt_endpoint_gives_sam_candidates(client):
    overlay_path, [result] = client.predict(
        handle_file(ASTRONAUT), [[256, 200, 1], [100, 400, 0]], [150, 100, 400, 450], api_name="/prompt"
    )
    assert result["model"] == "sam" and len(result["instances"]) == 3
    scores = [i["score"] for i in result["instances"]]
    assert scores == sorted(scores, reverse=True)  # best candidate first
    assert all(0 <= i["mask_area"] <= 512 * 512 for i in result["instances"])
    assert Image.open(overlay_path).width == 512


def test_prompt_outside_the_image_is_a_clear_error(client):
    with pytest.raises(Exception, match="outside"):
        client.predict(handle_file(ASTRONAUT), [[900, 10, 1]], None, api_name="/prompt")


def test_text_endpoint_labels_instances_with_the_users_words(client):
    overlay_path, [result] = client.predict(handle_file(ASTRONAUT), "person, flag", 0.05, 0.05, api_name="/text")
    assert result["model"] == "grounded-sam" and result["task"] == "text"
    assert {i["label"] for i in result["instances"]} <= {"person", "flag"}
    assert Image.open(overlay_path).width == 512


def test_prompt_and_text_endpoints_take_the_new_models(client):
    overlay_path, results = client.predict(
        handle_file(ASTRONAUT), [[256, 200, 1]], None, ["sam", "sam2"], api_name="/prompt"
    )
    assert [r["model"] for r in results] == ["sam", "sam2"] and all(len(r["instances"]) == 3 for r in results)
    assert Image.open(overlay_path).width >= 2 * 512
    models = ["grounded-sam", "sam3", "owlv2-sam"]
    overlay_path, results = client.predict(handle_file(ASTRONAUT), "person", 0.3, 0.25, models, api_name="/text")
    assert [r["model"] for r in results] == models and all(r["task"] == "text" for r in results)
    assert all({i["label"] for i in r["instances"]} <= {"person"} for r in results)
    with pytest.raises(Exception, match="'detr' is not a text model here"):
        client.predict(handle_file(ASTRONAUT), "person", 0.3, 0.25, ["detr"], api_name="/text")


def test_a_model_from_another_task_is_a_clear_error_logged_as_one_line(client, live_app):
    before = len(live_app.log_text())  # the app is shared: read only what this request logged
    with pytest.raises(Exception, match="'fcn' is not a detection model here"):
        client.predict(handle_file(ASTRONAUT), ["fcn"], 0.5, 0.5, api_name="/detection")
    log = live_app.log_text()[before:]
    assert "user error: 'fcn' is not a detection model here" in log
    assert "Traceback" not in log  # a user's mistake is not a fault: no traceback in the server log


def test_endpoint_refuses_a_path_that_was_not_uploaded(live_app):
    payload = {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}, "orig_name": "passwd"}
    body = json.dumps({"data": [payload, ["detr"], 0.5, 0.5]}).encode()
    request = urllib.request.Request(
        live_app.url + "gradio_api/call/detection", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{live_app.url}gradio_api/call/detection/{event_id}", timeout=60) as response:
        stream = response.read().decode()
    assert "event: error" in stream
    assert "root:" not in stream


def test_an_unknown_parameter_is_one_clear_error(client):
    with pytest.raises(Exception, match="treshold") as error:
        client.predict(handle_file(ASTRONAUT), ["fcn"], 0.5, 0.5, treshold=0.3, api_name="/semantic")
    assert "\n" not in str(error.value).strip()


PHOTOS = [EXAMPLES / f"{name}.jpg" for name in ("astronaut", "chelsea", "coffee")]


def test_label_endpoint_scores_the_labelers_labels_with_the_best_and_exports(client):
    from pycocotools.coco import COCO

    files, summary = client.predict(
        [handle_file(str(path)) for path in PHOTOS],
        "grounding-dino, owlv2",
        "person, cat, cup",
        handle_file(str(EXAMPLES / "annotations" / "chelsea.json")),
        ["coco", "yolo"],
        api_name="/label",
    )
    written = {Path(path).name: path for path in files}
    assert set(written) == {"coco.json", "yolo.zip", "report.json"}
    assert sorted(row["labeler"] for row in summary["labelers"]) == ["grounding-dino", "owlv2"]
    assert summary["labeler"] == next(row["labeler"] for row in summary["labelers"] if row["best"])
    assert summary["labelers"][0]["best"] and summary["labelers"][0]["images"] == 1  # chelsea has truth
    assert summary["counts"]["labelled"] == 3 and summary["weights"] == "tiny" and summary["note"]
    coco = COCO(written["coco.json"])
    assert sorted(image["file_name"] for image in coco.dataset["images"]) == [path.name for path in PHOTOS]
    assert {category["name"] for category in coco.dataset["categories"]} <= {"person", "cat", "cup"}
    with zipfile.ZipFile(written["yolo.zip"]) as packed:
        names = set(packed.namelist())
        data = yaml.safe_load(packed.read("detect/data.yaml"))
    assert {f"{kind}/labels/{path.stem}.txt" for kind in ("detect", "segment") for path in PHOTOS} <= names
    assert data["names"][:3] == ["person", "cat", "cup"]
    report = json.loads(Path(written["report.json"]).read_text())
    assert [entry["state"] for entry in report["files"]] == ["labelled"] * 3


def zip_with(path: Path, entry: str) -> str:
    with zipfile.ZipFile(path, "w") as packed:
        packed.writestr(entry, (EXAMPLES / "chelsea.jpg").read_bytes())
    return str(path)


def test_label_endpoint_refuses_bad_input_with_one_line(client, tmp_path):
    photo = [handle_file(str(PHOTOS[0]))]
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    refusals = [
        ([handle_file(zip_with(tmp_path / "climb.zip", "../outside.jpg"))], "detr", "cat", "points outside the folder"),
        ([handle_file(str(tmp_path / "broken.zip"))], "detr", "cat", "not a readable zip"),
        (photo, "grounding-dino", " , ", "No classes given"),
        (photo, "no-such-model", "cat", "Unknown model 'no-such-model'"),
        (photo, "fcn", "cat", "not objects to label"),
    ]
    for files, model, classes, line in refusals:
        with pytest.raises(Exception, match=line) as error:
            client.predict(files, model, classes, api_name="/label")
        assert "\n" not in str(error.value).strip()
