"""Flax BigBird beyond the goldens: block-sparse attention against a dense numpy oracle, per-call
fall-back, padding, attention maps, jit (no needless retracing, "resample" plans as arguments),
checkpoints, a training step, decoding, policies and input errors.

Tiny configs (block 8, 2 random blocks: inputs of at most 72 tokens run full attention). XLA
compile time dominates, so the tests share a few lengths (72, 83, 96) and one model.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

from aviary import BigBirdConfig  # noqa: E402
from aviary.conversion import read_checkpoint  # noqa: E402
from aviary.core.block_sparse import (  # noqa: E402
    BlockSparseWarning,
    dense_mask,
    dense_multiplicity,
    plan_attention,
)
from aviary.flax import (  # noqa: E402
    FlaxBigBirdForCausalLM,
    FlaxBigBirdForMaskedLM,
    FlaxBigBirdForQuestionAnswering,
    FlaxBigBirdModel,
    masked_lm_loss,
)
from aviary.flax.big_bird_attention import (  # noqa: E402
    BlockSparseIndices,
    block_sparse_attention,
)

pytestmark = [
    pytest.mark.flax,
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


def ids(batch: int, length: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(3, 99, (batch, length)).astype(np.int32)


# -- the attention function against a dense oracle -----------------------------------------------


def oracle(q, k, v, counts, query_keep):
    """q, k, v: [N, L, D]; counts: [N, L, L]; query_keep: [L]. A softmax over all keys in which
    each key's exp is weighted by how often the plan counts it (0: masked). Float64."""
    scores = np.einsum("nqd,nkd->nqk", q, k) / np.sqrt(q.shape[-1])
    scores = np.where(counts > 0, scores, -np.inf)
    weights = counts * np.exp(scores - scores.max(-1, keepdims=True))
    probs = weights / weights.sum(-1, keepdims=True)
    context = np.einsum("nqk,nkd->nqd", probs, v) * query_keep[None, :, None]
    return context, probs


ATTENTION_CASES = [
    # seq_len, block_size, random blocks, heads, policy, training
    (41, 4, 1, 2, "reference", False),  # eval: the all-zero plan, block 0 counted 1 + r times
    (96, 8, 2, 2, "reference", True),
    (100, 8, 2, 3, "fixed", False),
    (130, 8, 3, 2, "resample", True),
    (33, 2, 4, 2, "fixed", True),
]
attention = jax.jit(block_sparse_attention, static_argnames=("block_size", "output_probabilities"))


@pytest.mark.parametrize("seq_len, block_size, r, heads, policy, training", ATTENTION_CASES)
def test_block_sparse_matches_dense_oracle(seq_len, block_size, r, heads, policy, training):
    rng = np.random.default_rng(seq_len * 7 + block_size)
    plan = plan_attention(
        seq_len,
        block_size=block_size,
        num_random_blocks=r,
        num_heads=heads,
        num_layers=2,
        policy=policy,
        training=training,
        rng=np.random.default_rng(3) if policy == "resample" else None,
        max_position_embeddings=1024,
        warn=False,
    )
    assert plan.use_block_sparse
    batch, head_dim, length = 2, 8, plan.padded_length
    q, k, v = (rng.standard_normal((batch, heads, length, head_dim)) for _ in range(3))
    # Row 0: every real token kept; row 1: a random mask that keeps the first token.
    keep = np.zeros((batch, length))
    keep[:, :seq_len] = 1.0
    keep[1, 1:seq_len] = rng.random(seq_len - 1) < 0.7
    indices = BlockSparseIndices.from_plan(plan)
    arrays = [jnp.asarray(x, jnp.float32) for x in (q, k, v)]
    for layer in range(plan.num_layers):
        args = (*arrays, indices.key_blocks[layer], indices.slot_penalty, jnp.asarray(keep))
        context, probs = attention(*args, block_size=block_size, output_probabilities=True)
        plain, none = attention(*args, block_size=block_size)
        assert none is None
        for row in range(batch):
            counts = dense_multiplicity(plan, layer, attention_mask=keep[row, :seq_len])
            want_context, want_probs = oracle(q[row], k[row], v[row], counts, keep[row])
            np.testing.assert_allclose(np.asarray(context[row]), want_context, atol=2e-5)
            np.testing.assert_allclose(np.asarray(plain[row]), want_context, atol=2e-5)
            np.testing.assert_allclose(np.asarray(probs[row]), want_probs, atol=2e-6)


