"""DETR for panoptic segmentation (transformers ``DetrForSegmentation``).

The detection DETR plus a mask head: each object query's decoder embedding attends over the
encoder's feature map, and a small FPN-style convolutional head turns that attention into a mask
at 1/4 resolution. Things and stuff are both just queries with a class; the processor's
``post_process_panoptic_segmentation`` assigns every pixel to the best-scoring query.

Checkpoint: ``facebook/detr-resnet-50-panoptic`` at its main revision, whose config names a timm
ResNet backbone, so pretrained weights need ``pip install timm``. We found no ``no_timm`` revision
for it (``facebook/detr-resnet-50`` has one; transformers' own tests load the panoptic checkpoint
only with timm). Random and tiny builds use transformers' ResNet.

`DETRPanopticAdapter.forward` runs the library's own submodules with ``DetrForSegmentation.forward``'s
wiring, except that the mask head runs only on the queries ``post_process_panoptic_segmentation``
keeps, `MASK_CHUNK` at a time; the library's forward runs it on all 100 queries at once (a copy
of the 256-channel stride-4 map per query: 4 GB of copies alone at 800 x 800), then the
post-processing drops nearly all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import DetrConfig, DetrForSegmentation, DetrImageProcessor, ResNetConfig
from transformers.models.detr.modeling_detr import DetrSegmentationOutput

from models.base import ProcessorAdapter
from models.detr import TINY_SIZE, tiny_detr_config
from models.explain.detr import DETRPanopticExplainer
from models.parts.panoptic import panoptic_fields
from playground.core.errors import PlaygroundError
from playground.core.labels import coco_detection_labels
from playground.core.types import Prediction
from playground.core.weights import hf_model, hf_processor

PANOPTIC_THRESHOLD = 0.85
"""Query score a panoptic segment needs: the DETR authors' ``PostProcessPanoptic`` setting."""
LAST_THING_ID = 90
"""COCO panoptic category ids up to 90 are things (COCO detection's ids), 92-200 are stuff: the
DETR authors' ``is_thing_map = {i: i <= 90}``. DETR predicts those raw ids (250 slots)."""
NUM_CLASSES = 250
"""Class slots of the checkpoint's classifier (before "no object")."""
MASK_CHUNK = 4
"""Kept queries per ``mask_head`` call. The mask head works on one copy of
the backbone's features per query; its peak is set by the h/4 x w/4 stage: per query, the copy of
the 256-channel stride-4 map the conv materialises (1 kB a pixel) plus 32- and 16-channel maps and
conv buffers, more with more threads. A chunk's memory scales with its size and the input's
area, while the time per query did not depend on the chunk size (figures: docs/performance.md)."""


