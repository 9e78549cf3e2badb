"""Segment Anything (transformers ``SamModel``): a heavy ViT image encoder, run once per image,
and a light prompt encoder + mask decoder, run per prompt.

Params (image pixels; tuples, so results cache), one mode per call:

- ``points=((x, y, label), ...)`` (label 1 foreground, 0 background; ``(x, y)`` is foreground)
  and/or ``box=(x1, y1, x2, y2)`` and/or ``mask_input`` (a dense prompt: an `EarlierPrompt`, whose
  best low-resolution logits are fed back as SAM's predictor does, or a `BrushedMask`; see
  `models.parts.sam_prompts`): SAM's 3 candidate masks, best predicted IoU first;
- ``boxes=((x1, y1, x2, y2), ...)``: one mask per box, in the given order (Grounded-SAM);
- ``encode=True``: only the image embedding, an empty prediction (the app encodes images on arrival);
- ``everything=True``: automatic mask generation (`models.parts.sam_everything`), tuned by
  ``points_per_side``, ``points_per_batch``, ``pred_iou_thresh``, ``stability_score_thresh``
  and ``nms_thresh``.

The image embedding ((1, 256, 64, 64) for the real models) lives in a cache the adapter owns,
keyed by (image digest, model, checkpoint, weights), so a second prompt on the same image, from
the prompt tab or Grounded-SAM, runs only the prompt encoder and mask decoder, and evicting SAM
drops its embeddings. ``Prediction.reuse`` says "image encoded in X s" or "cached". Each prompt's
best low-resolution logits (1, 1, 256, 256) are kept too, keyed by (image, prompt), for the next click.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import torch
from transformers import SamImageProcessor, SamModel, SamProcessor

from models.base import Adapter
from models.explain.sam import SAMExplainer
from models.layers.image_masks import masks_from_logits
from models.layers.rel_pos_attention import CHUNKED, use_rel_pos_attention
from models.parts.sam_configs import CHECKPOINTS, TINY_SIZE, random_sam_config, tiny_sam_config
from models.parts.sam_everything import MASK_CHUNK, Everything, check_everything, segment_everything
from models.parts.sam_prompts import SamInputs, SamOutputs, decode_boxes, prompt_arrays, refine
from playground.core.cache import MB, Lookup
from playground.core.devices import synchronize
from playground.core.errors import BadPromptError
from playground.core.images import image_digest
from playground.core.patches import Patch
from playground.core.prompts import EarlierPrompt, MaskInput, check_box, check_mask_input, check_point
from playground.core.types import Prediction, boxes_from_masks
from playground.core.weights import hf_model, hf_processor

LABEL_NAMES = {0: "object"}


class SAMAdapter(Adapter):
    """``facebook/sam-vit-base`` (or ``-large`` / ``-huge`` via ``--checkpoint sam=ID``)."""

    half_precision_regions = ("vision_encoder",)
    """The ViT image encoder (almost all of SAM's compute); the prompt encoder and mask decoder stay float32."""
    explainer = SAMExplainer

    preprocess_params = frozenset(
        {"points", "box", "boxes", "mask_input", "encode", "everything", *(f.name for f in fields(Everything))}
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.embeddings = self.new_cache(max_items=16, max_bytes=256 * MB)
        self.best_logits = self.new_cache(max_items=64, max_bytes=32 * MB)
        """(image key, `EarlierPrompt`) -> its best low-res logits (1, 1, h, w): the next click's mask input."""

    def use_faster_layers(self, model: torch.nn.Module) -> list[Patch]:
        """The image encoder's attention adds its relative positions per chunk of queries, not as a dense mask."""
        return [*super().use_faster_layers(model), self.faster(CHUNKED, use_rel_pos_attention, model)]

    def build(self) -> torch.nn.Module:
        self.label_names = LABEL_NAMES
        source = self.checkpoint or self.spec.checkpoint
        if self.weights == "pretrained":
            self.processor = hf_processor(self.spec, SamProcessor, self.checkpoint)
            return hf_model(self.spec, SamModel, self.checkpoint)
        if self.weights == "tiny":
            size = {"longest_edge": TINY_SIZE}
            pad = {"height": TINY_SIZE, "width": TINY_SIZE}
            self.processor = SamProcessor(SamImageProcessor(size=size, pad_size=pad))
            return SamModel(tiny_sam_config())
        self.processor = SamProcessor(SamImageProcessor())
        return SamModel(random_sam_config(source if source in CHECKPOINTS else self.spec.checkpoint))

    # -- inference ---------------------------------------------------------------------------

    def preprocess(
        self,
        image: np.ndarray,
        task: str,
        points: Any = None,
        box: Any = None,
        boxes: Any = None,
        mask_input: MaskInput | None = None,
        encode: bool = False,
        everything: bool = False,
        points_per_side: int = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        nms_thresh: float = 0.7,
    ) -> SamInputs:
        """Validate the prompt against the (H, W) of ``image``; `BadPromptError` names what is wrong."""
        height, width = image.shape[:2]
        key = (image_digest(image), self.spec.key, self.checkpoint or self.spec.checkpoint, self.weights)
        if encode:
            return SamInputs(key, image, "encode")
        if everything:
            if points or box or boxes or mask_input:
                raise BadPromptError("Segment everything takes no points or boxes: clear them first.")
            settings = Everything(
                points_per_side, points_per_batch, pred_iou_thresh, stability_score_thresh, nms_thresh
            )
            check_everything(settings)
            return SamInputs(key, image, "everything", everything=settings)
        if boxes is not None:
            if points or box or mask_input:
                raise BadPromptError("boxes= cannot be combined with points, box or mask_input.")
            if not isinstance(boxes, (tuple, list)) or not boxes:
                raise BadPromptError("boxes: expected one or more (x1, y1, x2, y2) boxes.")
            checked = np.array([check_box(b, width, height) for b in boxes], np.float32)
            return SamInputs(key, image, "boxes", boxes=checked)
        if points is not None and not isinstance(points, (tuple, list)):
            raise BadPromptError("points: expected ((x, y, label), ...) with label 1 (foreground) or 0 (background).")
        if not points and box is None and mask_input is None:
            raise BadPromptError("SAM needs a prompt: one or more points, a box, or a brushed mask.")
        prompt = EarlierPrompt(
            tuple(check_point(p, width, height) for p in points or ()),
            None if box is None else check_box(box, width, height),
            check_mask_input(mask_input, width, height),
        )
        points_xy, labels, boxes_xyxy = prompt_arrays(prompt)
        return SamInputs(key, image, "prompt", points=points_xy, labels=labels, boxes=boxes_xyxy, prompt=prompt)

    def forward(self, inputs: SamInputs) -> SamOutputs:
        """Image embedding (cached, or encoded now), then the prompt encoder and mask decoder."""
        lookup = self.embeddings.get_or_compute(inputs.key, lambda: self._encode(inputs.image))
        if inputs.mode == "encode":  # no mask: the prediction only says how the embedding was had
            return SamOutputs(lookup, "encode", torch.zeros(0), low_res=torch.zeros(0, 1, 1))
        if inputs.mode == "everything":
            scores, masks, boxes = segment_everything(
                self.model, self.processor, lookup.value, inputs.image, inputs.everything
            )
            return SamOutputs(lookup, "everything", scores, masks=masks, boxes=boxes)
        if inputs.mode == "boxes":
            chunks = [
                decode_boxes(self, lookup, inputs.image, inputs.boxes[at : at + MASK_CHUNK])
                for at in range(0, len(inputs.boxes), MASK_CHUNK)
            ]
            return SamOutputs(
                lookup, "boxes", torch.cat([s for s, _ in chunks]), low_res=torch.cat([m for _, m in chunks])
            )
        scores, low_res = refine(self, inputs.key, lookup, inputs.image, inputs.prompt)
        return SamOutputs(lookup, "prompt", scores, low_res=low_res)

    def postprocess(self, outputs: SamOutputs, image: np.ndarray, task: str) -> Prediction:
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
            scores, low_res = outputs.scores, outputs.low_res
            if outputs.mode == "prompt":
                order = scores.argsort(descending=True)
                scores, low_res = scores[order], low_res[order]
            starts = range(0, len(low_res), MASK_CHUNK)
            chunks = (self._upscale(low_res[at : at + MASK_CHUNK], outputs.lookup, image) for at in starts)
            fields = masks_from_logits(chunks, len(low_res), image.shape[:2])
            prediction = self.new_prediction(
                image,
                "prompt",
                boxes=boxes_from_masks(fields["masks"]),
                scores=scores.float().clamp(0, 1).cpu().numpy(),
                class_ids=np.zeros(len(low_res), np.int64),
                **fields,
            )
        lookup = outputs.lookup
        prediction.mode = outputs.mode
        prediction.reuse = lookup.describe("image encoded")
        prediction.meta.update(embedding_cached=not lookup.computed, encode_ms=lookup.seconds * 1000)
        prediction.meta.update(encode_wait_ms=lookup.waited * 1000)
        return prediction

    # -- helpers -----------------------------------------------------------------------------

    def prompt_tensors(
        self, lookup: Lookup[dict[str, Any]], image: np.ndarray, arrays: tuple[np.ndarray, np.ndarray, np.ndarray]
    ) -> dict[str, torch.Tensor]:
        """The prompt encoder's inputs, on the CPU, for ``arrays``: points (n, 2), labels (n,) and boxes (b, 4)
        in image pixels (as `prompt_arrays` gives them), scaled as the processor scales them; an empty array
        gives no entry."""
        points, labels, boxes = arrays
        scale = self._model_scale(lookup, image)
        tensors: dict[str, torch.Tensor] = {}
        if len(points):
            tensors["input_points"] = torch.from_numpy(points * scale)[None, None]
            tensors["input_labels"] = torch.from_numpy(labels)[None, None]
        if len(boxes):
            tensors["input_boxes"] = torch.from_numpy(boxes * np.tile(scale, 2))[None]
        return tensors

    def mask_sizes(self) -> dict[str, dict[str, int]]:
        """The image processor's ``mask_size`` / ``mask_pad_size`` for this model's low-res logits."""
        side = 4 * self.model.prompt_encoder.image_embedding_size[0]
        return {"mask_size": {"longest_edge": side}, "mask_pad_size": {"height": side, "width": side}}

    def _encode(self, image: np.ndarray) -> dict[str, torch.Tensor]:
        """The vision encoder on the processed image: embeddings (1, C, h, w) and the resized size."""
        processed = self.processor(images=image, return_tensors="pt")
        embeddings = self.model.get_image_embeddings(processed["pixel_values"].to(self.device))
        synchronize(self.device)  # the cache times this call: "image encoded in X s" is the device's work
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
        """(n, h, w) low-res mask logits -> (n, H, W) logits at the image's size (``post_process_masks``)."""
        reshaped, size = [lookup.value["reshaped_input_sizes"].tolist()], [image.shape[:2]]
        return self.processor.post_process_masks([low_res[:, None]], size, reshaped, binarize=False)[0][:, 0]
