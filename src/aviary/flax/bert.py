"""BERT in Flax (linen).

Paper: Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding" (arXiv:1810.04805). Relative positions: Shaw et al. (arXiv:1803.02155) and
Huang et al. (arXiv:2009.13658, method 4).

Shapes: B batch · C choices · Q queries · K keys · L tokens · H hidden · N heads · D head dim.
Attribute names are the reference's, so parameter paths map onto the canonical checkpoint names; the
PyTorch and TF files define the same classes in the same order with the same attribute names. Each
linen module `FlaxBert...Module` computes; the `FlaxBert...` class of the same name wraps it with
its config and parameters (`from_pretrained`, `save_pretrained`, `__call__(..., params=...)`).

Decoding: `init_cache(batch, max_length)` preallocates every self-attention's keys and values
(`cached_key`, `cached_value` `[B, N, max_length, D]` and `cache_index`); a call with
`past_key_values=` writes the new keys at `cache_index` and returns the updated cache. Cross-attention
keys are recomputed from `encoder_hidden_states` at every step (same numbers as caching them).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax import traverse_util

from aviary.core import checks
from aviary.core.configs import BertConfig
from aviary.flax.modeling_utils import (
    BaseModelOutputWithPoolingAndCrossAttentions,
    CausalLMOutputWithCrossAttentions,
    FlaxPreTrainedModel,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    NextSentencePredictorOutput,
    QuestionAnsweringModelOutput,
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

FlaxBertForPreTrainingOutput = pytree_output_class("BertForPreTrainingOutput")


class FlaxBertEmbeddings(nn.Module):
    """Word + token-type (+ absolute position) embeddings, then LayerNorm and dropout."""

    config: BertConfig
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
        self.position_embedding_type = config.position_embedding_type
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
        embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids.astype("i4"))
        if self.position_embedding_type == "absolute":
            embeddings = embeddings + self.position_embeddings(position_ids.astype("i4"))
        elif self.is_initializing():
            # Unused with relative positions, but checkpoints carry the table: create it so that
            # loading is strict and saving writes what the other frameworks write.
            self.position_embeddings(position_ids.astype("i4"))
        return self.dropout(self.LayerNorm(embeddings), deterministic=deterministic)


class FlaxBertSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention, with optional relative position terms and a
    key/value cache for decoding."""

    config: BertConfig
    dtype: Any = jnp.float32
    position_embedding_type: str | None = None

    def setup(self) -> None:
        config = self.config
        std = config.initializer_range
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.query = nn.Dense(self.all_head_size, kernel_init=normal_init(std), dtype=self.dtype)
        self.key = nn.Dense(self.all_head_size, kernel_init=normal_init(std), dtype=self.dtype)
        self.value = nn.Dense(self.all_head_size, kernel_init=normal_init(std), dtype=self.dtype)
        self.dropout = nn.Dropout(rate=config.attention_probs_dropout_prob)
        self.embedding_type = self.position_embedding_type or config.position_embedding_type
        if self.embedding_type in ("relative_key", "relative_key_query"):
            self.max_position_embeddings = config.max_position_embeddings
            self.distance_embedding = nn.Embed(
                2 * config.max_position_embeddings - 1,
                self.attention_head_size,
                embedding_init=normal_init(std),
                dtype=self.dtype,
            )
        self.is_decoder = config.is_decoder

    def split_heads(self, x: jax.Array) -> jax.Array:
        batch, length, _ = x.shape
        x = x.reshape(batch, length, self.num_attention_heads, self.attention_head_size)
        return x.transpose(0, 2, 1, 3)  # [B, N, L, D]

    def relative_position_scores(
        self, query: jax.Array, key: jax.Array, past_length: int | jax.Array
    ) -> jax.Array:
        """Scores from the learned distance embeddings, `[B, N, Q, K]` (before scaling)."""
        query_length, key_length = query.shape[2], key.shape[2]
        # Query i sits at position past_length + i (the reference assumes one-token steps).
        query_pos = past_length + jnp.arange(query_length)
        key_pos = jnp.arange(key_length)
        distance = query_pos[:, None] - key_pos[None, :]  # [Q, K]
        table = self.distance_embedding(distance + self.max_position_embeddings - 1)
        table = table.astype(query.dtype)  # [Q, K, D]
        scores = jnp.einsum("bnqd,qkd->bnqk", query, table)
        if self.embedding_type == "relative_key_query":
            scores = scores + jnp.einsum("bnkd,qkd->bnqk", key, table)
        return scores

    @nn.compact  # the cache variables are created on first use, not in setup
    def concatenate_to_cache(
        self, key: jax.Array, value: jax.Array
    ) -> tuple[jax.Array, jax.Array, int | jax.Array]:
        """Write this step's keys and values into the preallocated cache at `cache_index`.

        Returns the whole cache `[B, N, max_length, D]` and the index the step was written at.
        The positions not written yet hold zeros; the causal mask hides them.
        """
        is_initialized = self.has_variable("cache", "cached_key")
        cached_key = self.variable("cache", "cached_key", jnp.zeros, key.shape, key.dtype)
        cached_value = self.variable("cache", "cached_value", jnp.zeros, value.shape, value.dtype)
        cache_index = self.variable("cache", "cache_index", lambda: jnp.array(0, dtype=jnp.int32))
        if not is_initialized:  # `init_cache`: only the shapes (of a max_length input) matter
            return key, value, 0
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
        return key, value, past_length

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: jax.Array | None = None,
        head_mask: jax.Array | None = None,
        encoder_hidden_states: jax.Array | None = None,
        init_cache: bool = False,
        deterministic: bool = True,
        output_attentions: bool = False,
    ) -> tuple[jax.Array, jax.Array | None]:
        query = self.split_heads(self.query(hidden_states))  # [B, N, Q, D]
        past_length = 0
        if encoder_hidden_states is not None:
            key = self.split_heads(self.key(encoder_hidden_states))
            value = self.split_heads(self.value(encoder_hidden_states))
        else:
            key = self.split_heads(self.key(hidden_states))
            value = self.split_heads(self.value(hidden_states))
            if self.is_decoder and (self.has_variable("cache", "cached_key") or init_cache):
                key, value, past_length = self.concatenate_to_cache(key, value)  # [B, N, K, D]

        relative = self.embedding_type != "absolute"
        scores = jnp.einsum("bnqd,bnkd->bnqk", query, key)  # [B, N, Q, K]
        if relative:
            scores = scores + self.relative_position_scores(query, key, past_length)
        scores = scores / math.sqrt(self.attention_head_size)
        if attention_mask is not None:
            scores = scores + attention_mask
        probs = self.dropout(jax.nn.softmax(scores, axis=-1), deterministic=deterministic)
        if head_mask is not None:
            probs = probs * head_mask
        context = jnp.einsum("bnqk,bnkd->bnqd", probs, value)  # [B, N, Q, D]
        batch, _, length, _ = context.shape
        context = context.transpose(0, 2, 1, 3).reshape(batch, length, self.all_head_size)
        return context, (probs if output_attentions else None)


