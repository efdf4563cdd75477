"""TF BERT under `tf.function` and XLA, in mixed precision, and with a loss given to `compile`
(tiny reference configs, so the graphs build in seconds)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import keras  # noqa: E402

import aviary.tf  # noqa: E402
from conftest import GoldenCase  # noqa: E402

pytestmark = pytest.mark.tf


@pytest.mark.parametrize("name", ["bert-model-relative_key_query", "bert-causal-lm-cross"])
def test_eager_equals_tf_function_equals_xla(name: str) -> None:
    case = GoldenCase(name)
    model = getattr(aviary.tf, "TF" + case.class_name).from_pretrained(case.folder)
    inputs = {k: tf.constant(v) for k, v in case.inputs.items()}

    def run(batch):
        out = model(batch, training=False)
        return out.get("logits", out.get("last_hidden_state")), out.get("loss")

    eager = run(inputs)
    graph = tf.function(run)(inputs)
    xla = tf.function(run, jit_compile=True)(inputs)
    for a, b, c in zip(eager, graph, xla):
        if a is None:
            continue
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5)
        np.testing.assert_allclose(c.numpy(), b.numpy(), atol=1e-5)


def test_kv_cache_matches_full_decoding() -> None:
    """Decoding the last token with the cache of the others gives the full pass's last row."""
    case = GoldenCase("bert-causal-lm-cross")
    model = aviary.tf.TFBertLMHeadModel.from_pretrained(case.folder)
    ids, encoder = case.inputs["input_ids"], case.inputs["encoder_hidden_states"]
    full = model(ids, encoder_hidden_states=encoder, use_cache=False).logits.numpy()
    prefix = model(ids[:, :-1], encoder_hidden_states=encoder, use_cache=True)
    assert len(prefix.past_key_values) == model.config.num_hidden_layers
    assert len(prefix.past_key_values[0]) == 4  # self k, v + cross k, v
    step = model(
        ids[:, -1:],
        encoder_hidden_states=encoder,
        past_key_values=prefix.past_key_values,
        use_cache=True,
    )
    np.testing.assert_allclose(step.logits.numpy()[:, 0], full[:, -1], atol=1e-5)
    assert step.past_key_values[0][0].shape[2] == ids.shape[1]


def test_mixed_float16_runs_and_trains() -> None:
    case = GoldenCase("bert-seqcls-single")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = aviary.tf.TFBertForSequenceClassification.from_pretrained(case.folder)
        out = model(**case.inputs)
        assert out.logits.dtype == tf.float16 and out.loss.dtype == tf.float32
        reference = case.outputs["logits"]
        np.testing.assert_allclose(out.logits.numpy().astype(np.float32), reference, atol=2e-2)
        model.compile(optimizer="adam")
        data = tf.data.Dataset.from_tensor_slices(dict(case.inputs)).batch(3)
        history = model.fit(data, epochs=1, verbose=0)
        assert all(np.isfinite(history.history["loss"]))
    finally:
        keras.config.set_dtype_policy(previous)


def test_compiled_user_loss_matches_own_loss() -> None:
    """A loss given to `compile` is used with `(x, y)` data; on the same batch it equals the loss
    the model computes from labels in the input dict (both mean cross-entropy)."""
    case = GoldenCase("bert-seqcls-single")
    model = aviary.tf.TFBertForSequenceClassification.from_pretrained(case.folder)
    model.compile(optimizer="adam")
    own = model.evaluate(tf.data.Dataset.from_tensor_slices(dict(case.inputs)).batch(3), verbose=0)
    assert own == pytest.approx(float(case.outputs["loss"]), rel=1e-5)
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    inputs = {k: v for k, v in case.inputs.items() if k != "labels"}
    pairs = tf.data.Dataset.from_tensor_slices((inputs, case.inputs["labels"])).batch(3)
    assert model.evaluate(pairs, verbose=0) == pytest.approx(own, rel=1e-5)
    history = model.fit(pairs, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_fit_without_labels_or_loss_says_what_to_do() -> None:
    case = GoldenCase("bert-seqcls-single")
    model = aviary.tf.TFBertForSequenceClassification.from_pretrained(case.folder)
    model.compile(optimizer="adam")
    inputs = {k: v for k, v in case.inputs.items() if k != "labels"}
    with pytest.raises(ValueError, match="put the labels in the input dictionary"):
        model.fit(tf.data.Dataset.from_tensor_slices(inputs).batch(3), epochs=1, verbose=0)
