"""BigBirdPegasus (TF/Keras) behaviour beyond the goldens: the key/value cache, padding, the
per-call plan, save / load, training with `fit`, `tf.function`, and input errors. Tiny configs
(block 8, 2 random blocks: encoder inputs of at most 72 tokens run full attention)."""

from __future__ import annotations

import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from aviary import BigBirdPegasusConfig  # noqa: E402
from aviary.conversion.checkpoint import CheckpointError  # noqa: E402
from aviary.tf import (  # noqa: E402
    TFBigBirdPegasusForCausalLM,
    TFBigBirdPegasusForConditionalGeneration,
    TFBigBirdPegasusForSequenceClassification,
    TFBigBirdPegasusModel,
)
from aviary.tf.big_bird_pegasus import shift_tokens_right  # noqa: E402

pytestmark = [
    pytest.mark.tf,
    pytest.mark.filterwarnings("ignore::aviary.core.block_sparse.BlockSparseWarning"),
]

EOS, PAD, START = 1, 0, 2


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
        max_position_embeddings=512,
        block_size=8,
        num_random_blocks=2,
        dropout=0.0,
    )
    return BigBirdPegasusConfig(**{**values, **overrides})


def ids(batch: int, length: int, seed: int = 0) -> tf.Tensor:
    return tf.constant(np.random.default_rng(seed).integers(3, 99, (batch, length)))


def build(cls, seed: int = 0, **overrides):
    tf.keras.utils.set_random_seed(seed)
    model = cls(tiny_config(**overrides))
    model.build_with_dummies()
    return model


def max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


