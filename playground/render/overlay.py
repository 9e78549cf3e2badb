"""Draw a `Prediction` on its image: masks, outlines, boxes and "label score" tags, and the entries
of the legend strip that `playground.render.legend` draws under it.

Semantic maps are painted one colour per class; instances get masks, boxes and tags. Panoptic
predictions (``is_thing`` set) paint "things" in one colour per instance with an outline and a
tag, and "stuff" in its class colour; their legend lists every segment with its area. Colours
follow the class id, so a class keeps its colour across models that share a label space.

Why masks are composited here and not by supervision's ``MaskAnnotator``: it paints every mask
by boolean-indexing the whole frame and sorts masks by their full-frame areas, so its time grows
as the number of masks times the frame's size: too slow, with many masks, for the 60 ms goal of a
re-draw on a slider move. Here each mask is painted only inside its tight bounding box (one row
scan and one band scan per mask: the floor is reading the masks once), as a palette slot into one
(H, W) uint8 map that semantic maps fill through a lookup table, and the blend is the annotator's
own (``cv2.addWeighted`` of the scene and its painted copy, kept where something was painted), so
the pixels match it. Boxes and tags stay with supervision's annotators (cheap: OpenCV draws them).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
import supervision as sv

from playground.core.types import BACKGROUND_LABELS, Prediction
from playground.render.legend import PALETTE, LegendEntry, add_legend

OUTLINE_PX = 2
"""Thickness of the outline drawn around each panoptic "thing"."""
SMART_TAGS_MAX = 30
"""Most tags moved apart by supervision's ``smart_position``: its spreading grows costly with many tags."""


@dataclass(frozen=True)
class MaskCrop:
    """One instance mask cut to its tight box.

    Attributes:
        index: position of the instance among the shown ones.
        y0, x0: top-left pixel of the box in the image.
        mask: (h, w) bool view of the mask inside the box.
        area: pixels in the mask.
    """

    index: int
    y0: int
    x0: int
    mask: np.ndarray
    area: int

    @property
    def region(self) -> tuple[slice, slice]:
        height, width = self.mask.shape
        return slice(self.y0, self.y0 + height), slice(self.x0, self.x0 + width)


def render(
    image: np.ndarray,
    prediction: Prediction,
    opacity: float = 0.5,
    hidden_labels: frozenset[str] = frozenset(),
    legend: bool = True,
    empty_text: str = "nothing found above the threshold",
) -> np.ndarray:
    """(H, W, 3) uint8 RGB with ``prediction`` drawn on it; a legend strip is added below.

    Args:
        image: (H, W, 3) uint8 RGB, the image the prediction was made on.
        prediction: already filtered by score; ``hidden_labels`` hides classes on top of that.
        opacity: mask opacity in [0, 1].
        legend: add the legend strip (the output is then taller than H).
        empty_text: what the legend says when nothing is drawn.
    """
    rgb, entries = render_with_legend(image, prediction, opacity, hidden_labels)
    return add_legend(rgb, entries, empty_text) if legend else rgb


def render_with_legend(
    image: np.ndarray,
    prediction: Prediction,
    opacity: float = 0.5,
    hidden_labels: frozenset[str] = frozenset(),
    shown: np.ndarray | None = None,
    mask_threshold: float | None = None,
    crops: list[MaskCrop] | None = None,
) -> tuple[np.ndarray, list[LegendEntry]]:
    """(H, W, 3) uint8 RGB with ``prediction`` drawn on it, and its legend entries (for a UI to
    show as text that follows the page's light or dark theme, instead of a baked strip).

    ``shown``: indices of the instances to draw (default: those not in ``hidden_labels``), and
    ``mask_threshold``: draw masks binarised at it from the soft masks (see `mask_crops`); together
    they draw a stored prediction at new thresholds without copying its masks. ``crops``: the
    `mask_crops` of exactly these, when the caller has them already.
    """
    scene = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # supervision draws with OpenCV, in BGR
    slots = np.zeros(image.shape[:2], np.uint8)  # palette slot + 1 per pixel, 0 where nothing is drawn
    entries = paint_semantic(slots, prediction, hidden_labels)
    if shown is None:
        shown = np.flatnonzero([name not in hidden_labels for name in prediction.labels])
    colours = instance_colours(prediction, shown)
    crops = mask_crops(prediction, shown, mask_threshold) if crops is None else crops
    paint_masks(slots, crops, colours)
    scene = blend(scene, slots, opacity)
    panoptic = prediction.is_thing is not None
    if panoptic:
        things = prediction.is_thing[shown]
        draw_outlines(scene, [crop for crop in crops if things[crop.index]], colours)
    scene = annotate_instances(scene, prediction, shown, colours, panoptic)
    if panoptic:
        entries += segment_entries(prediction, shown, colours, crops)
    else:
        entries += class_entries(prediction, shown)
    return cv2.cvtColor(scene, cv2.COLOR_BGR2RGB), entries


