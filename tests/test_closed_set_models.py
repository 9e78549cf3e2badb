"""The closed-set models (issue 3) on tiny random-weight builds.

For each model: the `Prediction` has the right fields for its task, and it equals the library's
own pipeline run on the same model object and input (torchvision: the weights' transform and the
model's output dict; transformers: processor, model, the processor's ``post_process_*``; U-Net:
the ``milesial/Pytorch-UNet`` ``predict.py`` recipe). Random weights predict almost nothing
above the score floors, so `make_confident` biases each model's class head (and, for the
panoptic models, its masks) towards a few known classes; reference and adapter share that model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from playground.core.errors import MissingWeightsError, UnknownParameterError
from playground.core.mask_extents import extents_of
from playground.core.registry import get_spec
from playground.core.types import Prediction
from playground.runtime.manager import ModelManager

CLOSED_SET_KEYS = ["unet", "retinanet", "faster-rcnn", "mask-rcnn", "maskformer", "detr-panoptic"]
CARVANA_FILE = "unet_carvana_scale0.5_epoch2.pth"


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manager() -> ModelManager:
    """One tiny-weight manager for the module, its models made confident (see `make_confident`)."""
    torch.manual_seed(0)
    manager = ModelManager(weights="tiny", device="cpu")
    for key in ["retinanet", "faster-rcnn", "mask-rcnn", "maskformer", "detr-panoptic"]:
        with manager.use(key) as (adapter, _):
            make_confident(key, adapter.model)
    return manager


class QueryOffset(nn.Module):
    """``inner(x) + offset[q]`` for a (B, Q, ...) query-wise head output: steers each query."""

    def __init__(self, inner: nn.Module, offset: torch.Tensor) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("offset", offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) + self.offset[: x.shape[-2]]


class HalvesMaskHead(nn.Module):
    """DETR's mask head plus +/-20 logits: query 0 owns the left half, query 1 the right half."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args: object, **kwargs: object) -> torch.Tensor:
        out = self.inner(*args, **kwargs)  # (B * Q, 1, h, w)
        width = out.shape[-1]
        left = torch.arange(width) < width // 2
        pattern = torch.full((out.shape[0], width), -20.0)
        pattern[0, left] = 20.0
        pattern[1, ~left] = 20.0
        return out + pattern[:, None, None, :]


def query_classes(num_queries: int, num_logits: int, classes: list[int], strength: float = 12.0) -> torch.Tensor:
    """(Q, num_logits) offsets: query i -> classes[i], the remaining queries -> "no object" (last)."""
    offset = torch.zeros(num_queries, num_logits)
    for q in range(num_queries):
        offset[q, classes[q] if q < len(classes) else num_logits - 1] = strength
    return offset


def make_confident(key: str, model: nn.Module) -> None:
    """Bias a random model towards a few classes so its outputs are not empty (in place)."""
    with torch.no_grad():
        if key == "retinanet":
            cls_logits = model.head.classification_head.cls_logits
            num_classes = model.head.classification_head.num_classes
            bias = cls_logits.bias.view(-1, num_classes)  # (anchors, classes)
            bias[:, 1] = 2.0  # person, about 0.88
            bias[:, 3] = 0.0  # car, about 0.5
        elif key in ("faster-rcnn", "mask-rcnn"):
            bias = model.roi_heads.box_predictor.cls_score.bias
            bias[1] = 6.0  # person
            bias[3] = 5.0  # car
        elif key == "maskformer":
            v = torch.randn(32, generator=torch.Generator().manual_seed(0))
            model.class_predictor = QueryOffset(model.class_predictor, query_classes(10, 134, [0, 100, 15, 120]))
            model.mask_embedder = QueryOffset(model.mask_embedder, torch.stack([v, -v] * 5) * 20)
        elif key == "detr-panoptic":
            classifier = model.detr.class_labels_classifier
            model.detr.class_labels_classifier = QueryOffset(classifier, query_classes(10, 251, [1, 184]))
            model.mask_head = HalvesMaskHead(model.mask_head)