class FlaxBertSelfOutput(nn.Module):
    """Attention output projection, dropout, residual and LayerNorm."""

    config: BertConfig
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


class FlaxBertAttention(nn.Module):
    """Self- or cross-attention followed by its output block."""

    config: BertConfig
    dtype: Any = jnp.float32
    position_embedding_type: str | None = None

    def setup(self) -> None:
        self.self = FlaxBertSelfAttention(self.config, self.dtype, self.position_embedding_type)
        self.output = FlaxBertSelfOutput(self.config, self.dtype)

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: jax.Array | None = None,
        head_mask: jax.Array | None = None,
        encoder_hidden_states: jax.Array | None = None,
        init_cache: bool = False,
        deterministic: bool = True,
        output_attentions: bool = False,
    ):
        context, probs = self.self(
            hidden_states,
            attention_mask,
            head_mask,
            encoder_hidden_states,
            init_cache,
            deterministic,
            output_attentions,
        )
        return self.output(context, hidden_states, deterministic), probs


class FlaxBertIntermediate(nn.Module):
    """First feed-forward projection and activation."""

    config: BertConfig
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


class FlaxBertOutput(nn.Module):
    """Second feed-forward projection, dropout, residual and LayerNorm."""

    config: BertConfig
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


class FlaxBertLayer(nn.Module):
    """Self-attention, optional cross-attention (decoders), feed-forward."""

    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.attention = FlaxBertAttention(config, self.dtype)
        self.is_decoder = config.is_decoder
        self.add_cross_attention = config.add_cross_attention
        if self.add_cross_attention:
            if not self.is_decoder:
                raise ValueError("add_cross_attention=True needs is_decoder=True")
            self.crossattention = FlaxBertAttention(
                config, self.dtype, position_embedding_type="absolute"
            )
        self.intermediate = FlaxBertIntermediate(config, self.dtype)
        self.output = FlaxBertOutput(config, self.dtype)

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
    ):
        attention_output, self_probs = self.attention(
            hidden_states,
            attention_mask,
            head_mask,
            None,
            init_cache,
            deterministic,
            output_attentions,
        )
        cross_probs = None
        if self.is_decoder and encoder_hidden_states is not None:
            if not self.add_cross_attention:
                raise ValueError(
                    "encoder_hidden_states were given, but the model has no cross-attention "
                    "layers: build it with add_cross_attention=True"
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


class FlaxBertEncoder(nn.Module):
    """The stack of layers; collects hidden states and attentions."""

    config: BertConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        layer_class = FlaxBertLayer
        if self.gradient_checkpointing:
            # Recompute each layer in the backward pass; the flags are Python values (argument
            # numbers count `self`).
            layer_class = nn.remat(FlaxBertLayer, static_argnums=(6, 7, 8))
        self.layer = [
            layer_class(self.config, self.dtype) for _ in range(self.config.num_hidden_layers)
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
            )
            if output_attentions:
                all_attentions = (*all_attentions, self_probs)
                if all_cross_attentions is not None:
                    all_cross_attentions = (*all_cross_attentions, cross_probs)
            if output_hidden_states:
                all_hidden_states = (*all_hidden_states, hidden_states)
        return hidden_states, all_hidden_states, all_attentions, all_cross_attentions


class FlaxBertPooler(nn.Module):
    """Dense + tanh over the first ([CLS]) token."""

    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.dense = nn.Dense(
            config.hidden_size, kernel_init=normal_init(config.initializer_range), dtype=self.dtype
        )
        self.activation = jnp.tanh

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return self.activation(self.dense(hidden_states[:, 0]))


class FlaxBertPredictionHeadTransform(nn.Module):
    """Dense, activation and LayerNorm before the vocabulary projection."""

    config: BertConfig
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


class FlaxBertLMPredictionHead(nn.Module):
    """Vocabulary logits. With tied word embeddings there is no decoder parameter: the logits
    use the transposed word-embedding table, passed in as `shared_embedding` (as the reference)."""

    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.transform = FlaxBertPredictionHeadTransform(config, self.dtype)
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


class FlaxBertOnlyMLMHead(nn.Module):
    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.predictions = FlaxBertLMPredictionHead(self.config, self.dtype)

    def __call__(
        self, sequence_output: jax.Array, shared_embedding: jax.Array | None = None
    ) -> jax.Array:
        return self.predictions(sequence_output, shared_embedding)


class FlaxBertOnlyNSPHead(nn.Module):
    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.seq_relationship = nn.Dense(
            2, kernel_init=normal_init(self.config.initializer_range), dtype=self.dtype
        )

    def __call__(self, pooled_output: jax.Array) -> jax.Array:
        return self.seq_relationship(pooled_output)


class FlaxBertPreTrainingHeads(nn.Module):
    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.predictions = FlaxBertLMPredictionHead(self.config, self.dtype)
        self.seq_relationship = nn.Dense(
            2, kernel_init=normal_init(self.config.initializer_range), dtype=self.dtype
        )

    def __call__(
        self,
        sequence_output: jax.Array,
        pooled_output: jax.Array,
        shared_embedding: jax.Array | None = None,
    ):
        prediction_logits = self.predictions(sequence_output, shared_embedding)
        return prediction_logits, self.seq_relationship(pooled_output)


class FlaxBertPreTrainedModel(FlaxPreTrainedModel):
    """Base of the BERT classes: config class, checkpoint prefix, tied LM decoder, and the call
    every head shares (defaults, dropout rng, cache)."""

    config_class = BertConfig
    base_model_prefix = "bert"

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
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: dict | None = None,
    ):
        """Run the model: a pure function of `params` (default: `self.params`) and the inputs.

        `train=True` applies dropout with `dropout_rng`. `past_key_values` (from `init_cache`, or
        a previous call's output) makes the call a decoding step that returns the updated cache.
        """
        config = self.config
        output_attentions = (
            config.output_attentions if output_attentions is None else output_attentions
        )
        output_hidden_states = (
            config.output_hidden_states if output_hidden_states is None else output_hidden_states
        )
        return_dict = config.use_return_dict if return_dict is None else return_dict

        inputs = {
            "input_ids": jnp.asarray(input_ids),
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "position_ids": position_ids,
            "head_mask": head_mask,
            "deterministic": not train,
            "output_attentions": output_attentions,
            "output_hidden_states": output_hidden_states,
        }
        # Only the classes that take them get the decoder inputs (a TypeError names the rest).
        if encoder_hidden_states is not None:
            inputs["encoder_hidden_states"] = encoder_hidden_states
        if encoder_attention_mask is not None:
            inputs["encoder_attention_mask"] = encoder_attention_mask
        variables = {"params": self.params if params is None else params}
        rngs = {"dropout": dropout_rng} if dropout_rng is not None else {}
        if past_key_values is None:
            output = self.module.apply(variables, **inputs, rngs=rngs)
            return finish_output(output, return_dict)

        past_length, cache_length = cache_positions(past_key_values)
        length = inputs["input_ids"].shape[-1]
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


