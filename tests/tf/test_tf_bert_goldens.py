"""Every `bert-*` reference case reproduced by the TF/Keras classes (fp32, ≤ 1e-4), from the
canonical checkpoint; losses are scalar means, like PyTorch and the goldens."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from conftest import GoldenCase, compare, golden_cases, golden_model  # noqa: E402

pytestmark = pytest.mark.tf

# The reference TF next-sentence head takes `next_sentence_label` where PyTorch takes `labels`.
TF_ARGUMENT_NAMES = {"BertForNextSentencePrediction": {"labels": "next_sentence_label"}}


def tf_inputs(case: GoldenCase) -> dict:
    renames = TF_ARGUMENT_NAMES.get(case.class_name, {})
    return {renames.get(k, k): tf.constant(v) for k, v in case.inputs.items()}


@pytest.mark.parametrize("golden", golden_cases("bert-"), indirect=True)
def test_golden(golden: GoldenCase) -> None:
    model = golden_model(golden.name, "tf")
    out = model(**tf_inputs(golden), **golden.kwargs)
    diffs = compare(out, golden)
    print(golden.name, {k: f"{v:.2g}" for k, v in diffs.items()})


# Graph mode on a representative subset (decoder with cross-attention, relative positions,
# multiple choice, span loss) keeps the run short; eager mode above covers every case.
GRAPH_CASES = [
    "bert-causal-lm-cross",
    "bert-model-relative_key_query",
    "bert-multiple-choice",
    "bert-qa",
]


@pytest.mark.parametrize("golden", GRAPH_CASES, indirect=True)
def test_golden_as_keras_dict_input(golden: GoldenCase) -> None:
    """The dict format `fit` uses: everything, labels included, in the first argument, under
    `tf.function` (graph mode)."""
    model = golden_model(golden.name, "tf")
    inputs = tf_inputs(golden)
    run = tf.function(lambda batch: model(batch, training=False, **golden.kwargs))
    compare(run(inputs), golden)


def test_tuple_output_and_input_formats() -> None:
    case = GoldenCase("bert-model-absolute")
    model = golden_model(case.name, "tf")
    inputs = tf_inputs(case)
    as_dict = model(**inputs)
    as_tuple = model(**inputs, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 2
    np.testing.assert_array_equal(as_tuple[0].numpy(), as_dict["last_hidden_state"].numpy())
    np.testing.assert_array_equal(as_tuple[1].numpy(), as_dict.pooler_output.numpy())
    assert list(as_dict.keys()) == ["last_hidden_state", "pooler_output"]
    # model([ids, mask, token types]) follows the signature order; model(ids) alone has no mask.
    as_list = model([inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"]])
    np.testing.assert_array_equal(as_list.last_hidden_state.numpy(), as_dict.last_hidden_state)
    ids_only = model(inputs["input_ids"])
    explicit = model(input_ids=inputs["input_ids"])
    np.testing.assert_array_equal(ids_only.last_hidden_state.numpy(), explicit.last_hidden_state)
    with pytest.raises(ValueError, match="unknown inputs: bogus"):
        model({"input_ids": inputs["input_ids"], "bogus": inputs["input_ids"]})
