"""Segment Anything (transformers ``SamModel``): a heavy ViT image encoder, run once per image,
and a light prompt encoder + mask decoder, run per prompt.

Params (image pixels; tuples, so results cache), one mode per call:

- ``points=((x, y, label), ...)`` (label 1 foreground, 0 background; ``(x, y)`` is foreground)
  and/or ``box=(x1, y1, x2, y2)``: SAM's 3 candidate masks, best predicted IoU first;
- ``boxes=((x1, y1, x2, y2), ...)``: one mask per box, in the given order (Grounded-SAM);
- ``everything=True``: automatic mask generation from a ``points_per_side`` grid, decoded
  ``points_per_batch`` points at a time, filtered by ``pred_iou_thresh`` and
  ``stability_score_thresh``, then box NMS at ``nms_thresh``, with the image processor's own
  ``generate_crop_boxes``, ``filter_masks`` and ``post_process_for_mask_generation`` (the
  ``mask-generation`` pipeline's steps, one crop layer, on our cached embedding).

The image embedding ((1, 256, 64, 64) for the real models) lives in an `EmbeddingCache` on the
adapter, keyed by (image digest, model, checkpoint, weights), so a second prompt on the same
image, from the prompt tab or Grounded-SAM, runs only the prompt encoder and mask decoder, and
evicting SAM drops its embeddings. ``meta["embedding"]`` says "image encoded in X s" or "cached".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import supervision as sv
import torch
from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

from models.base import Adapter
from playground.embeddings import MB, EmbeddingCache, Lookup
from playground.errors import BadPromptError
from playground.images import image_digest
from playground.registry import ModelSpec
from playground.types import Prediction, WeightsMode
from playground.weights import hf_from_pretrained

CHECKPOINTS: dict[str, dict[str, Any]] = {
    "facebook/sam-vit-base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12},
    "facebook/sam-vit-large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16},
    "facebook/sam-vit-huge": {"hidden_size": 1280, "num_hidden_layers": 32, "num_attention_heads": 16},
}
"""Hub ids a ``--checkpoint sam=ID`` may name, with their vision encoder's layout (random builds)."""
TINY_SIZE = 256
"""Input side (pixels) of the tiny test build; the real models use 1024."""
MASK_CHUNK = 16
"""Masks upsampled to image size at once: bounds the (chunk, 1024, 1024) float intermediate."""
LABEL_NAMES = {0: "object"}

Mode = Literal["prompt", "boxes", "everything"]
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Everything:
    """Settings of automatic mask generation (the defaults are SAM's own)."""

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    nms_thresh: float = 0.7


@dataclass(frozen=True)
class SamInputs:
    """A validated prompt in image pixels, and the embedding cache key of its image.

    Attributes:
        points: (n, 2) float32 x, y; labels: (n,) int64 1/0 (empty without points).
        boxes: (b, 4) float32 XYXY (one box for ``prompt`` mode, any number for ``boxes``).
    """

    key: tuple[str, ...]
    image: np.ndarray
    mode: Mode
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    everything: Everything = field(default_factory=Everything)


@dataclass
class SamOutputs:
    """Decoder outputs: ``low_res`` (N, 256, 256) mask logits with ``scores`` (N,) predicted IoU,
    or, for ``everything``, final ``masks`` (N, H, W) bool with ``scores`` and ``boxes`` (N, 4)."""

    lookup: Lookup[dict[str, torch.Tensor]]
    mode: Mode
    scores: torch.Tensor
    low_res: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    boxes: torch.Tensor | None = None


