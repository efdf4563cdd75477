"""Every `bert-*` reference case reproduced by the TF/Keras classes (fp32, ≤ 1e-4), from the
canonical checkpoint; losses are scalar means, like PyTorch and the goldens."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import aviary.tf  # noqa: E402
from conftest import (  # noqa: E402
    GOLDEN_ATOL,
    GoldenCase,
    assert_close,
    assert_loss_close,
    golden_cases,
)

pytestmark = pytest.mark.tf

# The reference TF next-sentence head takes `next_sentence_label` where PyTorch takes `labels`.
TF_ARGUMENT_NAMES = {"BertForNextSentencePrediction": {"labels": "next_sentence_label"}}


def tf_inputs(case: GoldenCase) -> dict:
    renames = TF_ARGUMENT_NAMES.get(case.class_name, {})
    return {renames.get(k, k): tf.constant(v) for k, v in case.inputs.items()}


def load(case: GoldenCase, source=None):
    cls = getattr(aviary.tf, "TF" + case.class_name)
    model, info = cls.from_pretrained(source or case.folder, output_loading_info=True)
    # Every checkpoint tensor is used (relative-position tables and unused absolute positions
    # included) and every variable is loaded.
    assert not any(info.values()), info
    return model


def compare(out, case: GoldenCase, skip: tuple[str, ...] = ()) -> dict[str, float]:
    """Assert every expected field; return the max abs difference per field."""
    diffs = {}
    for name, expected in case.expected_fields().items():
        if any(s in name for s in skip):
            continue
        if name == "loss":
            assert out.loss.shape == (), "the loss is a scalar mean"
            assert_loss_close(out.loss.numpy(), expected)
            diffs[name] = abs(float(out.loss) - float(expected))
        elif isinstance(expected, list):
            actual = getattr(out, name)
            assert actual is not None and len(actual) == len(expected), name
            for i, (a, e) in enumerate(zip(actual, expected)):
                assert_close(a.numpy(), e, GOLDEN_ATOL, f"{name}[{i}]")
            diffs[name] = max(float(np.abs(a.numpy() - e).max()) for a, e in zip(actual, expected))
        else:
            actual = getattr(out, name).numpy()
            assert_close(actual, expected, GOLDEN_ATOL, name)
            diffs[name] = float(np.abs(actual - expected).max())
    return diffs


@pytest.mark.parametrize("golden", golden_cases("bert-"), indirect=True)
def test_golden(golden: GoldenCase) -> None:
    model = load(golden)
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
    model = load(golden)
    inputs = tf_inputs(golden)
    run = tf.function(lambda batch: model(batch, training=False, **golden.kwargs))
    compare(run(inputs), golden)


def test_tuple_output_and_input_formats() -> None:
    case = GoldenCase("bert-model-absolute")
    model = aviary.tf.TFBertModel.from_pretrained(case.folder)
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
