"""BigBird (TF/Keras) behaviour beyond the goldens: the block-sparse attention against a dense
oracle, per-call fall-back, padding, decoders, policies, graph and XLA compilation, `fit`,
checkpoints, attention maps and input errors. Tiny configs (block 8, 2 random blocks: inputs of
at most 72 tokens run full attention)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import keras  # noqa: E402

from aviary import BigBirdConfig  # noqa: E402
from aviary.core.block_sparse import (  # noqa: E402
    BlockSparseWarning,
    dense_mask,
    dense_multiplicity,
    plan_attention,
)
from aviary.tf import (  # noqa: E402
    TFBigBirdForCausalLM,
    TFBigBirdForMaskedLM,
    TFBigBirdForQuestionAnswering,
    TFBigBirdForSequenceClassification,
    TFBigBirdModel,
)
from aviary.tf.big_bird_attention import BlockSparseIndices, block_sparse_attention  # noqa: E402

pytestmark = [
    pytest.mark.tf,
    pytest.mark.filterwarnings("ignore::aviary.core.block_sparse.BlockSparseWarning"),
]


def tiny_config(**overrides) -> BigBirdConfig:
    values = dict(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=512,
        block_size=8,
        num_random_blocks=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BigBirdConfig(**{**values, **overrides})


def ids(batch: int, length: int, seed: int = 0) -> tf.Tensor:
    rng = np.random.default_rng(seed)
    return tf.constant(rng.integers(3, 99, (batch, length)), dtype=tf.int32)


def build(cls, config: BigBirdConfig, seed: int = 0):
    keras.utils.set_random_seed(seed)
    model = cls(config)
    model.build_with_dummies()
    return model


def model_pair(**overrides) -> tuple[TFBigBirdModel, TFBigBirdModel]:
    """A block-sparse model and an original_full model with the same weights."""
    sparse = build(TFBigBirdModel, tiny_config(**overrides))
    full = build(TFBigBirdModel, tiny_config(attention_type="original_full", **overrides))
    full.load_checkpoint_tensors(sparse.checkpoint_tensors())
    return sparse, full


# -- the attention function against a dense numpy oracle -----------------------------------------


def oracle(q, k, v, counts, query_keep):
    """q, k, v: [N, L, D]; counts: [N, L, L]; query_keep: [L]. Returns context, probabilities.

    A softmax over all keys in which each key's exp is weighted by how often the plan counts it
    (0 for masked and padding keys); rows of masked queries are 0, as the model makes them."""
    scores = np.einsum("nqd,nkd->nqk", q, k) / np.sqrt(q.shape[-1])
    scores = np.where(counts > 0, scores, -np.inf)
    weights = counts * np.exp(scores - scores.max(-1, keepdims=True))
    probs = weights / weights.sum(-1, keepdims=True)
    context = np.einsum("nqk,nkd->nqd", probs, v) * query_keep[None, :, None]
    return context, probs


ORACLE_CASES = [
    # seq_len, block_size, random blocks, heads, policy, training
    (41, 4, 1, 2, "reference", False),  # eval: block 0 counted 1 + r times
    (96, 8, 2, 2, "reference", True),
    (100, 8, 2, 2, "fixed", False),
    (130, 8, 3, 2, "resample", False),
    (64, 4, 3, 2, "fixed", True),
    (1024, 64, 1, 1, "reference", True),  # the paper-era generator (can pick the last block)
    (33, 2, 4, 2, "resample", True),
]


def make_plan(seq_len, block_size, r, heads, policy, training):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BlockSparseWarning)
        return plan_attention(
            seq_len,
            block_size=block_size,
            num_random_blocks=r,
            num_heads=heads,
            num_layers=2,
            policy=policy,
            training=training,
            rng=np.random.default_rng(3) if policy == "resample" else None,
            max_position_embeddings=max(1024, seq_len + block_size),
        )


@pytest.mark.parametrize("seq_len, block_size, r, heads, policy, training", ORACLE_CASES)
def test_block_sparse_matches_dense_oracle(seq_len, block_size, r, heads, policy, training):
    plan = make_plan(seq_len, block_size, r, heads, policy, training)
    assert plan.use_block_sparse
    rng = np.random.default_rng(seq_len * 7 + block_size)
    batch, head_dim, length = 2, 8, plan.padded_length
    q, k, v = (rng.standard_normal((batch, heads, length, head_dim)) for _ in range(3))
    # Row 0: every real token kept; row 1: a random mask that keeps the first token.
    keep = np.zeros((batch, length))
    keep[:, :seq_len] = 1.0
    keep[1, 1:seq_len] = rng.random(seq_len - 1) < 0.7
    indices = BlockSparseIndices.from_plan(plan, tf.float32)
    q_t, k_t, v_t = (tf.constant(x, dtype=tf.float32) for x in (q, k, v))
    for layer in range(plan.num_layers):
        context, probs = block_sparse_attention(
            q_t,
            k_t,
            v_t,
            indices.key_blocks[layer],
            indices.slot_penalty,
            tf.constant(keep, dtype=tf.float32),
            block_size,
            output_probabilities=True,
        )
        for row in range(batch):
            counts = dense_multiplicity(plan, layer, attention_mask=keep[row, :seq_len])
            want_context, want_probs = oracle(q[row], k[row], v[row], counts, keep[row])
            np.testing.assert_allclose(context[row].numpy(), want_context, atol=2e-5)
            np.testing.assert_allclose(probs[row].numpy(), want_probs, atol=2e-6)


def test_gradients_through_gathered_blocks_equal_dense_gradients():
    """The gradients of the gather/segment-sum formulation equal those of a dense softmax whose
    scores carry log(count) (count x exp, as the plan means), in float64."""
    plan = make_plan(40, 4, 1, 2, "reference", False)  # eval plan: duplicated block 0
    rng = np.random.default_rng(0)
    q, k, v = (tf.Variable(rng.standard_normal((1, 2, 40, 3))) for _ in range(3))
    keep = np.ones((1, 40))
    keep[0, 30:] = 0
    counts = dense_multiplicity(plan, 0, attention_mask=keep[0])  # [N, L, L]
    indices = BlockSparseIndices.from_plan(plan, tf.float64)
    weights = tf.constant(rng.standard_normal((1, 2, 40, 3)))

    with tf.GradientTape(persistent=True) as tape:
        sparse, _ = block_sparse_attention(
            q, k, v, indices.key_blocks[0], indices.slot_penalty, tf.constant(keep), 4
        )
        scores = tf.matmul(q, k, transpose_b=True) / np.sqrt(3.0)
        log_counts = np.where(counts > 0, np.log(np.maximum(counts, 1)), -np.inf)
        dense = tf.matmul(tf.nn.softmax(scores + log_counts[None], axis=-1), v)
        dense = dense * keep[:, None, :, None]
        sparse_loss = tf.reduce_sum(sparse * weights)
        dense_loss = tf.reduce_sum(dense * weights)
    for variable in (q, k, v):
        np.testing.assert_allclose(
            tape.gradient(sparse_loss, variable).numpy(),
            tape.gradient(dense_loss, variable).numpy(),
            atol=1e-9,
        )


# -- the model -----------------------------------------------------------------------------------


def test_short_input_falls_back_for_that_call_only() -> None:
    sparse, full = model_pair()
    short, long = ids(2, 72), ids(2, 80, seed=1)
    short_out = sparse(short).last_hidden_state.numpy()
    long_after_short = sparse(long).last_hidden_state.numpy()
    fresh = build(TFBigBirdModel, sparse.config, seed=5)
    fresh.load_checkpoint_tensors(sparse.checkpoint_tensors())
    long_fresh = fresh(long).last_hidden_state.numpy()
    np.testing.assert_allclose(short_out, full(short).last_hidden_state.numpy(), atol=1e-6)
    # The long call after the short one is block-sparse: as a fresh model, unlike full.
    np.testing.assert_array_equal(long_after_short, long_fresh)
    assert np.abs(long_after_short - full(long).last_hidden_state.numpy()).max() > 1e-3
    assert sparse.block_sparse.attention_type == "block_sparse"


def test_padding_is_added_and_every_per_token_output_removed() -> None:
    """83 tokens run as 88 (11 blocks): the outputs have 83 positions and equal a call on
    explicitly padded input with those positions masked."""
    sparse, _ = model_pair()
    input_ids = ids(2, 83)
    mask = np.ones((2, 83), np.int32)
    mask[1, 60:] = 0
    padded_ids = tf.concat([input_ids, tf.zeros((2, 5), tf.int32)], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((2, 5), np.int32)], axis=1)
    out = sparse(input_ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    explicit = sparse(padded_ids, attention_mask=padded_mask, output_hidden_states=True)
    assert out.last_hidden_state.shape == (2, 83, 32)
    assert all(h.shape == (2, 83, 32) for h in out.hidden_states)
    assert all(a.shape == (2, 4, 83, 83) for a in out.attentions)
    for ours, theirs in zip(out.hidden_states, explicit.hidden_states):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy()[:, :83], atol=1e-6)


def test_padding_and_fallback_warn_once_and_building_is_silent() -> None:
    import aviary.core.block_sparse as block_sparse

    block_sparse._warned_reasons.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sparse = build(TFBigBirdModel, tiny_config())  # a short dummy call: no warning
        sparse(ids(1, 83))
        sparse(ids(1, 91))
        sparse(ids(1, 40))
    messages = [str(w.message) for w in caught if issubclass(w.category, BlockSparseWarning)]
    assert len(messages) == 2
    assert "pads" in messages[0] and "full attention" in messages[1]


def test_block_sparse_attention_maps_follow_the_plan() -> None:
    """output_attentions in block-sparse mode: the dense matrix that was applied, zero outside
    the plan's pattern, rows summing to 1; asking for it does not change the outputs."""
    sparse, _ = model_pair()
    sparse.set_block_sparse_policy("fixed")
    input_ids = ids(2, 96)
    mask = np.ones((2, 96), np.float32)
    mask[1, 70:] = 0
    plain = sparse(input_ids, attention_mask=mask).last_hidden_state.numpy()
    out = sparse(input_ids, attention_mask=mask, output_attentions=True)
    np.testing.assert_allclose(out.last_hidden_state.numpy(), plain, atol=1e-5)
    plan = sparse.block_sparse.plan(96, training=False)
    for layer, probs in enumerate(out.attentions):
        probs = probs.numpy()
        assert probs.shape == (2, 4, 96, 96)
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
        allowed = dense_mask(plan, layer, attention_mask=mask[1])
        assert (probs[1][~allowed] == 0).all()
        assert probs[1][allowed].min() >= 0


