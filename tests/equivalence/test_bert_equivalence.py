"""The three frameworks give the same numbers from the same canonical weights.

One parametrised test over head x framework pair x position-embedding type x padding x mode
(eval, or train with dropout 0). Weights are written once per (head, position type) by PyTorch and
loaded by each framework's `from_pretrained`; each framework runs once per case and the pairs
compare the cached results.
"""

from __future__ import annotations

import functools
import itertools
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")
jax = pytest.importorskip("jax")

import aviary.flax  # noqa: E402
import aviary.pt  # noqa: E402
import aviary.tf  # noqa: E402
from aviary import BertConfig  # noqa: E402
from aviary.conversion import frameworks  # noqa: E402
from conftest import CROSS_FRAMEWORK_ATOL  # noqa: E402

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
PAIRS = [("pt", "tf"), ("pt", "flax"), ("tf", "flax")]
COMPARED = (
    "loss",
    "logits",
    "prediction_logits",
    "seq_relationship_logits",
    "start_logits",
    "end_logits",
    "last_hidden_state",
    "pooler_output",
    "hidden_states",
    "attentions",
    "cross_attentions",
)
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
    """Random weights for this head, written once in the canonical format."""
    # A seed per case that is the same in every process (str hashes are salted per process).
    torch.manual_seed(zlib.crc32(f"{head}-{position_type}".encode()))
    model = getattr(aviary.pt, head)(config_for(head, position_type))
    with torch.no_grad():  # non-trivial LayerNorm and bias values, so every tensor matters
        for name, param in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                param.add_(0.1 * torch.randn_like(param))
    folder = _WORKDIR / f"{head}-{position_type}"
    model.save_pretrained(folder)
    return folder


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


LABEL_KEYS = {"labels", "next_sentence_label", "start_positions", "end_positions"}


def to_numpy(value):
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return [to_numpy(v) for v in value]
    if hasattr(value, "detach"):
        return value.detach().numpy()
    return np.asarray(value)


def collect(output) -> dict:
    return {name: to_numpy(getattr(output, name, None)) for name in COMPARED}


def run_pt(head, folder, inputs, train, flags):
    model = getattr(aviary.pt, head).from_pretrained(folder)
    model.train(train)
    tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
    with torch.no_grad():
        return collect(model(**tensors, **flags))


def run_tf(head, folder, inputs, train, flags):
    model = getattr(aviary.tf, "TF" + head).from_pretrained(folder)
    if head == "BertForNextSentencePrediction":  # the reference TF head names its labels so
        inputs = {**inputs, "next_sentence_label": inputs["labels"]}
        del inputs["labels"]
    return collect(model(**{k: tf.constant(v) for k, v in inputs.items()}, **flags, training=train))


def run_flax(head, folder, inputs, train, flags):
    model = frameworks.model_class(head, "flax").from_pretrained(folder)
    without_labels = {k: v for k, v in inputs.items() if k not in LABEL_KEYS}
    flags = {k: v for k, v in flags.items() if k != "use_cache"}  # a Flax cache is explicit
    rng = jax.random.PRNGKey(0) if train else None
    out = collect(model(**without_labels, **flags, train=train, dropout_rng=rng))
    out["loss"] = None  # Flax heads compute no loss
    return out


RUNNERS = {"pt": run_pt, "tf": run_tf, "flax": run_flax}


@functools.cache
def outputs(framework: str, head: str, position_type: str, padded: bool, train: bool) -> dict:
    flags = {"output_hidden_states": True, "output_attentions": not train}
    if head == "BertLMHeadModel":
        flags["use_cache"] = False
    inputs = make_inputs(head, padded)
    return RUNNERS[framework](head, checkpoint(head, position_type), inputs, train, flags)


def assert_same(a: dict, b: dict, label: str) -> None:
    compared = 0
    for name in COMPARED:
        x, y = a[name], b[name]
        if x is None or y is None:
            continue
        xs, ys = (x, y) if isinstance(x, list) else ([x], [y])
        assert len(xs) == len(ys), f"{label} {name}: {len(xs)} vs {len(ys)} tensors"
        for i, (u, v) in enumerate(zip(xs, ys)):
            assert u.shape == v.shape, f"{label} {name}[{i}]: {u.shape} vs {v.shape}"
            diff = float(np.max(np.abs(u.astype(np.float64) - v.astype(np.float64))))
            assert diff <= CROSS_FRAMEWORK_ATOL, f"{label} {name}[{i}]: max abs diff {diff:.2e}"
            compared += 1
    assert compared >= 3, f"{label}: only {compared} tensors compared"


@pytest.mark.parametrize(
    ("head", "pair", "position_type", "padded", "train"),
    list(itertools.product(HEADS, PAIRS, POSITION_TYPES, [False, True], [False, True])),
    ids=lambda v: "-".join(v) if isinstance(v, tuple) else str(v),
)
def test_frameworks_agree(head, pair, position_type, padded, train) -> None:
    first, second = pair
    a = outputs(first, head, position_type, padded, train)
    b = outputs(second, head, position_type, padded, train)
    assert_same(a, b, f"{first} vs {second}")
