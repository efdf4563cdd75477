"""Every case in tests/fixtures/goldens/tokenizers/*/cases.json, through the slow and the fast tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aviary.core.tokenizers import (
    BertTokenizer,
    BertTokenizerFast,
    BigBirdTokenizer,
    BigBirdTokenizerFast,
    PegasusTokenizer,
    PegasusTokenizerFast,
)

GOLDENS = Path(__file__).resolve().parents[2] / "fixtures" / "goldens" / "tokenizers"


def build(family: str, kind: str):
    folder = GOLDENS / family
    if family == "bert":
        cls = BertTokenizer if kind == "slow" else BertTokenizerFast
        return cls(vocab_file=folder / "vocab.txt")
    classes = {
        "big_bird": (BigBirdTokenizer, BigBirdTokenizerFast),
        "pegasus": (PegasusTokenizer, PegasusTokenizerFast),
    }[family]
    cls = classes[0] if kind == "slow" else classes[1]
    return cls(vocab_file=folder / "spiece.model")


def cases(family: str, kind: str) -> list[dict]:
    return json.loads((GOLDENS / family / "cases.json").read_text(encoding="utf-8"))[kind]


def case_id(case: dict) -> str:
    label = case.get("text", "batch")
    return (label[:30] or "<empty>").encode("unicode_escape").decode()


PARAMS = [
    pytest.param(family, kind, case, id=f"{family}-{kind}-{index}-{case_id(case)}")
    for family in ("bert", "big_bird", "pegasus")
    for kind in ("slow", "fast")
    for index, case in enumerate(cases(family, kind))
]
_TOKENIZERS: dict[tuple[str, str], object] = {}


def tokenizer_for(family: str, kind: str):
    key = (family, kind)
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = build(family, kind)
    return _TOKENIZERS[key]


@pytest.mark.parametrize(("family", "kind", "case"), PARAMS)
def test_golden_case(family: str, kind: str, case: dict) -> None:
    tok = tokenizer_for(family, kind)
    if "batch" in case:
        encoding = tok(
            case["batch"],
            padding=case["padding"],
            truncation=case["truncation"],
            max_length=case["max_length"],
        )
        assert encoding["input_ids"] == case["input_ids"]
        assert encoding["attention_mask"] == case["attention_mask"]
        return
    if "text_pair" in case:
        encoding = tok(
            case["text"],
            case["text_pair"],
            truncation=case["truncation"],
            max_length=case["max_length"],
            return_token_type_ids="token_type_ids" in case,
        )
        assert encoding["input_ids"] == case["input_ids"]
        if "token_type_ids" in case:
            assert encoding["token_type_ids"] == case["token_type_ids"]
        return
    encoding = tok(case["text"], return_offsets_mapping=tok.is_fast, return_token_type_ids=True)
    assert encoding["input_ids"] == case["input_ids"]
    assert tok.encode(case["text"]) == case["input_ids"]
    assert tok.convert_ids_to_tokens(case["input_ids"]) == case["tokens"]
    assert tok.convert_tokens_to_ids(case["tokens"]) == case["input_ids"]
    if "token_type_ids" in case:
        assert encoding["token_type_ids"] == case["token_type_ids"]
    if "offsets" in case:
        assert [list(span) for span in encoding["offset_mapping"]] == case["offsets"]
    assert tok.decode(case["input_ids"]) == case["decoded"]
    assert tok.decode(case["input_ids"], skip_special_tokens=True) == case["decoded_skip_special"]


@pytest.mark.parametrize("family", ["bert", "big_bird", "pegasus"])
@pytest.mark.parametrize("kind", ["slow", "fast"])
def test_tokenize_matches_golden_tokens_without_specials(family: str, kind: str) -> None:
    """`tokenize` gives the golden ids minus the special tokens the template adds.

    Ids, not strings: like the reference, the slow SentencePiece tokenizers return an unknown
    piece's surface text (which maps to the unknown id), not the string `<unk>`.
    """
    tok = tokenizer_for(family, kind)
    for case in cases(family, kind):
        if "tokens" not in case:
            continue
        body_length = len(case["input_ids"]) - tok.num_special_tokens_to_add()
        mask = tok.get_special_tokens_mask(list(range(body_length)))
        body = [i for i, special in zip(case["input_ids"], mask, strict=True) if not special]
        tokens = tok.tokenize(case["text"])
        assert tok.convert_tokens_to_ids(tokens) == body, case["text"]
        if "<unk>" not in case["tokens"]:
            assert tokens == tok.convert_ids_to_tokens(body), case["text"]
