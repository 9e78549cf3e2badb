"""Ground truth for one image: a COCO instances JSON, a label-map PNG, or boxes drawn in the UI.

Every label is compared by its canonical name (`canonical_label`): lower case, with Pascal VOC's
names mapped to COCO's, so FCN's "motorbike" matches a COCO "motorcycle". Open-vocabulary labels (the
user's phrases) match by exact lower-case name. Anything a user can fix raises `BadTruthError`
with one line.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from playground.core.errors import BadPromptError
from playground.core.types import BACKGROUND_LABELS

VOC_TO_COCO = {
    "aeroplane": "airplane",
    "motorbike": "motorcycle",
    "sofa": "couch",
    "tvmonitor": "tv",
    "diningtable": "dining table",
    "pottedplant": "potted plant",
}
"""Pascal VOC class names (FCN's 21 classes) whose COCO name differs; the other 14 are the same."""
BACKGROUND = "background"


class BadTruthError(BadPromptError):
    """Ground truth that cannot be used: malformed, empty, or for another image."""


def canonical_label(name: str) -> str:
    """The name labels are matched by: lower case, VOC -> COCO, every background name -> "background"."""
    if name in BACKGROUND_LABELS:
        return BACKGROUND
    lowered = " ".join(name.lower().split())
    return VOC_TO_COCO.get(lowered, lowered)


@dataclass(frozen=True)
class TruthObject:
    """One annotated object: canonical ``label``, ``box`` XYXY pixels, optional (H, W) bool ``mask``."""

    label: str
    box: tuple[float, float, float, float]
    mask: np.ndarray | None = None
    crowd: bool = False


@dataclass(frozen=True)
class GroundTruth:
    """What is really in one image.

    Attributes:
        image_size: (height, width) in pixels.
        objects: annotated objects (COCO JSON or drawn boxes); empty for a label map.
        label_map: (H, W) int class ids from a PNG, in the scored model's label space, or None.
        source: where it came from, for messages.
    """

    image_size: tuple[int, int]
    objects: tuple[TruthObject, ...] = ()
    label_map: np.ndarray | None = None
    source: str = ""

    @property
    def has_masks(self) -> bool:
        return bool(self.objects) and all(obj.mask is not None for obj in self.objects)

    def semantic(self, label_names: dict[int, str]) -> tuple[np.ndarray, dict[int, str]]:
        """(H, W) int32 class ids and id -> canonical name: the label map read with ``label_names``
        (the model's), or the objects' masks (boxes where there are none) painted largest first."""
        if self.label_map is not None:
            ids = np.unique(self.label_map).tolist()
            return self.label_map.astype(np.int32), {i: canonical_label(label_names.get(i, f"class {i}")) for i in ids}
        names = [BACKGROUND, *sorted({obj.label for obj in self.objects} - {BACKGROUND})]
        painted = np.zeros(self.image_size, np.int32)
        for obj in sorted(self.objects, key=lambda o: -int(object_mask(o, self.image_size).sum())):
            painted[object_mask(obj, self.image_size)] = names.index(obj.label)
        return painted, dict(enumerate(names))


def object_mask(obj: TruthObject, image_size: tuple[int, int]) -> np.ndarray:
    """The object's (H, W) bool mask, or its box filled when it has none."""
    if obj.mask is not None:
        return obj.mask
    mask = np.zeros(image_size, bool)
    x1, y1, x2, y2 = (round(v) for v in obj.box)
    mask[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = True
    return mask


def load_truth(
    source: str | os.PathLike | bytes | dict,
    image_size: tuple[int, int] | None = None,
    file_name: str = "",
    image_id: int | None = None,
) -> GroundTruth:
    """A COCO instances JSON (path, bytes or dict) or a label-map PNG (path or bytes), checked
    against the image's ``image_size`` (height, width); ``image_id`` or else ``file_name`` picks the
    image in a COCO file (see `parse_coco`)."""
    name = Path(source).name if isinstance(source, (str, os.PathLike)) else "ground truth"
    if isinstance(source, dict):
        return parse_coco(source, image_size, file_name, name, image_id)
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as error:
        raise BadTruthError(f"{name}: cannot read it ({error.strerror}).") from None
    if raw.startswith(b"\x89PNG"):
        return load_label_map(raw, image_size, name)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadTruthError(f"{name} is neither a PNG label map nor valid JSON ({error}).") from None
    return parse_coco(data, image_size, file_name, name, image_id)


def load_label_map(raw: bytes, image_size: tuple[int, int] | None, name: str = "label map") -> GroundTruth:
    """A PNG of class ids (8- or 16-bit, one channel; an RGB PNG must be grey: R = G = B)."""
    try:
        ids = np.asarray(Image.open(io.BytesIO(raw)))
    except (UnidentifiedImageError, OSError) as error:
        raise BadTruthError(f"{name}: not a readable PNG ({error}).") from None
    if ids.ndim == 3:
        if not (np.array_equal(ids[..., 0], ids[..., 1]) and np.array_equal(ids[..., 0], ids[..., 2])):
            raise BadTruthError(f"{name}: a label map needs one class id per pixel, not colours.")
        ids = ids[..., 0]
    check_size(ids.shape[:2], image_size, name)
    return GroundTruth(ids.shape[:2], label_map=ids.astype(np.int32), source=name)


def check_size(found: tuple[int, int], image_size: tuple[int, int] | None, name: str) -> None:
    if image_size is not None and tuple(found) != tuple(image_size):
        raise BadTruthError(
            f"{name} is for a {found[1]}x{found[0]} image; this image is {image_size[1]}x{image_size[0]}."
        )


def parse_coco(
    data: Any,
    image_size: tuple[int, int] | None,
    file_name: str = "",
    name: str = "ground truth",
    image_id: int | None = None,
) -> GroundTruth:
    """One image's objects from a COCO instances dict (boxes, polygons or RLE, decoded by pycocotools).

    The image is the one with ``image_id``, else the one named ``file_name``, else the only one.
    """
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations")):
        raise BadTruthError(f"{name}: expected a COCO instances file with 'images' and 'annotations' lists.")
    categories = {c.get("id"): c.get("name") for c in data.get("categories") or [] if isinstance(c, dict)}
    image = pick_image(data["images"], file_name, name, image_id)
    height, width = int(image["height"]), int(image["width"])
    check_size((height, width), image_size, name)
    objects = []
    for ann in data["annotations"]:
        if not isinstance(ann, dict) or ann.get("image_id") != image["id"]:
            continue
        label = categories.get(ann.get("category_id"))
        if not label:
            raise BadTruthError(
                f"{name}: annotation {ann.get('id')} has category id {ann.get('category_id')}, "
                "which 'categories' does not name."
            )
        mask = decode_segmentation(ann.get("segmentation"), (height, width), f"{name}, annotation {ann.get('id')}")
        objects.append(TruthObject(canonical_label(label), coco_box(ann, mask, name), mask, bool(ann.get("iscrowd"))))
    if not objects:
        raise BadTruthError(f"{name} holds no annotations for image {image['id']} ({image.get('file_name', '')}).")
    return GroundTruth((height, width), tuple(objects), source=name)


def pick_image(images: list, file_name: str, name: str, image_id: int | None = None) -> dict:
    usable = [i for i in images if isinstance(i, dict) and {"id", "width", "height"} <= set(i)]
    if not usable:
        raise BadTruthError(f"{name}: 'images' lists no image with id, width and height.")
    if image_id is not None:
        chosen = [i for i in usable if i["id"] == image_id]
        if not chosen:
            raise BadTruthError(
                f"{name} has no image id {image_id} (it has {', '.join(str(i['id']) for i in usable)})."
            )
        return chosen[0]
    if len(usable) == 1:
        return usable[0]
    stem = Path(file_name).stem
    named = [i for i in usable if stem and Path(str(i.get("file_name", ""))).stem == stem]
    if len(named) != 1:
        raise BadTruthError(f"{name} holds {len(usable)} images and none is named {file_name or '(no name)'!r}.")
    return named[0]


def decode_segmentation(segmentation: Any, size: tuple[int, int], where: str) -> np.ndarray | None:
    """(H, W) bool from COCO polygons or RLE (compressed or not), or None when there is none."""
    if not segmentation:
        return None
    from pycocotools import mask as mask_utils

    height, width = size
    try:
        if isinstance(segmentation, list):
            if any(len(polygon) < 6 or len(polygon) % 2 for polygon in segmentation):
                raise ValueError("a polygon needs at least three x, y pairs")
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
        else:
            if list(segmentation.get("size", [])) != [height, width]:
                raise ValueError(f"RLE size {segmentation.get('size')} is not the image's [{height}, {width}]")
            rle = (
                mask_utils.frPyObjects(segmentation, height, width)
                if isinstance(segmentation["counts"], list)
                else {
                    "size": segmentation["size"],
                    "counts": segmentation["counts"].encode()
                    if isinstance(segmentation["counts"], str)
                    else segmentation["counts"],
                }
            )
        return mask_utils.decode(rle).astype(bool)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise BadTruthError(f"{where}: bad segmentation ({error}).") from None


def coco_box(ann: dict, mask: np.ndarray | None, name: str) -> tuple[float, float, float, float]:
    """XYXY pixels from the annotation's XYWH ``bbox``, else from its mask."""
    bbox = ann.get("bbox")
    if isinstance(bbox, list) and len(bbox) == 4:
        x, y, w, h = (float(v) for v in bbox)
        return (x, y, x + w, y + h)
    if mask is None or not mask.any():
        raise BadTruthError(f"{name}: annotation {ann.get('id')} has neither a bbox nor a segmentation.")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


def from_boxes(boxes: list[tuple[str, float, float, float, float]], image_size: tuple[int, int]) -> GroundTruth:
    """Truth from (label, x1, y1, x2, y2) boxes drawn on the image (no masks)."""
    if not boxes:
        raise BadTruthError("Draw at least one box (two clicks) with a label.")
    objects = []
    for label, x1, y1, x2, y2 in boxes:
        if not label.strip():
            raise BadTruthError("Every drawn box needs a label, e.g. 'person'.")
        objects.append(TruthObject(canonical_label(label), (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))))
    return GroundTruth(image_size, tuple(objects), source="drawn boxes")