def assert_instances(prediction: Prediction, image: np.ndarray, task: str) -> None:
    """Shapes and dtypes of a prediction's instances; class ids come from its label map."""
    n = len(prediction)
    assert prediction.task == task
    assert prediction.image_size == image.shape[:2]
    assert prediction.boxes.shape == (n, 4) and prediction.boxes.dtype == np.float32
    assert prediction.scores.dtype == np.float32 and prediction.class_ids.dtype == np.int64
    assert set(prediction.class_ids.tolist()) <= set(prediction.label_names)
    assert "load" in prediction.timings_ms and "forward" in prediction.timings_ms
    if prediction.masks is not None:
        assert prediction.masks.shape == (n, *image.shape[:2]) and prediction.masks.dtype == bool


# ---- torchvision detectors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "task"), [("retinanet", "detection"), ("faster-rcnn", "detection"), ("mask-rcnn", "instance")]
)
def test_torchvision_detector_matches_its_own_pipeline(manager, image, key, task):
    from playground.core.weights import torchvision_weights

    prediction = manager.predict(key, image, task=task)
    assert_instances(prediction, image, task)
    assert len(prediction) > 0
    assert prediction.label_names[1] == "person" and "person" in prediction.labels

    with manager.use(key) as (adapter, _):
        transform = torchvision_weights(adapter.spec).transforms()
        with torch.inference_mode():
            reference = adapter.model([transform(torch.from_numpy(image).permute(2, 0, 1))])[0]
    np.testing.assert_array_equal(prediction.class_ids, reference["labels"].numpy())
    np.testing.assert_allclose(prediction.boxes, reference["boxes"].numpy(), atol=1e-4)
    np.testing.assert_allclose(prediction.scores, reference["scores"].numpy(), atol=1e-4)
    if key == "mask-rcnn":
        probs = reference["masks"][:, 0].numpy()
        np.testing.assert_array_equal(prediction.masks, probs >= 0.5)
        np.testing.assert_allclose(prediction.mask_probs / 255.0, probs, atol=0.5 / 255 + 1e-6)
        assert prediction.mask_probs.dtype == np.uint8
        scanned = extents_of(prediction.masks, prediction.mask_probs)  # the adapter seeded its own
        np.testing.assert_array_equal(prediction.mask_extents(), scanned)
        np.testing.assert_array_equal(prediction.with_mask_threshold(0.5).masks, prediction.masks)
        assert prediction.with_mask_threshold(0.9).masks.sum() <= prediction.masks.sum()
    else:
        assert prediction.masks is None


# ---- MaskFormer ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(401, 517), (12, 600), (600, 12)])
@pytest.mark.parametrize("key", ["maskformer", "mask2former"])
def test_instance_masks_upsampled_one_at_a_time_are_the_processors(manager, image, key, size):
    """`instance_fields` at an image size above and (one side) below the processor's mask resolution,
    keeping about half the instances, against the library's own post-processing at that size."""
    from models.maskformer import instance_fields

    with manager.use(key) as (adapter, _):
        processor = adapter.processor
        with torch.inference_mode():
            outputs = adapter.model(**processor(images=image, return_tensors="pt"))
        everything = processor.post_process_instance_segmentation(outputs, threshold=0.0)[0]["segments_info"]
        threshold = float(np.median([s["score"] for s in everything]))
        found = instance_fields(processor, outputs, threshold, size)
        reference = processor.post_process_instance_segmentation(
            outputs, threshold=threshold, target_sizes=[size], return_binary_maps=True
        )[0]
    segments = reference["segments_info"]
    assert 0 < len(segments) < len(everything)
    np.testing.assert_array_equal(found["class_ids"], [s["label_id"] for s in segments])
    np.testing.assert_array_equal(found["scores"], np.array([s["score"] for s in segments], np.float32))
    np.testing.assert_array_equal(found["masks"], reference["segmentation"].bool().numpy())