def paint_semantic(slots: np.ndarray, prediction: Prediction, hidden_labels: frozenset[str]) -> list[LegendEntry]:
    """Write the palette slot of each shown class of the semantic map (ids >= 0) into ``slots`` (H, W).

    Returns the legend entries of the painted classes, largest area first.
    """
    seg = prediction.semantic_map
    if seg is None:
        return []
    counts = np.bincount(seg.ravel())
    ids = [int(c) for c in np.argsort(-counts) if counts[c]]
    drawn = [c for c in ids if prediction.label_name(c) not in BACKGROUND_LABELS | hidden_labels]
    lut = np.zeros(len(counts), np.uint8)
    lut[drawn] = slot(np.array(drawn, np.int64))
    np.take(lut, seg, out=slots)
    return [(c, f"{prediction.label_name(c)} {100 * counts[c] / seg.size:.1f}%") for c in drawn]


def slot(colours: np.ndarray | int) -> np.ndarray | int:
    """Palette index -> the 1-based slot `blend` looks up (0 means "not drawn")."""
    return colours % len(PALETTE.colors) + 1


def blend(scene: np.ndarray, slots: np.ndarray, opacity: float) -> np.ndarray:
    """``scene`` (H, W, 3 BGR) with each pixel's slot colour laid over it at ``opacity``.

    The same blend as supervision's MaskAnnotator: ``addWeighted`` of the scene and its painted copy.
    """
    drawn = (slots > 0).view(np.uint8)
    if not drawn.any():
        return scene
    colours = cv2.LUT(cv2.cvtColor(slots, cv2.COLOR_GRAY2BGR), _slot_table())
    painted = cv2.addWeighted(scene, 1.0 - opacity, colours, opacity, 0.0)
    return cv2.copyTo(painted, drawn, scene)


@cache
def _slot_table() -> np.ndarray:
    """(256, 1, 3) uint8 BGR colour of each slot, for ``cv2.LUT`` (slot 0 and unused slots: black)."""
    table = np.zeros((256, 1, 3), np.uint8)
    table[1 : len(PALETTE.colors) + 1, 0] = [colour.as_bgr() for colour in PALETTE.colors]
    return table


def instance_colours(prediction: Prediction, shown: np.ndarray) -> np.ndarray:
    """(len(shown),) palette index per shown instance: its class id, or for panoptic "things" one
    colour per instance, drawn from the palette colours no shown "stuff" class uses."""
    colours = prediction.class_ids[shown].copy()
    if prediction.is_thing is not None:
        things = prediction.is_thing[shown]
        taken = set((colours[~things] % len(PALETTE.colors)).tolist())
        free = [i for i in range(len(PALETTE.colors)) if i not in taken] or list(range(len(PALETTE.colors)))
        colours[things] = np.resize(free, int(things.sum()))
    return colours


def mask_crops(prediction: Prediction, shown: np.ndarray, mask_threshold: float | None = None) -> list[MaskCrop]:
    """The non-empty masks of ``prediction``'s instances ``shown`` (indices), each cut to its tight
    box, largest first; a crop's ``index`` is its position in ``shown``.

    With a ``mask_threshold`` in (0, 1] other than the prediction's own, and soft masks, each mask is
    binarised at it from its soft mask. Only each mask's extent (`Prediction.mask_extents`) is read,
    and nothing image-sized is allocated: on a re-draw at new thresholds, that is most of the cost.
    """
    probs = prediction.mask_probs
    rethreshold = probs is not None and mask_threshold is not None and mask_threshold != prediction.mask_threshold
    if not rethreshold and prediction.masks is None:
        return []
    if rethreshold and mask_threshold <= 0:  # every pixel passes: no extent to stay inside
        return mask_crops(prediction.with_mask_threshold(mask_threshold), shown)
    extents = prediction.mask_extents()
    crops = []
    for index, original in enumerate(shown.tolist()):
        y0, x0, y1, x1 = extents[original].tolist()
        if rethreshold:
            window = probs[original, y0:y1, x0:x1] >= mask_threshold * 255
        else:
            window = prediction.masks[original, y0:y1, x0:x1]
        rows = np.flatnonzero(window.any(axis=1))
        if not len(rows):
            continue
        band = window[rows[0] : rows[-1] + 1]
        cols = np.flatnonzero(band.any(axis=0))
        crop = band[:, cols[0] : cols[-1] + 1]
        crops.append(MaskCrop(index, y0 + int(rows[0]), x0 + int(cols[0]), crop, int(np.count_nonzero(crop))))
    return sorted(crops, key=lambda crop: -crop.area)