def test_block_sparse_attention_rejects_bad_lengths() -> None:
    plan = plan_attention(40, block_size=4, num_random_blocks=1, num_heads=1, warn=False)
    indices = BlockSparseIndices.from_plan(plan)
    x = jnp.zeros((1, 1, 42, 2))
    with pytest.raises(ValueError, match="L = n \\* 4"):
        block_sparse_attention(
            x, x, x, indices.key_blocks[0], indices.slot_penalty, jnp.ones((1, 42)), 4
        )
    full = plan_attention(8, block_size=4, num_random_blocks=1, num_heads=1, warn=False)
    with pytest.raises(ValueError, match="full-attention plan"):
        BlockSparseIndices.from_plan(full)


# -- the model -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair() -> tuple[FlaxBigBirdModel, FlaxBigBirdModel]:
    """A block-sparse model and an original_full model with the same parameters."""
    sparse = FlaxBigBirdModel(tiny_config(), seed=0)
    full = FlaxBigBirdModel(tiny_config(attention_type="original_full"), _do_init=False)
    full.params = sparse.params
    return sparse, full


_COMPILED: dict = {}


def run(model, input_ids, **kwargs):
    """`model(input_ids, **kwargs)` under `jax.jit`, one compiled function per model, policy and
    flags (array arguments are traced): eager calls compile every op for every new shape."""
    arrays = {k: v for k, v in kwargs.items() if isinstance(v, np.ndarray | jax.Array)}
    flags = {k: v for k, v in kwargs.items() if k not in arrays}
    key = (id(model), model.block_sparse_policy, tuple(sorted(flags.items())))
    if key not in _COMPILED:
        _COMPILED[key] = jax.jit(
            lambda params, input_ids, arrays: model(input_ids, params=params, **arrays, **flags)
        )
    return _COMPILED[key](model.params, input_ids, arrays)


def hidden(model, input_ids, **kwargs) -> np.ndarray:
    return np.asarray(run(model, input_ids, **kwargs).last_hidden_state)


def test_short_input_falls_back_for_that_call_only(pair) -> None:
    sparse, full = pair
    short, long = ids(2, 72), ids(2, 96, seed=1)
    assert sparse.plan(72) is None and sparse.plan(96) is not None
    short_out = hidden(sparse, short)
    long_after_short = hidden(sparse, long)
    fresh = FlaxBigBirdModel(sparse.config, _do_init=False)
    fresh.params = sparse.params
    np.testing.assert_allclose(short_out, hidden(full, short), atol=1e-6)
    # The long call after the short one is block-sparse: as a fresh model, unlike full.
    np.testing.assert_array_equal(long_after_short, hidden(fresh, long))
    assert np.abs(long_after_short - hidden(full, long)).max() > 1e-3
    assert sparse.attention_type == "block_sparse"


def test_padding_is_added_and_every_per_token_output_removed(pair) -> None:
    """83 tokens run as 88 (11 blocks): the outputs have 83 positions and equal a call on
    explicitly padded input with those positions masked."""
    sparse, _ = pair
    input_ids = ids(2, 83)
    mask = np.ones((2, 83), np.int32)
    mask[1, 60:] = 0
    padded_ids = np.concatenate([input_ids, np.zeros((2, 5), np.int32)], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((2, 5), np.int32)], axis=1)
    out = run(
        sparse, input_ids, attention_mask=mask, output_hidden_states=True, output_attentions=True
    )
    explicit = run(sparse, padded_ids, attention_mask=padded_mask, output_hidden_states=True)
    assert out.last_hidden_state.shape == (2, 83, 32)
    assert all(h.shape == (2, 83, 32) for h in out.hidden_states)
    assert all(a.shape == (2, 4, 83, 83) for a in out.attentions)
    for ours, theirs in zip(out.hidden_states, explicit.hidden_states):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs[:, :83]), atol=1e-5)


