"""COCO's own category ids, by name: detection's 80 things (ids 1-90) and panoptic's 53 stuff classes (92-200).

Models number their classes their own way: torchvision's detectors and DETR use COCO's ids already
(91 slots, "N/A" where COCO skips one), D-FINE counts the 80 things 0-79, and MaskFormer,
Mask2Former and EoMT count COCO panoptic's 133 classes 0-132. A COCO results file needs COCO's ids,
so `coco_category_ids` maps a model's label names to them.

The thing ids come from torchvision's weights metadata (`coco_detection_labels`). No installed
package lists the stuff ids, so they are written here once, from COCO panoptic's
``panoptic_coco_categories.json`` (cocodataset/panopticapi; the same table as detectron2's
``COCO_CATEGORIES`` in detectron2/data/datasets/builtin_meta.py).
"""

from __future__ import annotations

from functools import cache

from playground.core.labels import coco_detection_labels, coco_thing_names
from playground.core.types import BACKGROUND_LABELS

COCO_PANOPTIC_STUFF: dict[str, int] = {
    "banner": 92,
    "blanket": 93,
    "bridge": 95,
    "cardboard": 100,
    "counter": 107,
    "curtain": 109,
    "door-stuff": 112,
    "floor-wood": 118,
    "flower": 119,
    "fruit": 122,
    "gravel": 125,
    "house": 128,
    "light": 130,
    "mirror-stuff": 133,
    "net": 138,
    "pillow": 141,
    "platform": 144,
    "playingfield": 145,
    "railroad": 147,
    "river": 148,
    "road": 149,
    "roof": 151,
    "sand": 154,
    "sea": 155,
    "shelf": 156,
    "snow": 159,
    "stairs": 161,
    "tent": 166,
    "towel": 168,
    "wall-brick": 171,
    "wall-stone": 175,
    "wall-tile": 176,
    "wall-wood": 177,
    "water-other": 178,
    "window-blind": 180,
    "window-other": 181,
    "tree-merged": 184,
    "fence-merged": 185,
    "ceiling-merged": 186,
    "sky-other-merged": 187,
    "cabinet-merged": 188,
    "table-merged": 189,
    "floor-other-merged": 190,
    "pavement-merged": 191,
    "mountain-merged": 192,
    "grass-merged": 193,
    "dirt-merged": 194,
    "paper-merged": 195,
    "food-other-merged": 196,
    "building-other-merged": 197,
    "rock-merged": 198,
    "wall-other-merged": 199,
    "rug-merged": 200,
}
"""COCO panoptic's 53 stuff class names -> their category ids (panoptic_coco_categories.json)."""


@cache
def coco_ids_by_name() -> dict[str, int]:
    """Every COCO category name -> its id: the 80 things (detection ids 1-90) and the 53 stuff classes."""
    things = {name: index for index, name in coco_detection_labels().items() if name not in BACKGROUND_LABELS}
    return things | COCO_PANOPTIC_STUFF


def coco_category_ids(label_names: dict[int, str]) -> dict[int, int] | None:
    """A model's class id -> COCO category id, or None when its classes are not COCO's.

    A label set is COCO's when it names all 80 COCO things (torchvision's detectors, DETR, D-FINE,
    the 133-class panoptic models, and the open-vocabulary detectors given COCO's names); VOC's 21
    classes, U-Net's car, typed phrases and SAM's "object" are not. Ids that are COCO's already
    (every thing's id equals its COCO id) are kept as they are; otherwise each name maps to its
    COCO id, and names COCO lacks (background, "N/A", placeholders) map to nothing.
    """
    names = {int(i): name for i, name in label_names.items() if name not in BACKGROUND_LABELS}
    if not coco_thing_names() <= set(names.values()):
        return None
    ids = coco_ids_by_name()
    if all(ids[name] == i for i, name in names.items() if name in coco_thing_names()):
        return dict(zip(names, names))
    return {i: ids[name] for i, name in names.items() if name in ids}
