"""PyTorch and Flax BigBirdPegasus give the same numbers from the same canonical weights.

Weights are written once per head by PyTorch (`save_pretrained`, the reference's small init) and
loaded by Flax's `from_pretrained`. Each head runs with a block-sparse and an original_full
encoder on 83 source tokens (block-sparse pads them to 88 = 11 blocks of 8 and unpads again), one
row with a padded attention mask, with every hidden state and attention map requested. Generated
ids (greedy and beam search, an EOS that finishes some hypotheses early) equal PyTorch's.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")

import aviary.pt  # noqa: E402
from aviary import BigBirdPegasusConfig  # noqa: E402
from aviary.conversion import frameworks  # noqa: E402
from conftest import CROSS_FRAMEWORK_ATOL  # noqa: E402

pytestmark = [
    pytest.mark.cross,
    pytest.mark.filterwarnings("ignore::aviary.core.block_sparse.BlockSparseWarning"),
]

HEADS = [
    "BigBirdPegasusModel",
    "BigBirdPegasusForConditionalGeneration",
    "BigBirdPegasusForSequenceClassification",
    "BigBirdPegasusForQuestionAnswering",
    "BigBirdPegasusForCausalLM",
]
BATCH, LENGTH, TARGET, MEMORY = 2, 83, 7, 9
EOS = 1
_WORKDIR = Path(tempfile.mkdtemp(prefix="aviary-pegasus-equivalence-"))


def tiny_config(**overrides) -> BigBirdPegasusConfig:
    values = dict(
        vocab_size=99,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=37,
        decoder_ffn_dim=37,
        max_position_embeddings=128,
        block_size=8,
        num_random_blocks=2,
        dropout=0.0,
        num_labels=3,
    )
    return BigBirdPegasusConfig(**{**values, **overrides})


@functools.cache
def saved(head: str, seed: int = 0, init_std: float = 0.02) -> Path:
    """A PyTorch model of `head` with random weights, saved as a canonical checkpoint."""
    torch.manual_seed(seed)
    model = getattr(aviary.pt, head)(tiny_config(init_std=init_std)).eval()
    if head == "BigBirdPegasusForConditionalGeneration":
        with torch.no_grad():
            model.final_logits_bias.normal_()  # a buffer: must reach Flax too
    folder = _WORKDIR / f"{head}-{seed}-{init_std}"
    model.save_pretrained(folder)
    return folder


def load_pair(head: str, attention_type: str, **kwargs):
    folder = saved(head, **kwargs)
    pt_model = getattr(aviary.pt, head).from_pretrained(folder).eval()
    flax_model = frameworks.model_class(head, "flax").from_pretrained(folder)
    if head != "BigBirdPegasusForCausalLM":
        pt_model.set_attention_type(attention_type)
        flax_model.set_attention_type(attention_type)
    return pt_model, flax_model


def inputs_for(head: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    if head == "BigBirdPegasusForCausalLM":
        mask = np.ones((BATCH, TARGET), dtype=np.int64)
        mask[1, 5:] = 0
        memory_mask = np.ones((BATCH, MEMORY), dtype=np.int64)
        memory_mask[0, 6:] = 0
        return {
            "input_ids": rng.integers(3, 99, (BATCH, TARGET)),
            "attention_mask": mask,
            "encoder_hidden_states": rng.normal(size=(BATCH, MEMORY, 32)).astype(np.float32),
            "encoder_attention_mask": memory_mask,
        }
    input_ids = rng.integers(3, 99, (BATCH, LENGTH))
    mask = np.ones((BATCH, LENGTH), dtype=np.int64)
    mask[1, 60:] = 0
    inputs = {"input_ids": input_ids, "attention_mask": mask}
    if head == "BigBirdPegasusForSequenceClassification":
        input_ids[:, [30, LENGTH - 1]] = EOS  # the same number of EOS in every row
    elif head in ("BigBirdPegasusModel", "BigBirdPegasusForConditionalGeneration"):
        decoder_mask = np.ones((BATCH, TARGET), dtype=np.int64)
        decoder_mask[1, 5:] = 0
        inputs["decoder_input_ids"] = rng.integers(3, 99, (BATCH, TARGET))
        inputs["decoder_attention_mask"] = decoder_mask
    return inputs


def compared_fields(pt_out, flax_out) -> int:
    """Assert every array field PyTorch returns (past_key_values aside: the cache layouts
    differ) matches Flax; returns how many arrays were compared."""
    count = 0
    for name in pt_out._fields:
        expected = getattr(pt_out, name)
        if name in ("loss", "past_key_values") or expected is None:
            continue
        actual = getattr(flax_out, name)
        pairs = list(zip(actual, expected)) if isinstance(expected, tuple) else [(actual, expected)]
        if isinstance(expected, tuple):
            assert actual is not None and len(actual) == len(expected), name
        for i, (a, e) in enumerate(pairs):
            e = e.detach().numpy()
            a = np.asarray(a)
            assert a.shape == e.shape, f"{name}[{i}]: {a.shape} != {e.shape}"
            diff = float(np.max(np.abs(a - e)))
            assert diff <= CROSS_FRAMEWORK_ATOL, f"{name}[{i}]: max abs difference {diff:.3g}"
            count += 1
    return count


# The decoder-only model has no encoder and so no attention type.
CASES = [
    (head, attention_type)
    for head in HEADS
    for attention_type in ("block_sparse", "original_full")
    if head != "BigBirdPegasusForCausalLM" or attention_type == "original_full"
]


@pytest.mark.parametrize(("head", "attention_type"), CASES)
def test_pt_and_flax_agree(head: str, attention_type: str) -> None:
    pt_model, flax_model = load_pair(head, attention_type)
    inputs = inputs_for(head)
    flags = {"output_hidden_states": True, "output_attentions": True}
    with torch.no_grad():
        pt_out = pt_model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, **flags)
    flax_out = flax_model(**inputs, **flags)
    count = compared_fields(pt_out, flax_out)
    # the head's output + hidden states + attention maps (of both stacks, for seq2seq).
    assert count >= (8 if head == "BigBirdPegasusForCausalLM" else 14), count
    if head != "BigBirdPegasusForCausalLM" and attention_type == "block_sparse":
        assert flax_model.plan(LENGTH) is not None  # the call really ran block-sparse


GENERATION_SETTINGS = [
    {},
    {"num_beams": 3},
    {"num_beams": 3, "length_penalty": 0.8, "early_stopping": "never"},
    {"num_beams": 3, "num_return_sequences": 2, "early_stopping": True},
]


# A token these weights generate (without an EOS) after the first step: as EOS it finishes some
# hypotheses before the last step.
GENERATION_EOS = {"block_sparse": 39, "original_full": 93}


@pytest.mark.parametrize("attention_type", ["block_sparse", "original_full"])
def test_generated_ids_equal_pytorch(attention_type: str) -> None:
    """Greedy and beam search on weights with std 1 (so the tokens vary) and an EOS id among
    the tokens generated, which ends some hypotheses early: Flax generates PyTorch's ids."""
    head = "BigBirdPegasusForConditionalGeneration"
    eos = GENERATION_EOS[attention_type]
    pt_model, flax_model = load_pair(head, attention_type, seed=1, init_std=1.0)
    inputs = inputs_for(head)
    input_ids, mask = inputs["input_ids"], inputs["attention_mask"]
    finished_early = False
    for settings in GENERATION_SETTINGS:
        kwargs = {"max_new_tokens": 6, "eos_token_id": eos, **settings}
        want = pt_model.generate(torch.from_numpy(input_ids), torch.from_numpy(mask), **kwargs)
        got = flax_model.generate(input_ids, mask, **kwargs)
        np.testing.assert_array_equal(np.asarray(got), want.numpy(), err_msg=str(settings))
        finished_early |= bool((want.numpy()[:, 1:-1] == eos).any())
    assert finished_early  # the EOS paths were exercised


def test_causal_lm_generated_ids_equal_pytorch() -> None:
    pt_model, flax_model = load_pair(
        "BigBirdPegasusForCausalLM", "original_full", seed=2, init_std=1.0
    )
    prompt = np.random.default_rng(1).integers(3, 99, (2, 5))
    for num_beams in (1, 2):
        want = pt_model.generate(torch.from_numpy(prompt), max_new_tokens=6, num_beams=num_beams)
        got = flax_model.generate(prompt, max_new_tokens=6, num_beams=num_beams)
        np.testing.assert_array_equal(np.asarray(got), want.numpy())
