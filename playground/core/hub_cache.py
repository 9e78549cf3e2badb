"""Is a Hugging Face checkpoint loadable from the local cache, and which files does it need?

"Cached" means loadable: the config, the weights (one ``.safetensors`` or ``.bin`` file, or a
sharded index with every shard it names) and the processor's files (its image processor config,
and for text models a tokenizer) are all in the cache at the revision asked for. A half-finished
download (a config but no weights, or an index missing a shard) is not cached, and says what is
missing. ``download`` fetches exactly these files: one weights format, never other frameworks'.
"""

from __future__ import annotations

import json
from pathlib import Path

CONFIG = "config.json"
PROCESSOR_CONFIGS = ("preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json")
"""An image, video or multi-modal processor's config: at least one must be cached."""
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json")
"""A tokenizer's vocabulary in one of its formats: a text model needs at least one cached."""
TOKENIZER_EXTRAS = ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "merges.txt")
"""Tokenizer files fetched when the repo has them (not every repo does)."""
WEIGHTS = ("model.safetensors", "pytorch_model.bin")
INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def cached_file(repo: str, name: str, revision: str | None) -> Path | None:
    """The cached file ``name`` of ``repo`` at ``revision``, or None."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, name, revision=revision)
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def missing_files(repo: str, revision: str | None, tokenizer: bool) -> list[str]:
    """What ``repo`` at ``revision`` lacks in the cache to load; empty when it is loadable."""
    lacking = []
    if cached_file(repo, CONFIG, revision) is None:
        lacking.append(CONFIG)
    if not any(cached_file(repo, name, revision) for name in PROCESSOR_CONFIGS):
        lacking.append(" or ".join(PROCESSOR_CONFIGS[:2]))
    if tokenizer and not any(cached_file(repo, name, revision) for name in TOKENIZER_FILES):
        lacking.append("a tokenizer (" + " or ".join(TOKENIZER_FILES) + ")")
    lacking += missing_weights(repo, revision)
    return lacking


def missing_weights(repo: str, revision: str | None) -> list[str]:
    """[] when one weights file, or an index and all its shards, is cached; else what is missing."""
    if any(cached_file(repo, name, revision) for name in WEIGHTS):
        return []
    for index_name in INDEXES:
        index = cached_file(repo, index_name, revision)
        if index is not None:
            shards = sorted(set(json.loads(index.read_text()).get("weight_map", {}).values()))
            absent = [shard for shard in shards if cached_file(repo, shard, revision) is None]
            return [f"{len(absent)} of {len(shards)} weight shards ({', '.join(absent[:2])})"] if absent else []
    return ["the weights (" + " or ".join(WEIGHTS) + ")"]


def files_to_fetch(repo_files: list[str], tokenizer: bool) -> list[str]:
    """Of a repo's files, those the loader reads: the config, the processor's and tokenizer's
    files, and one weights format (safetensors when the repo has it, else ``.bin``), sharded or not."""
    wanted = {CONFIG, *PROCESSOR_CONFIGS}
    if tokenizer:
        wanted |= {*TOKENIZER_FILES, *TOKENIZER_EXTRAS}
    chosen = [name for name in repo_files if name in wanted]
    for suffix in (".safetensors", ".bin"):
        weights = [name for name in repo_files if "/" not in name and _is_weights(name, suffix)]
        if weights:
            return chosen + weights
    return chosen


def _is_weights(name: str, suffix: str) -> bool:
    """``model.safetensors``, ``model-00001-of-00002.safetensors``, ``pytorch_model.bin`` and
    their indexes; not another framework's file or an original-codebase checkpoint."""
    stem = "model" if suffix == ".safetensors" else "pytorch_model"
    return name in (f"{stem}{suffix}", f"{stem}{suffix}.index.json") or (
        name.startswith(f"{stem}-") and name.endswith(suffix)
    )
