"""Declared parameters: every model says which names its forward takes and which its post-processing
takes (the idea of transformers' ``Pipeline._sanitize_parameters``). A name neither declares is an
error, so a misspelt threshold is refused instead of silently ignored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from playground.core.errors import UnknownParameterError


def split_params(
    owner: str, forward_names: frozenset[str], postprocess_names: frozenset[str], params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``params`` split into (forward, postprocess) by the declared names; `UnknownParameterError`
    names the first unknown one and lists what ``owner`` takes."""
    unknown = sorted(set(params) - forward_names - postprocess_names)
    if unknown:
        known = ", ".join(sorted(forward_names | postprocess_names)) or "no parameters"
        raise UnknownParameterError(f"{owner} has no parameter {unknown[0]!r}; it takes {known}.")
    forward = {name: value for name, value in params.items() if name in forward_names}
    post = {name: value for name, value in params.items() if name in postprocess_names}
    return forward, post