def test_decoder_and_cross_attention_need_original_full() -> None:
    with pytest.raises(ValueError, match="original_full"):
        TFBigBirdForCausalLM(tiny_config(is_decoder=True))
    with pytest.raises(ValueError, match="original_full"):
        TFBigBirdModel(tiny_config(is_decoder=True, add_cross_attention=True))
    sparse, _ = model_pair()
    with pytest.raises(ValueError, match="original_full"):
        sparse(ids(1, 80), encoder_hidden_states=tf.random.normal((1, 80, 32)))
    decoder = TFBigBirdModel(tiny_config(is_decoder=True, attention_type="original_full"))
    with pytest.raises(ValueError, match="original_full"):
        decoder.set_attention_type("block_sparse")


def test_original_full_decoder_is_causal_and_caches() -> None:
    config = tiny_config(is_decoder=True, add_cross_attention=True, attention_type="original_full")
    model = build(TFBigBirdForCausalLM, config)
    input_ids = ids(1, 90).numpy()
    changed = input_ids.copy()
    changed[:, 60:] = 5
    memory = tf.random.normal((1, 7, 32), seed=0)
    a = model(input_ids, encoder_hidden_states=memory).logits.numpy()
    b = model(changed, encoder_hidden_states=memory).logits.numpy()
    np.testing.assert_allclose(a[:, :60], b[:, :60], atol=1e-6)
    assert np.abs(a[:, 60:] - b[:, 60:]).max() > 1e-3
    # Cached decoding of the last token equals the full pass.
    first = model(input_ids[:, :-1], encoder_hidden_states=memory, use_cache=True)
    assert len(first.past_key_values[0]) == 4  # self k, v + cross k, v
    step = model(
        input_ids[:, -1:], encoder_hidden_states=memory, past_key_values=first.past_key_values
    )
    np.testing.assert_allclose(step.logits.numpy()[:, -1], a[:, -1], atol=1e-5)