def test_block_sparse_attention_maps_follow_the_plan(pair) -> None:
    """output_attentions in block-sparse mode: the dense matrix that was applied, zero outside
    the plan's pattern, rows summing to 1; asking for it does not change the outputs."""
    sparse, _ = pair
    sparse.set_block_sparse_policy("fixed")
    try:
        input_ids = ids(2, 96)
        mask = np.ones((2, 96), np.int32)
        mask[1, 70:] = 0
        plain = hidden(sparse, input_ids, attention_mask=mask)
        out = run(sparse, input_ids, attention_mask=mask, output_attentions=True)
        plan = sparse.plan(96)
    finally:
        sparse.set_block_sparse_policy("reference")
    np.testing.assert_allclose(np.asarray(out.last_hidden_state), plain, atol=1e-5)
    for layer, probs in enumerate(out.attentions):
        probs = np.asarray(probs)
        assert probs.shape == (2, 4, 96, 96)
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
        allowed = dense_mask(plan, layer, attention_mask=mask[1])
        assert (probs[1][~allowed] == 0).all() and probs[1][allowed].min() >= 0


def test_jit_matches_eager_and_does_not_retrace(pair) -> None:
    """The plan is computed while tracing from static shapes: one trace serves every call of the
    same shape, and the numbers are the eager ones (block-sparse with padding, and fall-back)."""
    sparse, _ = pair
    traces = []

    @jax.jit
    def forward(params, input_ids, mask):
        traces.append(input_ids.shape)
        out = sparse(input_ids, attention_mask=mask, params=params, output_attentions=True)
        return out.last_hidden_state, out.attentions

    mask = np.ones((2, 83), np.int32)
    mask[0, 50:] = 0
    jitted, jitted_attentions = forward(sparse.params, ids(2, 83), mask)
    eager = sparse(ids(2, 83), attention_mask=mask, output_attentions=True)
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager.last_hidden_state), atol=1e-5)
    for a, b in zip(jitted_attentions, eager.attentions):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    forward(sparse.params, ids(2, 83, seed=1), mask)  # new values, same shapes: no new trace
    assert len(traces) == 1
    short, _ = forward(sparse.params, ids(2, 72), np.ones((2, 72), np.int32))
    np.testing.assert_allclose(np.asarray(short), hidden(sparse, ids(2, 72)), atol=1e-5)
    assert len(traces) == 2


def test_resample_plans_enter_jit_as_arguments(pair) -> None:
    sparse, _ = pair
    input_ids = ids(2, 83)  # the shapes of the eager call above: its ops are compiled

    def eager(**kwargs) -> np.ndarray:
        return np.asarray(sparse(input_ids, **kwargs).last_hidden_state)

    sparse.set_block_sparse_policy("resample", rng=np.random.default_rng(0))
    try:
        # Eager calls draw a fresh plan each time.
        assert np.abs(eager() - eager()).max() > 1e-4
        with pytest.raises(ValueError, match="resample.*block_sparse_indices"):
            jax.jit(lambda p, x: sparse(x, params=p).last_hidden_state)(sparse.params, input_ids)
        traces = []

        @jax.jit
        def forward(params, input_ids, indices):
            traces.append(1)
            return sparse(input_ids, params=params, block_sparse_indices=indices).last_hidden_state

        first, second = (sparse.block_sparse_indices(83) for _ in range(2))
        out_first = np.asarray(forward(sparse.params, input_ids, first))
        out_second = np.asarray(forward(sparse.params, input_ids, second))
        assert len(traces) == 1 and np.abs(out_first - out_second).max() > 1e-4
        np.testing.assert_allclose(out_first, eager(block_sparse_indices=first), atol=1e-5)
        with pytest.raises(ValueError, match="planned for 83 tokens"):
            sparse(ids(1, 88), block_sparse_indices=first)
    finally:
        sparse.set_block_sparse_policy("reference")