def test_maskformer_three_tasks_match_the_processor(manager, image):
    from models.maskformer import PANOPTIC_THRESHOLD
    from models.parts.panoptic import MASK_THRESHOLD, OVERLAP_THRESHOLD

    panoptic = manager.predict("maskformer", image, task="panoptic")
    semantic = manager.predict("maskformer", image, task="semantic")
    instance = manager.predict("maskformer", image, task="instance")

    with manager.use("maskformer") as (adapter, _):
        processor, size = adapter.processor, [image.shape[:2]]
        stuff = {i for i in adapter.label_names if i >= 80}  # COCO panoptic: 80 things, then stuff
        assert adapter.stuff_ids == stuff
        with torch.inference_mode():
            outputs = adapter.model(**processor(images=image, return_tensors="pt"))
            ref_semantic = processor.post_process_semantic_segmentation(outputs, target_sizes=size)[0]
            ref_instance = processor.post_process_instance_segmentation(
                outputs, threshold=adapter.floor(), target_sizes=size, return_binary_maps=True
            )[0]
            ref_panoptic = processor.post_process_panoptic_segmentation(
                outputs,
                threshold=adapter.floor(PANOPTIC_THRESHOLD),
                mask_threshold=adapter.floor(MASK_THRESHOLD),
                overlap_mask_area_threshold=adapter.floor(OVERLAP_THRESHOLD),
                label_ids_to_fuse=stuff,
                target_sizes=size,
            )[0]

    # semantic: one class id per pixel
    assert semantic.semantic_map.dtype == np.int32 and semantic.semantic_map.shape == image.shape[:2]
    assert len(semantic) == 0 and set(np.unique(semantic.semantic_map)) <= set(semantic.label_names)
    np.testing.assert_array_equal(semantic.semantic_map, ref_semantic.numpy())

    # instance: scored, possibly overlapping binary masks
    assert_instances(instance, image, "instance")
    assert len(instance) > 0 and instance.is_thing is None
    segments = ref_instance["segments_info"]
    np.testing.assert_array_equal(instance.class_ids, [s["label_id"] for s in segments])
    np.testing.assert_allclose(instance.scores, [s["score"] for s in segments], atol=1e-4)
    np.testing.assert_array_equal(instance.masks, ref_instance["segmentation"].bool().numpy())

    # panoptic: disjoint segments, things and stuff
    assert_instances(panoptic, image, "panoptic")
    assert len(panoptic) >= 2 and panoptic.masks.sum(axis=0).max() <= 1
    assert panoptic.is_thing.dtype == bool and panoptic.is_thing.tolist() == [c < 80 for c in panoptic.class_ids]
    assert set(panoptic.is_thing.tolist()) == {True, False}
    segmentation = ref_panoptic["segmentation"].numpy()
    segments = ref_panoptic["segments_info"]
    np.testing.assert_array_equal(panoptic.class_ids, [s["label_id"] for s in segments])
    np.testing.assert_allclose(panoptic.scores, [s["score"] for s in segments], atol=1e-4)
    np.testing.assert_array_equal(panoptic.masks, np.stack([segmentation == s["id"] for s in segments]))
    x1, y1, x2, y2 = panoptic.boxes[0]
    rows, cols = np.nonzero(panoptic.masks[0])
    assert (x1, y1, x2, y2) == (cols.min(), rows.min(), cols.max(), rows.max())  # right, bottom inclusive


def test_maskformer_switching_task_runs_no_second_forward(manager, image, monkeypatch):
    fresh = np.ascontiguousarray(image[::-1])  # content no other test has run
    with manager.use("maskformer") as (adapter, _):
        calls = []
        forward = adapter.model.forward

        def counting_forward(*args, **kwargs):
            calls.append(1)
            return forward(*args, **kwargs)

        monkeypatch.setattr(adapter.model, "forward", counting_forward)

    tasks = ["panoptic", "semantic", "instance", "panoptic"]
    predictions = [manager.predict("maskformer", fresh, task=task) for task in tasks]
    assert len(calls) == 1
    assert [p.reuse for p in predictions] == ["", *["raw outputs cached"] * 3]
    assert [p.task for p in predictions] == tasks
    with pytest.raises(UnknownParameterError, match="'threshold'"):  # refused before any forward
        manager.predict("maskformer", fresh, task="panoptic", threshold=0.5)
    assert len(calls) == 1
    manager.predict("maskformer", np.ascontiguousarray(image[:, ::-1]), task="semantic")
    assert len(calls) == 2


