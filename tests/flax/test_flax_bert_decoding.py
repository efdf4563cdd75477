"""Causal decoding with the Flax key/value cache: step-by-step logits equal full-sequence logits."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

from aviary import BertConfig  # noqa: E402
from aviary.flax import FlaxBertForCausalLM, FlaxBertModel  # noqa: E402

pytestmark = pytest.mark.flax


def decoder_config(position_embedding_type: str) -> BertConfig:
    return BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=20,
        max_position_embeddings=32,
        is_decoder=True,
        add_cross_attention=True,
        position_embedding_type=position_embedding_type,
    )


@pytest.mark.parametrize("position_embedding_type", ["absolute", "relative_key_query"])
def test_step_by_step_decoding_matches_full_sequence(position_embedding_type: str) -> None:
    model = FlaxBertForCausalLM(decoder_config(position_embedding_type), seed=1)
    rng = np.random.default_rng(0)
    input_ids = rng.integers(1, 50, size=(2, 7))
    encoder_hidden_states = rng.normal(size=(2, 5, 16)).astype(np.float32)
    encoder_attention_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    cross = {
        "encoder_hidden_states": encoder_hidden_states,
        "encoder_attention_mask": encoder_attention_mask,
    }
    full = np.asarray(jax.jit(lambda p: model(input_ids, **cross, params=p).logits)(model.params))

    @jax.jit
    def step(params, ids, cache):
        return model(ids, **cross, params=params, past_key_values=cache)

    cache = model.init_cache(batch_size=2, max_length=10)
    out = step(model.params, input_ids[:, :3], cache)  # a 3-token prompt, then one at a time
    np.testing.assert_allclose(np.asarray(out.logits), full[:, :3], atol=1e-5)
    cache = out.past_key_values
    for t in range(3, 7):
        out = step(model.params, input_ids[:, t : t + 1], cache)
        np.testing.assert_allclose(np.asarray(out.logits[:, 0]), full[:, t], atol=1e-5)
        cache = out.past_key_values
    index = [v for v in jax.tree_util.tree_leaves(cache) if v.ndim == 0]
    assert index and all(int(i) == 7 for i in index)


def test_cache_layout_and_limits() -> None:
    model = FlaxBertForCausalLM(decoder_config("absolute"), seed=0)
    cache = model.init_cache(batch_size=3, max_length=6)
    layer = cache["bert"]["encoder"]["layer_0"]["attention"]["self"]
    assert layer["cached_key"].shape == (3, 2, 6, 8)  # [B, N, max_length, D]
    assert layer["cached_value"].shape == (3, 2, 6, 8)
    assert int(layer["cache_index"]) == 0
    ids = jnp.ones((3, 4), dtype=jnp.int32)
    out = model(ids, encoder_hidden_states=jnp.zeros((3, 2, 16)), past_key_values=cache)
    with pytest.raises(ValueError, match="do not fit in the cache of length 6"):
        model(ids, encoder_hidden_states=jnp.zeros((3, 2, 16)), past_key_values=out.past_key_values)


def test_init_cache_needs_a_decoder_and_causal_lm_warns_without_is_decoder() -> None:
    config = BertConfig(
        vocab_size=20,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=8,
    )
    with pytest.raises(ValueError, match="is_decoder=True"):
        FlaxBertModel(config).init_cache(1, 4)
    with pytest.warns(UserWarning, match="add `is_decoder=True`"):  # the reference warns
        FlaxBertForCausalLM(config)
