"""FCN and DETR give exactly what their library's own pipeline gives on the same model and input."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from playground.runtime.manager import ModelManager


def test_fcn_label_map_equals_torchvision_pipeline(astronaut):
    manager = ModelManager(weights="tiny", device="cpu")
    prediction = manager.predict("fcn", astronaut)
    with manager.use("fcn") as (adapter, _), torch.inference_mode():
        batch = adapter.transform(torch.from_numpy(astronaut).permute(2, 0, 1)).unsqueeze(0)
        logits = adapter.model(batch)["out"]
        reference = F.interpolate(logits, size=astronaut.shape[:2], mode="bilinear", align_corners=False)
        expected = reference[0].argmax(0).numpy()
    assert prediction.semantic_map.shape == astronaut.shape[:2]
    np.testing.assert_array_equal(prediction.semantic_map, expected)
    assert set(prediction.label_names.values()) >= {"cat", "person", "__background__"}
    assert len(prediction.label_names) == 21


def test_detr_boxes_and_labels_equal_transformers_pipeline(astronaut):
    manager = ModelManager(weights="tiny", device="cpu")
    prediction = manager.predict("detr", astronaut)  # tiny weights keep every query
    with manager.use("detr") as (adapter, _), torch.inference_mode():
        inputs = adapter.processor(images=astronaut, return_tensors="pt")
        outputs = adapter.model(**inputs)
        [reference] = adapter.processor.post_process_object_detection(
            outputs, threshold=0.0, target_sizes=[astronaut.shape[:2]]
        )
    assert len(prediction) == len(reference["labels"]) == 10
    np.testing.assert_array_equal(prediction.class_ids, reference["labels"].numpy())
    np.testing.assert_allclose(prediction.boxes, reference["boxes"].numpy(), atol=1e-4)
    np.testing.assert_allclose(prediction.scores, reference["scores"].numpy(), atol=1e-6)
    assert prediction.label_names[1] == "person"