def test_maskformer_rejects_an_unknown_task(manager, image):
    from playground.core.errors import PlaygroundError

    with pytest.raises(PlaygroundError, match="semantic, instance or panoptic"):
        manager.predict("maskformer", image, task="detection")


# ---- DETR panoptic ---------------------------------------------------------------------------


def test_detr_panoptic_matches_the_processor(manager, image):
    from models.detr_panoptic import PANOPTIC_THRESHOLD
    from models.parts.panoptic import MASK_THRESHOLD, OVERLAP_THRESHOLD

    prediction = manager.predict("detr-panoptic", image, task="panoptic")
    with manager.use("detr-panoptic") as (adapter, _):
        stuff = {i for i in adapter.label_names if i > 90}  # COCO panoptic ids: things <= 90
        assert adapter.stuff_ids == stuff and adapter.label_names[1] == "person"
        with torch.inference_mode():
            outputs = adapter.model(**adapter.processor(images=image, return_tensors="pt"))
        reference = adapter.processor.post_process_panoptic_segmentation(
            outputs,
            threshold=adapter.floor(PANOPTIC_THRESHOLD),
            mask_threshold=adapter.floor(MASK_THRESHOLD),
            overlap_mask_area_threshold=adapter.floor(OVERLAP_THRESHOLD),
            label_ids_to_fuse=stuff,
            target_sizes=[image.shape[:2]],
        )[0]

    assert_instances(prediction, image, "panoptic")
    assert prediction.class_ids.tolist() == [1, 184] and prediction.is_thing.tolist() == [True, False]
    assert prediction.masks.sum(axis=0).max() <= 1
    segmentation = reference["segmentation"].numpy()
    segments = reference["segments_info"]
    np.testing.assert_array_equal(prediction.class_ids, [s["label_id"] for s in segments])
    np.testing.assert_allclose(prediction.scores, [s["score"] for s in segments], atol=1e-4)
    np.testing.assert_array_equal(prediction.masks, np.stack([segmentation == s["id"] for s in segments]))


# ---- U-Net -----------------------------------------------------------------------------------


def published_carvana_keys() -> list[str]:
    """State-dict keys of ``unet_carvana_scale0.5_epoch2.pth`` (Pytorch-UNet v3.0, bilinear=False).

    From the repository's ``unet/unet_parts.py`` and ``unet_model.py``: ``DoubleConv`` is
    ``double_conv`` = Sequential(conv, BN, ReLU, conv, BN, ReLU) with bias-free convolutions
    (v2.0 checkpoints had conv biases: issue #333); ``Down`` is ``maxpool_conv`` =
    Sequential(MaxPool2d, DoubleConv); ``Up`` is ``up`` (ConvTranspose2d) and ``conv``;
    ``OutConv`` is ``conv``. The file also holds ``mask_values``, which is no tensor.
    """

    def double_conv(prefix: str) -> list[str]:
        keys = []
        for conv, norm in ((0, 1), (3, 4)):
            keys.append(f"{prefix}.double_conv.{conv}.weight")
            stats = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
            keys += [f"{prefix}.double_conv.{norm}.{name}" for name in stats]
        return keys

    keys = double_conv("inc")
    for i in range(1, 5):
        keys += double_conv(f"down{i}.maxpool_conv.1")
    for i in range(1, 5):
        keys += [f"up{i}.up.weight", f"up{i}.up.bias", *double_conv(f"up{i}.conv")]
    return [*keys, "outc.conv.weight", "outc.conv.bias"]


def test_unet_state_dict_keys_match_the_published_checkpoint():
    from models.parts.unet_network import UNet

    state = UNet().state_dict()
    assert list(state) == published_carvana_keys()
    assert state["inc.double_conv.0.weight"].shape == (64, 3, 3, 3)
    assert state["down4.maxpool_conv.1.double_conv.3.weight"].shape == (1024, 1024, 3, 3)
    assert state["up1.up.weight"].shape == (1024, 512, 2, 2)
    assert state["up1.conv.double_conv.0.weight"].shape == (512, 1024, 3, 3)  # skip + upsampled
    assert state["outc.conv.weight"].shape == (2, 64, 1, 1)


