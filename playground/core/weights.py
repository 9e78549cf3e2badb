"""Find a model's real checkpoint: a local path, the Hugging Face cache, or the torch hub cache.

Online, a missing checkpoint is downloaded (with a progress bar; `gr.Progress(track_tqdm=True)`
shows the same bar in the UI). Offline (``HF_HUB_OFFLINE=1``) or when the download fails, a
`MissingWeightsError` names the model, the checkpoint and the command that fetches it, at once.

State dicts are read with ``torch.load(weights_only=True)`` or safetensors, never pickles that
run code, and nothing here passes ``trust_remote_code``.
"""

from __future__ import annotations

import os
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from playground.core.errors import MissingWeightsError
from playground.core.registry import ModelSpec
from playground.core.types import WEIGHT_MODES, WeightsMode

T = TypeVar("T")


def weights_mode_from_env(default: WeightsMode = "pretrained") -> WeightsMode:
    """``PLAYGROUND_WEIGHTS`` if set (pretrained, random or tiny), else ``default``."""
    mode = os.environ.get("PLAYGROUND_WEIGHTS", default)
    if mode not in WEIGHT_MODES:
        raise ValueError(f"PLAYGROUND_WEIGHTS={mode!r}; use one of {', '.join(WEIGHT_MODES)}.")
    return mode  # type: ignore[return-value]


