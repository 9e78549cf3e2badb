"""Text prompts for Grounding DINO: parsing, the model's text form, token limits and label mapping."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import GroundingDinoProcessor

from models.grounding_dino import stand_in_tokenizer
from playground.core.errors import BadPromptError
from playground.core.text_prompts import MAX_TOKENS, assign_classes, build_prompt, model_text, split_classes


@pytest.fixture(scope="module")
def tokenizer():
    """The in-memory WordPiece vocabulary, plus "red" and "hu", "##sky" (so "husky" is "hu ##sky")."""
    return stand_in_tokenizer(extra_words=["hu", "##sky", "red"])


@pytest.mark.parametrize(
    ("text", "classes"),
    [
        ("cat, dog", ["cat", "dog"]),
        ("cat. dog", ["cat", "dog"]),
        ("a red car; person", ["a red car", "person"]),
        ("  Cat ,cat;\n dog.  ", ["Cat", "dog"]),
        ("a   red\tcar.", ["a red car"]),
    ],
)
def test_split_classes(text: str, classes: list[str]) -> None:
    assert split_classes(text) == classes


def test_model_text_is_the_processors_own_form() -> None:
    classes = ["Cat", "a red car"]
    assert model_text(classes) == "cat. a red car."
    assert model_text(classes) == GroundingDinoProcessor._preprocess_input_text(None, ["cat", "a red car"])


def test_spans_cover_each_class_tokens(tokenizer) -> None:
    prompt = build_prompt("Husky, a red car; cat", tokenizer)
    assert prompt.classes == ("Husky", "a red car", "cat")
    assert prompt.text == "husky. a red car. cat."
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(prompt.text)["input_ids"])
    assert [tokens[start:end] for start, end in prompt.spans] == [["hu", "##sky"], ["a", "red", "car"], ["cat"]]
    assert prompt.n_tokens == len(tokens)
    assert prompt.warning == ""


def test_a_sub_word_match_maps_to_the_users_whole_name(tokenizer) -> None:
    """A box matching only "##sky" is labelled "Husky", never "##sky"."""
    prompt = build_prompt("Husky, a red car", tokenizer)
    probs = np.zeros((3, 256), np.float32)
    probs[0, prompt.spans[0][1] - 1] = 0.9  # only "##sky"
    probs[1, prompt.spans[1][0] + 1] = 0.6  # only "red"
    probs[2, prompt.spans[1][0]] = 0.2  # "a", below the text threshold
    class_ids, scores = assign_classes(probs, prompt.spans, text_threshold=0.25)
    assert class_ids.tolist() == [0, 1, -1]
    assert [prompt.classes[i] for i in class_ids[:2]] == ["Husky", "a red car"]
    np.testing.assert_allclose(scores, [0.9, 0.6, 0.2])


def test_separator_tokens_never_label_a_box(tokenizer) -> None:
    prompt = build_prompt("cat, dog", tokenizer)
    probs = np.zeros((1, 256), np.float32)
    probs[0, 0] = probs[0, prompt.spans[0][1]] = 0.99  # [CLS] and the period after "cat"
    class_ids, _ = assign_classes(probs, prompt.spans, text_threshold=0.25)
    assert class_ids.tolist() == [-1]


def test_a_long_prompt_warns_before_the_limit(tokenizer) -> None:
    names = [f"{x} {y}" for x in "abcdefghij" for y in "abcdefg"]  # 70 classes of 2 tokens and a period
    prompt = build_prompt(", ".join(names), tokenizer)
    assert prompt.n_tokens == 2 + 70 * 3
    assert prompt.classes == tuple(names)
    assert prompt.warning == "The text uses 212 of Grounding DINO's 256 tokens; classes past the limit are dropped."


def test_an_over_long_prompt_is_truncated_by_whole_classes(tokenizer) -> None:
    names = [f"dog {i}" for i in range(120)]  # "dog" and 1 or 2 digit pieces, then a period
    prompt = build_prompt(", ".join(names), tokenizer)
    assert prompt.n_tokens <= MAX_TOKENS
    assert prompt.classes == tuple(names[: len(prompt.classes)])
    assert "over Grounding DINO's limit of 256" in prompt.warning
    assert names[-1] in prompt.warning and names[len(prompt.classes)] in prompt.warning
    assert "\n" not in prompt.warning


@pytest.mark.parametrize("text", ["", " , ; . ", "\n"])
def test_a_prompt_without_classes_is_refused(tokenizer, text: str) -> None:
    with pytest.raises(BadPromptError, match="names no class"):
        build_prompt(text, tokenizer)


def test_a_single_class_over_the_limit_is_refused(tokenizer) -> None:
    with pytest.raises(BadPromptError, match="over Grounding DINO's limit"):
        build_prompt("zebra " * 300, tokenizer)