def test_policy_settings_are_checked() -> None:
    model, _ = model_pair()
    with pytest.raises(ValueError, match="Generator"):
        model.set_block_sparse_policy("resample")
    with pytest.raises(ValueError, match="policy"):
        model.set_block_sparse_policy("random")
    with pytest.raises(ValueError, match="only used"):
        model.set_block_sparse_policy("fixed", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="attention_type"):
        model.set_attention_type("sparse")


def test_fixed_policy_changes_eval_outputs_and_reference_eval_is_deterministic() -> None:
    sparse, _ = model_pair()
    input_ids = ids(1, 120)
    reference = sparse(input_ids).last_hidden_state.numpy()
    np.testing.assert_array_equal(sparse(input_ids).last_hidden_state.numpy(), reference)
    sparse.set_block_sparse_policy("fixed")
    fixed = sparse(input_ids).last_hidden_state.numpy()
    assert np.abs(fixed - reference).max() > 1e-4
    # "reference" in training uses the same seeded plan as "fixed" (dropout is 0 here).
    sparse.set_block_sparse_policy("reference")
    trained = sparse(input_ids, training=True).last_hidden_state.numpy()
    np.testing.assert_allclose(trained, fixed, atol=1e-6)


def test_head_mask_applies_in_block_sparse_mode() -> None:
    sparse, _ = model_pair()
    input_ids = ids(1, 96)
    plain = sparse(input_ids).last_hidden_state.numpy()
    ones = sparse(input_ids, head_mask=tf.ones(4)).last_hidden_state.numpy()
    masked = sparse(input_ids, head_mask=tf.constant([1.0, 0.0, 1.0, 1.0]))
    np.testing.assert_allclose(ones, plain, atol=1e-6)
    assert np.abs(masked.last_hidden_state.numpy() - plain).max() > 1e-3