def cache_positions(cache: dict) -> tuple[int | jax.Array, int]:
    """(tokens already cached, cache length) of a cache made by `init_cache`."""
    flat = traverse_util.flatten_dict(dict(cache))
    indices = [v for path, v in flat.items() if path[-1] == "cache_index"]
    keys = [v for path, v in flat.items() if path[-1] == "cached_key"]
    if not indices or not keys:
        raise ValueError("past_key_values is not a cache made by init_cache")
    return indices[0], int(keys[0].shape[2])


# The LM decoder shares the word-embedding matrix (when `tie_word_embeddings`, the default).
TIED_LM_DECODER = ("cls.predictions.decoder.weight",)


class FlaxBertModule(nn.Module):
    """The bare BERT encoder (or decoder, with `is_decoder`), returning hidden states and the
    pooled first token."""

    config: BertConfig
    dtype: Any = jnp.float32
    add_pooling_layer: bool = True
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        self.embeddings = FlaxBertEmbeddings(self.config, self.dtype)
        self.encoder = FlaxBertEncoder(self.config, self.dtype, self.gradient_checkpointing)
        self.pooler = FlaxBertPooler(self.config, self.dtype) if self.add_pooling_layer else None

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
    ):
        config = self.config
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
        embedding_output = self.embeddings(
            input_ids, token_type_ids, position_ids, past_length, deterministic
        )
        dtype = embedding_output.dtype

        if attention_mask is not None:
            attention_mask = jnp.asarray(attention_mask)
            checks.check_attention_mask_shape(
                attention_mask.shape, batch, length, key_length, "attention_mask"
            )
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
        else:
            extended_mask = None

        encoder_extended_mask = None
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
        head_masks = expand_head_mask(
            head_mask, config.num_hidden_layers, config.num_attention_heads, dtype
        )

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
        )
        pooled_output = self.pooler(sequence_output) if self.pooler is not None else None
        output = BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=sequence_output,
            pooler_output=pooled_output,
            hidden_states=hidden_states,
            attentions=attentions,
            cross_attentions=cross_attentions,
        )
        return finish_output(output, return_dict)


