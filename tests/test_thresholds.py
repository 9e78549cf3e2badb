"""Each model's own score threshold: the spec table, the library defaults it names, and what a view,
the CLI and the UI's controls keep, run on tiny builds whose scores straddle the real threshold."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from playground.core.registry import REGISTRY, get_spec
from playground.core.thresholds import SCORE_THRESHOLDS
from playground.core.types import BACKGROUND_LABELS
from playground.render.views import ViewOptions, make_panel, present_labels
from playground.runtime.manager import ModelManager
from playground.runtime.service import Outcome, Playground

ASTRONAUT = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"
OFFSETS = (-0.1, -0.01, 0.01, 0.1)
"""Designed scores sit this far from the model's own threshold: 0.01 either side of it, so a cut
0.01 off the threshold would keep a different set."""


def test_every_model_has_its_own_threshold_and_says_where_it_comes_from():
    assert set(SCORE_THRESHOLDS) == set(REGISTRY)
    for spec in REGISTRY.values():
        assert 0.0 <= spec.default_score_threshold <= 1.0, spec.key
        assert len(spec.threshold_source) > 20, spec.key
    assert get_spec("sam").default_score_threshold == 0.0  # predicted IoUs: every candidate kept
    assert get_spec("fcn").default_score_threshold == 0.0  # a class map: no score filters it
    assert get_spec("grounding-dino").default_score_threshold == 0.35  # its README, not the library's 0.25


def default(function, name: str = "threshold") -> float:
    return inspect.signature(function).parameters[name].default


def test_the_library_defaults_named_as_sources_are_the_installed_ones():
    from torchvision.models.detection import faster_rcnn, mask_rcnn, retinanet
    from transformers import (
        DetrImageProcessor,
        EomtImageProcessor,
        Mask2FormerImageProcessor,
        MaskFormerImageProcessor,
        Owlv2Processor,
        RTDetrImageProcessor,
        Sam3Processor,
    )
    from transformers.models.sam3_video.configuration_sam3_video import Sam3VideoConfig

    own = {key: spec.default_score_threshold for key, spec in REGISTRY.items()}
    assert own["detr"] == default(DetrImageProcessor.post_process_object_detection)
    assert own["d-fine"] == default(RTDetrImageProcessor.post_process_object_detection)
    assert own["maskformer"] == default(MaskFormerImageProcessor.post_process_instance_segmentation)
    assert own["mask2former"] == default(Mask2FormerImageProcessor.post_process_instance_segmentation)
    assert own["eomt"] == default(EomtImageProcessor.post_process_panoptic_segmentation)
    assert own["owlv2"] == own["owlv2-sam"] == default(Owlv2Processor.post_process_grounded_object_detection)
    assert own["sam3"] == default(Sam3Processor.post_process_instance_segmentation)
    assert own["sam3-video"] == Sam3VideoConfig().score_threshold_detection
    # torchvision's builders keep boxes down to 0.05 (an evaluation floor): the display value is higher.
    assert default(faster_rcnn.FasterRCNN.__init__, "box_score_thresh") == 0.05 < own["faster-rcnn"]
    assert default(mask_rcnn.MaskRCNN.__init__, "box_score_thresh") == 0.05 < own["mask-rcnn"]
    assert default(retinanet.RetinaNet.__init__, "score_thresh") == 0.05 < own["retinanet"]
    assert "0.05" in get_spec("faster-rcnn").threshold_source


def designed(count: int, threshold: float) -> torch.Tensor:
    """``count`` scores cycling through `OFFSETS` around ``threshold``."""
    return torch.tensor([min(max(threshold + OFFSETS[i % len(OFFSETS)], 0.001), 0.999) for i in range(count)])


def softmax_logit(score: torch.Tensor, classes: int) -> torch.Tensor:
    """The logit that gives one class ``score`` under a softmax whose other ``classes - 1`` logits are 0."""
    return torch.log(score * (classes - 1) / (1 - score))


def straddle(adapter, key: str, threshold: float) -> None:
    """Set the tiny model's class scores around ``threshold``: its classifier's output (DETR, Faster
    R-CNN: class 1, "person", at the designed score under the softmax) or SAM 3's match logits (its
    presence score saturated), so the library's own post-processing runs on them."""
    model = adapter.model

    def detr(module, inputs, output):
        logits = torch.zeros_like(output)
        logits[..., 1] = softmax_logit(designed(output.shape[-2], threshold), output.shape[-1])
        return logits

    def faster_rcnn(module, inputs, output):
        logits = torch.zeros_like(output)
        logits[:, 1] = softmax_logit(designed(output.shape[0], threshold), output.shape[-1])
        return logits

    def sam3(module, inputs, output):
        scores = designed(output.pred_logits.shape[-1], threshold).expand_as(output.pred_logits)
        output.pred_logits = torch.logit(scores.double()).to(output.pred_logits.dtype)
        output.presence_logits = torch.full_like(output.presence_logits, 30.0)
        return output

    if key == "detr":
        model.class_labels_classifier.register_forward_hook(detr)
    elif key == "faster-rcnn":
        model.roi_heads.box_predictor.cls_score.register_forward_hook(faster_rcnn)
    else:
        model.register_forward_hook(sam3)