def test_use_bias_and_rescale_embeddings() -> None:
    model = build(
        TFBigBirdModel, tiny_config(use_bias=False, rescale_embeddings=True, hidden_act="gelu_fast")
    )
    names = set(model.checkpoint_tensors())
    assert "encoder.layer.0.attention.self.query.weight" in names
    assert not any(n.endswith(("query.bias", "key.bias", "value.bias")) for n in names)
    assert {"pooler.weight", "pooler.bias"} <= names
    input_ids = ids(1, 10)
    embeddings = model.embeddings
    expected = embeddings.LayerNorm(
        embeddings.word_embeddings(input_ids) * 32**0.5
        + embeddings.token_type_embeddings.embeddings[0]
        + embeddings.position_embeddings.embeddings[:10]
    )
    out = model(input_ids, output_hidden_states=True).hidden_states[0]
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-6)


def test_bad_inputs_get_clear_errors() -> None:
    model, _ = model_pair()
    with pytest.raises(ValueError, match="input_ids contains id 99"):
        model(tf.fill((1, 80), 99))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(ids(1, 513))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(ids(1, 80), attention_mask=tf.ones((1, 79)))
    with pytest.raises(ValueError, match=r"\[batch, sequence\] attention_mask"):
        model(ids(1, 80), attention_mask=tf.ones((1, 80, 80)))
    with pytest.raises(ValueError, match="token_type_ids contains id 2"):
        model(ids(1, 80), token_type_ids=tf.fill((1, 80), 2))
    with pytest.raises(ValueError, match="either input_ids or inputs_embeds"):
        model(ids(1, 80), inputs_embeds=tf.random.normal((1, 80, 32)))
    # The plan needs the length while tracing.
    dynamic = tf.function(
        lambda x: model(x).last_hidden_state,
        input_signature=[tf.TensorSpec([None, None], tf.int32)],
    )
    with pytest.raises(ValueError, match="known while tracing"):
        dynamic(ids(1, 80))


def test_question_answering_loss_and_token_types_from_question_lengths() -> None:
    model = build(TFBigBirdForQuestionAnswering, tiny_config())
    input_ids = ids(2, 90)
    lengths = tf.constant([[5], [12]])
    out = model(
        input_ids,
        question_lengths=lengths,
        start_positions=tf.constant([20, 30]),
        end_positions=tf.constant([25, 95]),
    )
    explicit_types = tf.cast(tf.range(90)[None] >= lengths, tf.int32)
    typed = model(input_ids, question_lengths=lengths, token_type_ids=explicit_types)
    np.testing.assert_allclose(out.start_logits.numpy(), typed.start_logits.numpy(), atol=1e-6)
    assert out.pooler_output is None and np.isfinite(out.loss.numpy())
    assert out.start_logits.shape == (2, 90)


# -- graphs, XLA, fit, checkpoints ---------------------------------------------------------------


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_tf_function_and_xla_equal_eager(training: bool) -> None:
    """With padding (83 tokens -> 88) and a masked row, block-sparse attention maps included; in
    training with the "fixed" policy (dropout is 0)."""
    model = build(TFBigBirdForMaskedLM, tiny_config())
    if training:
        model.set_block_sparse_policy("fixed")
    input_ids = ids(2, 83)
    mask = np.ones((2, 83), np.int32)
    mask[1, 50:] = 0
    labels = ids(2, 83, seed=1)

    def run(batch):
        out = model(batch, training=training, output_attentions=True)
        return out.loss, out.logits, out.attentions

    batch = {"input_ids": input_ids, "attention_mask": mask, "labels": labels}
    eager = run(batch)
    graph = tf.function(run)(batch)
    xla = tf.function(run, jit_compile=True)(batch)
    flat_eager = tf.nest.flatten(eager)
    assert len(flat_eager) == 4  # loss, logits, two attention maps
    for a, b, c in zip(flat_eager, tf.nest.flatten(graph), tf.nest.flatten(xla)):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5)
        np.testing.assert_allclose(c.numpy(), a.numpy(), atol=1e-5)