class DETRPanopticAdapter(ProcessorAdapter):
    """``facebook/detr-resnet-50-panoptic`` (COCO panoptic), or a random build of its layout.

    The forward gives the library's outputs for the K of Q queries the post-processing keeps:
    logits (1, K, classes + 1), pred_boxes (1, K, 4) and pred_masks (1, K, h/4, w/4). The body
    (backbone, encoder, decoder) runs once; the mask branch costs `MASK_CHUNK` queries' worth of
    memory at a time and time per kept query.
    """

    channels_last = True
    half_precision_regions = ("detr.model.backbone", "detr.model.encoder", "detr.model.decoder", "mask_head")
    """The ResNet backbone, the transformer and the convolutional mask head (``DetrForSegmentation``
    calls the parts of ``detr.model`` one by one); the class and box heads stay float32."""
    explainer = DETRPanopticExplainer

    def build(self) -> torch.nn.Module:
        if self.weights == "pretrained":
            self.processor = hf_processor(self.spec, DetrImageProcessor, self.checkpoint)
            try:
                model = hf_model(self.spec, DetrForSegmentation, self.checkpoint)
            except ImportError as error:
                raise PlaygroundError(
                    f"{self.spec.title}: its checkpoint uses a timm ResNet backbone; `pip install timm` ({error})."
                ) from None
        else:
            labels = coco_panoptic_id_labels()
            if self.weights == "tiny":
                self.processor = DetrImageProcessor(size=TINY_SIZE)
                config = tiny_detr_config(labels)
                # The mask head's GroupNorm(8) sees d_model + heads channels: 32 + 8.
                config.encoder_attention_heads = config.decoder_attention_heads = 8
            else:
                self.processor = DetrImageProcessor()
                backbone = ResNetConfig(out_features=["stage1", "stage2", "stage3", "stage4"])
                config = DetrConfig(backbone_config=backbone, id2label=labels)
            model = DetrForSegmentation(config)
        self.label_names = {int(k): v for k, v in model.config.id2label.items()}
        self.thing_ids = frozenset(i for i in self.label_names if i <= LAST_THING_ID)
        self.stuff_ids = frozenset(self.label_names) - self.thing_ids
        return model

    def forward(self, inputs: dict[str, torch.Tensor]) -> DetrSegmentationOutput:
        """One image -> the library's outputs for the K queries post-processing keeps: logits
        (1, K, classes + 1), pred_boxes (1, K, 4), pred_masks (1, K, h/4, w/4); K may be 0."""
        body = detr_body(self.model, inputs["pixel_values"], inputs.get("pixel_mask"))
        keep = kept_queries(body.logits, self.floor(PANOPTIC_THRESHOLD))
        return DetrSegmentationOutput(
            logits=body.logits[:, keep],
            pred_boxes=body.pred_boxes[:, keep],
            pred_masks=query_masks(self.model, body, keep),
        )

    def postprocess(self, outputs: Any, image: np.ndarray, task: str) -> Prediction:
        """The processor's ``post_process_panoptic_segmentation`` at the image's size; stuff is fused."""
        return self.new_prediction(image, "panoptic", **panoptic_fields(self, outputs, image, PANOPTIC_THRESHOLD))


@dataclass(frozen=True)
class DetrBody:
    """``DetrForSegmentation.forward``'s tensors before its mask branch, for one image (input h x w)."""

    logits: torch.Tensor  # (1, Q, classes + 1)
    pred_boxes: torch.Tensor  # (1, Q, 4) normalised cxcywh
    queries: torch.Tensor  # (1, Q, d_model): the decoder's last hidden state
    memory: torch.Tensor  # (1, d_model, h/32, w/32): the encoder's output as a map
    attention_mask: torch.Tensor  # (1, 1, 1, h/32, w/32): 0 on pixels, dtype min on padding
    projected: torch.Tensor  # (1, d_model, h/32, w/32): the projected backbone map
    fpn: list[torch.Tensor]  # backbone stages 3, 2, 1: (1, C, h/16, w/16) ... (1, C, h/4, w/4)