def hub_offline() -> bool:
    """True when the user asked the Hugging Face hub (and so us) not to touch the network."""
    flags = (os.environ.get(name, "") for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(flag.strip().lower() in ("1", "true", "yes", "on") for flag in flags)


def missing(spec: ModelSpec, why: str) -> MissingWeightsError:
    """The one-line error for weights we cannot get; for a gated repo it says how to get access
    (the hub answers 401/403 or "gated" without it, and offline we cannot tell, so it always does)."""
    access = (
        f"{spec.title} is gated: ask for access on https://huggingface.co/{spec.checkpoint} "
        "(logged in, accept its licence), then set HF_TOKEN to an access token of that account. "
        if spec.gated
        else ""
    )
    return MissingWeightsError(
        f"{spec.title} weights ({spec.checkpoint}) are not available: {why}. {access}"
        f"Fetch them with `python -m playground download {spec.key}` on a machine with "
        f"internet (or pass a local path with --checkpoint {spec.key}=PATH), "
        f"or run with --weights random."
    )


def published_score(spec: ModelSpec) -> str:
    """``spec.published``, or for a torchvision checkpoint its weights enum's ``meta["_metrics"]``,
    e.g. ``"box_map 41.5 on COCO-val2017 (torchvision weights meta)"``."""
    if spec.published or spec.source != "torchvision":
        return spec.published
    metrics = torchvision_weights(spec).meta.get("_metrics", {})
    parts = [
        f"{', '.join(f'{name} {value}' for name, value in scores.items())} on {dataset}"
        for dataset, scores in metrics.items()
    ]
    return f"{'; '.join(parts)} (torchvision weights meta)" if parts else "not in the torchvision weights meta"


# ---- torchvision weight enums -------------------------------------------------------------


def torchvision_weights(spec: ModelSpec):  # -> torchvision.models.WeightsEnum member
    """The weights enum member named by ``spec.checkpoint``, e.g. ``FCN_ResNet50_Weights.X``."""
    from torchvision.models import get_weight

    return get_weight(spec.checkpoint)


def hub_checkpoints_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints``, where torch hub keeps downloaded state dicts."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def torchvision_cache_path(spec: ModelSpec) -> Path:
    """Where torch hub keeps (or would keep) this torchvision checkpoint."""
    return hub_checkpoints_dir() / os.path.basename(torchvision_weights(spec).url)


def torchvision_state_dict(spec: ModelSpec, local_path: str | None = None) -> dict:
    """The state dict for a torchvision spec: local path, then cache, then download."""
    if local_path:
        return read_state_dict(spec, Path(local_path))
    cached = torchvision_cache_path(spec)
    if cached.is_file():
        return read_state_dict(spec, cached)
    if hub_offline():
        raise missing(spec, f"not in the torch hub cache ({cached.parent}) and HF_HUB_OFFLINE=1")
    try:
        return torchvision_weights(spec).get_state_dict(progress=True, check_hash=True)
    except (urllib.error.URLError, OSError, RuntimeError) as error:
        raise missing(spec, f"the download failed ({_first_line(error)})") from None


def torchhub_cache_path(spec: ModelSpec) -> Path:
    """Where torch hub keeps (or would keep) the file at the URL ``spec.checkpoint``."""
    return hub_checkpoints_dir() / os.path.basename(spec.checkpoint)


def torchhub_state_dict(spec: ModelSpec, local_path: str | None = None) -> dict:
    """The state dict at the URL ``spec.checkpoint`` (a torch hub release file).

    Read from ``local_path`` if given, else from ``$TORCH_HOME/hub/checkpoints/<file name>``,
    else downloaded there first (with a progress bar).
    """
    if local_path:
        return read_state_dict(spec, Path(local_path))
    cached = torchhub_cache_path(spec)
    if not cached.is_file():
        if hub_offline():
            raise missing(spec, f"not in the torch hub cache ({cached.parent}) and HF_HUB_OFFLINE=1")
        import torch

        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(spec.checkpoint, str(cached), progress=True)
        except (OSError, RuntimeError) as error:  # URLError is an OSError
            raise missing(spec, f"the download failed ({_first_line(error)})") from None
    return read_state_dict(spec, cached)


def read_state_dict(spec: ModelSpec, path: Path) -> dict:
    """Read a ``.safetensors`` or ``.pth`` file without executing pickled code."""
    if not path.is_file():
        raise missing(spec, f"no file at {path}")
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any decoding failure means the file is unusable
        raise missing(spec, f"{path} is corrupt or not a checkpoint ({_first_line(error)})") from None


# ---- Hugging Face hub ids -----------------------------------------------------------------


def hf_is_cached(spec: ModelSpec, repo_id: str | None = None) -> bool:
    """True when the repo's config is in the Hugging Face cache (``$HF_HOME``)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id or spec.checkpoint, "config.json", revision=spec.revision)
    return isinstance(found, str)


def is_cached(spec: ModelSpec) -> bool:
    """True when ``spec``'s pretrained checkpoint (every component's, for composites) is local."""
    from playground.core.registry import get_spec

    if spec.components:
        return all(is_cached(get_spec(key)) for key in spec.components)
    if spec.source == "torchvision":
        return torchvision_cache_path(spec).is_file()
    if spec.source == "torchhub":
        return torchhub_cache_path(spec).is_file()
    if spec.source == "huggingface":
        return hf_is_cached(spec)
    return False


def ensure_available(spec: ModelSpec, local_path: str | None = None) -> None:
    """Raise `MissingWeightsError` at once when offline with nothing local, before any model code
    (transformers takes seconds to import) is loaded."""
    if local_path:
        if not Path(local_path).exists():
            raise missing(spec, f"no checkpoint at {local_path}")
    elif hub_offline() and not is_cached(spec):
        raise missing(spec, "not in the local cache and HF_HUB_OFFLINE=1")


def hf_from_pretrained(
    spec: ModelSpec,
    loader: Callable[..., T],
    local_path: str | None = None,
    repo_id: str | None = None,
    **kwargs: object,
) -> T:
    """``loader(source, ...)`` (a ``from_pretrained``) with fast, clear failures.

    ``source`` is ``local_path`` when given, else ``repo_id`` (default ``spec.checkpoint``)
    at ``spec.revision``. Offline with nothing cached, it fails before touching the network.
    """
    if local_path:
        if not Path(local_path).exists():
            raise missing(spec, f"no checkpoint at {local_path}")
        source, extra = local_path, {}
    else:
        source = repo_id or spec.checkpoint
        extra = {"revision": spec.revision} if spec.revision else {}
        if hub_offline() and not hf_is_cached(spec, source):
            raise missing(spec, "not in the Hugging Face cache and HF_HUB_OFFLINE=1")
    try:
        return loader(source, **extra, **kwargs)
    except OSError as error:
        raise missing(spec, _first_line(error)) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


# ---- prefetching ----------------------------------------------------------------------------


def download(spec: ModelSpec) -> str:
    """Fetch ``spec``'s checkpoint into the local cache; returns where it now lives."""
    from playground.core.registry import get_spec

    if spec.source == "composite":
        return "; ".join(download(get_spec(key)) for key in spec.components)
    if spec.source == "torchvision":
        torchvision_state_dict(spec)
        return str(torchvision_cache_path(spec))
    if spec.source == "torchhub":
        torchhub_state_dict(spec)
        return str(torchhub_cache_path(spec))
    if spec.source == "huggingface":
        from huggingface_hub import snapshot_download

        try:
            return snapshot_download(
                spec.checkpoint,
                revision=spec.revision,
                allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"],
            )
        except OSError as error:
            raise missing(spec, _first_line(error)) from None
    raise MissingWeightsError(f"{spec.title}: downloading {spec.source} checkpoints is not built yet.")
