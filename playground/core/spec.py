"""`ModelSpec`: what the playground knows about a model before loading it (the table is in `registry`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from playground.core.imports import import_module


@dataclass(frozen=True)
class ModelSpec:
    """What the playground knows about a model before loading it.

    Attributes:
        key: stable registry key used by the UI, the API and the CLI.
        title: human name.
        tasks: the tabs it appears in.
        source: where the checkpoint lives: ``torchvision`` (a weights enum), ``huggingface``
            (a hub id), ``torchhub`` (a URL) or ``composite`` (made of other keys).
        checkpoint: the default real checkpoint: ``"FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1"``
            or a hub id such as ``"facebook/detr-resnet-50"``.
        revision: hub revision (branch or commit) for huggingface checkpoints.
        licence: licence of the weights.
        size_mb: approximate download size in MB.
        adapter: ``"module:Class"`` of the adapter (in ``models/``), or of the composite (above the
            manager, in ``playground/runtime/composites.py``) when ``components`` is set.
        summary: one line on what makes the model worth comparing.
        labels: where its label names come from.
        year: the year the model (its paper) was published, for timelines.
        published: its published COCO score and where it is stated ("model card", a README, a
            paper); empty for torchvision checkpoints, whose score is read from the weights enum's
            ``meta["_metrics"]`` at runtime (`playground.core.weights.published_score`).
        components: registry keys a composite model is made of.
        half_precision: False for a model that gains nothing in bf16/fp16 or breaks there: it
            then runs in fp32 whatever ``--precision`` says (``precision_note`` says why).
        gated: the hub asks users to request access first (the missing-weights message says how).
        tokenizer: the checkpoint's processor holds a tokenizer (text models): its files are part of
            what must be cached before the model can load.
        default_score_threshold: the score threshold a user of this checkpoint expects, in [0, 1]:
            what a tab opens with, ``predict --threshold``'s default, and what the API applies when
            given none (0.0 where a score does not filter: semantic maps, SAM's predicted IoUs).
        threshold_source: where that value comes from (the library's post-processing default, a
            README, torchvision's visualisation gallery), or why it does not apply. Both are filled
            in from `playground.core.thresholds` by the registry.
    """

    key: str
    title: str
    tasks: tuple[str, ...]
    source: str
    checkpoint: str
    licence: str
    size_mb: float
    adapter: str
    summary: str
    labels: str
    year: int
    published: str
    revision: str | None = None
    components: tuple[str, ...] = field(default_factory=tuple)
    half_precision: bool = True
    precision_note: str = ""
    gated: bool = False
    tokenizer: bool = False
    default_score_threshold: float = 0.0
    threshold_source: str = ""

    def load_class(self) -> type:
        """Import and return the class named by ``adapter`` (the first call imports the model code,
        under the heavy-import lock: `playground.core.imports`)."""
        module_name, class_name = self.adapter.split(":")
        return getattr(import_module(module_name), class_name)
