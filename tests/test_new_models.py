"""The models of issue 13 on tiny random-weight builds: each equals its library's own pipeline.

For each model, the `Prediction` is compared with the library's own pre-processing, forward and
post-processing run on the same model object and image (torchvision: the weights' transform and
the model's output dict; transformers: the processor, the model, the processor's
``post_process_*``). Tiny builds keep every result (score floor 0), so each path has work to do.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from playground.core.errors import BadPromptError, MissingWeightsError
from playground.runtime.manager import ModelManager

pytestmark = pytest.mark.usefixtures("fast_cpu")


@pytest.fixture(scope="module")
def manager() -> ModelManager:
    torch.manual_seed(0)
    return ModelManager(weights="tiny", device="cpu")


def test_ssdlite_matches_its_own_pipeline(manager, image):
    from playground.core.weights import torchvision_weights

    prediction = manager.predict("ssdlite", image)
    assert prediction.task == "detection" and len(prediction) > 0
    with manager.use("ssdlite") as (adapter, _):
        transform = torchvision_weights(adapter.spec).transforms()
        with torch.inference_mode():
            reference = adapter.model([transform(torch.from_numpy(image).permute(2, 0, 1))])[0]
    np.testing.assert_array_equal(prediction.class_ids, reference["labels"].numpy())
    np.testing.assert_allclose(prediction.boxes, reference["boxes"].numpy(), atol=1e-4)
    np.testing.assert_allclose(prediction.scores, reference["scores"].numpy(), atol=1e-4)


def test_d_fine_matches_the_processor(manager, image):
    prediction = manager.predict("d-fine", image)
    assert len(prediction) == 30 and set(prediction.class_ids.tolist()) <= set(prediction.label_names)
    with manager.use("d-fine") as (adapter, _):
        processor = adapter.processor
        with torch.inference_mode():
            outputs = adapter.model(**processor(images=image, return_tensors="pt"))
        reference = processor.post_process_object_detection(outputs, threshold=0.0, target_sizes=[image.shape[:2]])[0]
    height, width = image.shape[:2]
    boxes = np.clip(reference["boxes"].numpy(), 0, [width, height, width, height])
    np.testing.assert_array_equal(prediction.class_ids, reference["labels"].numpy())
    np.testing.assert_allclose(prediction.boxes, boxes, atol=1e-4)
    np.testing.assert_allclose(prediction.scores, reference["scores"].numpy(), atol=1e-5)


def panoptic_reference(adapter, outputs, image: np.ndarray, **fuse: object) -> dict:
    from models.maskformer import PANOPTIC_THRESHOLD
    from models.parts.panoptic import MASK_THRESHOLD, OVERLAP_THRESHOLD

    return adapter.processor.post_process_panoptic_segmentation(
        outputs,
        threshold=adapter.floor(PANOPTIC_THRESHOLD),
        mask_threshold=adapter.floor(MASK_THRESHOLD),
        overlap_mask_area_threshold=adapter.floor(OVERLAP_THRESHOLD),
        target_sizes=[image.shape[:2]],
        **fuse,
    )[0]


def assert_same_segments(prediction, reference: dict) -> None:
    segmentation, segments = reference["segmentation"].numpy(), reference["segments_info"]
    assert len(prediction) == len(segments)
    np.testing.assert_array_equal(prediction.class_ids, [s["label_id"] for s in segments])
    np.testing.assert_allclose(prediction.scores, [s["score"] for s in segments], atol=1e-5)
    if segments:
        np.testing.assert_array_equal(prediction.masks, np.stack([segmentation == s["id"] for s in segments]))
        assert prediction.masks.sum(axis=0).max() <= 1


def test_mask2former_three_tasks_match_the_processor(manager, image):
    predictions = {
        task: manager.predict("mask2former", image, task=task) for task in ("panoptic", "semantic", "instance")
    }
    assert [p.reuse for p in predictions.values()] == ["", "raw outputs cached", "raw outputs cached"]
    with manager.use("mask2former") as (adapter, _):
        processor, size = adapter.processor, [image.shape[:2]]
        with torch.inference_mode():
            outputs = adapter.model(**processor(images=image, return_tensors="pt"))
        semantic = processor.post_process_semantic_segmentation(outputs, target_sizes=size)[0]
        instance = processor.post_process_instance_segmentation(
            outputs, threshold=0.0, target_sizes=size, return_binary_maps=True
        )[0]
        panoptic = panoptic_reference(adapter, outputs, image, label_ids_to_fuse=set(adapter.stuff_ids))
    np.testing.assert_array_equal(predictions["semantic"].semantic_map, semantic.numpy())
    segments = instance["segments_info"]
    assert len(predictions["instance"]) == len(segments) > 0
    np.testing.assert_array_equal(predictions["instance"].class_ids, [s["label_id"] for s in segments])
    np.testing.assert_array_equal(predictions["instance"].masks, instance["segmentation"].bool().numpy())
    assert_same_segments(predictions["panoptic"], panoptic)


def test_eomt_panoptic_matches_the_processor(manager, image):
    prediction = manager.predict("eomt", image, task="panoptic")
    assert len(prediction) > 0 and prediction.is_thing is not None
    with manager.use("eomt") as (adapter, _):
        inputs = adapter.processor(images=image, return_tensors="pt")
        with torch.inference_mode():
            outputs = adapter.model(pixel_values=inputs["pixel_values"])
        reference = panoptic_reference(adapter, outputs, image, stuff_classes=sorted(adapter.stuff_ids))
    assert_same_segments(prediction, reference)
    with pytest.raises(BadPromptError, match="panoptic"):
        manager.predict("eomt", image, task="semantic")


@pytest.mark.parametrize("kept", ["half", "none"])
def test_eomt_post_processes_only_the_queries_it_keeps_with_the_same_result(manager, image, kept):
    """`queries_it_keeps` hands the processor fewer queries, and its panoptic result is the same."""
    from models.eomt import queries_it_keeps

    with manager.use("eomt") as (adapter, _):
        inputs = adapter.processor(images=image, return_tensors="pt")
        with torch.inference_mode():
            outputs = adapter.model(pixel_values=inputs["pixel_values"])
        scores, labels = outputs.class_queries_logits[0].softmax(dim=-1).max(dim=-1)
        objects = scores[labels != outputs.class_queries_logits.shape[-1] - 1]
        threshold = float(objects.median() if kept == "half" else scores.max())
        cut = queries_it_keeps(outputs, threshold)

        def panoptic(queries) -> dict:
            return adapter.processor.post_process_panoptic_segmentation(
                queries, threshold=threshold, target_sizes=[image.shape[:2]], stuff_classes=sorted(adapter.stuff_ids)
            )[0]

        expected, found = panoptic(outputs), panoptic(cut)
    assert 0 < cut.class_queries_logits.shape[1] < outputs.class_queries_logits.shape[1]
    assert cut.masks_queries_logits.shape[1] == cut.class_queries_logits.shape[1]
    assert found["segments_info"] == expected["segments_info"]
    assert (len(found["segments_info"]) > 0) == (kept == "half")
    torch.testing.assert_close(found["segmentation"], expected["segmentation"], rtol=0, atol=0)


def test_eomt_random_builds_run_unmasked_as_trained_checkpoints_do(manager, image):
    """Mask annealing ends training at probability 0, so one mask prediction runs, at the end."""
    with manager.use("eomt") as (adapter, _):
        assert adapter.model.attn_mask_probs.tolist() == [0.0] * adapter.model.config.num_blocks
        predictions: list[int] = []
        hook = adapter.model.upscale_block.register_forward_hook(lambda *_: predictions.append(1))
        try:
            adapter.clear_caches()
            manager.predict("eomt", image, task="panoptic")
        finally:
            hook.remove()
    assert len(predictions) == 1


def test_owlv2_matches_the_processor_and_reuses_raw_outputs(manager, image):
    prediction = manager.predict("owlv2", image, task="text", text="cat, person", box_threshold=0.0)
    assert prediction.label_names == {0: "cat", 1: "person"} and len(prediction) > 0
    with manager.use("owlv2") as (adapter, _):
        from models.owlv2 import TEXT_PADDING

        processor = adapter.processor
        inputs = processor(text=[["cat", "person"]], images=image, return_tensors="pt", **TEXT_PADDING)
        with torch.inference_mode():
            outputs = adapter.model(**inputs)
        reference = processor.post_process_grounded_object_detection(
            outputs, threshold=0.0, target_sizes=[image.shape[:2]]
        )[0]
    height, width = image.shape[:2]
    np.testing.assert_array_equal(prediction.class_ids, reference["labels"].numpy())
    np.testing.assert_allclose(prediction.boxes, np.clip(reference["boxes"].numpy(), 0, [width, height] * 2), atol=1e-4)
    np.testing.assert_allclose(prediction.scores, reference["scores"].numpy(), atol=1e-5)
    stricter = manager.predict("owlv2", image, task="text", text="cat, person", box_threshold=0.5)
    assert stricter.reuse == "cached" and np.all(stricter.scores > 0.5)


def test_sam2_matches_the_processor_and_keeps_its_own_embedding(manager, image):
    points = ((60.0, 50.0, 1), (120.0, 90.0, 0))
    prediction = manager.predict("sam2", image, task="prompt", points=points)
    assert len(prediction) == 3 and prediction.masks.shape == (3, *image.shape[:2])
    assert list(prediction.scores) == sorted(prediction.scores, reverse=True)
    with manager.use("sam2") as (adapter, _):
        processor = adapter.processor
        inputs = processor(
            images=image,
            input_points=[[[list(p[:2]) for p in points]]],
            input_labels=[[[p[2] for p in points]]],
            return_tensors="pt",
        )
        with torch.inference_mode():
            outputs = adapter.model(**inputs, multimask_output=True)
        logits = processor.post_process_masks(outputs.pred_masks, inputs["original_sizes"], binarize=False)[0][0]
    order = outputs.iou_scores[0, 0].argsort(descending=True)
    np.testing.assert_allclose(prediction.scores, outputs.iou_scores[0, 0][order].clamp(0, 1).numpy(), atol=1e-5)
    np.testing.assert_array_equal(prediction.masks, (logits[order] > 0).numpy())
    again = manager.predict("sam2", image, task="prompt", box=(10, 10, 120, 100))
    assert again.reuse == "cached"
    assert manager.predict("sam", image, task="prompt", box=(10, 10, 120, 100)).reuse != "cached"  # its own cache


def test_sam3_text_matches_the_processor(manager, image):
    prediction = manager.predict("sam3", image, task="text", text="cat, person")
    assert prediction.label_names == {0: "cat", 1: "person"}
    with manager.use("sam3") as (adapter, _):
        processor, found = adapter.processor, []
        for name in ("cat", "person"):
            inputs = processor(images=image, text=name, return_tensors="pt")
            with torch.inference_mode():
                outputs = adapter.model(**{k: v for k, v in inputs.items() if k != "original_sizes"})
            found.append(
                processor.post_process_instance_segmentation(
                    outputs, threshold=0.0, mask_threshold=0.5, target_sizes=[image.shape[:2]]
                )[0]
            )
    np.testing.assert_allclose(prediction.scores, torch.cat([r["scores"] for r in found]).numpy(), atol=1e-5)
    np.testing.assert_array_equal(prediction.masks, torch.cat([r["masks"] for r in found]).bool().numpy())
    assert prediction.class_ids.tolist() == [0] * len(found[0]["scores"]) + [1] * len(found[1]["scores"])
    box = manager.predict("sam3", image, task="prompt", box=(10, 10, 100, 100))
    assert box.reuse == "cached" and box.masks.shape[1:] == image.shape[:2]
    with pytest.raises(BadPromptError, match="SAM 3"):
        manager.predict("sam3", image, task="prompt", points=((5, 5, 1),))


def test_owlv2_sam_masks_owlv2s_boxes_with_sam(image):
    from playground.runtime.composites import MAX_BOXES
    from playground.runtime.service import Playground

    playground = Playground(ModelManager(weights="tiny", device="cpu"))
    combined = playground.predict("owlv2-sam", image, task="text", text="cat", box_threshold=0.2)
    boxes = playground.predict("owlv2", image, task="text", text="cat", box_threshold=0.2)
    boxes = boxes[np.sort(np.argsort(-boxes.scores, kind="stable")[:MAX_BOXES])]  # the best 100 get masks
    np.testing.assert_array_equal(combined.boxes, boxes.boxes)
    assert combined.masks.shape == (len(boxes), *image.shape[:2]) and combined.labels == boxes.labels
    segments = playground.predict("sam", image, boxes=tuple(map(tuple, boxes.boxes.tolist())))
    np.testing.assert_array_equal(combined.masks, segments.masks)


def test_gated_checkpoints_say_how_to_get_access(monkeypatch, tmp_path):
    from playground.core import weights
    from playground.core.registry import get_spec

    class Gated:
        @classmethod
        def from_pretrained(cls, *args: object, **kwargs: object) -> None:  # what transformers raises
            raise OSError("You are trying to access a gated repo.\n401 Client Error: access is restricted")

    monkeypatch.setattr(weights, "hub_offline", lambda: False)  # online: the hub itself answers
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    for spec, expect_hint in ((get_spec("sam3"), True), (get_spec("detr"), False)):
        with pytest.raises(MissingWeightsError) as caught:
            weights.hf_model(spec, Gated)
        message = str(caught.value)
        assert "\n" not in message and "gated repo" in message
        assert ("https://huggingface.co/facebook/sam3" in message and "HF_TOKEN" in message) == expect_hint
