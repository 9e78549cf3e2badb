"""Label names taken from library metadata, for random-weight builds that have no checkpoint."""

from __future__ import annotations

from functools import cache


@cache
def coco_detection_labels() -> dict[int, str]:
    """COCO's 91 detection category ids -> names, from torchvision's weights metadata.

    The ids are those of the COCO annotation files ("N/A" marks ids COCO skips), the same
    indexing as DETR's ``id2label``; 0 is the background slot.
    """
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_V2_Weights

    categories = FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1.meta["categories"]
    return dict(enumerate(categories))
