"""Every `pegasus-*` reference case reproduced by the TF/Keras classes (fp32, ≤ 1e-4; loss
relative ≤ 1e-4; generated ids exactly), from the canonical checkpoint.

The encoder inputs have 160 tokens (20 blocks of 8), so the block-sparse cases run block-sparse
with no padding. `pegasus-conditional-generation` has `init_std=1.0`; its per-token outputs are
ill-conditioned in float32 and get the scale-aware tolerance of `golden_atol` (conftest), which
`tests/pt/test_big_bird_pegasus_goldens.py` justifies (`test_conditional_generation_case_is_ill_
conditioned` there).
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from conftest import (  # noqa: E402
    GOLDEN_ATOL,
    ILL_CONDITIONED_CASE,
    GoldenCase,
    assert_close,
    compare,
    golden_cases,
    golden_model,
    load_golden,
)

pytestmark = pytest.mark.tf

GENERATION_CASE = ILL_CONDITIONED_CASE


def tf_inputs(case: GoldenCase) -> dict:
    return {k: tf.constant(v) for k, v in case.inputs.items()}


@pytest.mark.parametrize("golden", golden_cases("pegasus-"), indirect=True)
def test_golden(golden: GoldenCase) -> None:
    model = golden_model(golden.name, "tf")
    diffs = compare(model(**tf_inputs(golden), **golden.kwargs), golden)
    print(golden.name, {k: f"{v:.2g}" for k, v in diffs.items()})
    if "loss" in golden.outputs:
        assert "loss" in diffs


@pytest.mark.parametrize("golden", ["pegasus-model-block_sparse", "pegasus-qa"], indirect=True)
def test_golden_as_keras_dict_input_in_graph_mode(golden: GoldenCase) -> None:
    """The dict format `fit` uses (labels included) under `tf.function`: the block-sparse plan
    is made while tracing."""
    model = golden_model(golden.name, "tf")
    run = tf.function(lambda batch: model(batch, training=False, **golden.kwargs))
    compare(run(tf_inputs(golden)), golden)


def test_generation_golden() -> None:
    """`generate(max_new_tokens=8)`, greedy and with 3 beams, gives the reference's ids."""
    case = GoldenCase(GENERATION_CASE)
    model = golden_model(case.name, "tf")
    ids, mask = case.inputs["input_ids"], case.inputs["attention_mask"]
    greedy = model.generate(ids, mask, max_new_tokens=8)
    beams = model.generate(tf.constant(ids), tf.constant(mask), max_new_tokens=8, num_beams=3)
    np.testing.assert_array_equal(greedy.numpy(), case.outputs["generated_greedy"])
    np.testing.assert_array_equal(beams.numpy(), case.outputs["generated_beam3"])
    assert greedy.shape == (2, 9) and greedy.dtype == tf.int64


def test_block_sparse_golden_is_not_full_attention() -> None:
    """The block-sparse case really ran block-sparse: full attention on the same weights is off
    by far more than the tolerance."""
    case = GoldenCase("pegasus-model-block_sparse")
    model = load_golden(case, "tf")
    model.set_attention_type("original_full")
    out = model(**tf_inputs(case))
    diff = np.abs(out.encoder_last_hidden_state.numpy() - case.outputs["encoder_last_hidden_state"])
    assert diff.max() > 100 * GOLDEN_ATOL


def test_tuple_outputs_follow_the_field_order() -> None:
    case = GoldenCase("pegasus-qa")
    model = golden_model(case.name, "tf")
    inputs = tf_inputs(case)
    as_tuple = model(
        inputs["input_ids"], attention_mask=inputs["attention_mask"], return_dict=False
    )
    # (start_logits, end_logits, past_key_values, encoder_last_hidden_state): no loss.
    assert len(as_tuple) == 4
    assert_close(as_tuple[0].numpy(), case.outputs["start_logits"], GOLDEN_ATOL, "start_logits")
    assert_close(
        as_tuple[3].numpy(),
        case.outputs["encoder_last_hidden_state"],
        GOLDEN_ATOL,
        "encoder_last_hidden_state",
    )