class SAMAdapter(Adapter):
    """``facebook/sam-vit-base`` (or ``-large`` / ``-huge`` via ``--checkpoint sam=ID``)."""

    def __init__(
        self, spec: ModelSpec, weights: WeightsMode, device: torch.device, checkpoint: str | None = None
    ) -> None:
        super().__init__(spec, weights, device, checkpoint)
        self.embeddings: EmbeddingCache[dict[str, torch.Tensor]] = EmbeddingCache(max_items=16, max_bytes=256 * MB)

    def build(self) -> torch.nn.Module:
        self.label_names = LABEL_NAMES
        source = self.checkpoint or self.spec.checkpoint
        if self.weights == "pretrained":
            load = {"repo_id": source} if source in CHECKPOINTS else {"local_path": source}
            self.processor = hf_from_pretrained(self.spec, SamProcessor.from_pretrained, **load)
            return hf_from_pretrained(self.spec, SamModel.from_pretrained, **load)
        if self.weights == "tiny":
            size = {"longest_edge": TINY_SIZE}
            pad = {"height": TINY_SIZE, "width": TINY_SIZE}
            self.processor = SamProcessor(SamImageProcessor(size=size, pad_size=pad))
            return SamModel(tiny_sam_config())
        self.processor = SamProcessor(SamImageProcessor())
        layout = CHECKPOINTS.get(source, CHECKPOINTS[self.spec.checkpoint])
        depth = layout["num_hidden_layers"]
        global_attn = list(range(depth // 4 - 1, depth, depth // 4))  # SAM's 4 global-attention blocks
        return SamModel(SamConfig(vision_config={**layout, "global_attn_indexes": global_attn}))

    def unload(self) -> None:
        """Drop the model and every embedding it made."""
        super().unload()
        self.embeddings.clear()

    @property
    def nbytes(self) -> int:
        """Model weights plus cached image embeddings."""
        return super().nbytes + self.embeddings.nbytes

    # -- inference ---------------------------------------------------------------------------

    def preprocess(
        self,
        image: np.ndarray,
        points: Any = None,
        box: Any = None,
        boxes: Any = None,
        everything: bool = False,
        points_per_side: int = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        nms_thresh: float = 0.7,
        **params: Any,
    ) -> SamInputs:
        """Validate the prompt against the (H, W) of ``image``; `BadPromptError` names what is wrong."""
        height, width = image.shape[:2]
        key = (image_digest(image), self.spec.key, self.checkpoint or self.spec.checkpoint, self.weights)
        if everything:
            if points or box or boxes:
                raise BadPromptError("Segment everything takes no points or boxes: clear them first.")
            settings = Everything(
                points_per_side, points_per_batch, pred_iou_thresh, stability_score_thresh, nms_thresh
            )
            check_everything(settings)
            return SamInputs(key, image, "everything", everything=settings)
        if boxes is not None:
            if points or box:
                raise BadPromptError("boxes= cannot be combined with points or box.")
            if not isinstance(boxes, (tuple, list)) or not boxes:
                raise BadPromptError("boxes: expected one or more (x1, y1, x2, y2) boxes.")
            checked = np.array([check_box(b, width, height) for b in boxes], np.float32)
            return SamInputs(key, image, "boxes", boxes=checked)
        if points is not None and not isinstance(points, (tuple, list)):
            raise BadPromptError("points: expected ((x, y, label), ...) with label 1 (foreground) or 0 (background).")
        if not points and box is None:
            raise BadPromptError("SAM needs a prompt: click at least one point or draw a box.")
        checked = [check_point(p, width, height) for p in points or ()]
        box_list = [check_box(box, width, height)] if box is not None else []
        return SamInputs(
            key,
            image,
            "prompt",
            points=np.array([p[:2] for p in checked], np.float32).reshape(-1, 2),
            labels=np.array([p[2] for p in checked], np.int64),
            boxes=np.array(box_list, np.float32).reshape(-1, 4),
        )

    def forward(self, inputs: SamInputs) -> SamOutputs:
        """Image embedding (cached, or encoded now), then the prompt encoder and mask decoder."""
        lookup = self.embeddings.get_or_compute(inputs.key, lambda: self._encode(inputs.image))
        if inputs.mode == "everything":
            return self._everything(lookup, inputs)
        embedding = lookup.value["image_embeddings"]
        scale = self._model_scale(lookup, inputs.image)
        if inputs.mode == "boxes":
            chunks = []
            for start in range(0, len(inputs.boxes), MASK_CHUNK):
                boxes = torch.from_numpy(inputs.boxes[start : start + MASK_CHUNK] * np.tile(scale, 2))
                out = self.model(
                    image_embeddings=embedding, input_boxes=boxes[None].to(self.device), multimask_output=False
                )
                chunks.append((out.pred_masks[0, :, 0], out.iou_scores[0, :, 0]))
            return SamOutputs(
                lookup, "boxes", torch.cat([s for _, s in chunks]), low_res=torch.cat([m for m, _ in chunks])
            )
        prompt: dict[str, torch.Tensor] = {}
        if len(inputs.points):
            prompt["input_points"] = torch.from_numpy(inputs.points * scale)[None, None].to(self.device)
            prompt["input_labels"] = torch.from_numpy(inputs.labels)[None, None].to(self.device)
        if len(inputs.boxes):
            prompt["input_boxes"] = torch.from_numpy(inputs.boxes * np.tile(scale, 2))[None].to(self.device)
        out = self.model(image_embeddings=embedding, multimask_output=True, **prompt)
        return SamOutputs(lookup, "prompt", out.iou_scores[0, 0], low_res=out.pred_masks[0, 0])

    def postprocess(self, outputs: SamOutputs, image: np.ndarray, **params: Any) -> Prediction:
        """Masks at the image's size (``post_process_masks``), their predicted IoU, boxes from masks.

        ``prompt`` mode orders the 3 candidates best first; ``boxes`` keeps the boxes' order.
        """
        if outputs.mode == "everything":
            masks = outputs.masks.cpu().numpy()
            prediction = self.new_prediction(
                image,
                "prompt",
                boxes=outputs.boxes.float().cpu().numpy(),
                scores=outputs.scores.float().clamp(0, 1).cpu().numpy(),
                class_ids=np.zeros(len(masks), np.int64),
                masks=masks,
            )
        else:
            scores, logits = outputs.scores, self._upscale(outputs.low_res, outputs.lookup, image)
            if outputs.mode == "prompt":
                order = scores.argsort(descending=True)
                scores, logits = scores[order], logits[order]
            masks = (logits > 0).cpu().numpy()
            prediction = self.new_prediction(
                image,
                "prompt",
                boxes=sv.mask_to_xyxy(masks),
                scores=scores.float().clamp(0, 1).cpu().numpy(),
                class_ids=np.zeros(len(masks), np.int64),
                masks=masks,
                mask_probs=(logits.sigmoid() * 255).round().to(torch.uint8).cpu().numpy(),
            )
        lookup = outputs.lookup
        prediction.meta.update(
            mode=outputs.mode,
            embedding=lookup.describe("image encoded"),
            embedding_cached=not lookup.computed,
            encode_ms=lookup.seconds * 1000,
        )
        return prediction

    # -- helpers -----------------------------------------------------------------------------

    def _encode(self, image: np.ndarray) -> dict[str, torch.Tensor]:
        """The vision encoder on the processed image: embeddings (1, C, h, w) and the resized size."""
        processed = self.processor(images=image, return_tensors="pt")
        embeddings = self.model.get_image_embeddings(processed["pixel_values"].to(self.device))
        return {"image_embeddings": embeddings, "reshaped_input_sizes": processed["reshaped_input_sizes"][0]}

    @staticmethod
    def _model_scale(lookup: Lookup[dict[str, torch.Tensor]], image: np.ndarray) -> np.ndarray:
        """(2,) float32 x, y factors from image pixels to the model's resized input (the processor's rule)."""
        new_height, new_width = lookup.value["reshaped_input_sizes"].tolist()
        height, width = image.shape[:2]
        return np.array([new_width / width, new_height / height], np.float32)

    def _upscale(
        self, low_res: torch.Tensor, lookup: Lookup[dict[str, torch.Tensor]], image: np.ndarray
    ) -> torch.Tensor:
        """(N, h, w) low-res mask logits -> (N, H, W) logits at the image's size, in chunks."""
        reshaped = [lookup.value["reshaped_input_sizes"].tolist()]
        chunks = [
            self.processor.post_process_masks(
                [low_res[start : start + MASK_CHUNK, None]], [image.shape[:2]], reshaped, binarize=False
            )[0][:, 0]
            for start in range(0, len(low_res), MASK_CHUNK)
        ]
        return torch.cat(chunks)

    def _everything(self, lookup: Lookup[dict[str, torch.Tensor]], inputs: SamInputs) -> SamOutputs:
        """Automatic mask generation on the cached embedding (the ``mask-generation`` pipeline's steps).

        Masks failing ``pred_iou_thresh`` are dropped before upscaling, and the rest are upscaled
        ``MASK_CHUNK`` at a time, so a batch never holds (points_per_batch * 3, 1024, 1024) floats.
        """
        settings, image = inputs.everything, inputs.image
        image_processor = self.processor.image_processor
        crop_boxes, grid, _, grid_labels = image_processor.generate_crop_boxes(
            image, self.processor.target_size, points_per_crop=settings.points_per_side, device=self.device
        )
        embedding = lookup.value["image_embeddings"]
        sizes = ([image.shape[:2]], [lookup.value["reshaped_input_sizes"].tolist()])
        rle_masks, scores, boxes = [], [], []
        for start in range(0, grid.shape[1], settings.points_per_batch):
            stop = start + settings.points_per_batch
            out = self.model(
                image_embeddings=embedding,
                input_points=grid[:, start:stop],
                input_labels=grid_labels[:, start:stop],
                multimask_output=True,
            )
            iou, low_res = out.iou_scores[0].flatten(), out.pred_masks[0].flatten(0, 1)  # (b * 3,), (b * 3, h, w)
            if settings.pred_iou_thresh > 0:  # filter_masks' first test, done before the costly upscaling
                keep = iou > settings.pred_iou_thresh
                iou, low_res = iou[keep], low_res[keep]
            for chunk_iou, chunk in zip(iou.split(MASK_CHUNK), low_res.split(MASK_CHUNK)):
                logits = image_processor.post_process_masks([chunk[:, None]], *sizes, binarize=False)[0]
                kept = image_processor.filter_masks(
                    logits,
                    chunk_iou[:, None],
                    image.shape[:2],
                    crop_boxes[0],
                    settings.pred_iou_thresh,
                    settings.stability_score_thresh,
                )
                rle_masks.extend(kept[0])
                scores.append(kept[1])
                boxes.append(kept[2])
        height, width = image.shape[:2]
        if not rle_masks:
            empty = torch.zeros((0, height, width), dtype=torch.bool)
            return SamOutputs(lookup, "everything", torch.zeros(0), masks=empty, boxes=torch.zeros((0, 4)))
        masks, scores, _, boxes = image_processor.post_process_for_mask_generation(
            rle_masks, torch.cat(scores), torch.cat(boxes), settings.nms_thresh
        )
        return SamOutputs(lookup, "everything", scores, masks=torch.stack(masks), boxes=boxes)


def check_point(point: Any, width: int, height: int) -> tuple[float, float, int]:
    """``(x, y)`` or ``(x, y, label)`` inside a ``width`` x ``height`` image -> (x, y, label)."""
    try:
        x, y, *rest = (float(v) for v in point)
        if len(rest) > 1 or (rest and rest[0] not in (0, 1)):
            raise ValueError
        label = int(rest[0]) if rest else 1
    except (TypeError, ValueError):
        raise BadPromptError(
            f"point {point!r:.60}: expected (x, y, label) with label 1 (foreground) or 0 (background)."
        ) from None
    if not (0 <= x <= width and 0 <= y <= height):
        raise BadPromptError(f"point ({x:g}, {y:g}) is outside the {width}x{height} image.")
    return x, y, label


def check_box(box: Any, width: int, height: int) -> Box:
    """``(x1, y1, x2, y2)`` with x1 <= x2 and y1 <= y2 inside a ``width`` x ``height`` image."""
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
        if not (x1 <= x2 and y1 <= y2):
            raise ValueError
    except (TypeError, ValueError):
        raise BadPromptError(f"box {box!r:.80}: expected (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2.") from None
    if not (0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height):
        raise BadPromptError(f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) is outside the {width}x{height} image.")
    return x1, y1, x2, y2


def check_everything(settings: Everything) -> None:
    """Raise `BadPromptError` for grid or threshold settings out of range."""
    if not 1 <= settings.points_per_side <= 128 or settings.points_per_batch < 1:
        raise BadPromptError("points_per_side must be 1..128 and points_per_batch at least 1.")
    for name in ("pred_iou_thresh", "stability_score_thresh", "nms_thresh"):
        value = getattr(settings, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1):
            raise BadPromptError(f"{name} {value!r}: expected a number in 0..1.")


def tiny_sam_config() -> SamConfig:
    """A SAM small enough for tests: a 2-layer ViT of width 32 on 256-pixel inputs."""
    vision = {
        "image_size": TINY_SIZE,
        "hidden_size": 32,
        "output_channels": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "mlp_dim": 64,
        "global_attn_indexes": [1],
        "num_pos_feats": 16,
        "window_size": 8,
    }
    prompt = {"image_size": TINY_SIZE, "hidden_size": 32}
    decoder = {"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 2, "iou_head_hidden_dim": 32}
    return SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