@pytest.fixture(scope="module")
def straddled() -> ModelManager:
    """One tiny manager whose DETR, Faster R-CNN and SAM 3 score around their own thresholds."""
    manager = ModelManager(weights="tiny", device="cpu")
    for key in ("detr", "faster-rcnn", "sam3"):
        with manager.use(key) as (adapter, _):
            straddle(adapter, key, get_spec(key).default_score_threshold)
    return manager


def kept_scores(image: np.ndarray, key: str, prediction, threshold: float | None) -> list[float]:
    panel = make_panel(image, Outcome(key, prediction=prediction), ViewOptions(score_threshold=threshold), False)
    return sorted(instance["score"] for instance in panel.result["instances"])


@pytest.mark.parametrize(("key", "params"), [("detr", {}), ("faster-rcnn", {}), ("sam3", {"text": "cat"})])
def test_a_view_keeps_exactly_what_scores_at_least_the_models_own_threshold(straddled, image, key, params):
    own = get_spec(key).default_score_threshold
    assert own in (0.5, 0.8, 0.3)  # DETR's, Faster R-CNN's and SAM 3's: not the tiny builds' floor 0
    prediction = Playground(straddled).predict(key, image, **params)
    real = np.array([label not in BACKGROUND_LABELS for label in prediction.labels])
    scores = prediction.scores[real]
    assert (scores >= own).any() and (scores < own).any(), scores  # the scores straddle the threshold
    assert ((scores >= own - 0.011) & (scores < own)).any() and ((scores >= own) & (scores < own + 0.011)).any()

    panel = make_panel(image, Outcome(key, prediction=prediction), ViewOptions(score_threshold=None), legend=False)
    assert panel.result["score_threshold"] == own
    kept = sorted(instance["score"] for instance in panel.result["instances"])
    assert kept == sorted(round(float(s), 4) for s in scores if s >= own)
    assert kept == kept_scores(image, key, prediction, own)  # the same as that value given for all
    # What is kept changes at the threshold: 0.02 lower keeps the scores just under it, 0.02 higher
    # drops those just over it.
    below, above = kept_scores(image, key, prediction, own - 0.02), kept_scores(image, key, prediction, own + 0.02)
    assert len(below) > len(kept) > len(above) > 0
    assert (
        set(present_labels([Outcome(key, prediction=prediction)], None))
        == {label for label, s in zip(prediction.labels, prediction.scores) if s >= own} - BACKGROUND_LABELS
    )


def test_predict_defaults_to_the_models_own_threshold(straddled, monkeypatch, tmp_path):
    from playground import cli

    monkeypatch.setattr(cli, "manager_from_args", lambda args: straddled)
    out = tmp_path / "detr.json"
    assert cli.main(["predict", "detr", str(ASTRONAUT), "--weights", "tiny", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["score_threshold"] == 0.5
    scores = [instance["score"] for instance in result["instances"]]
    assert scores and min(scores) >= 0.5
    assert sorted(scores) == sorted(round(0.5 + o, 4) for i, o in zip(range(10), OFFSETS * 3) if o > 0)

    assert (
        cli.main(["predict", "detr", str(ASTRONAUT), "--weights", "tiny", "--threshold", "0", "--json", str(out)]) == 0
    )
    result = json.loads(out.read_text())
    assert result["score_threshold"] == 0.0 and len(result["instances"]) == 10  # every query of the tiny DETR


def test_the_controls_map_to_one_threshold_or_each_models_own():
    from playground.ui.closed_set_tab import view_options
    from playground.ui.compare_tab import chosen_threshold
    from playground.ui.text_tab import text_params, text_view

    own = view_options(0.2, 0.5, 0.5, "", own=True)
    assert own.score_threshold is None and own.threshold_for("faster-rcnn") == 0.8 and own.threshold_for("sam") == 0.0
    assert view_options(0.2, 0.5, 0.5, "", own=False).threshold_for("faster-rcnn") == 0.2
    assert chosen_threshold(0.2, True) is None and chosen_threshold(0.2, False) == 0.2
    # The text tab: Grounded-SAM always at the box slider; SAM 3 and OWLv2 at their own until unticked.
    view = text_view(0.2, own=True)
    assert [view.threshold_for(k) for k in ("grounded-sam", "sam3", "owlv2-sam")] == [0.2, 0.3, 0.1]
    assert {text_view(0.2, own=False).threshold_for(k) for k in ("grounded-sam", "sam3", "owlv2-sam")} == {0.2}
    # The /text API: box_threshold None is each model's own; a value given applies to every model.
    assert text_params("grounded-sam", "cat", None, 0.25)["box_threshold"] == 0.35
    assert "box_threshold" not in text_params("owlv2-sam", "cat", None, 0.25)
    assert text_params("owlv2-sam", "cat", 0.5, 0.25)["box_threshold"] == 0.5


def test_a_link_restores_each_models_own_threshold_or_not():
    import gradio as gr

    from playground.ui.deep_links import TabControls, restore

    controls = TabControls("detection", gr.Image(), None, {"score": gr.Slider(0, 1)}, checkboxes={"own": gr.Checkbox()})
    problems: list[str] = []
    assert restore({"score": "0.3", "own": "false"}, controls, problems)[1:] == [0.3, False]
    assert restore({"own": "true"}, controls, problems)[-1] is True and not problems
    restore({"own": "maybe"}, controls, problems)
    assert problems == ["own=maybe is not true or false"]
    assert "own" in controls.names and math.isclose(controls.sliders["score"].minimum, 0)
