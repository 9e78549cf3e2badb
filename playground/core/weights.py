"""Load a model's real checkpoint (`playground.core.checkpoints`): a local path, the Hugging Face
cache, or the torch hub cache.

Online, a missing checkpoint is downloaded (with a progress bar; `gr.Progress(track_tqdm=True)`
shows the same bar in the UI). Offline (``HF_HUB_OFFLINE=1``) or when the download fails, a
`MissingWeightsError` names the model, the checkpoint asked for and the command that fetches it,
at once. Weights load in float32 whatever the config declares (the app's precision rules apply
after), and a checkpoint whose keys do not fit the model fails in one line naming the first keys.

State dicts are read with ``torch.load(weights_only=True)`` or safetensors, never pickles that
run code, and nothing here passes ``trust_remote_code``.
"""

from __future__ import annotations

import os
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from playground.core.checkpoints import Checkpoint, resolve_checkpoint
from playground.core.errors import MissingWeightsError, WeightsMismatchError
from playground.core.hub_cache import files_to_fetch, missing_files
from playground.core.hub_reach import hub_host, hub_reachable
from playground.core.registry import ModelSpec
from playground.core.types import WEIGHT_MODES, WeightsMode

T = TypeVar("T")


def weights_mode_from_env(default: WeightsMode = "pretrained") -> WeightsMode:
    """``PLAYGROUND_WEIGHTS`` if set (pretrained, random or tiny), else ``default``."""
    mode = os.environ.get("PLAYGROUND_WEIGHTS", default)
    if mode not in WEIGHT_MODES:
        raise ValueError(f"PLAYGROUND_WEIGHTS={mode!r}; use one of {', '.join(WEIGHT_MODES)}.")
    return mode  # type: ignore[return-value]


