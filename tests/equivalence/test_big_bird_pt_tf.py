"""PyTorch and TF/Keras BigBird give the same numbers from the same canonical weights.

One parametrised test over head x attention type x padding x mode. Weights are written once per
(head, attention type) by PyTorch and loaded by each framework's `from_pretrained`. "Padded" means
83 tokens (the model pads them to 88 = 11 blocks of 8 and unpads every output) with masked tokens
in one row; unpadded inputs have exactly 88 tokens. Eval uses the reference policy (its all-zero
eval plan), train mode uses dropout 0 and the "fixed" policy. Attention maps are compared too:
in block-sparse mode they are the dense probabilities actually applied.
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

import aviary.pt  # noqa: E402
import aviary.tf  # noqa: E402
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
ATTENTION_TYPES = ["block_sparse", "original_full"]
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
BATCH, CHOICES, ENCODER_LENGTH, HIDDEN = 2, 3, 5, 32
SEP = 66  # the config's sep_token_id: the QA head derives question lengths from it
_WORKDIR = Path(tempfile.mkdtemp(prefix="aviary-bigbird-equivalence-"))


def config_for(head: str, attention_type: str, **overrides) -> BigBirdConfig:
    decoder = head == "BigBirdForCausalLM"  # block-sparse attention is neither causal nor cross
    values = dict(
        vocab_size=99,
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=128,
        block_size=8,
        num_random_blocks=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=3,
        attention_type=attention_type,
        is_decoder=decoder,
        add_cross_attention=decoder,
    )
    return BigBirdConfig(**{**values, **overrides})


def cases() -> list[tuple[str, str, bool, bool]]:
    out = []
    for head, attention_type, padded, train in itertools.product(
        HEADS, ATTENTION_TYPES, [False, True], [False, True]
    ):
        if head == "BigBirdForCausalLM" and attention_type == "block_sparse":
            continue  # refused with a clear error (tested in the model tests)
        out.append((head, attention_type, padded, train))
    return out


@functools.cache
def checkpoint(head: str, attention_type: str) -> Path:
    """Random weights for this head, written once in the canonical format by PyTorch."""
    # A seed per case that is the same in every process (str hashes are salted per process).
    torch.manual_seed(zlib.crc32(f"{head}-{attention_type}".encode()))
    model = getattr(aviary.pt, head)(config_for(head, attention_type))
    with torch.no_grad():  # non-trivial LayerNorm and bias values, so every tensor matters
        for name, param in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                param.add_(0.1 * torch.randn_like(param))
    folder = _WORKDIR / f"{head}-{attention_type}"
    model.save_pretrained(folder)
    return folder


def make_inputs(head: str, padded: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    length = 83 if padded else 88
    shape = (BATCH, CHOICES, length) if head == "BigBirdForMultipleChoice" else (BATCH, length)
    input_ids = rng.integers(3, 99, shape)
    input_ids[input_ids == SEP] = 5
    inputs = {"input_ids": input_ids, "attention_mask": np.ones(shape, np.int64)}
    if head == "BigBirdForQuestionAnswering":
        input_ids[0, 9] = SEP  # question of 10 tokens; row 1 has none (only [CLS] is question)
    else:
        inputs["token_type_ids"] = (np.arange(length) >= 40).astype(np.int64) * np.ones(
            shape, np.int64
        )
    if padded:
        inputs["attention_mask"][..., 0, 61:] = 0
        inputs["attention_mask"][..., -1, 30:] = 0

    def mlm_labels():
        return np.where(
            rng.random((BATCH, length)) < 0.3, rng.integers(0, 99, (BATCH, length)), -100
        )

    labels = {
        "BigBirdForPreTraining": {"labels": mlm_labels(), "next_sentence_label": np.array([0, 1])},
        "BigBirdForCausalLM": {"labels": rng.integers(0, 99, (BATCH, length))},
        "BigBirdForMaskedLM": {"labels": mlm_labels()},
        "BigBirdForSequenceClassification": {"labels": np.array([2, 0])},
        "BigBirdForMultipleChoice": {"labels": np.array([1, 2])},
        "BigBirdForTokenClassification": {"labels": rng.integers(0, 3, (BATCH, length))},
        "BigBirdForQuestionAnswering": {
            "start_positions": np.array([12, 40]),
            "end_positions": np.array([15, 120]),
        },
    }.get(head, {})
    inputs.update(labels)
    if head == "BigBirdForCausalLM":
        inputs["encoder_hidden_states"] = rng.normal(size=(BATCH, ENCODER_LENGTH, HIDDEN)).astype(
            np.float32
        )
        inputs["encoder_attention_mask"] = np.ones((BATCH, ENCODER_LENGTH), np.int64)
        if padded:
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


@functools.cache
def pt_model(head: str, attention_type: str):
    return getattr(aviary.pt, head).from_pretrained(checkpoint(head, attention_type))


@functools.cache
def tf_model(head: str, attention_type: str):
    cls = frameworks.model_class(head, "tf")
    model, info = cls.from_pretrained(checkpoint(head, attention_type), output_loading_info=True)
    assert not any(info.values()), info  # every tensor of the PyTorch checkpoint, strictly
    return model


def run_pt(model, inputs, train, flags):
    model.train(train)
    tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
    with torch.no_grad():
        return collect(model(**tensors, **flags))


def run_tf(model, inputs, train, flags):
    tensors = {k: tf.constant(v) for k, v in inputs.items()}
    return collect(model(**tensors, **flags, training=train))


def assert_same(a: dict, b: dict, label: str) -> float:
    compared, worst = 0, 0.0
    for name in COMPARED:
        x, y = a[name], b[name]
        assert (x is None) == (y is None), f"{label} {name}: present in only one framework"
        if x is None:
            continue
        xs, ys = (x, y) if isinstance(x, list) else ([x], [y])
        assert len(xs) == len(ys), f"{label} {name}: {len(xs)} vs {len(ys)} tensors"
        for i, (u, v) in enumerate(zip(xs, ys)):
            assert u.shape == v.shape, f"{label} {name}[{i}]: {u.shape} vs {v.shape}"
            u, v = u.astype(np.float64), v.astype(np.float64)
            if name in ("start_logits", "end_logits"):
                # Question tokens sit near -1e6, where float32 steps are 0.0625: compare them
                # relatively, and every other position absolutely.
                far = np.abs(v) > 1e5
                np.testing.assert_allclose(u[far], v[far], rtol=1e-7, err_msg=f"{label} {name}")
                u, v = np.where(far, 0.0, u), np.where(far, 0.0, v)
            diff = float(np.max(np.abs(u - v))) if u.size else 0.0
            assert diff <= CROSS_FRAMEWORK_ATOL, f"{label} {name}[{i}]: max abs diff {diff:.2e}"
            worst = max(worst, diff)
            compared += 1
    assert compared >= 3, f"{label}: only {compared} tensors compared"
    return worst


def outputs_of_both(head, attention_type, padded, train, policy, rng_seed=None):
    flags = {"output_hidden_states": True, "output_attentions": True}
    if head == "BigBirdForCausalLM":
        flags["use_cache"] = False
    inputs = make_inputs(head, padded)
    results = []
    for model, run in (
        (pt_model(head, attention_type), run_pt),
        (tf_model(head, attention_type), run_tf),
    ):
        rng = np.random.default_rng(rng_seed) if rng_seed is not None else None
        model.set_block_sparse_policy(policy, rng)
        results.append(run(model, inputs, train, flags))
        model.set_block_sparse_policy("reference")
    return results


@pytest.mark.parametrize(
    ("head", "attention_type", "padded", "train"),
    cases(),
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_pytorch_and_tf_agree(head, attention_type, padded, train) -> None:
    a, b = outputs_of_both(head, attention_type, padded, train, "fixed" if train else "reference")
    if attention_type == "block_sparse" and head != "BigBirdForMultipleChoice":
        length = 83 if padded else 88
        assert a["attentions"][0].shape[-2:] == (length, length)  # unpadded again
    worst = assert_same(a, b, "pt vs tf")
    print(f"{head} {attention_type} padded={padded} train={train}: max |diff| {worst:.2e}")


def test_resample_policy_draws_the_same_plans_from_the_same_seed() -> None:
    """The plan comes from the core planner in both frameworks: one generator seed, one plan."""
    a, b = outputs_of_both("BigBirdForMaskedLM", "block_sparse", True, True, "resample", 11)
    assert_same(a, b, "pt vs tf, resample")
    c, _ = outputs_of_both("BigBirdForMaskedLM", "block_sparse", True, True, "resample", 12)
    assert np.abs(c["logits"] - a["logits"]).max() > 1e-4  # another seed, other random blocks


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_tf_checkpoint_loads_in_pytorch(tied: bool, tmp_path) -> None:
    """The other direction: TF writes the canonical checkpoint (the tied decoder once, an untied
    one as `cls.predictions.decoder.weight`) and PyTorch loads it strictly."""
    config = config_for("BigBirdForMaskedLM", "block_sparse", tie_word_embeddings=tied)
    model = aviary.tf.TFBigBirdForMaskedLM(config)
    model.build_with_dummies()
    names = set(model.checkpoint_tensors())
    assert ("cls.predictions.decoder.weight" in names) == (not tied)
    model.save_pretrained(tmp_path)
    torch_model, info = aviary.pt.BigBirdForMaskedLM.from_pretrained(
        tmp_path, output_loading_info=True
    )
    assert not any(info.values()), info
    inputs = make_inputs("BigBirdForMaskedLM", padded=True)
    flags = {"output_hidden_states": True, "output_attentions": True}
    assert_same(
        run_pt(torch_model, inputs, False, flags), run_tf(model, inputs, False, flags), "tf->pt"
    )