def test_fixed_policy_changes_eval_outputs_and_reference_eval_is_deterministic(pair) -> None:
    sparse, _ = pair
    input_ids = ids(2, 96)
    reference = hidden(sparse, input_ids)
    np.testing.assert_array_equal(hidden(sparse, input_ids), reference)
    sparse.set_block_sparse_policy("fixed")
    try:
        fixed = hidden(sparse, input_ids)
    finally:
        sparse.set_block_sparse_policy("reference")
    assert np.abs(fixed - reference).max() > 1e-4
    # In training the reference policy uses the seeded plans, i.e. "fixed".
    np.testing.assert_allclose(hidden(sparse, input_ids, train=True), fixed, atol=1e-6)


def test_head_mask_applies_in_block_sparse_mode(pair) -> None:
    sparse, _ = pair
    input_ids = ids(2, 96)
    plain = hidden(sparse, input_ids)
    ones = hidden(sparse, input_ids, head_mask=np.ones(4, np.float32))
    masked = hidden(sparse, input_ids, head_mask=np.array([1.0, 0.0, 1.0, 1.0], np.float32))
    np.testing.assert_allclose(ones, plain, atol=1e-6)
    assert np.abs(masked - plain).max() > 1e-3


def test_policy_settings_are_checked(pair) -> None:
    model, _ = pair
    with pytest.raises(ValueError, match="Generator"):
        model.set_block_sparse_policy("resample")
    with pytest.raises(ValueError, match="policy"):
        model.set_block_sparse_policy("random")
    with pytest.raises(ValueError, match="only used"):
        model.set_block_sparse_policy("fixed", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="attention_type"):
        model.set_attention_type("sparse")
    with pytest.raises(ValueError, match="indices_rng is not used"):
        model(ids(1, 96), indices_rng=jax.random.PRNGKey(0))
    assert model.block_sparse_policy == "reference"


def test_bad_inputs_get_clear_errors(pair) -> None:
    model, _ = pair
    with pytest.raises(ValueError, match="input_ids contains id 99"):
        model(np.full((1, 80), 99))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(ids(1, 513))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(ids(1, 80), attention_mask=np.ones((1, 79)))
    with pytest.raises(ValueError, match=r"\[batch, sequence\] attention_mask"):
        model(ids(1, 80), attention_mask=np.ones((1, 80, 80)))
    with pytest.raises(ValueError, match="token_type_ids contains id 2"):
        model(ids(1, 80), token_type_ids=np.full((1, 80), 2))
    with pytest.raises(ValueError, match="original_full"):
        model(ids(1, 80), encoder_hidden_states=np.zeros((1, 80, 32), np.float32))


