"""COCO category names, read in one place: torchvision's weights metadata (no hand-typed lists)."""

from __future__ import annotations

from functools import cache

from playground.core.types import BACKGROUND_LABELS


@cache
def coco_detection_labels() -> dict[int, str]:
    """COCO's 91 detection category ids -> names, from torchvision's weights metadata.

    The ids are those of the COCO annotation files ("N/A" marks ids COCO skips), the same
    indexing as DETR's ``id2label``; 0 is the background slot.
    """
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_V2_Weights

    categories = FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1.meta["categories"]
    return dict(enumerate(categories))


@cache
def coco_thing_names() -> frozenset[str]:
    """The 80 COCO object ("thing") category names: the detection categories less background and N/A.

    COCO panoptic's things are exactly COCO detection's 80 categories with the same names; its
    53 stuff classes ("sky-other-merged", "wall-brick", ...) come on top.
    """
    return frozenset(name for name in coco_detection_labels().values() if name not in BACKGROUND_LABELS)
