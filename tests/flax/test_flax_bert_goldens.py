"""Every `bert-*` reference case reproduced by the Flax classes (fp32, ≤ 1e-4), the Flax loss
functions reproducing the reference losses, and the call under jit, bfloat16 and dropout."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

import aviary.flax  # noqa: E402
from aviary.conversion import frameworks  # noqa: E402
from aviary.flax import modeling_utils as losses  # noqa: E402
from conftest import (  # noqa: E402
    GOLDEN_ATOL,
    LABEL_INPUTS,
    GoldenCase,
    assert_loss_close,
    compare,
    flax_golden_inputs,
    golden_cases,
)

pytestmark = pytest.mark.flax


def flax_class(case: GoldenCase):
    # The golden cases name the PyTorch classes; the library maps them to Flax names.
    return frameworks.model_class(case.class_name, "flax")


@pytest.mark.parametrize("golden", golden_cases("bert-"), indirect=True)
def test_golden(golden: GoldenCase) -> None:
    model = flax_class(golden).from_pretrained(golden.folder)
    compare(model(**flax_golden_inputs(golden)), golden, loss=False)


def golden_loss(case: GoldenCase, config) -> jax.Array:
    """The loss a training loop computes from the golden logits and labels."""
    out, inputs = case.outputs, case.inputs
    name = case.class_name
    if name == "BertForMaskedLM":
        return losses.masked_lm_loss(out["logits"], inputs["labels"])
    if name == "BertLMHeadModel":
        return losses.causal_lm_loss(out["logits"], inputs["labels"])
    if name == "BertForTokenClassification":
        return losses.token_classification_loss(out["logits"], inputs["labels"])
    if name == "BertForSequenceClassification":
        return losses.sequence_classification_loss(out["logits"], inputs["labels"], config)
    if name in ("BertForNextSentencePrediction", "BertForMultipleChoice"):
        return losses.cross_entropy_loss(out["logits"], inputs["labels"])
    if name == "BertForPreTraining":
        mlm = losses.masked_lm_loss(out["prediction_logits"], inputs["labels"])
        nsp = losses.cross_entropy_loss(
            out["seq_relationship_logits"], inputs["next_sentence_label"]
        )
        return mlm + nsp
    if name == "BertForQuestionAnswering":
        return losses.span_loss(
            out["start_logits"],
            out["end_logits"],
            inputs["start_positions"],
            inputs["end_positions"],
        )
    raise AssertionError(f"no loss for {name}")


LOSS_CASES = [c for c in golden_cases("bert-") if "loss" in GoldenCase(c).outputs]


@pytest.mark.parametrize("golden", LOSS_CASES, indirect=True)
def test_loss_functions_reproduce_golden_loss(golden: GoldenCase) -> None:
    from aviary.core.configs import BertConfig

    config = BertConfig.from_pretrained(golden.folder)
    assert_loss_close(golden_loss(golden, config), golden.outputs["loss"])


def test_loss_cases_cover_every_head() -> None:
    heads = {GoldenCase(c).class_name for c in LOSS_CASES}
    assert len(LOSS_CASES) >= 10 and "BertModel" not in heads


def test_losses_ignore_minus_100_and_clamp_spans() -> None:
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 5)), jnp.float32)
    labels = jnp.asarray([[1, -100, 4], [-100, -100, 0]])
    kept = losses.masked_lm_loss(logits, labels)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    expected = -(log_probs[0, 0, 1] + log_probs[0, 2, 4] + log_probs[1, 2, 0]) / 3
    np.testing.assert_allclose(float(kept), float(expected), rtol=1e-6)
    # A position beyond the sequence is clamped to the length and then ignored.
    start, end = logits[..., 0], logits[..., 1]
    span = losses.span_loss(start, end, jnp.asarray([1, 99]), jnp.asarray([2, 0]))
    start_lp, end_lp = jax.nn.log_softmax(start, -1), jax.nn.log_softmax(end, -1)
    want = (-start_lp[0, 1] + (-(end_lp[0, 2] + end_lp[1, 0]) / 2)) / 2
    np.testing.assert_allclose(float(span), float(want), rtol=1e-6)


@pytest.fixture(scope="module")
def masked_lm():
    case = GoldenCase("bert-masked-lm")
    return case, aviary.flax.FlaxBertForMaskedLM.from_pretrained(case.folder)


def test_jit_matches_eager_and_outputs_are_pytrees(masked_lm) -> None:
    case, model = masked_lm
    inputs = {k: jnp.asarray(v) for k, v in case.inputs.items() if k not in LABEL_INPUTS}

    @jax.jit
    def forward(params, inputs):
        return model(**inputs, params=params, output_hidden_states=True, output_attentions=True)

    jitted = forward(model.params, inputs)
    eager = model(**inputs, output_hidden_states=True, output_attentions=True)
    assert type(jitted) is type(eager) and jitted.replace(logits=None).logits is None
    for a, b in zip(jax.tree_util.tree_leaves(jitted), jax.tree_util.tree_leaves(eager)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
    compare(jitted, case, loss=False)


def test_bfloat16_computation_runs_close_to_float32(masked_lm) -> None:
    case, _ = masked_lm
    bf16 = aviary.flax.FlaxBertForMaskedLM.from_pretrained(case.folder, dtype=jnp.bfloat16)
    inputs = {k: v for k, v in case.inputs.items() if k not in LABEL_INPUTS}
    out = jax.jit(lambda params: bf16(**inputs, params=params))(bf16.params)
    assert out.logits.dtype == jnp.bfloat16
    assert jax.tree_util.tree_leaves(bf16.params)[0].dtype == jnp.float32  # params stay fp32
    logits = np.asarray(out.logits, dtype=np.float32)
    assert np.all(np.isfinite(logits))
    assert np.max(np.abs(logits - case.outputs["logits"])) < 0.1
    half = jax.jit(lambda params: bf16(**inputs, params=params))(bf16.to_bf16(bf16.params))
    assert np.all(np.isfinite(np.asarray(half.logits, np.float32)))  # bf16 parameters run too


def test_dropout_is_deterministic_given_the_rng(masked_lm) -> None:
    case, model = masked_lm
    inputs = {k: v for k, v in case.inputs.items() if k not in LABEL_INPUTS}
    train_step = jax.jit(lambda key: model(**inputs, train=True, dropout_rng=key).logits)
    key = jax.random.PRNGKey(3)
    first = np.asarray(train_step(key))
    again = np.asarray(train_step(key))
    other = np.asarray(train_step(jax.random.PRNGKey(4)))
    evaluation = np.asarray(model(**inputs).logits)
    np.testing.assert_array_equal(first, again)
    assert np.max(np.abs(first - other)) > 1e-3
    assert np.max(np.abs(first - evaluation)) > 1e-3
    # train=False ignores the rng
    np.testing.assert_array_equal(evaluation, np.asarray(model(**inputs, dropout_rng=key).logits))


def test_gradient_checkpointing_gives_the_same_numbers_and_gradients() -> None:
    case = GoldenCase("bert-seqcls-single")
    plain = aviary.flax.FlaxBertForSequenceClassification.from_pretrained(case.folder)
    remat = aviary.flax.FlaxBertForSequenceClassification(
        plain.config, gradient_checkpointing=True, _do_init=False
    )
    inputs = {k: v for k, v in case.inputs.items() if k not in LABEL_INPUTS}

    def loss(model, params):
        logits = model(**inputs, params=params).logits
        return losses.sequence_classification_loss(logits, case.inputs["labels"], plain.config)

    grads = jax.jit(jax.grad(lambda p: loss(plain, p)))(plain.params)
    remat_grads = jax.jit(jax.grad(lambda p: loss(remat, p)))(plain.params)
    for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(remat_grads)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    compare(
        remat(**inputs, params=plain.params, output_attentions=True, output_hidden_states=True),
        case,
        loss=False,
    )


def test_tuple_output_matches_fields() -> None:
    case = GoldenCase("bert-model-absolute")
    model = aviary.flax.FlaxBertModel.from_pretrained(case.folder)
    as_dict = model(**case.inputs)
    as_tuple = model(**case.inputs, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 2
    np.testing.assert_array_equal(np.asarray(as_tuple[0]), np.asarray(as_dict["last_hidden_state"]))
    np.testing.assert_array_equal(np.asarray(as_tuple[1]), np.asarray(as_dict.pooler_output))
    assert list(as_dict.keys()) == ["last_hidden_state", "pooler_output"]


def test_head_mask_zeroes_a_heads_attention() -> None:
    case = GoldenCase("bert-model-absolute")
    model = aviary.flax.FlaxBertModel.from_pretrained(case.folder)
    heads = model.config.num_attention_heads
    head_mask = np.ones((model.config.num_hidden_layers, heads), np.float32)
    head_mask[1, 2] = 0.0
    out = model(**case.inputs, head_mask=head_mask, output_attentions=True)
    assert float(jnp.abs(out.attentions[1][:, 2]).max()) == 0.0
    assert float(jnp.abs(out.attentions[0][:, 2]).max()) > 0.0
    np.testing.assert_allclose(
        np.asarray(out.attentions[0]), case.outputs["attentions_0"], atol=GOLDEN_ATOL
    )
