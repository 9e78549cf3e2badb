"""Each model's own score threshold: the value a user of its checkpoint expects, and where it comes from.

Every ``ModelSpec`` carries ``default_score_threshold`` and ``threshold_source`` from this table (the
registry fills them in). A tab opens with each model at its own threshold, ``predict --threshold``
defaults to it, and an API call that gives no score threshold uses it; one value given explicitly
applies to every model instead.

What a score means differs: a class probability (detectors, mask classifiers), a box-text match
(open-vocabulary detectors), a predicted IoU that ranks candidates (SAM), or nothing at all (a
semantic class map, whose pixels each take their most likely class). Where the score does not
filter, the threshold is 0.0: it keeps every candidate.

Values were read from the installed libraries (transformers 5.24, torchvision 0.29), except where a
model's own README is named. tests/test_thresholds.py checks the library defaults named here.
"""

from __future__ import annotations

CLASS_MAP = "does not apply: a per-pixel class map (each pixel's most likely class), no instance scores; 0.0"
PREDICTED_IOU = (
    "keeps every candidate: scores are predicted IoUs that rank the masks of one prompt, and the "
    "processor's post_process_masks applies no score threshold"
)
TORCHVISION_FLOOR = "its builder's {kwarg}={value} is the COCO-evaluation floor (keeping up to {kept} weak boxes)"

SCORE_THRESHOLDS: dict[str, tuple[float, str]] = {
    "fcn": (0.0, CLASS_MAP),
    "unet": (0.0, CLASS_MAP),
    "retinanet": (
        0.5,
        "the usual display threshold, detectron2's demo --confidence-threshold default 0.5 (which it also sets "
        "for its RetinaNet); torchvision's gallery draws no RetinaNet, and "
        + TORCHVISION_FLOOR.format(kwarg="score_thresh", value=0.05, kept=300),
    ),
    "faster-rcnn": (
        0.8,
        "torchvision's visualisation gallery (plot_visualization_utils) draws Faster R-CNN boxes scoring > 0.8; "
        + TORCHVISION_FLOOR.format(kwarg="box_score_thresh", value=0.05, kept=100),
    ),
    "mask-rcnn": (
        0.75,
        "torchvision's visualisation gallery (plot_visualization_utils) draws Mask R-CNN masks scoring > 0.75; "
        + TORCHVISION_FLOOR.format(kwarg="box_score_thresh", value=0.05, kept=100),
    ),
    "detr": (0.5, "transformers DetrImageProcessor.post_process_object_detection default 0.5"),
    "detr-panoptic": (
        0.85,
        "the DETR authors' PostProcessPanoptic threshold 0.85, at which its segments form (every segment passes it)",
    ),
    "maskformer": (
        0.5,
        "transformers MaskFormerImageProcessor.post_process_instance_segmentation default 0.5; panoptic segments "
        "already form above MaskFormer's own 0.8 (OBJECT_MASK_THRESHOLD), so all of them pass",
    ),
    "sam": (0.0, PREDICTED_IOU),
    "grounding-dino": (
        0.35,
        "Grounding DINO's README: box threshold 0.35, text threshold 0.25 (transformers' "
        "post_process_grounded_object_detection defaults to 0.25)",
    ),
    "grounded-sam": (0.35, "Grounding DINO's README box threshold 0.35 (text 0.25), on the boxes SAM then masks"),
    "ssdlite": (
        0.5,
        "the usual display threshold, detectron2's demo --confidence-threshold default 0.5; torchvision's "
        "gallery draws no SSDLite, and " + TORCHVISION_FLOOR.format(kwarg="score_thresh", value=0.001, kept=300),
    ),
    "d-fine": (
        0.5,
        "transformers RTDetrImageProcessor.post_process_object_detection default 0.5 (the processor of D-FINE's "
        "checkpoints)",
    ),
    "mask2former": (
        0.5,
        "transformers Mask2FormerImageProcessor.post_process_instance_segmentation default 0.5; panoptic segments "
        "already form above 0.8, so all of them pass",
    ),
    "eomt": (
        0.8,
        "transformers EomtImageProcessor.post_process_panoptic_segmentation default 0.8, at which its segments form",
    ),
    "sam2": (0.0, PREDICTED_IOU),
    "owlv2": (
        0.1,
        "transformers Owlv2Processor.post_process_grounded_object_detection default 0.1 (also "
        "Owlv2ImageProcessor.post_process_object_detection's)",
    ),
    "owlv2-sam": (0.1, "OWLv2's post-processing default 0.1, on the boxes SAM then masks"),
    "sam3": (0.3, "transformers Sam3Processor.post_process_instance_segmentation default 0.3 (mask threshold 0.5)"),
    "sam2-video": (0.0, "does not apply: it tracks the objects you prompt, each kept on every frame; 0.0"),
    "sam3-video": (
        0.5,
        "transformers Sam3VideoConfig.score_threshold_detection default 0.5, applied by its tracker (a new "
        "object needs new_det_thresh 0.7)",
    ),
    "grounded-sam2": (0.35, "Grounding DINO's README box threshold 0.35, on the prompt frame's boxes"),
    "panoptic-sam2": (
        0.0,
        "does not apply: every MaskFormer panoptic segment (formed above 0.8) is tracked; 0.0",
    ),
}
"""Registry key -> (default score threshold in [0, 1], where the value comes from)."""


def own_threshold(key: str) -> dict[str, float | str]:
    """The `ModelSpec` fields for ``key``'s own threshold; a KeyError names a model missing here."""
    try:
        value, source = SCORE_THRESHOLDS[key]
    except KeyError:
        raise KeyError(f"{key}: no entry in playground.core.thresholds.SCORE_THRESHOLDS") from None
    return {"default_score_threshold": value, "threshold_source": source}
