"""DETR panoptic runs its mask branch only on the queries post-processing keeps (issue 17).

`DETRPanopticAdapter.forward` must give exactly the segments of the library's own
``DetrForSegmentation`` forward plus ``post_process_panoptic_segmentation`` (the same logits and
boxes; masks within float rounding), while running ``mask_head`` on fewer queries, `MASK_CHUNK`
at a time. Tiny random weights; `steer` fixes each query's class.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn
from transformers.models.detr.image_processing_detr import remove_low_and_no_objects

from models.detr_panoptic import MASK_CHUNK, PANOPTIC_THRESHOLD, kept_queries, query_masks
from models.parts.panoptic import MASK_THRESHOLD, OVERLAP_THRESHOLD, segments_to_fields
from playground.runtime.manager import ModelManager

pytestmark = pytest.mark.usefixtures("fast_cpu")


class Steer(nn.Module):
    """The classifier's logits (1, Q, C + 1) plus ``offset`` (Q, C + 1)."""

    def __init__(self, inner: nn.Module, offset: torch.Tensor) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("offset", offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) + self.offset


@pytest.fixture(scope="module")
def manager() -> ModelManager:
    torch.manual_seed(0)
    return ModelManager(weights="tiny", device="cpu")


@pytest.fixture
def adapter(manager: ModelManager) -> Iterator:
    """The tiny adapter; its classifier is restored afterwards (pytest's monkeypatch would delete
    a submodule on undo: nn.Module keeps them outside the instance ``__dict__``)."""
    with manager.use("detr-panoptic") as (adapter, _):
        classifier = adapter.model.detr.class_labels_classifier
        yield adapter
        adapter.model.detr.class_labels_classifier = classifier


@pytest.fixture
def batches(adapter) -> Iterator[list[int]]:
    """The query batch of every ``mask_head`` call, in order."""
    seen: list[int] = []
    hook = adapter.model.mask_head.register_forward_hook(lambda module, args, out: seen.append(out.shape[0]))
    yield seen
    hook.remove()


def steer(adapter, strengths: dict[int, tuple[int, float]]) -> None:
    """Query q -> +strength on class c for ``strengths[q] = (c, strength)``; the others +30 on "no object"."""
    detr = adapter.model.detr
    num_queries, num_logits = detr.config.num_queries, detr.class_labels_classifier.out_features
    offset = torch.zeros(num_queries, num_logits)
    offset[:, -1] = 30.0
    for query, (label, strength) in strengths.items():
        offset[query] = 0.0
        offset[query, label] = strength
    detr.class_labels_classifier = Steer(detr.class_labels_classifier, offset)


def library_panoptic(adapter, outputs, image: np.ndarray) -> dict:
    """The processor's post-processing with the adapter's settings (as `panoptic_fields` calls it)."""
    return adapter.processor.post_process_panoptic_segmentation(
        outputs,
        threshold=adapter.floor(PANOPTIC_THRESHOLD),
        mask_threshold=adapter.floor(MASK_THRESHOLD),
        overlap_mask_area_threshold=adapter.floor(OVERLAP_THRESHOLD),
        label_ids_to_fuse=set(adapter.stuff_ids),
        target_sizes=[image.shape[:2]],
    )[0]