def crop_areas(crops: list[MaskCrop], count: int) -> np.ndarray:
    """(count,) int64 mask pixels per shown instance, from its crop (0 where it has none)."""
    areas = np.zeros(count, np.int64)
    for crop in crops:
        areas[crop.index] = crop.area
    return areas


def paint_masks(slots: np.ndarray, crops: list[MaskCrop], colours: np.ndarray) -> None:
    """Write each crop's palette slot into ``slots`` (H, W) where its mask is set; later crops on top."""
    for crop in crops:
        np.copyto(slots[crop.region], slot(int(colours[crop.index])), where=crop.mask)


def draw_outlines(scene: np.ndarray, crops: list[MaskCrop], colours: np.ndarray) -> None:
    """Draw the outer contour of each crop's mask on ``scene`` (H, W, 3 BGR) in its colour."""
    for crop in crops:
        contours, _ = cv2.findContours(
            crop.mask.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(crop.x0, crop.y0)
        )
        cv2.drawContours(scene, contours, -1, PALETTE.by_idx(int(colours[crop.index])).as_bgr(), OUTLINE_PX)


def to_detections(prediction: Prediction, shown: np.ndarray | None = None, with_masks: bool = True) -> sv.Detections:
    """The instances at indices ``shown`` (default: all) as supervision ``Detections``: the one
    conversion, so boxes keep `Prediction`'s convention (XYXY pixels, right and bottom inclusive)."""
    index = slice(None) if shown is None else shown
    masks = prediction.masks[index] if with_masks and prediction.masks is not None else None
    return sv.Detections(
        xyxy=prediction.boxes[index],
        mask=masks,
        confidence=prediction.scores[index],
        class_id=prediction.class_ids[index],
    )


def annotate_instances(
    scene: np.ndarray, prediction: Prediction, shown: np.ndarray, colours: np.ndarray, panoptic: bool
) -> np.ndarray:
    """Boxes and "label score" tags with supervision; panoptic: tags on things only, no boxes."""
    if panoptic:
        things = prediction.is_thing[shown]
        shown, colours = shown[things], colours[things]
    if not len(shown):
        return scene
    detections = to_detections(prediction, shown, with_masks=False)
    if not panoptic:
        scene = sv.BoxAnnotator(color=PALETTE, thickness=2).annotate(scene, detections, custom_color_lookup=colours)
    tags = [f"{prediction.label_name(int(c))} {s:.2f}" for c, s in zip(detections.class_id, detections.confidence)]
    tagger = sv.LabelAnnotator(
        color=PALETTE, text_scale=0.45, text_padding=4, smart_position=len(tags) <= SMART_TAGS_MAX
    )
    return tagger.annotate(scene, detections, labels=tags, custom_color_lookup=colours)


def class_entries(prediction: Prediction, shown: np.ndarray) -> list[LegendEntry]:
    """``"name xN"`` per class among the shown instances, in order of first appearance."""
    ids, first, counts = np.unique(prediction.class_ids[shown], return_index=True, return_counts=True)
    return [(int(ids[i]), f"{prediction.label_name(int(ids[i]))} x{counts[i]}") for i in np.argsort(first)]


def segment_entries(
    prediction: Prediction, shown: np.ndarray, colours: np.ndarray, crops: list[MaskCrop]
) -> list[LegendEntry]:
    """``"name 12.3%"`` per panoptic segment (its share of the image), largest first."""
    total = prediction.image_size[0] * prediction.image_size[1]
    return [
        (
            int(colours[crop.index]),
            f"{prediction.label_name(int(prediction.class_ids[shown[crop.index]]))} {100 * crop.area / total:.1f}%",
        )
        for crop in crops
    ]