def test_unet_matches_the_repository_recipe(manager, image):
    prediction = manager.predict("unet", image, task="semantic")
    assert prediction.label_names == {0: "background", 1: "car"}
    assert prediction.semantic_map.dtype == np.int32 and prediction.semantic_map.shape == image.shape[:2]
    assert len(prediction) == 0

    # predict.py: PIL bicubic resize to int(0.5 * side), / 255, net, bilinear upsampling, arg-max.
    height, width = image.shape[:2]
    half = Image.fromarray(image).resize((int(0.5 * width), int(0.5 * height)), resample=Image.BICUBIC)
    x = torch.from_numpy(np.asarray(half).transpose(2, 0, 1) / 255.0).float()[None]
    with manager.use("unet") as (adapter, _), torch.inference_mode():
        logits = F.interpolate(adapter.model(x), (height, width), mode="bilinear")
    np.testing.assert_array_equal(prediction.semantic_map, logits.argmax(dim=1)[0].numpy())


@pytest.fixture
def torch_hub_dir(tmp_path, monkeypatch) -> Path:
    """An empty torch hub directory for this test (restored afterwards)."""
    monkeypatch.setattr(torch.hub, "_hub_dir", torch.hub._hub_dir)
    hub = tmp_path / "torch" / "hub"
    torch.hub.set_dir(str(hub))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return hub


def test_unet_checkpoint_round_trip_through_the_torch_hub_cache(torch_hub_dir, monkeypatch):
    from models.parts.unet_network import UNet
    from playground.core.weights import download, read_state_dict

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = get_spec("unet")
    assert spec.checkpoint.endswith("/" + CARVANA_FILE)
    saved = UNet().state_dict()
    path = torch_hub_dir / "checkpoints" / CARVANA_FILE
    path.parent.mkdir(parents=True)
    torch.save({**saved, "mask_values": [0, 1]}, path)

    assert read_state_dict(spec, path)["mask_values"] == [0, 1]  # weights_only=True reads it
    assert download(spec) == str(path)  # cached: no network
    # library_kernels: the library's own layout, whose state dict is the checkpoint's (no folded norms)
    exact = ModelManager(weights="pretrained", device="cpu", precision="fp32", library_kernels=True)
    with exact.use("unet") as (adapter, cold):
        loaded = adapter.model.state_dict()
    assert cold and list(loaded) == list(saved)
    assert all(torch.equal(loaded[name], saved[name]) for name in saved)


# ---- missing weights -------------------------------------------------------------------------


@pytest.fixture
def offline_empty_caches(torch_hub_dir, tmp_path, monkeypatch) -> None:
    """``HF_HUB_OFFLINE=1`` with empty Hugging Face and torch hub caches."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))


@pytest.mark.parametrize("key", CLOSED_SET_KEYS)
def test_pretrained_weights_offline_give_the_clear_message(offline_empty_caches, image, key):
    spec = get_spec(key)
    start = time.perf_counter()
    with pytest.raises(MissingWeightsError) as error:
        ModelManager(weights="pretrained", device="cpu").predict(key, image, task=spec.tasks[0])
    assert time.perf_counter() - start < 5
    message = str(error.value)
    assert spec.checkpoint in message
    assert f"python -m playground download {key}" in message


# ---- CLI -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "task"), [("unet", None), ("mask-rcnn", None), ("maskformer", "panoptic")])
def test_cli_predict_writes_json(tmp_path, key, task):
    from playground.cli import main

    out = tmp_path / "out.json"
    example = Path(__file__).resolve().parents[1] / "examples" / "coffee.jpg"
    argv = ["predict", key, str(example), "--weights", "tiny", "--device", "cpu", "--json", str(out)]
    assert main([*argv, *(["--task", task] if task else [])]) == 0
    assert isinstance(json.loads(out.read_text()), dict)