def test_resample_policy_draws_per_step_in_graphs_and_refuses_xla() -> None:
    sparse, _ = model_pair()
    sparse.set_block_sparse_policy("resample", rng=np.random.default_rng(7))
    assert not sparse.supports_jit  # Keras's jit_compile="auto" then stays off
    input_ids = ids(1, 120)
    graph = tf.function(lambda x: sparse(x, training=True).last_hidden_state)
    first, second = graph(input_ids).numpy(), graph(input_ids).numpy()
    assert np.abs(first - second).max() > 1e-4  # a fresh plan at every run, not one per trace
    xla = tf.function(lambda x: sparse(x).last_hidden_state, jit_compile=True)
    with pytest.raises(ValueError, match="XLA"):
        xla(input_ids)


# The classification head reads token 0, not the pooler (as the reference): Keras says so.
@pytest.mark.filterwarnings("ignore:Gradients do not exist:UserWarning")
def test_fit_lowers_the_loss_of_a_block_sparse_classifier() -> None:
    """compile(optimizer) only: the labels travel in the input dict and the model computes its
    loss. 80 tokens (10 blocks) run block-sparse with the layer-seeded training plan."""
    config = tiny_config(num_labels=2)
    model = build(TFBigBirdForSequenceClassification, config)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 32).astype(np.int32)
    input_ids = rng.integers(5, 99, (32, 80)).astype(np.int32)
    input_ids[:, 0] = 3 + labels  # the label is readable from the first token
    mask = np.ones((32, 80), np.int32)
    mask[::2, 60:] = 0
    data = {"input_ids": input_ids, "attention_mask": mask, "labels": labels}
    dataset = tf.data.Dataset.from_tensor_slices(data).batch(8)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = model.evaluate(dataset, verbose=0)
    history = model.fit(dataset, epochs=6, verbose=0)
    after = model.evaluate(dataset, verbose=0)
    print(f"loss {before:.3f} -> {after:.3f}; train losses {history.history['loss']}")
    assert all(np.isfinite(history.history["loss"]))
    assert after < 0.5 * before
    # The traced train step holds the plan: a new policy makes Keras trace again.
    assert model.train_function is not None
    model.set_block_sparse_policy("fixed")
    assert model.train_function is None and model.test_function is None


def test_mixed_float16_block_sparse_runs_with_finite_losses() -> None:
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build(TFBigBirdForQuestionAnswering, tiny_config())
        out = model(
            ids(2, 83),
            start_positions=tf.constant([20, 30]),
            end_positions=tf.constant([25, 40]),
            output_attentions=True,
        )
    finally:
        keras.config.set_dtype_policy(previous)
    assert out.start_logits.dtype == tf.float16 and out.attentions[0].dtype == tf.float16
    # Question tokens get the largest penalty float16 holds, not inf (inf * 0 would be NaN).
    assert np.isfinite(out.start_logits.numpy()).all() and np.isfinite(out.loss.numpy())


def test_save_pretrained_round_trip_is_identical(tmp_path) -> None:
    model = build(TFBigBirdForQuestionAnswering, tiny_config())
    model.save_pretrained(tmp_path)
    reloaded, info = TFBigBirdForQuestionAnswering.from_pretrained(
        tmp_path, output_loading_info=True
    )
    assert not any(info.values()), info
    input_ids = ids(2, 83)
    for name, value in model.checkpoint_tensors().items():
        np.testing.assert_array_equal(reloaded.checkpoint_tensors()[name], value, err_msg=name)
    a, b = model(input_ids), reloaded(input_ids)
    np.testing.assert_array_equal(a.start_logits.numpy(), b.start_logits.numpy())
    np.testing.assert_array_equal(a.end_logits.numpy(), b.end_logits.numpy())
    # The `.keras` format too (the classes are registered as serializable).
    model.save(tmp_path / "qa.keras")
    from_keras = keras.saving.load_model(tmp_path / "qa.keras", compile=False)
    assert type(from_keras) is TFBigBirdForQuestionAnswering
    np.testing.assert_array_equal(from_keras(input_ids).start_logits.numpy(), a.start_logits)
