"""Text prompts for Grounding DINO: the user's class list in, the model's text out, boxes mapped back.

Users type "cat, dog", "cat. dog" or "a red car; person". Grounding DINO reads one lower-case
string in which every phrase ends with a period: "a red car. person.", the form
`GroundingDinoProcessor` itself builds from a list of labels (BERT splits the period off, so the
original repo's "a red car . person ." gives the same tokens). The model embeds [CLS], the
periods and [SEP] as separators, and reads at most 256 tokens.

Each box scores every token. A box is given the user's class whose tokens score highest, so a
label is always one of the user's own names, never a decoded sub-word fragment such as ``##hy``
(which the processor's own phrase decoding can produce when only part of a word passes the text
threshold).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from playground.core.errors import BadPromptError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

MAX_TOKENS = 256
"""Grounding DINO's text length (``GroundingDinoConfig.max_text_len``), [CLS] and [SEP] included."""
WARN_TOKENS = 200
"""A prompt longer than this many tokens comes back with a warning."""
BOX_THRESHOLD = 0.35
"""Grounding DINO's default: keep boxes whose best token score exceeds this."""
TEXT_THRESHOLD = 0.25
"""Grounding DINO's default: a box is named by a class whose tokens score above this."""

_SEPARATORS = re.compile(r"[,;.\n]+")


@dataclass(frozen=True)
class TextPrompt:
    """A parsed prompt, ready for the processor.

    Attributes:
        classes: the user's class names, as typed (whitespace collapsed), in order, without
            case-insensitive duplicates; class id i is ``classes[i]``.
        text: what the model reads, e.g. ``"a red car. person."``.
        spans: per class, the [start, end) token positions of its words in ``input_ids``.
        n_tokens: length of ``input_ids``, [CLS] and [SEP] included.
        warning: a line for the user when the prompt is near or past the limit, else "".
    """

    classes: tuple[str, ...]
    text: str
    spans: tuple[tuple[int, int], ...]
    n_tokens: int
    warning: str = ""


def split_classes(text: str) -> list[str]:
    """``"Cat, dog. a red car; cat"`` -> ``["Cat", "dog", "a red car"]``: split on , ; . and newlines."""
    names: list[str] = []
    seen: set[str] = set()
    for part in _SEPARATORS.split(text):
        name = " ".join(part.split())
        if name and name.lower() not in seen:
            seen.add(name.lower())
            names.append(name)
    return names


def model_text(classes: Sequence[str]) -> str:
    """``["Cat", "a red car"]`` -> ``"cat. a red car."``, Grounding DINO's lower-case period form."""
    return " ".join(f"{name.lower()}." for name in classes)


def build_prompt(
    text: str,
    tokenizer: PreTrainedTokenizerBase,
    max_tokens: int = MAX_TOKENS,
    warn_tokens: int = WARN_TOKENS,
) -> TextPrompt:
    """Parse ``text`` into a `TextPrompt` that fits ``max_tokens``.

    Classes that do not fit are dropped from the end, and the warning names them; a prompt whose
    first class alone does not fit, or that names no class, is a `BadPromptError`.
    """
    classes = split_classes(text)
    if not classes:
        raise BadPromptError('The text names no class: type one or more, e.g. "cat, dog".')
    lengths = [len(tokenizer(name.lower(), add_special_tokens=False)["input_ids"]) for name in classes]
    total = 2 + sum(n + 1 for n in lengths)  # [CLS], each class and its period, [SEP]
    kept, used = 0, 2
    while kept < len(classes) and used + lengths[kept] + 1 <= max_tokens:
        used += lengths[kept] + 1
        kept += 1
    if kept == 0:
        raise BadPromptError(
            f"'{classes[0][:60]}' alone is {lengths[0] + 3} tokens, over Grounding DINO's limit of {max_tokens}."
        )
    spans, start = [], 1
    for n in lengths[:kept]:
        spans.append((start, start + n))
        start += n + 1
    prompt_text = model_text(classes[:kept])
    n_tokens = len(tokenizer(prompt_text)["input_ids"])
    if n_tokens != used:
        raise ValueError(f"the tokenizer does not split phrases at periods ({n_tokens} != {used} tokens)")
    warning = ""
    if kept < len(classes):
        dropped = ", ".join(classes[kept:])
        warning = f"The text is {total} tokens, over Grounding DINO's limit of {max_tokens}; dropped: {dropped}."
    elif used > warn_tokens:
        warning = f"The text uses {used} of Grounding DINO's {max_tokens} tokens; classes past the limit are dropped."
    return TextPrompt(tuple(classes[:kept]), prompt_text, tuple(spans), n_tokens, warning)


def assign_classes(
    token_probs: np.ndarray, spans: Sequence[tuple[int, int]], text_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Give each box the class whose tokens it matches best.

    Args:
        token_probs: (N, T) float, sigmoid of each box's logit for each token position.
        spans: per class, its [start, end) token positions (`TextPrompt.spans`).
        text_threshold: a box whose best class scores at most this gets class -1 (no phrase).

    Returns:
        class_ids (N,) int64 (-1 where no class passes) and class_scores (N,) float32, the best
        class's highest token probability.
    """
    per_class = np.stack([token_probs[:, start:end].max(axis=1) for start, end in spans], axis=1)
    class_ids = per_class.argmax(axis=1).astype(np.int64)
    class_scores = per_class.max(axis=1).astype(np.float32)
    class_ids[class_scores <= text_threshold] = -1
    return class_ids, class_scores