def assert_same_as_library(adapter, image: np.ndarray, batches: list[int]) -> tuple[dict, list[int]]:
    """Ours == the library's full forward + post-processing; returns the reference and the
    query batches our forward's ``mask_head`` calls saw."""
    inputs = adapter.preprocess(image, "panoptic")
    with torch.inference_mode():
        full = adapter.model(**inputs)
        reference = library_panoptic(adapter, full, image)
        batches.clear()
        ours = adapter.forward(inputs)
        ours_batches = list(batches)
        result = library_panoptic(adapter, ours, image)
        prediction = adapter.predict(image, task="panoptic")

    keep = kept_queries(full.logits, adapter.floor(PANOPTIC_THRESHOLD))
    assert sum(ours_batches) == len(keep) and all(b <= MASK_CHUNK for b in ours_batches)
    torch.testing.assert_close(ours.logits, full.logits[:, keep], rtol=0, atol=0)
    torch.testing.assert_close(ours.pred_boxes, full.pred_boxes[:, keep], rtol=0, atol=0)
    torch.testing.assert_close(ours.pred_masks, full.pred_masks[:, keep], rtol=1e-5, atol=1e-5)
    assert torch.equal(result["segmentation"], reference["segmentation"])
    assert result["segments_info"] == reference["segments_info"]

    expected = segments_to_fields(reference["segmentation"], reference["segments_info"], adapter.thing_ids)
    np.testing.assert_array_equal(prediction.masks, expected["masks"])
    np.testing.assert_array_equal(prediction.class_ids, expected["class_ids"])
    np.testing.assert_array_equal(prediction.scores, expected["scores"])
    np.testing.assert_array_equal(prediction.boxes, expected["boxes"])
    return reference, ours_batches


def test_all_queries_survive_in_chunks(adapter, batches, astronaut):
    num_queries = adapter.model.config.num_queries
    steer(adapter, {q: (1 if q % 2 else 184, 8.0) for q in range(num_queries)})
    reference, seen = assert_same_as_library(adapter, astronaut, batches)
    full_chunks, rest = divmod(num_queries, MASK_CHUNK)
    assert seen == [MASK_CHUNK] * full_chunks + ([rest] if rest else [])
    assert reference["segments_info"]


def test_no_object_queries_skip_the_mask_head(adapter, batches, astronaut):
    steer(adapter, {0: (1, 8.0), 3: (184, 8.0), 7: (3, 8.0)})
    reference, seen = assert_same_as_library(adapter, astronaut, batches)
    assert seen == [3] and len(reference["segments_info"]) >= 1


def test_no_query_survives(adapter, batches, astronaut):
    steer(adapter, {})
    reference, seen = assert_same_as_library(adapter, astronaut, batches)
    assert seen == [] and reference["segments_info"] == []
    assert (reference["segmentation"] == -1).all()
    assert len(adapter.predict(astronaut, task="panoptic")) == 0


def test_score_threshold_drops_queries_like_the_library(monkeypatch, adapter, batches, astronaut):
    """With the real 0.85 query threshold (not the tiny build's floor of 0): strong queries stay,
    weak ones (scores far below 0.85) go."""
    monkeypatch.setattr(adapter, "floor", lambda pretrained_floor=0.0: pretrained_floor)
    steer(adapter, {0: (1, 20.0), 1: (184, 20.0), 2: (1, 3.0), 5: (184, 3.0)})
    _, seen = assert_same_as_library(adapter, astronaut, batches)
    assert seen == [2]


def test_kept_queries_is_the_librarys_selection():
    """Same queries as ``remove_low_and_no_objects``, also at thresholds equal to a query's score."""
    logits = torch.randn(1, 64, 6, generator=torch.Generator().manual_seed(0)) * 2
    scores, labels = logits.softmax(-1).max(-1)
    for threshold in [0.0, 0.3, 0.5, 0.9, 1.0, *scores[0, :8].tolist()]:
        index = torch.arange(64).view(64, 1, 1)
        library, _, _ = remove_low_and_no_objects(index, scores[0], labels[0], threshold, 5)
        assert kept_queries(logits, threshold).tolist() == library.flatten().tolist()


def test_query_masks_do_not_depend_on_the_chunk_size(adapter, astronaut):
    from models.detr_panoptic import detr_body

    inputs = adapter.preprocess(astronaut, "panoptic")
    with torch.inference_mode():
        full = adapter.model(**inputs).pred_masks
        body = detr_body(adapter.model, inputs["pixel_values"], inputs["pixel_mask"])
        keep = torch.tensor([7, 2, 5])
        for chunk in [1, 2, 3, 100]:
            # Float rounding only: conv kernels are picked by batch size (see `query_masks`).
            torch.testing.assert_close(
                query_masks(adapter.model, body, keep, chunk), full[:, keep], rtol=1e-5, atol=1e-5
            )
