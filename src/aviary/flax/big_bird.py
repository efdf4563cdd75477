"""BigBird in Flax (linen).

Paper: Zaheer et al., "Big Bird: Transformers for Longer Sequences" (arXiv:2007.14062).

Attention is block-sparse (`attention_type="block_sparse"`, the default) or full
(`"original_full"`). Which one a call runs, the padding it needs and the random key blocks are
decided once per call, outside the traced computation, by `aviary.core.block_sparse.plan_for_config`:
the plan depends only on the (static) input length, `train` and the policy, and enters the linen
module as `BlockSparseIndices` (constants while `jax.jit` traces, or an argument). Every layer gets
the same plan and the model never rewrites its modules. A short input (at most
`(5 + 2 r) * block_size` tokens) runs full attention for that call only; the next long input is
block-sparse again. Inputs whose length is not a multiple of `block_size` are padded on the right
and every per-token output (`last_hidden_state`, `hidden_states`, `attentions`, logits) is unpadded
again.

The random-block policy is a model setting: `model.set_block_sparse_policy("resample",
rng=np.random.default_rng(0))`; see `aviary.core.block_sparse` for "reference" (default),
"fixed" and "resample". Under `jax.jit`, "resample" needs the plan drawn outside the traced
function: `indices = model.block_sparse_indices(length, train=True)`, passed to the jitted function
and on as `model(..., block_sparse_indices=indices)` (a pytree: new draws do not retrace).

Decoding (`is_decoder`, original_full only): `init_cache(batch, max_length)` preallocates every
self-attention's keys and values as the Flax BERT does; a call with `past_key_values=` writes the
new keys at `cache_index` and returns the updated cache.

Shapes: B batch · C choices · Q queries · K keys · L tokens · H hidden · N heads · D head dim.
Attribute names are the reference's, so parameter paths map onto the canonical checkpoint names;
the PyTorch and TF files define the same classes in the same order with the same attribute names.
Each linen module `FlaxBigBird...Module` computes; the `FlaxBigBird...` class of the same name wraps
it with its config, parameters and attention settings.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import traverse_util

from aviary.core import checks
from aviary.core.block_sparse import AttentionPlan, check_policy, plan_for_config
from aviary.core.configs import ATTENTION_TYPES, BigBirdConfig
from aviary.flax.bert import cache_positions
from aviary.flax.big_bird_attention import BlockSparseIndices, block_sparse_attention
from aviary.flax.modeling_utils import (
    BaseModelOutputWithPoolingAndCrossAttentions,
    CausalLMOutputWithCrossAttentions,
    FlaxPreTrainedModel,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
    check_ids,
    embedding_init,
    expand_head_mask,
    extended_attention_mask,
    finish_output,
    get_activation,
    is_concrete,
    normal_init,
    pytree_output_class,
)

FlaxBigBirdForPreTrainingOutput = pytree_output_class("BigBirdForPreTrainingOutput")
FlaxBigBirdForQuestionAnsweringModelOutput = pytree_output_class(
    "BigBirdForQuestionAnsweringModelOutput"
)

# The reference's penalty on question tokens in the span logits.
QUESTION_LOGIT_PENALTY = 1e6


def check_attention_type(config: BigBirdConfig, attention_type: str) -> None:
    """Raise a clear `ValueError` for an unknown attention type or a block-sparse decoder."""
    if attention_type not in ATTENTION_TYPES:
        raise ValueError(
            f"attention_type={attention_type!r} is not one of {', '.join(ATTENTION_TYPES)}"
        )
    if attention_type == "block_sparse" and (config.is_decoder or config.add_cross_attention):
        raise ValueError(
            "BigBird as a decoder (is_decoder or add_cross_attention) needs "
            "attention_type='original_full': block-sparse attention is neither causal nor "
            "cross-attention. Build the config with attention_type='original_full' (or pass "
            "attention_type='original_full' to from_pretrained)."
        )


class FlaxBigBirdEmbeddings(nn.Module):
    """Word (optionally scaled by sqrt(H)) + token-type + position embeddings, then dropout and
    LayerNorm (in this order: the original code's encoder LayerNorm lives here)."""

    config: BigBirdConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        std = config.initializer_range
        self.word_embeddings = nn.Embed(
            config.vocab_size,
            config.hidden_size,
            embedding_init=embedding_init(std, config.pad_token_id),
            dtype=self.dtype,
        )
        self.position_embeddings = nn.Embed(
            config.max_position_embeddings,
            config.hidden_size,
            embedding_init=normal_init(std),
            dtype=self.dtype,
        )
        self.token_type_embeddings = nn.Embed(
            config.type_vocab_size,
            config.hidden_size,
            embedding_init=normal_init(std),
            dtype=self.dtype,
        )
        self.LayerNorm = nn.LayerNorm(epsilon=config.layer_norm_eps, dtype=self.dtype)
        self.dropout = nn.Dropout(rate=config.hidden_dropout_prob)
        self.rescale_embeddings = config.rescale_embeddings
        self.hidden_size = config.hidden_size
        self.max_position_embeddings = config.max_position_embeddings

    def __call__(
        self,
        input_ids: jax.Array,
        token_type_ids: jax.Array,
        position_ids: jax.Array | None,
        past_key_values_length: int | jax.Array = 0,
        deterministic: bool = True,
    ) -> jax.Array:
        length = input_ids.shape[1]
        if position_ids is None:
            if is_concrete(past_key_values_length):  # a cache index is traced under jit
                checks.check_sequence_length(
                    length, int(past_key_values_length), self.max_position_embeddings
                )
            position_ids = (past_key_values_length + jnp.arange(length))[None]
        else:
            check_ids("position_ids", position_ids, self.max_position_embeddings)
        check_ids("token_type_ids", token_type_ids, self.config.type_vocab_size)
        check_ids("input_ids", input_ids, self.config.vocab_size)
        inputs_embeds = self.word_embeddings(input_ids.astype("i4"))
        if self.rescale_embeddings:
            inputs_embeds = inputs_embeds * math.sqrt(self.hidden_size)
        embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids.astype("i4"))
        embeddings = embeddings + self.position_embeddings(position_ids.astype("i4"))
        return self.LayerNorm(self.dropout(embeddings, deterministic=deterministic))