def test_save_pretrained_round_trip(pair, tmp_path) -> None:
    sparse, _ = pair
    sparse.save_pretrained(tmp_path)
    reloaded = FlaxBigBirdModel.from_pretrained(tmp_path)
    assert reloaded.attention_type == "block_sparse"
    saved = read_checkpoint(tmp_path)
    assert "pooler.weight" in saved and "encoder.layer.1.attention.self.query.weight" in saved
    for a, b in zip(
        jax.tree_util.tree_leaves(sparse.params), jax.tree_util.tree_leaves(reloaded.params)
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    input_ids = ids(2, 83)
    np.testing.assert_array_equal(hidden(reloaded, input_ids), hidden(sparse, input_ids))


def test_training_step_lowers_the_loss_and_remat_gives_the_same_gradients() -> None:
    """Three optax steps on a block-sparse masked LM (padded to 88 tokens) lower the loss; with
    gradient checkpointing the gradients are the same."""
    optax = pytest.importorskip("optax")
    model = FlaxBigBirdForMaskedLM(tiny_config(), seed=0)
    remat = FlaxBigBirdForMaskedLM(model.config, gradient_checkpointing=True, _do_init=False)
    input_ids, labels = ids(2, 83), ids(2, 83, seed=1)
    assert model.plan(83, train=True) is not None  # block-sparse

    def loss_fn(params, dropout_rng, model=model):
        logits = model(input_ids, params=params, train=True, dropout_rng=dropout_rng).logits
        return masked_lm_loss(logits, labels)

    optimizer = optax.adam(1e-2)

    @jax.jit
    def step(params, state, dropout_rng):
        loss, grads = jax.value_and_grad(loss_fn)(params, dropout_rng)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss, grads

    params, state = model.params, optimizer.init(model.params)
    params, state, first, grads = step(params, state, jax.random.PRNGKey(0))
    # Every encoder parameter gets a gradient through the gathered blocks.
    encoder_grads = jax.tree_util.tree_leaves(grads["bert"]["encoder"])
    assert len(encoder_grads) > 20 and all(float(jnp.abs(g).max()) > 0 for g in encoder_grads)
    remat_grads = jax.jit(jax.grad(lambda p, r: loss_fn(p, r, remat)))(
        model.params, jax.random.PRNGKey(0)
    )
    for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(remat_grads)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    params, state, second, _ = step(params, state, jax.random.PRNGKey(1))
    _, _, third, _ = step(params, state, jax.random.PRNGKey(2))
    assert np.isfinite(float(first)) and float(third) < float(second) < float(first)


def test_decoder_and_cross_attention_need_original_full() -> None:
    with pytest.raises(ValueError, match="original_full"):
        FlaxBigBirdForCausalLM(tiny_config(is_decoder=True), _do_init=False)
    with pytest.raises(ValueError, match="original_full"):
        FlaxBigBirdModel(tiny_config(is_decoder=True, add_cross_attention=True), _do_init=False)
    decoder = FlaxBigBirdModel(
        tiny_config(is_decoder=True, attention_type="original_full"), _do_init=False
    )
    with pytest.raises(ValueError, match="original_full"):
        decoder.set_attention_type("block_sparse")
    with pytest.warns(UserWarning, match="add `is_decoder=True`"):  # the reference warns
        FlaxBigBirdForCausalLM(tiny_config(attention_type="original_full"))


def test_original_full_decoder_is_causal_and_caches() -> None:
    config = tiny_config(is_decoder=True, add_cross_attention=True, attention_type="original_full")
    model = FlaxBigBirdForCausalLM(config, seed=0)
    input_ids = ids(1, 12)
    changed = input_ids.copy()
    changed[:, 8:] = 5
    memory = np.random.default_rng(0).normal(size=(1, 7, 32)).astype(np.float32)
    full = jax.jit(lambda p, x: model(x, encoder_hidden_states=memory, params=p).logits)
    a, b = np.asarray(full(model.params, input_ids)), np.asarray(full(model.params, changed))
    np.testing.assert_allclose(a[:, :8], b[:, :8], atol=1e-6)
    assert np.abs(a[:, 8:] - b[:, 8:]).max() > 1e-3

    @jax.jit
    def step(params, input_ids, cache):
        return model(input_ids, encoder_hidden_states=memory, params=params, past_key_values=cache)

    # One token at a time (one compiled step) gives the full pass's logits.
    cache = model.init_cache(1, 12)
    for t in range(12):
        out = step(model.params, input_ids[:, t : t + 1], cache)
        np.testing.assert_allclose(np.asarray(out.logits[:, 0]), a[:, t], atol=1e-5)
        cache = out.past_key_values


def test_question_answering_token_types_from_question_lengths() -> None:
    model = FlaxBigBirdForQuestionAnswering(tiny_config(), seed=0)
    input_ids = ids(2, 90)
    lengths = np.array([[5], [12]])
    out = run(model, input_ids, question_lengths=lengths)
    explicit_types = (np.arange(90)[None] >= lengths).astype(np.int32)
    typed = run(model, input_ids, question_lengths=lengths, token_type_ids=explicit_types)
    np.testing.assert_allclose(
        np.asarray(out.start_logits), np.asarray(typed.start_logits), atol=1e-6
    )
    assert out.pooler_output is None and out.start_logits.shape == (2, 90)
    start = np.asarray(out.start_logits)
    assert (start[0, 1:5] < -1e5).all() and (start[0, 5:] > -1e3).all() and start[0, 0] > -1e3


def test_padding_and_fallback_warn_once(pair) -> None:
    import aviary.core.block_sparse as block_sparse

    sparse, _ = pair
    block_sparse._warned_reasons.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for length in (83, 91, 40):  # tracing plans the call; nothing needs compiling
            jax.eval_shape(lambda x: sparse(x).last_hidden_state, ids(1, length))
    messages = [str(w.message) for w in caught if issubclass(w.category, BlockSparseWarning)]
    assert len(messages) == 2
    assert "pads" in messages[0] and "full attention" in messages[1]
