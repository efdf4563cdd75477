"""The three frameworks give the same numbers from the same canonical weights.

One parametrised test over head x framework pair x position-embedding type x padding x mode
(eval, or train with dropout 0), on the harness of `harness.py`. Weights are written once per
(head, position type) by PyTorch and loaded strictly by each framework's `from_pretrained`; each
framework runs once per case and the pairs compare the cached results, every output field.
"""

from __future__ import annotations

import functools
import itertools
import tempfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")
jax = pytest.importorskip("jax")

from aviary import BertConfig  # noqa: E402
from harness import PAIRS, assert_same, load, run, save_random_weights, seed_of  # noqa: E402

pytestmark = pytest.mark.cross

HEADS = [
    "BertModel",
    "BertForPreTraining",
    "BertLMHeadModel",
    "BertForMaskedLM",
    "BertForNextSentencePrediction",
    "BertForSequenceClassification",
    "BertForMultipleChoice",
    "BertForTokenClassification",
    "BertForQuestionAnswering",
]
POSITION_TYPES = ["absolute", "relative_key", "relative_key_query"]
BATCH, LENGTH, CHOICES, ENCODER_LENGTH = 2, 9, 3, 5
_WORKDIR = Path(tempfile.mkdtemp(prefix="aviary-equivalence-"))


def config_for(head: str, position_type: str) -> BertConfig:
    decoder = head == "BertLMHeadModel"
    return BertConfig(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        position_embedding_type=position_type,
        num_labels=3,
        is_decoder=decoder,
        add_cross_attention=decoder,
    )


@functools.cache
def checkpoint(head: str, position_type: str) -> Path:
    """Random weights for this head, written once in the canonical format by PyTorch."""
    folder = _WORKDIR / f"{head}-{position_type}"
    return save_random_weights(
        head, config_for(head, position_type), folder, seed_of(head, position_type)
    )


def make_inputs(head: str, padded: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shape = (BATCH, CHOICES, LENGTH) if head == "BertForMultipleChoice" else (BATCH, LENGTH)
    inputs = {
        "input_ids": rng.integers(1, 99, shape),
        "token_type_ids": (np.arange(LENGTH) >= 5).astype(np.int64) * np.ones(shape, np.int64),
        "attention_mask": np.ones(shape, np.int64),
    }
    if padded:
        inputs["attention_mask"][..., 0, 6:] = 0
        inputs["attention_mask"][..., -1, 3:] = 0
    labels = {
        "BertForPreTraining": {
            "labels": np.where(
                rng.random((BATCH, LENGTH)) < 0.3, rng.integers(0, 99, (BATCH, LENGTH)), -100
            ),
            "next_sentence_label": np.array([0, 1]),
        },
        "BertLMHeadModel": {"labels": rng.integers(0, 99, (BATCH, LENGTH))},
        "BertForMaskedLM": {
            "labels": np.where(
                rng.random((BATCH, LENGTH)) < 0.3, rng.integers(0, 99, (BATCH, LENGTH)), -100
            )
        },
        "BertForNextSentencePrediction": {"labels": np.array([1, 0])},
        "BertForSequenceClassification": {"labels": np.array([2, 0])},
        "BertForMultipleChoice": {"labels": np.array([1, 2])},
        "BertForTokenClassification": {"labels": rng.integers(0, 3, (BATCH, LENGTH))},
        "BertForQuestionAnswering": {
            "start_positions": np.array([1, 4]),
            "end_positions": np.array([3, 20]),
        },
    }.get(head, {})
    inputs.update(labels)
    if head == "BertLMHeadModel":
        inputs["encoder_hidden_states"] = rng.normal(size=(BATCH, ENCODER_LENGTH, 32)).astype(
            np.float32
        )
        inputs["encoder_attention_mask"] = np.ones((BATCH, ENCODER_LENGTH), np.int64)
        if padded:
            inputs["encoder_attention_mask"][0, 3:] = 0
    return inputs


@functools.cache
def model(framework: str, head: str, position_type: str):
    return load(framework, head, checkpoint(head, position_type))


@functools.cache
def outputs(framework: str, head: str, position_type: str, padded: bool, train: bool) -> dict:
    flags = {"output_hidden_states": True, "output_attentions": not train}
    if head == "BertLMHeadModel":
        flags["use_cache"] = False
    return run(
        framework,
        model(framework, head, position_type),
        make_inputs(head, padded),
        train=train,
        flags=flags,
    )


def cases() -> list:
    return [
        pytest.param(
            head,
            pair,
            position_type,
            padded,
            train,
            # One worker runs all cases of a head (the outputs are cached).
            marks=pytest.mark.xdist_group(head),
        )
        for head, pair, position_type, padded, train in itertools.product(
            HEADS, PAIRS, POSITION_TYPES, [False, True], [False, True]
        )
    ]


@pytest.mark.parametrize(
    ("head", "pair", "position_type", "padded", "train"),
    cases(),
    ids=lambda v: "-".join(v) if isinstance(v, tuple) else str(v),
)
def test_frameworks_agree(head, pair, position_type, padded, train) -> None:
    first, second = pair
    a = outputs(first, head, position_type, padded, train)
    b = outputs(second, head, position_type, padded, train)
    assert assert_same(a, b, pair) >= 3