class FlaxBigBirdSelfAttention(nn.Module):
    """Multi-head attention of one layer: full attention (with a key/value cache for decoding and
    cross-attention) or, when the call's plan says so, block-sparse attention."""

    config: BigBirdConfig
    dtype: Any = jnp.float32
    layer_index: int = 0  # selects this layer's rows of the plan

    def setup(self) -> None:
        config = self.config
        std = config.initializer_range
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.query = nn.Dense(
            self.all_head_size,
            use_bias=config.use_bias,
            kernel_init=normal_init(std),
            dtype=self.dtype,
        )
        self.key = nn.Dense(
            self.all_head_size,
            use_bias=config.use_bias,
            kernel_init=normal_init(std),
            dtype=self.dtype,
        )
        self.value = nn.Dense(
            self.all_head_size,
            use_bias=config.use_bias,
            kernel_init=normal_init(std),
            dtype=self.dtype,
        )
        self.dropout = nn.Dropout(rate=config.attention_probs_dropout_prob)
        self.is_decoder = config.is_decoder

    def split_heads(self, x: jax.Array) -> jax.Array:
        batch, length, _ = x.shape
        x = x.reshape(batch, length, self.num_attention_heads, self.attention_head_size)
        return x.transpose(0, 2, 1, 3)  # [B, N, L, D]

    @nn.compact  # the cache variables are created on first use, not in setup
    def concatenate_to_cache(self, key: jax.Array, value: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Write this step's keys and values into the preallocated cache at `cache_index`.

        Returns the whole cache `[B, N, max_length, D]`. The positions not written yet hold
        zeros; the causal mask hides them.
        """
        is_initialized = self.has_variable("cache", "cached_key")
        cached_key = self.variable("cache", "cached_key", jnp.zeros, key.shape, key.dtype)
        cached_value = self.variable("cache", "cached_value", jnp.zeros, value.shape, value.dtype)
        cache_index = self.variable("cache", "cache_index", lambda: jnp.array(0, dtype=jnp.int32))
        if not is_initialized:  # `init_cache`: only the shapes (of a max_length input) matter
            return key, value
        past_length = cache_index.value
        step_length = key.shape[2]
        start = (0, 0, past_length, 0)
        key = jax.lax.dynamic_update_slice(
            cached_key.value, key.astype(cached_key.value.dtype), start
        )
        value = jax.lax.dynamic_update_slice(
            cached_value.value, value.astype(cached_value.value.dtype), start
        )
        cached_key.value = key
        cached_value.value = value
        cache_index.value = past_length + step_length
        return key, value

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: jax.Array | None = None,
        head_mask: jax.Array | None = None,
        encoder_hidden_states: jax.Array | None = None,
        init_cache: bool = False,
        deterministic: bool = True,
        output_attentions: bool = False,
        block_sparse: tuple[BlockSparseIndices, jax.Array] | None = None,
    ) -> tuple[jax.Array, jax.Array | None]:
        query = self.split_heads(self.query(hidden_states))  # [B, N, Q, D]
        if block_sparse is not None:
            indices, key_keep = block_sparse
            key = self.split_heads(self.key(hidden_states))
            value = self.split_heads(self.value(hidden_states))
            context, probs = block_sparse_attention(
                query,
                key,
                value,
                indices.key_blocks[self.layer_index],
                indices.slot_penalty,
                key_keep,
                indices.block_size,
                output_probabilities=output_attentions,
            )
            if head_mask is not None:
                # The reference ignores head_mask here; aviary applies it (to the context, which
                # is the same as to the probabilities).
                context = context * head_mask
            return self.merge_heads(context), probs

        if encoder_hidden_states is not None:
            key = self.split_heads(self.key(encoder_hidden_states))
            value = self.split_heads(self.value(encoder_hidden_states))
        else:
            key = self.split_heads(self.key(hidden_states))
            value = self.split_heads(self.value(hidden_states))
            if self.is_decoder and (self.has_variable("cache", "cached_key") or init_cache):
                key, value = self.concatenate_to_cache(key, value)  # [B, N, K, D]

        scores = jnp.einsum("bnqd,bnkd->bnqk", query, key)  # [B, N, Q, K]
        scores = scores / math.sqrt(self.attention_head_size)
        if attention_mask is not None:
            scores = scores + attention_mask
        probs = self.dropout(jax.nn.softmax(scores, axis=-1), deterministic=deterministic)
        if head_mask is not None:
            probs = probs * head_mask
        context = jnp.einsum("bnqk,bnkd->bnqd", probs, value)  # [B, N, Q, D]
        return self.merge_heads(context), (probs if output_attentions else None)

    def merge_heads(self, context: jax.Array) -> jax.Array:
        batch, _, length, _ = context.shape
        return context.transpose(0, 2, 1, 3).reshape(batch, length, self.all_head_size)  # [B, L, H]


class FlaxBigBirdSelfOutput(nn.Module):
    """Attention output projection, dropout, residual and LayerNorm."""

    config: BigBirdConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.dense = nn.Dense(
            config.hidden_size, kernel_init=normal_init(config.initializer_range), dtype=self.dtype
        )
        self.LayerNorm = nn.LayerNorm(epsilon=config.layer_norm_eps, dtype=self.dtype)
        self.dropout = nn.Dropout(rate=config.hidden_dropout_prob)

    def __call__(
        self, hidden_states: jax.Array, input_tensor: jax.Array, deterministic: bool = True
    ) -> jax.Array:
        hidden_states = self.dropout(self.dense(hidden_states), deterministic=deterministic)
        return self.LayerNorm(hidden_states + input_tensor)


class FlaxBigBirdAttention(nn.Module):
    """Self- or cross-attention followed by its output block."""

    config: BigBirdConfig
    dtype: Any = jnp.float32
    layer_index: int = 0

    def setup(self) -> None:
        self.self = FlaxBigBirdSelfAttention(self.config, self.dtype, self.layer_index)
        self.output = FlaxBigBirdSelfOutput(self.config, self.dtype)

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: jax.Array | None = None,
        head_mask: jax.Array | None = None,
        encoder_hidden_states: jax.Array | None = None,
        init_cache: bool = False,
        deterministic: bool = True,
        output_attentions: bool = False,
        block_sparse: tuple[BlockSparseIndices, jax.Array] | None = None,
    ):
        if block_sparse is not None and encoder_hidden_states is not None:
            raise ValueError(
                "BigBird cross-attention needs attention_type='original_full'; block-sparse "
                "attention is self-attention only"
            )
        context, probs = self.self(
            hidden_states,
            attention_mask,
            head_mask,
            encoder_hidden_states,
            init_cache,
            deterministic,
            output_attentions,
            block_sparse,
        )
        return self.output(context, hidden_states, deterministic), probs


class FlaxBigBirdIntermediate(nn.Module):
    """First feed-forward projection and activation."""

    config: BigBirdConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.dense = nn.Dense(
            config.intermediate_size,
            kernel_init=normal_init(config.initializer_range),
            dtype=self.dtype,
        )
        self.intermediate_act_fn = get_activation(config.hidden_act)

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return self.intermediate_act_fn(self.dense(hidden_states))


class FlaxBigBirdOutput(nn.Module):
    """Second feed-forward projection, dropout, residual and LayerNorm."""

    config: BigBirdConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.dense = nn.Dense(
            config.hidden_size, kernel_init=normal_init(config.initializer_range), dtype=self.dtype
        )
        self.LayerNorm = nn.LayerNorm(epsilon=config.layer_norm_eps, dtype=self.dtype)
        self.dropout = nn.Dropout(rate=config.hidden_dropout_prob)

    def __call__(
        self, hidden_states: jax.Array, input_tensor: jax.Array, deterministic: bool = True
    ) -> jax.Array:
        hidden_states = self.dropout(self.dense(hidden_states), deterministic=deterministic)
        return self.LayerNorm(hidden_states + input_tensor)


class FlaxBigBirdLayer(nn.Module):
    """Self-attention, optional cross-attention (decoders), feed-forward."""

    config: BigBirdConfig
    dtype: Any = jnp.float32
    layer_index: int = 0

    def setup(self) -> None:
        config = self.config
        self.attention = FlaxBigBirdAttention(config, self.dtype, self.layer_index)
        self.is_decoder = config.is_decoder
        self.add_cross_attention = config.add_cross_attention
        if self.add_cross_attention:
            if not self.is_decoder:
                raise ValueError("add_cross_attention=True needs is_decoder=True")
            self.crossattention = FlaxBigBirdAttention(config, self.dtype, self.layer_index)
        self.intermediate = FlaxBigBirdIntermediate(config, self.dtype)
        self.output = FlaxBigBirdOutput(config, self.dtype)

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: jax.Array | None = None,
        head_mask: jax.Array | None = None,
        encoder_hidden_states: jax.Array | None = None,
        encoder_attention_mask: jax.Array | None = None,
        init_cache: bool = False,
        deterministic: bool = True,
        output_attentions: bool = False,
        block_sparse: tuple[BlockSparseIndices, jax.Array] | None = None,
    ):
        attention_output, self_probs = self.attention(
            hidden_states,
            attention_mask,
            head_mask,
            None,
            init_cache,
            deterministic,
            output_attentions,
            block_sparse,
        )
        cross_probs = None
        if encoder_hidden_states is not None:
            if not self.add_cross_attention:
                raise ValueError(
                    "encoder_hidden_states were given, but the model has no cross-attention "
                    "layers: build it with is_decoder=True, add_cross_attention=True and "
                    "attention_type='original_full'"
                )
            attention_output, cross_probs = self.crossattention(
                attention_output,
                encoder_attention_mask,
                head_mask,
                encoder_hidden_states,
                False,
                deterministic,
                output_attentions,
            )
        layer_output = self.output(
            self.intermediate(attention_output), attention_output, deterministic
        )
        return layer_output, self_probs, cross_probs


class FlaxBigBirdEncoder(nn.Module):
    """The stack of layers; collects hidden states and attentions."""

    config: BigBirdConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        layer_class = FlaxBigBirdLayer
        if self.gradient_checkpointing:
            # Recompute each layer in the backward pass; the flags are Python values (argument
            # numbers count `self`). The block-sparse indices are a pytree argument.
            layer_class = nn.remat(FlaxBigBirdLayer, static_argnums=(6, 7, 8))
        self.layer = [
            layer_class(self.config, self.dtype, layer_index=i)
            for i in range(self.config.num_hidden_layers)
        ]

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: jax.Array | None,
        head_masks: list[jax.Array | None],
        encoder_hidden_states: jax.Array | None,
        encoder_attention_mask: jax.Array | None,
        init_cache: bool,
        deterministic: bool,
        output_attentions: bool,
        output_hidden_states: bool,
        block_sparse: tuple[BlockSparseIndices, jax.Array] | None = None,
    ):
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        all_cross_attentions = (
            () if output_attentions and encoder_hidden_states is not None else None
        )
        for i, layer in enumerate(self.layer):
            hidden_states, self_probs, cross_probs = layer(
                hidden_states,
                attention_mask,
                head_masks[i],
                encoder_hidden_states,
                encoder_attention_mask,
                init_cache,
                deterministic,
                output_attentions,
                block_sparse,
            )
            if output_attentions:
                all_attentions = (*all_attentions, self_probs)
                if all_cross_attentions is not None:
                    all_cross_attentions = (*all_cross_attentions, cross_probs)
            if output_hidden_states:
                all_hidden_states = (*all_hidden_states, hidden_states)
        return hidden_states, all_hidden_states, all_attentions, all_cross_attentions


class FlaxBigBirdPredictionHeadTransform(nn.Module):
    """Dense, activation and LayerNorm before the vocabulary projection."""

    config: BigBirdConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.dense = nn.Dense(
            config.hidden_size, kernel_init=normal_init(config.initializer_range), dtype=self.dtype
        )
        self.transform_act_fn = get_activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(epsilon=config.layer_norm_eps, dtype=self.dtype)

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class FlaxBigBirdLMPredictionHead(nn.Module):
    """Vocabulary logits. With tied word embeddings there is no decoder parameter: the logits
    use the transposed word-embedding table, passed in as `shared_embedding` (as the reference)."""

    config: BigBirdConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.transform = FlaxBigBirdPredictionHeadTransform(config, self.dtype)
        if not config.tie_word_embeddings:
            self.decoder = nn.Dense(
                config.vocab_size,
                use_bias=False,
                kernel_init=normal_init(config.initializer_range),
                dtype=self.dtype,
            )
        self.bias = self.param("bias", nn.initializers.zeros, (config.vocab_size,))

    def __call__(
        self, hidden_states: jax.Array, shared_embedding: jax.Array | None = None
    ) -> jax.Array:
        hidden_states = self.transform(hidden_states)
        if shared_embedding is not None:
            logits = hidden_states @ shared_embedding.T.astype(self.dtype)  # [V, H] table
        else:
            logits = self.decoder(hidden_states)
        return logits + self.bias.astype(self.dtype)


class FlaxBigBirdOnlyMLMHead(nn.Module):
    config: BigBirdConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.predictions = FlaxBigBirdLMPredictionHead(self.config, self.dtype)

    def __call__(
        self, sequence_output: jax.Array, shared_embedding: jax.Array | None = None
    ) -> jax.Array:
        return self.predictions(sequence_output, shared_embedding)


class FlaxBigBirdPreTrainingHeads(nn.Module):
    config: BigBirdConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.predictions = FlaxBigBirdLMPredictionHead(self.config, self.dtype)
        self.seq_relationship = nn.Dense(
            2, kernel_init=normal_init(self.config.initializer_range), dtype=self.dtype
        )

    def __call__(
        self,
        sequence_output: jax.Array,
        pooled_output: jax.Array | None,
        shared_embedding: jax.Array | None = None,
    ):
        prediction_logits = self.predictions(sequence_output, shared_embedding)
        return prediction_logits, self.seq_relationship(pooled_output)


class FlaxBigBirdPreTrainedModel(FlaxPreTrainedModel):
    """Base of the BigBird classes: config class, checkpoint prefix, attention settings, and the
    call every head shares (defaults, the call's plan, dropout rng, cache)."""

    config_class = BigBirdConfig
    base_model_prefix = "bert"

    def __init__(self, config: BigBirdConfig, *args: Any, **kwargs: Any) -> None:
        if isinstance(config, BigBirdConfig):  # other configs: the base class names the problem
            check_attention_type(config, config.attention_type)
            self.attention_type = config.attention_type
        self.block_sparse_policy = "reference"
        self.block_sparse_rng: np.random.Generator | None = None
        super().__init__(config, *args, **kwargs)

    def set_attention_type(self, attention_type: str) -> None:
        """Choose `"block_sparse"` or `"original_full"` attention for later calls (the config
        and the parameters are left as they are). Block-sparse calls still fall back to full
        attention on short inputs."""
        check_attention_type(self.config, attention_type)
        self.attention_type = attention_type

    def set_block_sparse_policy(
        self, policy: str = "reference", rng: np.random.Generator | None = None
    ) -> None:
        """Choose how block-sparse calls draw their random key blocks.

        `"reference"` (default; the reference library's numbers: layer-seeded plans in training,
        the all-zero plan in eval), `"fixed"` (the seeded plan in training and eval) or
        `"resample"` (a fresh plan per call from `rng`, a `numpy.random.Generator`).
        """
        check_policy(policy, rng)
        self.block_sparse_policy = policy
        self.block_sparse_rng = rng

    def plan(self, seq_len: int, train: bool = False) -> AttentionPlan | None:
        """The block-sparse plan of a call on `seq_len` tokens, or None for full attention.

        Every call computes this once. Under the "resample" policy each call draws from the
        policy's generator (so calling it yourself advances that generator too).
        """
        if self.attention_type != "block_sparse":
            return None
        plan = plan_for_config(
            self.config,
            seq_len,
            training=train,
            policy=self.block_sparse_policy,
            rng=self.block_sparse_rng,
        )
        return plan if plan.use_block_sparse else None

    def block_sparse_indices(self, seq_len: int, train: bool = False) -> BlockSparseIndices | None:
        """`plan(seq_len, train)` as the arrays the modules take (None for full attention): pass
        it through `jax.jit` as an argument and on as `block_sparse_indices=`."""
        plan = self.plan(seq_len, train)
        return None if plan is None else BlockSparseIndices.from_plan(plan, self.dtype)

    def init_weights(
        self, rng: jax.Array, input_shape: tuple[int, ...], params: dict | None = None
    ) -> dict:
        """Random parameters from the config's initializer; entries of `params` are kept."""
        params_rng, dropout_rng = jax.random.split(rng)
        random_params = self.module.init(
            {"params": params_rng, "dropout": dropout_rng}, **self._dummy_inputs(input_shape)
        )["params"]
        if params is None:
            return random_params
        flat = traverse_util.flatten_dict(dict(random_params))
        given = traverse_util.flatten_dict(dict(params))
        flat.update({path: value for path, value in given.items() if path in flat})
        return traverse_util.unflatten_dict(flat)

    def _dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        input_ids = jnp.zeros(input_shape, dtype="i4")
        inputs = {"input_ids": input_ids, "attention_mask": jnp.ones_like(input_ids)}
        if self.config.add_cross_attention:
            batch = input_shape[0]
            inputs["encoder_hidden_states"] = jnp.zeros((batch, 1, self.config.hidden_size))
            inputs["encoder_attention_mask"] = jnp.ones((batch, 1), dtype="i4")
        return inputs

    def init_cache(self, batch_size: int, max_length: int) -> dict:
        """An empty key/value cache for decoding up to `max_length` tokens (decoders only)."""
        if not self.config.is_decoder:
            raise ValueError("init_cache needs a decoder: build the config with is_decoder=True")

        def init():
            inputs = self._dummy_inputs((batch_size, max_length))
            return self.module.init(jax.random.PRNGKey(0), **inputs, init_cache=True)["cache"]

        shapes = jax.eval_shape(init)
        return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        encoder_hidden_states=None,
        encoder_attention_mask=None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        indices_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: dict | None = None,
        block_sparse_indices: BlockSparseIndices | None = None,
    ):
        """Run the model: a pure function of `params` (default: `self.params`) and the inputs.

        `train=True` applies dropout with `dropout_rng` (and plans block-sparse attention for
        training). `past_key_values` (from `init_cache`, or a previous call's output) makes the
        call a decoding step that returns the updated cache. `block_sparse_indices` (from
        `block_sparse_indices()`) overrides the plan the model's policy would make.
        """
        inputs = {
            "input_ids": jnp.asarray(input_ids),
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "position_ids": position_ids,
            "head_mask": head_mask,
        }
        # Only the classes that take them get the decoder inputs (a TypeError names the rest).
        if encoder_hidden_states is not None:
            inputs["encoder_hidden_states"] = encoder_hidden_states
        if encoder_attention_mask is not None:
            inputs["encoder_attention_mask"] = encoder_attention_mask
        return self._run(
            inputs,
            params,
            dropout_rng,
            indices_rng,
            train,
            output_attentions,
            output_hidden_states,
            return_dict,
            past_key_values,
            block_sparse_indices,
        )

    def _run(
        self,
        inputs: dict[str, Any],
        params: dict | None,
        dropout_rng: jax.Array | None,
        indices_rng: jax.Array | None,
        train: bool,
        output_attentions: bool | None,
        output_hidden_states: bool | None,
        return_dict: bool | None,
        past_key_values: dict | None,
        block_sparse_indices: BlockSparseIndices | None,
    ):
        """Plan the call (outside the module), apply the module, finish the output."""
        config = self.config
        if indices_rng is not None:
            raise ValueError(
                "indices_rng is not used: aviary draws BigBird's random blocks on the host; "
                "choose them with model.set_block_sparse_policy('resample', "
                "rng=np.random.default_rng(seed)) or pass block_sparse_indices="
            )
        output_attentions = (
            config.output_attentions if output_attentions is None else output_attentions
        )
        output_hidden_states = (
            config.output_hidden_states if output_hidden_states is None else output_hidden_states
        )
        return_dict = config.use_return_dict if return_dict is None else return_dict
        params = self.params if params is None else params

        length = inputs["input_ids"].shape[-1]
        if block_sparse_indices is None and past_key_values is None:
            traced = not all(is_concrete(x) for x in jax.tree_util.tree_leaves((inputs, params)))
            if self.block_sparse_policy == "resample" and traced:
                raise ValueError(
                    "policy 'resample' under jax.jit: a plan drawn while tracing would be frozen "
                    "into the compiled function. Draw it outside with "
                    "model.block_sparse_indices(length, train=...) and pass it to the jitted "
                    "function and on as block_sparse_indices="
                )
            # The plan depends only on static shapes and the policy: constants under jit.
            block_sparse_indices = self.block_sparse_indices(length, train)
        elif block_sparse_indices is not None and self.attention_type != "block_sparse":
            raise ValueError(
                "block_sparse_indices were given, but the model runs attention_type="
                f"{self.attention_type!r}"
            )

        inputs = {
            **inputs,
            "deterministic": not train,
            "output_attentions": output_attentions,
            "output_hidden_states": output_hidden_states,
            "attention_type": self.attention_type,
            "block_sparse_indices": block_sparse_indices,
        }
        variables = {"params": params}
        rngs = {"dropout": dropout_rng} if dropout_rng is not None else {}
        if past_key_values is None:
            output = self.module.apply(variables, **inputs, rngs=rngs)
            return finish_output(output, return_dict)

        past_length, cache_length = cache_positions(past_key_values)
        if is_concrete(past_length) and int(past_length) + length > cache_length:
            raise ValueError(
                f"{length} new tokens after {int(past_length)} cached ones do not fit in the "
                f"cache of length {cache_length} (see init_cache)"
            )
        variables["cache"] = past_key_values
        output, mutated = self.module.apply(
            variables,
            **inputs,
            past_length=past_length,
            cache_length=cache_length,
            rngs=rngs,
            mutable=["cache"],
        )
        output = output.replace(past_key_values=mutated["cache"])
        return finish_output(output, return_dict)


# The LM decoder shares the word-embedding matrix (when `tie_word_embeddings`, the default).
TIED_LM_DECODER = ("cls.predictions.decoder.weight",)


class FlaxBigBirdModule(nn.Module):
    """The bare BigBird encoder (or full-attention decoder), returning hidden states and the
    pooled first token.

    Without `block_sparse_indices` a block-sparse call plans itself with the "reference" policy
    (the wrapper classes plan with the model's policy and pass them in).
    """

    config: BigBirdConfig
    dtype: Any = jnp.float32
    add_pooling_layer: bool = True
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        config = self.config
        self.embeddings = FlaxBigBirdEmbeddings(config, self.dtype)
        self.encoder = FlaxBigBirdEncoder(config, self.dtype, self.gradient_checkpointing)
        if self.add_pooling_layer:
            self.pooler = nn.Dense(
                config.hidden_size,
                kernel_init=normal_init(config.initializer_range),
                dtype=self.dtype,
            )
            self.activation = jnp.tanh
        else:
            self.pooler = None
            self.activation = None

    def plan(
        self, seq_len: int, attention_type: str, deterministic: bool
    ) -> BlockSparseIndices | None:
        """The "reference" plan of a call on `seq_len` tokens, or None for full attention."""
        if attention_type != "block_sparse":
            return None
        # Building the parameters runs a one-token input: no fall-back warning for that.
        plan = plan_for_config(
            self.config, seq_len, training=not deterministic, warn=not self.is_initializing()
        )
        return BlockSparseIndices.from_plan(plan, self.dtype) if plan.use_block_sparse else None

    def __call__(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array | None = None,
        token_type_ids: jax.Array | None = None,
        position_ids: jax.Array | None = None,
        head_mask: jax.Array | None = None,
        encoder_hidden_states: jax.Array | None = None,
        encoder_attention_mask: jax.Array | None = None,
        init_cache: bool = False,
        past_length: int | jax.Array = 0,
        cache_length: int | None = None,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        attention_type: str | None = None,
        block_sparse_indices: BlockSparseIndices | None = None,
    ):
        config = self.config
        attention_type = config.attention_type if attention_type is None else attention_type
        check_attention_type(config, attention_type)
        checks.check_rank("input_ids", input_ids.shape, (2,))
        batch, length = input_ids.shape
        # With a preallocated cache the keys are the whole cache; otherwise this call's tokens.
        key_length = cache_length if cache_length is not None else length

        if token_type_ids is None:
            token_type_ids = jnp.zeros((batch, length), dtype="i4")
        else:
            checks.check_same_shape(
                "token_type_ids", token_type_ids.shape, (batch, length), "the input"
            )
        if position_ids is not None:
            checks.check_same_shape(
                "position_ids", position_ids.shape[-1:], (length,), "the input length"
            )
        if attention_mask is not None:
            attention_mask = jnp.asarray(attention_mask)
            checks.check_attention_mask_shape(
                attention_mask.shape, batch, length, key_length, "attention_mask"
            )
        if encoder_hidden_states is not None and attention_type == "block_sparse":
            raise ValueError(
                "encoder_hidden_states need cross-attention, which BigBird only has with "
                "attention_type='original_full'"
            )

        # One plan for every layer of this call (None: full attention).
        indices = None
        if cache_length is None and not init_cache:
            indices = block_sparse_indices
            if indices is None:
                indices = self.plan(length, attention_type, deterministic)
            elif indices.seq_len != length or indices.key_blocks.shape[:2] != (
                config.num_hidden_layers,
                config.num_attention_heads,
            ):
                raise ValueError(
                    f"block_sparse_indices were planned for {indices.seq_len} tokens and key "
                    f"blocks {tuple(indices.key_blocks.shape)}; this call has {length} tokens, "
                    f"{config.num_hidden_layers} layers and {config.num_attention_heads} heads"
                )
        if indices is not None and attention_mask is not None and attention_mask.ndim != 2:
            raise ValueError(
                "block-sparse attention takes a [batch, sequence] attention_mask, got shape "
                f"{tuple(attention_mask.shape)}"
            )
        embedding_output = self.embeddings(
            input_ids, token_type_ids, position_ids, past_length, deterministic
        )
        dtype = embedding_output.dtype
        head_masks = expand_head_mask(
            head_mask, config.num_hidden_layers, config.num_attention_heads, dtype
        )

        block_sparse = None
        extended_mask = None
        encoder_extended_mask = None
        if indices is not None:
            key_keep = (
                jnp.ones((batch, length), dtype=dtype)
                if attention_mask is None
                else attention_mask.astype(dtype)
            )
            if indices.pad_length:
                embedding_output, key_keep = self._pad(
                    embedding_output, key_keep, indices.pad_length, deterministic
                )
            block_sparse = (indices, key_keep)  # key_keep: [B, padded L]
        else:
            if config.is_decoder or attention_mask is not None:
                if attention_mask is None:
                    attention_mask = jnp.ones((batch, key_length), dtype="i4")
                extended_mask = extended_attention_mask(
                    attention_mask,
                    length,
                    dtype,
                    config.is_decoder,
                    past_length if cache_length is not None else None,
                )
            if encoder_hidden_states is not None and encoder_attention_mask is not None:
                encoder_attention_mask = jnp.asarray(encoder_attention_mask)
                checks.check_attention_mask_shape(
                    encoder_attention_mask.shape,
                    batch,
                    length,
                    encoder_hidden_states.shape[1],
                    "encoder_attention_mask",
                )
                encoder_extended_mask = extended_attention_mask(
                    encoder_attention_mask, length, dtype, causal=False
                )
        if encoder_hidden_states is not None:
            encoder_hidden_states = jnp.asarray(encoder_hidden_states).astype(dtype)

        sequence_output, hidden_states, attentions, cross_attentions = self.encoder(
            embedding_output,
            extended_mask,
            head_masks,
            encoder_hidden_states,
            encoder_extended_mask,
            init_cache,
            deterministic,
            output_attentions,
            output_hidden_states,
            block_sparse,
        )
        if indices is not None and indices.pad_length:
            # Every per-token output goes back to the input length.
            sequence_output = sequence_output[:, :length]
            if hidden_states is not None:
                hidden_states = tuple(h[:, :length] for h in hidden_states)
            if attentions is not None:
                attentions = tuple(a[:, :, :length, :length] for a in attentions)
        pooled_output = None
        if self.pooler is not None:
            pooled_output = self.activation(self.pooler(sequence_output[:, 0]))
        output = BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=sequence_output,
            pooler_output=pooled_output,
            hidden_states=hidden_states,
            attentions=attentions,
            cross_attentions=cross_attentions,
        )
        return finish_output(output, return_dict)

    def _pad(
        self,
        embedding_output: jax.Array,
        key_keep: jax.Array,
        pad_length: int,
        deterministic: bool,
    ) -> tuple[jax.Array, jax.Array]:
        """Append `pad_length` embedded pad tokens (position and token type as the reference pads
        them) and masked-out keep entries."""
        batch = embedding_output.shape[0]
        pad_ids = jnp.full((batch, pad_length), self.config.pad_token_id, dtype="i4")
        pad_embeddings = self.embeddings(
            pad_ids, jnp.zeros_like(pad_ids), pad_ids, 0, deterministic
        )  # [B, pad, H]; positions = pad_token_id, as the reference pads position_ids
        embedding_output = jnp.concatenate([embedding_output, pad_embeddings], axis=1)
        key_keep = jnp.pad(key_keep, ((0, 0), (0, pad_length)))
        return embedding_output, key_keep