def test_cached_decoding_equals_the_full_pass() -> None:
    """One token at a time, and then in chunks, from the cache: the full decoder pass's logits
    (block-sparse encoder with a padded row)."""
    model = build(TFBigBirdPegasusForConditionalGeneration, init_std=0.2)
    input_ids = ids(2, 96)
    mask = np.ones((2, 96), np.int64)
    mask[1, 70:] = 0
    mask = tf.constant(mask)
    decoder_ids = ids(2, 7, seed=1)
    full = model(input_ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
    encoder_outputs = model.get_encoder()(input_ids=input_ids, attention_mask=mask)
    past, steps = None, []
    for t in range(7):
        out = model(
            attention_mask=mask,
            encoder_outputs=encoder_outputs,
            decoder_input_ids=decoder_ids[:, t : t + 1],
            past_key_values=past,
        )
        past = out.past_key_values
        steps.append(out.logits)
    assert max_diff(tf.concat(steps, axis=1), full) <= 1e-5
    assert len(past) == 2 and len(past[0]) == 4
    assert past[0][0].shape == (2, 4, 7, 8) and past[0][2].shape == (2, 4, 96, 8)
    first = model(
        attention_mask=mask, encoder_outputs=encoder_outputs, decoder_input_ids=decoder_ids[:, :4]
    )
    rest = model(
        attention_mask=mask,
        encoder_outputs=encoder_outputs,
        decoder_input_ids=decoder_ids[:, 4:],
        past_key_values=first.past_key_values,
    )
    assert max_diff(rest.logits, full[:, 4:]) <= 1e-5
    assert max_diff(full[:, 0], full[:, 1]) > 1e-3  # the positions differ: not a vacuous check


def test_cached_step_under_tf_function() -> None:
    """A decoding step with the cache, traced once, equals the eager step."""
    model = build(TFBigBirdPegasusForConditionalGeneration, init_std=0.2)
    input_ids, decoder_ids = ids(2, 80), ids(2, 5, seed=1)
    first = model(input_ids, decoder_input_ids=decoder_ids[:, :4])
    encoder_state = first.encoder_last_hidden_state

    @tf.function
    def step(token, past):
        return model(
            encoder_outputs=(encoder_state,), decoder_input_ids=token, past_key_values=past
        ).logits

    eager = model(
        encoder_outputs=(encoder_state,),
        decoder_input_ids=decoder_ids[:, 4:],
        past_key_values=first.past_key_values,
    ).logits
    assert max_diff(step(decoder_ids[:, 4:], first.past_key_values), eager) <= 1e-5


def test_causal_lm_is_causal_and_caches() -> None:
    model = build(TFBigBirdPegasusForCausalLM)
    assert model.config.is_decoder and not model.config.is_encoder_decoder
    input_ids = ids(2, 20).numpy()
    changed = input_ids.copy()
    changed[:, 12:] = 5
    memory = tf.constant(np.random.default_rng(3).normal(size=(2, 9, 32)), tf.float32)
    a = model(tf.constant(input_ids), encoder_hidden_states=memory).logits
    b = model(tf.constant(changed), encoder_hidden_states=memory).logits
    assert max_diff(a[:, :12], b[:, :12]) <= 1e-6
    assert max_diff(a[:, 12:], b[:, 12:]) > 1e-3
    first = model(tf.constant(input_ids[:, :-1]), encoder_hidden_states=memory)
    step = model(
        tf.constant(input_ids[:, -1:]),
        encoder_hidden_states=memory,
        past_key_values=first.past_key_values,
    )
    assert max_diff(step.logits[:, -1], a[:, -1]) <= 1e-5
    for num_beams in (1, 2):
        cached = model.generate(input_ids[:, :5], max_new_tokens=4, num_beams=num_beams)
        uncached = model.generate(
            input_ids[:, :5], max_new_tokens=4, num_beams=num_beams, use_cache=False
        )
        np.testing.assert_array_equal(cached.numpy(), uncached.numpy())
        np.testing.assert_array_equal(cached.numpy()[:, :5], input_ids[:, :5])


@pytest.mark.parametrize("attention_type", ["block_sparse", "original_full"])
def test_padding_does_not_change_the_real_tokens(attention_type: str) -> None:
    model = build(TFBigBirdPegasusForConditionalGeneration, attention_type=attention_type)
    short = ids(1, 40)
    padded = tf.concat([short, tf.zeros((1, 20), short.dtype)], axis=1)
    mask = tf.constant([[1] * 40 + [0] * 20])
    decoder_ids = ids(1, 6, seed=1)
    alone = model(short, decoder_input_ids=decoder_ids)
    with_pad = model(padded, attention_mask=mask, decoder_input_ids=decoder_ids)
    unmasked = model(padded, decoder_input_ids=decoder_ids)
    assert (
        max_diff(with_pad.encoder_last_hidden_state[:, :40], alone.encoder_last_hidden_state) < 1e-5
    )
    assert max_diff(with_pad.logits, alone.logits) <= 1e-5
    assert max_diff(unmasked.logits, alone.logits) > 1e-3  # the mask is what matters


def test_block_sparse_is_decided_per_call() -> None:
    model = build(TFBigBirdPegasusModel)
    encoder = model.get_encoder()
    plan = encoder.block_sparse.plan
    assert plan(72, training=False) is None and plan(80, training=False) is not None
    decoder_ids = ids(1, 3, seed=1)
    long = model(ids(1, 80), decoder_input_ids=decoder_ids).encoder_last_hidden_state
    model.set_attention_type("original_full")
    long_full = model(ids(1, 80), decoder_input_ids=decoder_ids).encoder_last_hidden_state
    assert max_diff(long, long_full) > 1e-3
    with pytest.raises(ValueError, match="attention_type"):
        model.set_attention_type("sparse")


def test_building_is_silent_and_keeps_the_attention_type() -> None:
    import warnings

    import aviary.core.block_sparse as block_sparse

    block_sparse._warned_reasons.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build(TFBigBirdPegasusModel)  # a short dummy call: no warning
        assert not [w for w in caught if issubclass(w.category, block_sparse.BlockSparseWarning)]
        assert model.get_encoder().block_sparse.attention_type == "block_sparse"
        model(ids(1, 40), decoder_input_ids=ids(1, 3))
    messages = [
        str(w.message) for w in caught if issubclass(w.category, block_sparse.BlockSparseWarning)
    ]
    assert len(messages) == 1 and "full attention" in messages[0]


def test_save_and_load_round_trip(tmp_path) -> None:
    model = build(TFBigBirdPegasusForConditionalGeneration)
    model.final_logits_bias.assign(np.random.default_rng(0).normal(size=(1, 99)))
    model.generation_config.num_beams = 2
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "generation_config.json").read_text())["num_beams"] == 2
    loaded = TFBigBirdPegasusForConditionalGeneration.from_pretrained(tmp_path)
    assert loaded.generation_config.num_beams == 2
    input_ids, labels = ids(2, 90), ids(2, 6, seed=1)
    a = model(input_ids, labels=labels)
    b = loaded(input_ids, labels=labels)
    assert max_diff(a.logits, b.logits) == 0.0 and float(a.loss) == float(b.loss)
    # The tied LM head is stored once, as the shared table.
    from safetensors.numpy import load_file

    stored = load_file(tmp_path / "model.safetensors")
    assert "model.shared.weight" in stored and "lm_head.weight" not in stored
    assert "model.encoder.embed_tokens.weight" not in stored
    base, info = TFBigBirdPegasusModel.from_pretrained(tmp_path, output_loading_info=True)
    assert "final_logits_bias" in info["discarded_keys"]
    assert max_diff(base.shared.embeddings, model.model.shared.embeddings) == 0.0
    # Strict loading names what is missing.
    del stored["model.decoder.layers.1.fc2.weight"]
    from safetensors.numpy import save_file

    save_file(stored, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"layers\.1\.fc2\.weight"):
        TFBigBirdPegasusForConditionalGeneration.from_pretrained(tmp_path)


