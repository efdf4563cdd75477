"""Every `bigbird-*` reference case reproduced by the Flax classes (fp32, ≤ 1e-4), the Flax loss
functions reproducing the reference losses, and the golden call under jit.

The cases have 160 tokens (20 blocks of 8), so no padding is involved (see the PyTorch golden test).
Flax heads take no labels and compute no loss: the losses are checked through the loss functions
from the golden logits, as for BERT.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

import aviary.flax  # noqa: E402
from aviary import BigBirdConfig  # noqa: E402
from aviary.conversion import frameworks  # noqa: E402
from aviary.flax import modeling_utils as losses  # noqa: E402
from conftest import (  # noqa: E402
    GOLDEN_ATOL,
    GoldenCase,
    assert_close,
    assert_loss_close,
    compare,
    flax_golden_inputs,
    golden_cases,
)

pytestmark = pytest.mark.flax


def flax_class(case: GoldenCase):
    # The golden cases name the PyTorch classes; the library maps them to Flax names.
    return frameworks.model_class(case.class_name, "flax")


@pytest.mark.parametrize("golden", golden_cases("bigbird-"), indirect=True)
def test_golden(golden: GoldenCase) -> None:
    model = flax_class(golden).from_pretrained(golden.folder)
    compare(model(**flax_golden_inputs(golden)), golden, loss=False)


def test_golden_cases_cover_every_head_and_both_attention_types() -> None:
    cases = [GoldenCase(c) for c in golden_cases("bigbird-")]
    assert {c.class_name for c in cases} >= {
        "BigBirdModel",
        "BigBirdForPreTraining",
        "BigBirdForCausalLM",
        "BigBirdForMaskedLM",
        "BigBirdForSequenceClassification",
        "BigBirdForMultipleChoice",
        "BigBirdForTokenClassification",
        "BigBirdForQuestionAnswering",
    }
    types = {BigBirdConfig.from_pretrained(c.folder).attention_type for c in cases}
    assert types == {"block_sparse", "original_full"}


def test_golden_with_attentions() -> None:
    """Asking for the attention maps in block-sparse mode leaves the outputs as they were and
    returns dense maps whose rows sum to 1 (the reference's Flax model returns None here)."""
    case = GoldenCase("bigbird-masked-lm")
    model = aviary.flax.FlaxBigBirdForMaskedLM.from_pretrained(case.folder)
    out = model(**{**flax_golden_inputs(case), "output_attentions": True})
    compare(out, case, loss=False)
    length = case.inputs["input_ids"].shape[-1]
    assert out.attentions is not None and len(out.attentions) == 2
    for probs in out.attentions:
        assert probs.shape == (2, model.config.num_attention_heads, length, length)
        np.testing.assert_allclose(np.asarray(probs).sum(-1), 1.0, atol=1e-5)


def test_block_sparse_golden_is_not_full_attention() -> None:
    """The block-sparse case really ran block-sparse: full attention on the same weights is off
    by far more than the tolerance."""
    case = GoldenCase("bigbird-model-block_sparse")
    model = aviary.flax.FlaxBigBirdModel.from_pretrained(case.folder)
    model.set_attention_type("original_full")
    out = model(**case.inputs)
    diff = np.abs(np.asarray(out.last_hidden_state) - case.outputs["last_hidden_state"]).max()
    assert diff > 100 * GOLDEN_ATOL


def golden_loss(case: GoldenCase, config) -> jax.Array:
    """The loss a training loop computes from the golden logits and labels."""
    out, inputs = case.outputs, case.inputs
    name = case.class_name
    if name == "BigBirdForMaskedLM":
        return losses.masked_lm_loss(out["logits"], inputs["labels"])
    if name == "BigBirdForCausalLM":
        return losses.causal_lm_loss(out["logits"], inputs["labels"])
    if name == "BigBirdForTokenClassification":
        return losses.token_classification_loss(out["logits"], inputs["labels"])
    if name == "BigBirdForSequenceClassification":
        return losses.sequence_classification_loss(out["logits"], inputs["labels"], config)
    if name == "BigBirdForMultipleChoice":
        return losses.cross_entropy_loss(out["logits"], inputs["labels"])
    if name == "BigBirdForPreTraining":
        mlm = losses.masked_lm_loss(out["prediction_logits"], inputs["labels"])
        nsp = losses.cross_entropy_loss(
            out["seq_relationship_logits"], inputs["next_sentence_label"]
        )
        return mlm + nsp
    if name == "BigBirdForQuestionAnswering":
        return losses.span_loss(
            out["start_logits"],
            out["end_logits"],
            inputs["start_positions"],
            inputs["end_positions"],
        )
    raise AssertionError(f"no loss for {name}")


LOSS_CASES = [c for c in golden_cases("bigbird-") if "loss" in GoldenCase(c).outputs]


@pytest.mark.parametrize("golden", LOSS_CASES, indirect=True)
def test_loss_functions_reproduce_golden_loss(golden: GoldenCase) -> None:
    config = BigBirdConfig.from_pretrained(golden.folder)
    assert_loss_close(golden_loss(golden, config), golden.outputs["loss"])


def test_loss_cases_cover_every_head() -> None:
    heads = {GoldenCase(c).class_name for c in LOSS_CASES}
    assert len(heads) == 7 and "BigBirdModel" not in heads


def test_question_answering_under_jit_with_explicit_question_lengths() -> None:
    """The golden QA case under `jax.jit` with the question lengths given explicitly (what the
    default derives from the first separator), and as a tuple."""
    case = GoldenCase("bigbird-qa")
    model = aviary.flax.FlaxBigBirdForQuestionAnswering.from_pretrained(case.folder)
    ids = case.inputs["input_ids"]
    mask = case.inputs["attention_mask"]
    derived = np.argmax(ids == model.config.sep_token_id, axis=-1) + 1  # [B]

    @jax.jit
    def forward(params, ids, mask, question_lengths):
        return model(ids, mask, question_lengths=question_lengths, params=params)

    out = forward(model.params, jnp.asarray(ids), jnp.asarray(mask), jnp.asarray(derived[:, None]))
    assert_close(out.start_logits, case.outputs["start_logits"], GOLDEN_ATOL, "start_logits")
    assert_close(out.end_logits, case.outputs["end_logits"], GOLDEN_ATOL, "end_logits")
    as_tuple = model(ids, mask, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 2  # no pooler_output by default
    assert_close(as_tuple[1], case.outputs["end_logits"], GOLDEN_ATOL, "end_logits")
    # Question tokens (but not [CLS]) are pushed out of the competition.
    start = np.asarray(out.start_logits)
    for row, q_len in enumerate(derived.tolist()):
        assert start[row, 0] > -1e3
        assert (start[row, 1:q_len] < -1e5).all()
        assert (start[row, q_len:] > -1e3).all()