def detr_body(model: DetrForSegmentation, pixel_values: torch.Tensor, pixel_mask: torch.Tensor | None) -> DetrBody:
    """Backbone, encoder, decoder, class and box heads, wired as ``DetrForSegmentation.forward``.

    ``pixel_values`` (1, 3, h, w); ``pixel_mask`` (1, h, w) or None (all pixels valid).
    """
    batch_size, _, height, width = pixel_values.shape
    if batch_size != 1:
        raise ValueError(f"DETR panoptic runs one image at a time, got a batch of {batch_size}")
    device = pixel_values.device
    if pixel_mask is None:
        pixel_mask = torch.ones((batch_size, height, width), device=device)
    detr = model.detr.model
    vision_features = detr.backbone(pixel_values, pixel_mask)
    feature_map, mask = vision_features[-1]
    projected = detr.input_projection(feature_map)
    flattened_features = projected.flatten(2).transpose(1, 2)
    position = detr.position_embedding(shape=feature_map.shape, device=device, dtype=pixel_values.dtype, mask=mask)
    position = position.flatten(2).transpose(1, 2)
    flattened_mask = mask.flatten(1)
    encoded = detr.encoder(
        inputs_embeds=flattened_features, attention_mask=flattened_mask, spatial_position_embeddings=position
    ).last_hidden_state
    query_position = detr.query_position_embeddings.weight.unsqueeze(0).repeat(batch_size, 1, 1)
    queries = detr.decoder(
        inputs_embeds=torch.zeros_like(query_position),
        attention_mask=None,
        spatial_position_embeddings=position,
        object_queries_position_embeddings=query_position,
        encoder_hidden_states=encoded,
        encoder_attention_mask=flattened_mask,
    )[0]
    map_height, map_width = feature_map.shape[-2:]
    memory = encoded.transpose(1, 2).view(batch_size, model.config.d_model, map_height, map_width)
    valid = flattened_mask.view(batch_size, map_height, map_width).unsqueeze(1).unsqueeze(1)
    zero = torch.full((), 0.0, device=memory.device, dtype=memory.dtype)
    return DetrBody(
        logits=model.detr.class_labels_classifier(queries),
        pred_boxes=model.detr.bbox_predictor(queries).sigmoid(),
        queries=queries,
        memory=memory,
        attention_mask=torch.where(valid, zero, torch.finfo(memory.dtype).min),
        projected=projected,
        fpn=[vision_features[2][0], vision_features[1][0], vision_features[0][0]],
    )


def kept_queries(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """Indices (K,) of the queries in ``logits`` (1, Q, classes + 1) that the processor's
    ``post_process_panoptic_segmentation(threshold=threshold)`` keeps: the same test, on the same
    numbers (``remove_low_and_no_objects``): top class not "no object" and its score > threshold."""
    scores, labels = torch.nn.functional.softmax(logits, dim=-1).max(-1)
    keep = labels[0].ne(logits.shape[-1] - 1) & (scores[0] > threshold)
    return keep.nonzero().flatten()


def query_masks(
    model: DetrForSegmentation, body: DetrBody, keep: torch.Tensor, chunk: int = MASK_CHUNK
) -> torch.Tensor:
    """Mask logits (1, K, h/4, w/4) of the queries ``keep`` (K,): the library's ``mask_head`` on
    ``chunk`` of them at a time (each query's mask depends on that query alone).

    ``bbox_attention`` runs on all Q queries, as in the library: its maps are small (Q, heads,
    h/32, w/32), and its matmul on fewer rows rounds differently. The mask head's convolutions can
    round differently too (1e-6): PyTorch picks oneDNN or its own kernel by batch size and threads
    (one thread: a 1x1 conv on fewer than 16 images), so masks match the library's within float
    rounding, and its panoptic maps except where two queries' masks tie to that precision.
    """
    mask_height, mask_width = body.fpn[-1].shape[-2:]
    masks = body.queries.new_empty((1, len(keep), mask_height, mask_width))
    if not len(keep):
        return masks
    attention = model.bbox_attention(body.queries, body.memory, attention_mask=body.attention_mask)
    for start in range(0, len(keep), chunk):
        index = keep[start : start + chunk]
        out = model.mask_head(features=body.projected, attention_masks=attention[:, index], fpn_features=body.fpn)
        masks[:, start : start + len(index)] = out.view(1, len(index), mask_height, mask_width)
    return masks


def coco_panoptic_id_labels() -> dict[int, str]:
    """Label names for random builds, indexed like the checkpoint's 250 COCO panoptic id slots.

    Ids 0-90 take COCO's detection names from torchvision's metadata (things); no installed library
    lists the stuff names, so ids 91-249 are named "stuff 91" ... (COCO uses 92-200).
    """
    detection = coco_detection_labels()
    return {i: detection[i] if i <= LAST_THING_ID else f"stuff {i}" for i in range(NUM_CLASSES)}