class FlaxBigBirdModel(FlaxBigBirdPreTrainedModel):
    """The bare BigBird encoder (or full-attention decoder), returning hidden states and the
    pooled first token."""

    module_class = FlaxBigBirdModule


def _base_inputs(**kwargs):
    """The arguments every head passes through to `FlaxBigBirdModule`, always as an output
    object."""
    return {**kwargs, "return_dict": True}


def _shared_embedding(module: nn.Module) -> jax.Array | None:
    """The word-embedding table the LM decoder reuses, or None when the decoder is untied."""
    if not module.config.tie_word_embeddings:
        return None
    return module.bert.variables["params"]["embeddings"]["word_embeddings"]["embedding"]


class FlaxBigBirdForPreTrainingModule(nn.Module):
    """BigBird with the masked-LM and next-sentence-prediction heads used in pretraining."""

    config: BigBirdConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        self.bert = FlaxBigBirdModule(
            self.config,
            self.dtype,
            add_pooling_layer=True,
            gradient_checkpointing=self.gradient_checkpointing,
        )
        self.cls = FlaxBigBirdPreTrainingHeads(self.config, self.dtype)

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        attention_type: str | None = None,
        block_sparse_indices: BlockSparseIndices | None = None,
    ):
        outputs = self.bert(
            **_base_inputs(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                head_mask=head_mask,
                deterministic=deterministic,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                attention_type=attention_type,
                block_sparse_indices=block_sparse_indices,
            )
        )
        prediction_logits, seq_relationship_logits = self.cls(
            outputs.last_hidden_state, outputs.pooler_output, _shared_embedding(self)
        )
        output = FlaxBigBirdForPreTrainingOutput(
            prediction_logits=prediction_logits,
            seq_relationship_logits=seq_relationship_logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class FlaxBigBirdForPreTraining(FlaxBigBirdPreTrainedModel):
    """BigBird with the masked-LM and next-sentence-prediction heads used in pretraining."""

    module_class = FlaxBigBirdForPreTrainingModule
    tied_weights = TIED_LM_DECODER


class FlaxBigBirdForCausalLMModule(nn.Module):
    """BigBird as a causal (left-to-right) language model; needs `is_decoder=True` and
    `attention_type="original_full"` (block-sparse attention is not causal)."""

    config: BigBirdConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        if not self.config.is_decoder:
            raise ValueError("FlaxBigBirdForCausalLM needs a config with is_decoder=True")
        self.bert = FlaxBigBirdModule(
            self.config, self.dtype, gradient_checkpointing=self.gradient_checkpointing
        )
        self.cls = FlaxBigBirdOnlyMLMHead(self.config, self.dtype)

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        encoder_hidden_states=None,
        encoder_attention_mask=None,
        init_cache: bool = False,
        past_length: int | jax.Array = 0,
        cache_length: int | None = None,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        attention_type: str | None = None,
        block_sparse_indices: BlockSparseIndices | None = None,
    ):
        outputs = self.bert(
            **_base_inputs(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                head_mask=head_mask,
                encoder_hidden_states=encoder_hidden_states,
                encoder_attention_mask=encoder_attention_mask,
                init_cache=init_cache,
                past_length=past_length,
                cache_length=cache_length,
                deterministic=deterministic,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                attention_type=attention_type,
                block_sparse_indices=block_sparse_indices,
            )
        )
        logits = self.cls(outputs.last_hidden_state, _shared_embedding(self))
        output = CausalLMOutputWithCrossAttentions(
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            cross_attentions=outputs.cross_attentions,
        )
        return finish_output(output, return_dict)


