"""Every `pegasus-*` reference case reproduced by the Flax classes (fp32, ≤ 1e-4), the Flax loss
functions reproducing the reference losses, and the call under `jax.jit`. The generated ids (greedy
and 3 beams) are checked exactly with the generation tests, which load the same case
(`test_flax_big_bird_pegasus_model.py`, `test_generation_with_and_without_cache_and_eos_padding`).

Flax heads take no labels: the `pegasus-conditional-generation` case's decoder inputs are built
from its labels with `prepare_decoder_input_ids_from_labels` (what the PyTorch head does). That
case has `init_std=1.0`, so its per-token decoder outputs are ill-conditioned in float32 and get
the scale-aware tolerance of `golden_atol` (conftest; justified by
`tests/pt/test_big_bird_pegasus_goldens.py`, `test_conditional_generation_case_is_ill_conditioned`).
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from aviary.conversion import frameworks  # noqa: E402
from aviary.core.configs import BigBirdPegasusConfig  # noqa: E402
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


def load(case: GoldenCase):
    # The golden cases name the PyTorch classes; the library maps them to Flax names.
    return frameworks.model_class(case.class_name, "flax").from_pretrained(case.folder)


def model_inputs(case: GoldenCase, model) -> dict:
    """The case's Flax inputs; the conditional-generation head's decoder inputs are its labels
    shifted right (what the PyTorch head does with labels)."""
    inputs = flax_golden_inputs(case)
    if case.class_name == "BigBirdPegasusForConditionalGeneration":
        inputs["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(
            case.inputs["labels"]
        )
    return inputs


@pytest.mark.parametrize("golden", golden_cases("pegasus-"), indirect=True)
def test_golden(golden: GoldenCase) -> None:
    model = load(golden)
    compare(model(**model_inputs(golden, model)), golden, loss=False)


def golden_loss(case: GoldenCase):
    """The loss a training loop computes from the golden logits and labels."""
    out, inputs = case.outputs, case.inputs
    name = case.class_name
    if name in ("BigBirdPegasusForConditionalGeneration", "BigBirdPegasusForCausalLM"):
        # Neither shifts the labels (the decoder inputs are the shifted ones).
        return losses.masked_lm_loss(out["logits"], inputs["labels"])
    if name == "BigBirdPegasusForSequenceClassification":
        config = BigBirdPegasusConfig.from_pretrained(case.folder)
        return losses.sequence_classification_loss(out["logits"], inputs["labels"], config)
    if name == "BigBirdPegasusForQuestionAnswering":
        return losses.span_loss(
            out["start_logits"],
            out["end_logits"],
            inputs["start_positions"],
            inputs["end_positions"],
        )
    raise AssertionError(f"no loss for {name}")


LOSS_CASES = [c for c in golden_cases("pegasus-") if "loss" in GoldenCase(c).outputs]


@pytest.mark.parametrize("golden", LOSS_CASES, indirect=True)
def test_loss_functions_reproduce_golden_loss(golden: GoldenCase) -> None:
    assert_loss_close(golden_loss(golden), golden.outputs["loss"])


def test_loss_cases_cover_every_head() -> None:
    heads = {GoldenCase(c).class_name for c in LOSS_CASES}
    assert heads == {
        "BigBirdPegasusForConditionalGeneration",
        "BigBirdPegasusForCausalLM",
        "BigBirdPegasusForSequenceClassification",
        "BigBirdPegasusForQuestionAnswering",
    }


def test_golden_under_jit() -> None:
    """The block-sparse case as one jitted function of (params, inputs): the plan is made
    outside the trace and enters as constants."""
    case = GoldenCase("pegasus-model-block_sparse")
    model = load(case)

    @jax.jit
    def run(params, input_ids, attention_mask, decoder_input_ids):
        return model(
            input_ids,
            attention_mask,
            decoder_input_ids=decoder_input_ids,
            params=params,
            output_hidden_states=True,
        )

    compare(run(model.params, **case.inputs), case, loss=False)


def test_block_sparse_golden_is_not_full_attention() -> None:
    case = GoldenCase("pegasus-model-block_sparse")
    model = load(case)
    model.set_attention_type("original_full")
    out = model(**case.inputs)
    diff = np.abs(
        np.asarray(out.encoder_last_hidden_state) - case.outputs["encoder_last_hidden_state"]
    )
    assert diff.max() > 100 * GOLDEN_ATOL


def test_tuple_outputs_follow_the_field_order() -> None:
    case = GoldenCase("pegasus-qa")
    model = load(case)
    as_tuple = model(case.inputs["input_ids"], case.inputs["attention_mask"], return_dict=False)
    # (start_logits, end_logits, encoder_last_hidden_state): no loss, no cache.
    assert len(as_tuple) == 3
    assert_close(as_tuple[0], case.outputs["start_logits"], GOLDEN_ATOL, "start_logits")
    assert_close(
        as_tuple[2], case.outputs["encoder_last_hidden_state"], GOLDEN_ATOL, "encoder state"
    )
