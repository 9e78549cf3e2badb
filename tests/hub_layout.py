"""Model caches in the real file layouts, built from tiny (Hugging Face) or full-size random (torch hub)
models: what `download` would leave on disk, for the pretrained loading path to read offline.

- Hugging Face: ``HF_HOME/hub/models--org--name/refs/<revision>`` holds a commit hash and
  ``snapshots/<hash>/`` the files ``save_pretrained`` writes (config, weights, processor, tokenizer).
- torch hub: ``TORCH_HOME/hub/checkpoints/<the weights URL's file name>`` holds a state dict of the
  full-size architecture (the pretrained path builds the full size), as ``torch.load`` reads it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from playground.core.registry import get_spec

TORCHVISION_BUILDERS = {
    "fcn": ("fcn_resnet50", {"num_classes": 21, "aux_loss": True}),
    "retinanet": ("retinanet_resnet50_fpn_v2", {"num_classes": 91}),
    "faster-rcnn": ("fasterrcnn_resnet50_fpn_v2", {"num_classes": 91}),
    "mask-rcnn": ("maskrcnn_resnet50_fpn_v2", {"num_classes": 91}),
    "ssdlite": ("ssdlite320_mobilenet_v3_large", {"num_classes": 91}),
}
"""The builder and arguments of each torchvision checkpoint's architecture, as its weights enum ships it."""


def snapshot_dir(hf_home: Path, repo: str, revision: str | None) -> Path:
    """``snapshots/<hash>`` of ``repo`` under ``hf_home``, with ``refs/<revision or main>`` naming it."""
    folder = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    commit = hashlib.sha1(f"{repo}@{revision}".encode()).hexdigest()
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / (revision or "main")).write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


SHARED_REPOS = {"sam2": "sam2-video", "sam3": "sam3-video"}
"""Image models whose hub repo the video model shares: the repo is the video model's (its config and
weights load into both classes, its processor config holds both processors)."""


def tiny_adapter(key: str):
    """``key``'s adapter with its tiny model and processor built (the library's layers, fp32)."""
    spec = get_spec(key)
    adapter = spec.load_class()(spec, "tiny", torch.device("cpu"), precision="fp32", library_kernels=True)
    model = adapter.build()
    return adapter, model


def hub_snapshot(
    hf_home: Path,
    key: str,
    repo: str | None = None,
    revision: str | None = None,
    safetensors: bool = True,
    shard_size: str | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``key``'s tiny build as ``repo`` (default: its spec's) at ``revision`` (default: its
    spec's) the way ``save_pretrained`` lays it out; returns the snapshot folder.

    ``safetensors=False`` writes ``pytorch_model.bin``; ``shard_size`` (e.g. ``"20KB"``) shards the
    weights with an index; ``dtype`` stores the weights and the config's dtype in it (float16)."""
    spec = get_spec(key)
    adapter, model = tiny_adapter(SHARED_REPOS.get(key, key))
    snapshot = snapshot_dir(hf_home, repo or spec.checkpoint, revision if repo else revision or spec.revision)
    if dtype is not None:
        model = model.to(dtype)
    options = {"safe_serialization": safetensors}
    if shard_size:
        options["max_shard_size"] = shard_size
    model.save_pretrained(snapshot, **options)
    adapter.processor.save_pretrained(snapshot)
    return snapshot


def torch_hub_file(torch_home: Path, key: str) -> Path:
    """A full-size random state dict of ``key``'s architecture under torch hub's file name for it."""
    import torchvision

    spec = get_spec(key)
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    if key == "unet":
        from models.parts.unet_network import CARVANA_WIDTHS, UNet

        state = {**UNet(3, 2, CARVANA_WIDTHS).state_dict(), "mask_values": [0, 1]}
        path = checkpoints / Path(spec.checkpoint).name
    else:
        builder, options = TORCHVISION_BUILDERS[key]
        model = torchvision.models.get_model(builder, weights=None, weights_backbone=None, **options)
        state = model.state_dict()
        path = checkpoints / Path(torchvision.models.get_weight(spec.checkpoint).url).name
    torch.save(state, path)
    return path