class FlaxBigBirdForCausalLM(FlaxBigBirdPreTrainedModel):
    """BigBird as a causal (left-to-right) language model; needs `is_decoder=True` and
    `attention_type="original_full"` (block-sparse attention is not causal)."""

    module_class = FlaxBigBirdForCausalLMModule
    tied_weights = TIED_LM_DECODER


class FlaxBigBirdForMaskedLMModule(nn.Module):
    """BigBird with the masked-language-modelling head."""

    config: BigBirdConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        self.bert = FlaxBigBirdModule(
            self.config, self.dtype, gradient_checkpointing=self.gradient_checkpointing
        )
        self.cls = FlaxBigBirdOnlyMLMHead(self.config, self.dtype)

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        encoder_hidden_states=None,
        encoder_attention_mask=None,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        attention_type: str | None = None,
        block_sparse_indices: BlockSparseIndices | None = None,
    ):
        outputs = self.bert(
            **_base_inputs(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                head_mask=head_mask,
                encoder_hidden_states=encoder_hidden_states,
                encoder_attention_mask=encoder_attention_mask,
                deterministic=deterministic,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                attention_type=attention_type,
                block_sparse_indices=block_sparse_indices,
            )
        )
        logits = self.cls(outputs.last_hidden_state, _shared_embedding(self))
        output = MaskedLMOutput(
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class FlaxBigBirdForMaskedLM(FlaxBigBirdPreTrainedModel):
    """BigBird with the masked-language-modelling head."""

    module_class = FlaxBigBirdForMaskedLMModule
    tied_weights = TIED_LM_DECODER


class FlaxBigBirdClassificationHead(nn.Module):
    """RoBERTa-style sentence head on the first token: dropout, dense, `hidden_act`, dropout,
    projection to the labels."""

    config: BigBirdConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        std = config.initializer_range
        self.dense = nn.Dense(config.hidden_size, kernel_init=normal_init(std), dtype=self.dtype)
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(rate=config.hidden_dropout_prob if dropout is None else dropout)
        self.out_proj = nn.Dense(config.num_labels, kernel_init=normal_init(std), dtype=self.dtype)
        self.activation = get_activation(config.hidden_act)

    def __call__(self, features: jax.Array, deterministic: bool = True) -> jax.Array:
        x = self.dropout(features[:, 0], deterministic=deterministic)  # [B, H]
        x = self.activation(self.dense(x))
        return self.out_proj(self.dropout(x, deterministic=deterministic))


class FlaxBigBirdForSequenceClassificationModule(nn.Module):
    """BigBird with a classification (or regression) head on the first token."""

    config: BigBirdConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        config = self.config
        self.num_labels = config.num_labels
        self.bert = FlaxBigBirdModule(
            config, self.dtype, gradient_checkpointing=self.gradient_checkpointing
        )
        self.classifier = FlaxBigBirdClassificationHead(config, self.dtype)

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        attention_type: str | None = None,
        block_sparse_indices: BlockSparseIndices | None = None,
    ):
        outputs = self.bert(
            **_base_inputs(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                head_mask=head_mask,
                deterministic=deterministic,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                attention_type=attention_type,
                block_sparse_indices=block_sparse_indices,
            )
        )
        logits = self.classifier(outputs.last_hidden_state, deterministic)
        output = SequenceClassifierOutput(
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class FlaxBigBirdForSequenceClassification(FlaxBigBirdPreTrainedModel):
    """BigBird with a classification (or regression) head on the first token."""

    module_class = FlaxBigBirdForSequenceClassificationModule


class FlaxBigBirdForMultipleChoiceModule(nn.Module):
    """BigBird scoring each of C choices with a linear layer over its pooled output."""

    config: BigBirdConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        config = self.config
        self.bert = FlaxBigBirdModule(
            config, self.dtype, gradient_checkpointing=self.gradient_checkpointing
        )
        self.dropout = nn.Dropout(rate=config.hidden_dropout_prob)
        self.classifier = nn.Dense(
            1, kernel_init=normal_init(config.initializer_range), dtype=self.dtype
        )

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        attention_type: str | None = None,
        block_sparse_indices: BlockSparseIndices | None = None,
    ):
        checks.check_rank("input_ids", input_ids.shape, (3,))
        num_choices = input_ids.shape[1]

        def flat(x):  # [B, C, L, ...] -> [B*C, L, ...]
            return None if x is None else jnp.asarray(x).reshape(-1, *x.shape[2:])

        outputs = self.bert(
            **_base_inputs(
                input_ids=flat(input_ids),
                attention_mask=flat(attention_mask),
                token_type_ids=flat(token_type_ids),
                position_ids=flat(position_ids),
                head_mask=head_mask,
                deterministic=deterministic,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                attention_type=attention_type,
                block_sparse_indices=block_sparse_indices,
            )
        )
        pooled_output = self.dropout(outputs.pooler_output, deterministic=deterministic)
        logits = self.classifier(pooled_output).reshape(-1, num_choices)
        output = MultipleChoiceModelOutput(
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class FlaxBigBirdForMultipleChoice(FlaxBigBirdPreTrainedModel):
    """BigBird scoring each of C choices with a linear layer over its pooled output."""

    module_class = FlaxBigBirdForMultipleChoiceModule

    def _dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        if len(input_shape) == 2:  # (batch, length) -> one choice each
            input_shape = (input_shape[0], 1, input_shape[1])
        return super()._dummy_inputs(input_shape)


class FlaxBigBirdForTokenClassificationModule(nn.Module):
    """BigBird with a linear classifier on every token (e.g. named entities)."""

    config: BigBirdConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        config = self.config
        self.num_labels = config.num_labels
        self.bert = FlaxBigBirdModule(
            config, self.dtype, gradient_checkpointing=self.gradient_checkpointing
        )
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(rate=config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Dense(
            config.num_labels, kernel_init=normal_init(config.initializer_range), dtype=self.dtype
        )

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        attention_type: str | None = None,
        block_sparse_indices: BlockSparseIndices | None = None,
    ):
        outputs = self.bert(
            **_base_inputs(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                head_mask=head_mask,
                deterministic=deterministic,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                attention_type=attention_type,
                block_sparse_indices=block_sparse_indices,
            )
        )
        sequence_output = self.dropout(outputs.last_hidden_state, deterministic=deterministic)
        logits = self.classifier(sequence_output)
        output = TokenClassifierOutput(
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class FlaxBigBirdForTokenClassification(FlaxBigBirdPreTrainedModel):
    """BigBird with a linear classifier on every token (e.g. named entities)."""

    module_class = FlaxBigBirdForTokenClassificationModule


class FlaxBigBirdForQuestionAnsweringHead(nn.Module):
    """Span head: dropout, a feed-forward block with residual and LayerNorm, start/end logits."""

    config: BigBirdConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.dropout = nn.Dropout(rate=config.hidden_dropout_prob)
        self.intermediate = FlaxBigBirdIntermediate(config, self.dtype)
        self.output = FlaxBigBirdOutput(config, self.dtype)
        self.qa_outputs = nn.Dense(
            2, kernel_init=normal_init(config.initializer_range), dtype=self.dtype
        )

    def __call__(self, encoder_output: jax.Array, deterministic: bool = True) -> jax.Array:
        hidden_states = self.intermediate(self.dropout(encoder_output, deterministic=deterministic))
        hidden_states = self.output(hidden_states, encoder_output, deterministic)
        return self.qa_outputs(hidden_states)  # [B, L, 2]


def question_mask(question_lengths: jax.Array, length: int) -> jax.Array:
    """`[B, L]` int32: 1 on the first `question_lengths` positions of each row, else 0."""
    positions = jnp.arange(length)[None]  # [1, L]
    return (positions < jnp.asarray(question_lengths).reshape(-1, 1)).astype(jnp.int32)


class FlaxBigBirdForQuestionAnsweringModule(nn.Module):
    """BigBird with a span head for extractive question answering.

    Question tokens (the first `question_lengths` of each row; by default everything up to and
    including the first `sep_token_id`) cannot be predicted: their logits are lowered by 1e6,
    except position 0 ([CLS], the "no answer" position). Without `token_type_ids`, question tokens
    get type 0 and the rest type 1.
    """

    config: BigBirdConfig
    dtype: Any = jnp.float32
    add_pooling_layer: bool = False
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        config = self.config
        self.sep_token_id = config.sep_token_id
        self.bert = FlaxBigBirdModule(
            config,
            self.dtype,
            add_pooling_layer=self.add_pooling_layer,
            gradient_checkpointing=self.gradient_checkpointing,
        )
        self.qa_classifier = FlaxBigBirdForQuestionAnsweringHead(config, self.dtype)

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        question_lengths=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        attention_type: str | None = None,
        block_sparse_indices: BlockSparseIndices | None = None,
    ):
        length = input_ids.shape[1]
        if question_lengths is None:
            # <cls> question <sep> context <sep>: the question ends at the first separator (a
            # row without one gets question length 1, i.e. only [CLS]).
            is_sep = (input_ids == self.sep_token_id).astype(jnp.int32)
            question_lengths = jnp.argmax(is_sep, axis=-1) + 1  # [B]
        question = question_mask(question_lengths, length)  # [B, L]
        if token_type_ids is None:
            token_type_ids = 1 - question
        logits_mask = question.at[:, 0].set(0)  # [CLS] stays available for "no answer"
        outputs = self.bert(
            **_base_inputs(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                head_mask=head_mask,
                deterministic=deterministic,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                attention_type=attention_type,
                block_sparse_indices=block_sparse_indices,
            )
        )
        logits = self.qa_classifier(outputs.last_hidden_state, deterministic)  # [B, L, 2]
        logits = logits - logits_mask[:, :, None].astype(logits.dtype) * QUESTION_LOGIT_PENALTY
        start_logits, end_logits = logits[..., 0], logits[..., 1]
        output = FlaxBigBirdForQuestionAnsweringModelOutput(
            start_logits=start_logits,
            end_logits=end_logits,
            pooler_output=outputs.pooler_output,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class FlaxBigBirdForQuestionAnswering(FlaxBigBirdPreTrainedModel):
    """BigBird with a span head for extractive question answering (see the module for how
    question tokens are found and masked)."""

    module_class = FlaxBigBirdForQuestionAnsweringModule

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        question_lengths=None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        indices_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        block_sparse_indices: BlockSparseIndices | None = None,
    ):
        """As the other heads' call, plus `question_lengths` (`[B]` or `[B, 1]`; default: up to
        and including the first `sep_token_id` of each row)."""
        inputs = {
            "input_ids": jnp.asarray(input_ids),
            "attention_mask": attention_mask,
            "question_lengths": question_lengths,
            "token_type_ids": token_type_ids,
            "position_ids": position_ids,
            "head_mask": head_mask,
        }
        return self._run(
            inputs,
            params,
            dropout_rng,
            indices_rng,
            train,
            output_attentions,
            output_hidden_states,
            return_dict,
            None,
            block_sparse_indices,
        )
