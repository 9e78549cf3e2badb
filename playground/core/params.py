"""Declared parameters: every model says which names its forward takes and which its post-processing
takes (the idea of transformers' ``Pipeline._sanitize_parameters``). A name neither declares is an
error, so a misspelt threshold is refused instead of silently ignored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from playground.core.errors import UnknownParameterError


def split_params(
    owner: str, preprocess_names: frozenset[str], postprocess_names: frozenset[str], params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``params`` split into (preprocess, postprocess) by the declared names; `UnknownParameterError`
    names the first unknown one and lists what ``owner`` takes."""
    unknown = sorted(set(params) - preprocess_names - postprocess_names)
    if unknown:
        known = ", ".join(sorted(preprocess_names | postprocess_names)) or "no parameters"
        raise UnknownParameterError(f"{owner} has no parameter {unknown[0]!r}; it takes {known}.")
    pre = {name: value for name, value in params.items() if name in preprocess_names}
    post = {name: value for name, value in params.items() if name in postprocess_names}
    return pre, post
