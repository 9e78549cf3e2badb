"""Explain: each view's numbers come from the model's own forward pass and the library's own code,
every model has views with captions, and opening them runs no model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import paste_masks_in_image

from playground.cli import main
from playground.explain.views import explain_views
from playground.runtime.manager import ModelManager

pytestmark = pytest.mark.usefixtures("fast_cpu")

PARAMS = {
    "fcn": {},
    "unet": {},
    "retinanet": {},
    "faster-rcnn": {},
    "mask-rcnn": {},
    "detr": {},
    "detr-panoptic": {},
    "maskformer": {"task": "panoptic"},
    "sam": {"points": ((40, 30, 1),)},
    "grounding-dino": {"task": "text", "text": "cat, dog"},
    "grounded-sam": {"task": "text", "text": "cat"},
}
CLI_PROMPTS = {
    "sam": ["--points", "40,30,1"],
    "grounding-dino": ["--text", "cat, dog"],
    "grounded-sam": ["--text", "cat"],
}


@pytest.fixture(scope="module")
def manager() -> ModelManager:
    """fp32, so the views can be checked against the model's own outputs exactly (a bf16 run
    rounds the captured maps; tests/test_precision.py covers bf16)."""
    return ModelManager(weights="tiny", device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def image(astronaut) -> np.ndarray:
    return np.ascontiguousarray(astronaut[:96, :128])


def test_detr_cross_attention_equals_output_attentions(manager, image) -> None:
    with manager.use("detr") as (adapter, _):
        prediction = adapter.predict(image)
        inputs = adapter.preprocess(image, "detection")
        with torch.inference_mode():
            outputs = adapter.model(**inputs, output_attentions=True)
    explain = prediction.explain
    weights = outputs.cross_attentions[-1][0].mean(dim=0)  # (Q, h*w), mean over heads
    queries = explain["queries"]
    assert len(queries) == len(prediction) > 0
    expected = weights[torch.from_numpy(queries)].reshape(explain["attention"].shape).numpy()
    np.testing.assert_allclose(explain["attention"].astype(np.float32), expected, atol=1e-3)
    no_object = int((outputs.logits[0].argmax(-1) == outputs.logits.shape[-1] - 1).sum())
    assert int(explain["no_object"]) == no_object and int(explain["num_queries"]) == outputs.logits.shape[1]


def test_fcn_coarse_map_upsampled_is_the_model_output(manager, image) -> None:
    with manager.use("fcn") as (adapter, _):
        prediction = adapter.predict(image)
        inputs = adapter.preprocess(image, "semantic")
        with torch.inference_mode():
            out = adapter.model(inputs)["out"]
    coarse = torch.from_numpy(prediction.explain["coarse_logits"])[None]
    assert coarse.shape[-1] < out.shape[-1]  # a coarser grid than the input
    size = tuple(prediction.explain["input_size"].tolist())
    upsampled = F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
    torch.testing.assert_close(upsampled, out)


def test_retinanet_anchor_count_is_the_head_output_length(manager, image) -> None:
    with manager.use("retinanet") as (adapter, _):
        prediction = adapter.predict(image)
        model = adapter.model
        with torch.inference_mode():
            images, _ = model.transform(adapter.preprocess(image, "detection"))
            features = list(model.backbone(images.tensors).values())
            head = model.head(features)
    scored, above = prediction.explain["anchor_counts"].tolist()
    assert scored == head["cls_logits"].shape[1]
    assert prediction.explain["anchor_histogram"].sum() == scored
    best = head["cls_logits"][0].sigmoid().amax(-1)
    assert above == int((best > model.score_thresh).sum())
    assert len(features) == sum(name.startswith("level_scores.") for name in prediction.explain)


def test_mask_rcnn_pasted_roi_masks_are_torchvisions_paste(manager, image) -> None:
    with manager.use("mask-rcnn") as (adapter, _):
        prediction = adapter.predict(image)
        with torch.inference_mode():
            outputs = adapter.model(adapter.preprocess(image, "instance"))[0]
    roi_masks = torch.from_numpy(prediction.explain["roi_masks"])
    assert roi_masks.shape == (len(prediction), 28, 28) and len(prediction) > 0
    pasted = paste_masks_in_image(roi_masks[:, None], torch.from_numpy(prediction.boxes), image.shape[:2])
    torch.testing.assert_close(pasted, outputs["masks"])
    np.testing.assert_array_equal((pasted[:, 0] * 255).round().to(torch.uint8).numpy(), prediction.mask_probs)


@pytest.mark.parametrize("key", list(PARAMS))
def test_every_model_has_captioned_views_and_opening_them_runs_nothing(tiny_playground, image, key) -> None:
    prediction = tiny_playground.predict(key, image, **PARAMS[key])
    assert prediction.explain and prediction.nbytes > 0
    runs = tiny_playground.forward_count
    cached = tiny_playground.predict(key, image, **PARAMS[key])
    assert cached.cached and cached.explain.keys() == prediction.explain.keys()  # kept with the result
    views = explain_views(cached, image)
    assert views and tiny_playground.forward_count == runs
    for view in views:
        assert view.title and view.caption.strip().endswith(".") and view.caption.count(".") >= 1
        assert view.image.ndim == 3 and view.image.shape[2] == 3 and view.image.std() > 0


def test_recording_is_off_outside_predict_and_can_be_switched_off(manager, image) -> None:
    with manager.use("unet") as (adapter, _):
        with torch.inference_mode():
            adapter.model(adapter.preprocess(image, "semantic"))  # a plain call records nothing
        adapter.explain = False
        try:
            assert adapter.predict(image).explain == {}
        finally:
            adapter.explain = True
        shapes = adapter.predict(image).explain
    assert shapes["shape.inc"][1:].tolist() == [48, 64] and shapes["shape.down4"][1:].tolist() == [3, 4]


@pytest.mark.parametrize("key", list(PARAMS))
def test_cli_writes_views_json_and_pngs(tmp_path, key, conftest_astronaut_path) -> None:
    out = tmp_path / key
    args = ["explain", key, str(conftest_astronaut_path), "--weights", "tiny", "--out", str(out)]
    assert main([*args, *CLI_PROMPTS.get(key, [])]) == 0
    listed = json.loads((out / "views.json").read_text())
    assert listed and all(set(item) == {"title", "caption", "file"} for item in listed)
    for item in listed:
        assert (out / item["file"]).stat().st_size > 0 and item["caption"]


@pytest.fixture(scope="module")
def conftest_astronaut_path():
    from conftest import EXAMPLES

    return EXAMPLES / "astronaut.jpg"


def test_api_explain_returns_the_views_and_their_json(live_app, conftest_astronaut_path) -> None:
    from gradio_client import Client, handle_file
    from PIL import Image

    client = Client(live_app.url, verbose=False)
    files, listed = client.predict(handle_file(str(conftest_astronaut_path)), "fcn", api_name="/explain")
    assert [item["title"] for item in listed][:1] == ["Coarse grid beside the final map"]
    assert len(files) == len(listed) and all(item["caption"] for item in listed)
    assert Image.open(files[0]["image"] if isinstance(files[0], dict) else files[0]).width > 16
