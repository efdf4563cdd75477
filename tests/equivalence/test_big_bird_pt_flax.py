"""PyTorch and Flax BigBird give the same numbers from the same canonical weights.

One parametrised test over head x attention type x mode (eval, or train with dropout 0 and the
"fixed" policy). Weights are written once per head by PyTorch (`save_pretrained`) and loaded by
Flax's `from_pretrained`. The inputs have 83 tokens, so block-sparse calls pad to 88 (11 blocks of
8) and unpad again, and one row has a padded attention mask; the attention maps are compared too
(in block-sparse mode: the dense matrix that was applied).
"""

from __future__ import annotations

import functools
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")

import aviary.pt  # noqa: E402
from aviary import BigBirdConfig  # noqa: E402
from aviary.conversion import frameworks  # noqa: E402
from conftest import CROSS_FRAMEWORK_ATOL  # noqa: E402

pytestmark = [
    pytest.mark.cross,
    pytest.mark.filterwarnings("ignore::aviary.core.block_sparse.BlockSparseWarning"),
]

HEADS = [
    "BigBirdModel",
    "BigBirdForPreTraining",
    "BigBirdForCausalLM",
    "BigBirdForMaskedLM",
    "BigBirdForSequenceClassification",
    "BigBirdForMultipleChoice",
    "BigBirdForTokenClassification",
    "BigBirdForQuestionAnswering",
]
DECODERS = {"BigBirdForCausalLM"}  # original_full only, with cross-attention
COMPARED = (
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
BATCH, LENGTH, CHOICES, ENCODER_LENGTH = 2, 83, 2, 5
SEP = 66
_WORKDIR = Path(tempfile.mkdtemp(prefix="aviary-big-bird-equivalence-"))


def config_for(head: str) -> BigBirdConfig:
    decoder = head in DECODERS
    return BigBirdConfig(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=128,
        block_size=8,
        num_random_blocks=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=3,
        sep_token_id=SEP,
        is_decoder=decoder,
        add_cross_attention=decoder,
        attention_type="original_full" if decoder else "block_sparse",
    )


@functools.cache
def checkpoint(head: str) -> Path:
    """Random PyTorch weights for this head, written once in the canonical format."""
    # A seed per head that is the same in every process (str hashes are salted per process).
    torch.manual_seed(zlib.crc32(head.encode()))
    model = getattr(aviary.pt, head)(config_for(head))
    with torch.no_grad():  # non-trivial LayerNorm and bias values, so every tensor matters
        for name, param in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                param.add_(0.1 * torch.randn_like(param))
    folder = _WORKDIR / head
    model.save_pretrained(folder)
    return folder


def make_inputs(head: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shape = (BATCH, CHOICES, LENGTH) if head == "BigBirdForMultipleChoice" else (BATCH, LENGTH)
    input_ids = rng.integers(3, 99, shape)
    input_ids[input_ids == SEP] = 3
    input_ids[..., 0, 9] = SEP  # the first row's question: 10 tokens; the last row: none
    inputs = {"input_ids": input_ids, "attention_mask": np.ones(shape, np.int64)}
    inputs["attention_mask"][..., -1, 60:] = 0
    if head != "BigBirdForQuestionAnswering":  # QA derives its token types from the question
        inputs["token_type_ids"] = (np.arange(LENGTH) >= 40) * np.ones(shape, np.int64)
    if head in DECODERS:
        inputs["encoder_hidden_states"] = rng.normal(size=(BATCH, ENCODER_LENGTH, 32)).astype(
            np.float32
        )
        inputs["encoder_attention_mask"] = np.ones((BATCH, ENCODER_LENGTH), np.int64)
        inputs["encoder_attention_mask"][0, 3:] = 0
    return inputs


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


def run_pt(head: str, attention_type: str, train: bool) -> dict:
    model = getattr(aviary.pt, head).from_pretrained(checkpoint(head))
    model.set_attention_type(attention_type)
    model.train(train)
    if train:
        model.set_block_sparse_policy("fixed")
    tensors = {k: torch.from_numpy(v) for k, v in make_inputs(head).items()}
    with torch.no_grad():
        return collect(model(**tensors, output_hidden_states=True, output_attentions=True))


@functools.cache
def flax_model(head: str):
    model, info = frameworks.model_class(head, "flax").from_pretrained(
        checkpoint(head), output_loading_info=True
    )
    # Strict and complete: every PyTorch tensor has its Flax parameter, and back.
    assert all(not keys for keys in info.values()), info
    return model


def run_flax(head: str, attention_type: str, train: bool) -> dict:
    model = flax_model(head)
    model.set_attention_type(attention_type)
    model.set_block_sparse_policy("fixed" if train else "reference")
    rng = jax.random.PRNGKey(0) if train else None
    out = model(
        **make_inputs(head),
        train=train,
        dropout_rng=rng,
        output_hidden_states=True,
        output_attentions=True,
    )
    return collect(out)


def cases() -> list[tuple[str, str, str]]:
    return [
        (head, attention_type, mode)
        for head in HEADS
        for attention_type in ("block_sparse", "original_full")
        for mode in ("eval", "train")
        if not (head in DECODERS and attention_type == "block_sparse")
    ]


@pytest.mark.parametrize(
    ("head", "attention_type", "mode"), cases(), ids=["-".join(case) for case in cases()]
)
def test_pytorch_and_flax_agree(head: str, attention_type: str, mode: str) -> None:
    train = mode == "train"
    pt = run_pt(head, attention_type, train)
    fx = run_flax(head, attention_type, train)
    compared = 0
    for name in COMPARED:
        x, y = pt[name], fx[name]
        assert (x is None) == (y is None), f"{name}: PyTorch {x is None}, Flax {y is None}"
        if x is None:
            continue
        xs, ys = (x, y) if isinstance(x, list) else ([x], [y])
        assert len(xs) == len(ys), f"{name}: {len(xs)} vs {len(ys)} tensors"
        for i, (u, v) in enumerate(zip(xs, ys)):
            assert u.shape == v.shape, f"{name}[{i}]: {u.shape} vs {v.shape}"
            diff = float(np.max(np.abs(u.astype(np.float64) - v.astype(np.float64))))
            assert diff <= CROSS_FRAMEWORK_ATOL, f"{name}[{i}]: max abs diff {diff:.2e}"
            compared += 1
    # Per-token outputs are unpadded, attention maps included (2 layers, all heads).
    attentions = fx["attentions"]
    assert len(attentions) == 2 and attentions[0].shape[-2:] == (LENGTH, LENGTH)
    assert compared >= 6  # the head's outputs, 3 hidden states and 2 attention maps


def test_block_sparse_cases_pad_and_differ_from_full_attention() -> None:
    """The block-sparse cases really are block-sparse and padded: 83 tokens run as 11 blocks,
    and full attention gives other numbers."""
    model = flax_model("BigBirdModel")
    model.set_attention_type("block_sparse")
    model.set_block_sparse_policy("reference")
    plan = model.plan(LENGTH)
    assert plan is not None and plan.pad_length == 5 and plan.num_blocks == 11
    sparse = run_flax("BigBirdModel", "block_sparse", False)["last_hidden_state"]
    full = run_flax("BigBirdModel", "original_full", False)["last_hidden_state"]
    assert np.abs(sparse - full).max() > 1e-3