def offline_requested() -> bool:
    """True when the user asked the Hugging Face hub (and so us) not to touch the network."""
    flags = (os.environ.get(name, "") for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(flag.strip().lower() in ("1", "true", "yes", "on") for flag in flags)


def hub_offline() -> bool:
    """True when the user asked not to touch the network, or when the hub cannot be reached (one
    short connection check per process, `playground.core.hub_reach`): either way a missing
    checkpoint fails at once instead of retrying its downloads for minutes."""
    return offline_requested() or not hub_reachable()


def offline_reason() -> str:
    """Why we are offline, for messages: ``HF_HUB_OFFLINE=1``, or the hub cannot be reached."""
    return "HF_HUB_OFFLINE=1" if offline_requested() else f"the hub ({hub_host()}) cannot be reached"


def missing(spec: ModelSpec, why: str, checkpoint: Checkpoint | None = None) -> MissingWeightsError:
    """The one-line error for weights we cannot get, naming ``checkpoint`` (default: the spec's);
    for a gated repo it says how to get access (the hub answers 401/403 or "gated" without it, and
    offline we cannot tell, so it always does)."""
    label = checkpoint.label if checkpoint else spec.checkpoint
    access = (
        f"{spec.title} is gated: ask for access on https://huggingface.co/{spec.checkpoint} "
        "(logged in, accept its licence), then set HF_TOKEN to an access token of that account. "
        if spec.gated
        else ""
    )
    return MissingWeightsError(
        f"{spec.title} weights ({label}) are not available: {why}. {access}"
        f"Fetch them with `python -m playground download {spec.key}` on a machine with internet "
        f"(or pass --checkpoint {spec.key}=PATH); to try the app without them, start it with --weights tiny."
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


def torchvision_state_dict(spec: ModelSpec, asked: str | None = None) -> dict:
    """The state dict for a torchvision spec: the ``--checkpoint`` file asked for, then the
    torch hub cache, then a download."""
    checkpoint = resolve_checkpoint(spec, asked)
    if checkpoint.kind == "local":
        return read_state_dict(spec, Path(checkpoint.location), checkpoint)
    cached = torchvision_cache_path(spec)
    if cached.is_file():
        return read_state_dict(spec, cached, checkpoint)
    if hub_offline():
        raise missing(spec, f"not in the torch hub cache ({cached.parent}) and HF_HUB_OFFLINE=1")
    try:
        return torchvision_weights(spec).get_state_dict(progress=True, check_hash=True)
    except (urllib.error.URLError, OSError, RuntimeError) as error:
        raise missing(spec, f"the download failed ({_first_line(error)})") from None


def torchhub_cache_path(spec: ModelSpec) -> Path:
    """Where torch hub keeps (or would keep) the file at the URL ``spec.checkpoint``."""
    return hub_checkpoints_dir() / os.path.basename(spec.checkpoint)


def torchhub_state_dict(spec: ModelSpec, asked: str | None = None) -> dict:
    """The state dict at the URL ``spec.checkpoint`` (a torch hub release file).

    Read from the ``--checkpoint`` file asked for, else from ``$TORCH_HOME/hub/checkpoints/<file
    name>``, else downloaded there first (with a progress bar).
    """
    checkpoint = resolve_checkpoint(spec, asked)
    if checkpoint.kind == "local":
        return read_state_dict(spec, Path(checkpoint.location), checkpoint)
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
    return read_state_dict(spec, cached, checkpoint)


def read_state_dict(spec: ModelSpec, path: Path, checkpoint: Checkpoint | None = None) -> dict:
    """Read a ``.safetensors`` or ``.pth`` file without executing pickled code; messages name
    ``checkpoint`` (default: the spec's)."""
    if not path.is_file():
        raise missing(spec, f"no file at {path}", checkpoint)
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any decoding failure means the file is unusable
        raise missing(spec, f"{path} is corrupt or not a checkpoint ({_first_line(error)})", checkpoint) from None


def load_fitting(spec: ModelSpec, model, state: dict, asked: str | None = None) -> None:
    """``model.load_state_dict(state)``, or one `WeightsMismatchError` line naming the checkpoint
    and the first missing, unexpected or wrongly shaped keys (never torch's multi-page text)."""
    expected = model.state_dict()
    wrong = [
        f"{name} {tuple(state[name].shape)} vs {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in state and getattr(state[name], "shape", tensor.shape) != tensor.shape
    ]
    missing_keys, unexpected_keys = set(expected) - set(state), set(state) - set(expected)
    if missing_keys or unexpected_keys or wrong:
        raise mismatch(spec, resolve_checkpoint(spec, asked).label, missing_keys, unexpected_keys, wrong)
    model.load_state_dict(state)


def mismatch(spec: ModelSpec, label: str, missing_keys, unexpected_keys, wrong=()) -> WeightsMismatchError:
    """The line for checkpoint ``label`` whose keys do not fit ``spec``'s model."""
    parts = [
        _listed(sorted(missing_keys), "missing"),
        _listed(sorted(unexpected_keys), "unexpected"),
        _listed(list(wrong), "wrong shape"),
    ]
    return WeightsMismatchError(
        f"{spec.title} checkpoint {label} does not fit the model: {'; '.join(p for p in parts if p)}. "
        "Is it a checkpoint of this architecture?"
    )


def _listed(keys: list[str], what: str, shown: int = 3) -> str:
    if not keys:
        return ""
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return f"{what} {', '.join(keys[:shown])}{more}"


# ---- Hugging Face hub ids -----------------------------------------------------------------


def is_cached(spec: ModelSpec, asked: str | None = None) -> bool:
    """True when ``spec``'s pretrained checkpoint (every component's, for composites; ``asked``
    when given) is local and loadable."""
    from playground.core.registry import get_spec

    if spec.components:
        return all(is_cached(get_spec(key)) for key in spec.components)
    if asked:
        try:
            checkpoint = resolve_checkpoint(spec, asked)
        except MissingWeightsError:
            return False
        if checkpoint.kind == "local":
            return True
        return not missing_files(checkpoint.location, checkpoint.revision, spec.tokenizer)
    if spec.source == "torchvision":
        return torchvision_cache_path(spec).is_file()
    if spec.source == "torchhub":
        return torchhub_cache_path(spec).is_file()
    if spec.source == "huggingface":
        return not missing_files(spec.checkpoint, spec.revision, spec.tokenizer)
    return False


def ensure_available(spec: ModelSpec, asked: str | None = None) -> None:
    """Raise `MissingWeightsError` at once when the checkpoint asked for cannot be had: a path that
    is not there, a value that is neither a path nor a hub id, or offline with nothing (or half a
    download) in the cache; before any model code (transformers takes seconds to import) is loaded."""
    if spec.components:
        return
    checkpoint = resolve_checkpoint(spec, asked)
    if checkpoint.kind == "hub" and hub_offline():
        lacking = missing_files(checkpoint.location, checkpoint.revision, spec.tokenizer)
        if lacking:
            raise missing(spec, _cache_gap(lacking), checkpoint)
    elif checkpoint.kind in ("torchvision", "torchhub") and hub_offline() and not is_cached(spec):
        raise missing(spec, f"not in the torch hub cache and {offline_reason()}", checkpoint)


def _cache_gap(lacking: list[str]) -> str:
    """Why a hub checkpoint cannot load offline: not cached at all, or a half-finished download."""
    if lacking[0] == "config.json" and len(lacking) >= 3:
        return f"not in the Hugging Face cache and {offline_reason()}"
    return f"the Hugging Face cache holds an unfinished download (missing {', '.join(lacking)}) and {offline_reason()}"


def hf_processor(spec: ModelSpec, processor_class: type[T], asked: str | None = None, **kwargs: object) -> T:
    """``processor_class.from_pretrained`` of the checkpoint asked for (default: the spec's)."""
    checkpoint = _loadable(spec, asked)
    return _from_pretrained(spec, processor_class.from_pretrained, checkpoint, **kwargs)  # type: ignore[attr-defined]


def hf_model(spec: ModelSpec, model_class: type[T], asked: str | None = None, **kwargs: object) -> T:
    """``model_class.from_pretrained`` of the checkpoint asked for, in float32 whatever its config
    declares; a checkpoint whose keys do not fit the model raises `WeightsMismatchError`."""
    import torch

    checkpoint = _loadable(spec, asked)
    model, info = _from_pretrained(
        spec,
        model_class.from_pretrained,  # type: ignore[attr-defined]
        checkpoint,
        dtype=torch.float32,
        output_loading_info=True,
        **kwargs,
    )
    wrong = [f"{key} {tuple(got)} vs {tuple(want)}" for key, got, want in info.get("mismatched_keys", ())]
    if info.get("missing_keys") or info.get("unexpected_keys") or wrong:
        raise mismatch(spec, checkpoint.label, info.get("missing_keys", ()), info.get("unexpected_keys", ()), wrong)
    return model


def _loadable(spec: ModelSpec, asked: str | None) -> Checkpoint:
    ensure_available(spec, asked)
    return resolve_checkpoint(spec, asked)


def _from_pretrained(spec: ModelSpec, loader: Callable[..., T], checkpoint: Checkpoint, **kwargs: object) -> T:
    extra = {"revision": checkpoint.revision} if checkpoint.revision else {}
    try:
        return loader(checkpoint.location, **extra, **kwargs)
    except OSError as error:
        raise missing(spec, _first_sentence(error), checkpoint) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


def _first_sentence(error: BaseException) -> str:
    """A library's error cut at its first sentence (transformers' run to a paragraph of advice)."""
    line = _first_line(error)
    end = line.find(". ")
    return line[: end if end > 0 else len(line)].rstrip(".")


# ---- prefetching ----------------------------------------------------------------------------


def download(spec: ModelSpec) -> str:
    """Fetch ``spec``'s checkpoint into the local cache (for a hub repo: the files its loader reads,
    one weights format, nothing else); returns where it now lives."""
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
        from huggingface_hub import HfApi, snapshot_download

        try:
            listed = HfApi().list_repo_files(spec.checkpoint, revision=spec.revision)
            return snapshot_download(
                spec.checkpoint, revision=spec.revision, allow_patterns=files_to_fetch(listed, spec.tokenizer)
            )
        except OSError as error:
            raise missing(spec, _first_sentence(error)) from None
    raise MissingWeightsError(f"{spec.title}: downloading {spec.source} checkpoints is not built yet.")
