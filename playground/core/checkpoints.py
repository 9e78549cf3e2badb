"""Which checkpoint a model loads: the spec's default, or what ``--checkpoint KEY=VALUE`` asked for.

VALUE is a local file or folder, or a Hugging Face hub id with an optional revision (``org/name``
or ``org/name@revision``). Every message about weights names the checkpoint that was asked for
(`Checkpoint.label`), not the spec's default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from playground.core.errors import MissingWeightsError
from playground.core.spec import ModelSpec

CheckpointKind = Literal["local", "hub", "torchvision", "torchhub"]
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")
"""``org/name`` or ``org/name@revision`` (a branch, tag or commit)."""


@dataclass(frozen=True)
class Checkpoint:
    """Where one model's weights come from.

    Attributes:
        kind: ``local`` (a file or folder), ``hub`` (a Hugging Face repo), ``torchvision`` (a
            weights enum member) or ``torchhub`` (a release file's URL).
        location: the path, repo id, enum name (``"FCN_ResNet50_Weights.X"``) or URL.
        revision: the hub revision (branch, tag or commit); None is the repo's default branch.
    """

    kind: CheckpointKind
    location: str
    revision: str | None = None

    @property
    def label(self) -> str:
        """How messages name it: ``facebook/detr-resnet-50@no_timm``, a path, an enum or a URL."""
        return f"{self.location}@{self.revision}" if self.revision else self.location


def resolve_checkpoint(spec: ModelSpec, asked: str | None = None) -> Checkpoint:
    """The checkpoint ``spec`` loads: ``asked`` (a ``--checkpoint`` value) if given, else its default.

    An existing path is local; otherwise a hub id is a hub checkpoint for Hugging Face models. Anything
    else raises `MissingWeightsError` naming ``asked``."""
    if asked:
        if Path(asked).expanduser().exists():
            return Checkpoint("local", str(Path(asked).expanduser()))
        if spec.source == "huggingface" and HUB_ID.match(asked):
            repo, _, revision = asked.partition("@")
            return Checkpoint("hub", repo, revision or None)
        expected = "a local file or folder, or a hub id (org/name or org/name@revision)"
        if spec.source != "huggingface":
            expected = "a local state-dict file (.pth or .safetensors)"
        raise MissingWeightsError(
            f"{spec.title} checkpoint {asked!r} (--checkpoint {spec.key}={asked}) is not available: "
            f"there is nothing at that path, and it is not {expected}."
        )
    if spec.source == "huggingface":
        return Checkpoint("hub", spec.checkpoint, spec.revision)
    if spec.source in ("torchvision", "torchhub"):
        return Checkpoint(spec.source, spec.checkpoint)  # type: ignore[arg-type]
    raise MissingWeightsError(f"{spec.title} is made of other models; give --checkpoint to its parts.")