class FlaxBertModel(FlaxBertPreTrainedModel):
    """The bare BERT encoder (or decoder, with `is_decoder`), returning hidden states and the
    pooled first token."""

    module_class = FlaxBertModule


def _base_inputs(**kwargs):
    """The arguments every head passes through to `FlaxBertModule`, always as an output object."""
    return {**kwargs, "return_dict": True}


def _shared_embedding(module: nn.Module) -> jax.Array | None:
    """The word-embedding table the LM decoder reuses, or None when the decoder is untied."""
    if not module.config.tie_word_embeddings:
        return None
    return module.bert.variables["params"]["embeddings"]["word_embeddings"]["embedding"]


class FlaxBertForPreTrainingModule(nn.Module):
    """BERT with the masked-LM and next-sentence-prediction heads used in pretraining."""

    config: BertConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        self.bert = FlaxBertModule(
            self.config, self.dtype, gradient_checkpointing=self.gradient_checkpointing
        )
        self.cls = FlaxBertPreTrainingHeads(self.config, self.dtype)

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
            )
        )
        prediction_logits, seq_relationship_logits = self.cls(
            outputs.last_hidden_state, outputs.pooler_output, _shared_embedding(self)
        )
        output = FlaxBertForPreTrainingOutput(
            prediction_logits=prediction_logits,
            seq_relationship_logits=seq_relationship_logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class FlaxBertForPreTraining(FlaxBertPreTrainedModel):
    """BERT with the masked-LM and next-sentence-prediction heads used in pretraining."""

    module_class = FlaxBertForPreTrainingModule
    tied_weights = TIED_LM_DECODER


class FlaxBertForCausalLMModule(nn.Module):
    """BERT as a causal (left-to-right) language model; needs `is_decoder=True`."""

    config: BertConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        if not self.config.is_decoder:
            raise ValueError("FlaxBertForCausalLM needs a config with is_decoder=True")
        self.bert = FlaxBertModule(
            self.config,
            self.dtype,
            add_pooling_layer=False,
            gradient_checkpointing=self.gradient_checkpointing,
        )
        self.cls = FlaxBertOnlyMLMHead(self.config, self.dtype)

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


class FlaxBertForCausalLM(FlaxBertPreTrainedModel):
    """BERT as a causal (left-to-right) language model; needs `is_decoder=True`."""

    module_class = FlaxBertForCausalLMModule
    tied_weights = TIED_LM_DECODER


class FlaxBertForMaskedLMModule(nn.Module):
    """BERT with the masked-language-modelling head."""

    config: BertConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        self.bert = FlaxBertModule(
            self.config,
            self.dtype,
            add_pooling_layer=False,
            gradient_checkpointing=self.gradient_checkpointing,
        )
        self.cls = FlaxBertOnlyMLMHead(self.config, self.dtype)

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
            )
        )
        logits = self.cls(outputs.last_hidden_state, _shared_embedding(self))
        output = MaskedLMOutput(
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class FlaxBertForMaskedLM(FlaxBertPreTrainedModel):
    """BERT with the masked-language-modelling head."""

    module_class = FlaxBertForMaskedLMModule
    tied_weights = TIED_LM_DECODER


class FlaxBertForNextSentencePredictionModule(nn.Module):
    """BERT with the next-sentence-prediction head (label 1 = sentence B is random)."""

    config: BertConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        self.bert = FlaxBertModule(
            self.config, self.dtype, gradient_checkpointing=self.gradient_checkpointing
        )
        self.cls = FlaxBertOnlyNSPHead(self.config, self.dtype)

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
            )
        )
        logits = self.cls(outputs.pooler_output)
        output = NextSentencePredictorOutput(
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class FlaxBertForNextSentencePrediction(FlaxBertPreTrainedModel):
    """BERT with the next-sentence-prediction head (label 1 = sentence B is random)."""

    module_class = FlaxBertForNextSentencePredictionModule


class FlaxBertForSequenceClassificationModule(nn.Module):
    """BERT with a linear classification (or regression) head over the pooled output."""

    config: BertConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        config = self.config
        self.num_labels = config.num_labels
        self.bert = FlaxBertModule(
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
            )
        )
        pooled_output = self.dropout(outputs.pooler_output, deterministic=deterministic)
        logits = self.classifier(pooled_output)
        output = SequenceClassifierOutput(
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class FlaxBertForSequenceClassification(FlaxBertPreTrainedModel):
    """BERT with a linear classification (or regression) head over the pooled output."""

    module_class = FlaxBertForSequenceClassificationModule


class FlaxBertForMultipleChoiceModule(nn.Module):
    """BERT scoring each of C choices with a linear layer over its pooled output."""

    config: BertConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        config = self.config
        self.bert = FlaxBertModule(
            config, self.dtype, gradient_checkpointing=self.gradient_checkpointing
        )
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(rate=config.hidden_dropout_prob if dropout is None else dropout)
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


class FlaxBertForMultipleChoice(FlaxBertPreTrainedModel):
    """BERT scoring each of C choices with a linear layer over its pooled output."""

    module_class = FlaxBertForMultipleChoiceModule

    def _dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        if len(input_shape) == 2:  # (batch, length) -> one choice each
            input_shape = (input_shape[0], 1, input_shape[1])
        return super()._dummy_inputs(input_shape)


class FlaxBertForTokenClassificationModule(nn.Module):
    """BERT with a linear classifier on every token (e.g. named entities)."""

    config: BertConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        config = self.config
        self.num_labels = config.num_labels
        self.bert = FlaxBertModule(
            config,
            self.dtype,
            add_pooling_layer=False,
            gradient_checkpointing=self.gradient_checkpointing,
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


class FlaxBertForTokenClassification(FlaxBertPreTrainedModel):
    """BERT with a linear classifier on every token (e.g. named entities)."""

    module_class = FlaxBertForTokenClassificationModule


class FlaxBertForQuestionAnsweringModule(nn.Module):
    """BERT with a span head: start and end logits for every token."""

    config: BertConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        config = self.config
        self.bert = FlaxBertModule(
            config,
            self.dtype,
            add_pooling_layer=False,
            gradient_checkpointing=self.gradient_checkpointing,
        )
        self.qa_outputs = nn.Dense(
            2, kernel_init=normal_init(config.initializer_range), dtype=self.dtype
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
            )
        )
        logits = self.qa_outputs(outputs.last_hidden_state)  # [B, L, 2]
        start_logits, end_logits = logits[..., 0], logits[..., 1]
        output = QuestionAnsweringModelOutput(
            start_logits=start_logits,
            end_logits=end_logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class FlaxBertForQuestionAnswering(FlaxBertPreTrainedModel):
    """BERT with a span head: start and end logits for every token."""

    module_class = FlaxBertForQuestionAnsweringModule