def test_labels_in_the_input_dict_and_fit_lowers_the_loss() -> None:
    labels = tf.constant([[5, 6, -100, 7], [8, -100, -100, -100]])
    expected = [[START, 5, 6, PAD], [START, 8, PAD, PAD]]
    assert shift_tokens_right(labels, PAD, START).numpy().tolist() == expected
    model = build(TFBigBirdPegasusForConditionalGeneration, init_std=0.2)
    input_ids, labels = ids(2, 30), ids(2, 6, seed=1)
    from_labels = model({"input_ids": input_ids, "labels": labels})
    explicit = model(input_ids, decoder_input_ids=shift_tokens_right(labels, PAD, START))
    assert max_diff(from_labels.logits, explicit.logits) == 0.0
    assert from_labels.past_key_values is None  # labels switch the cache off
    expected_loss = tf.reduce_mean(
        tf.keras.losses.sparse_categorical_crossentropy(labels, explicit.logits, from_logits=True)
    )
    assert abs(float(from_labels.loss) - float(expected_loss)) < 1e-5
    model.compile(optimizer="adam")
    batch = {"input_ids": input_ids, "labels": labels}
    data = tf.data.Dataset.from_tensors(batch).repeat(8)
    history = model.fit(data, epochs=1, verbose=0, shuffle=False)
    after = float(model(batch).loss)
    assert after < float(from_labels.loss) - 0.5, (float(from_labels.loss), after)
    assert np.isfinite(history.history["loss"]).all()


def test_bad_inputs_get_clear_errors() -> None:
    model = build(TFBigBirdPegasusForConditionalGeneration)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(ids(1, 513), decoder_input_ids=ids(1, 3))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(ids(1, 20), decoder_input_ids=ids(1, 513))
    with pytest.raises(ValueError, match="input_ids contains id 99"):
        model(tf.fill((1, 20), 99))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(ids(1, 80), attention_mask=tf.ones((1, 79)), decoder_input_ids=ids(1, 3))
    with pytest.raises(ValueError, match="decoder attention_mask"):
        model(ids(1, 80), decoder_input_ids=ids(1, 3), decoder_attention_mask=tf.ones((1, 4)))
    with pytest.raises(ValueError, match="input_ids"):
        model.model(inputs_embeds=tf.zeros((1, 20, 32)))
    with pytest.raises(ValueError, match="labels has shape"):
        model(ids(1, 20), decoder_input_ids=ids(1, 4), labels=ids(1, 5))
    with pytest.raises(ValueError, match="num_return_sequences"):
        model.generate(ids(1, 20), num_beams=2, num_return_sequences=3)
    with pytest.raises(ValueError, match="sampling"):
        model.generate(ids(1, 20), do_sample=True)

    classifier = build(TFBigBirdPegasusForSequenceClassification)
    mismatch = ids(2, 20).numpy()
    mismatch[0, 19] = EOS
    mismatch[1, [10, 19]] = EOS
    with pytest.raises(ValueError, match="same number of <eos> tokens"):
        classifier(tf.constant(mismatch))
    with pytest.raises(ValueError, match="no <eos> token"):
        classifier(ids(2, 20))
    with pytest.raises(NotImplementedError, match="input_ids"):
        classifier(inputs_embeds=tf.zeros((1, 20, 32)))

    decoder_only = build(TFBigBirdPegasusForCausalLM)
    with pytest.raises(ValueError, match="has no encoder"):
        decoder_only.set_attention_type("original_full")
