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
(`aviary.flax.modeling_utils.KeyValueCacheMixin`); cross-attention keys are recomputed from
`encoder_hidden_states` at every step (same numbers as caching them).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import linen as nn

from aviary.core import checks
from aviary.core.configs import BertConfig
from aviary.core.outputs import head_output
from aviary.flax.modeling_utils import (
    BaseModelOutputWithPoolingAndCrossAttentions,
    CausalLMOutputWithCrossAttentions,
    FlaxBertForPreTrainingOutput,
    FlaxPreTrainedModel,
    KeyValueCacheMixin,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    NextSentencePredictorOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
    check_ids,
    classifier_dropout,
    dense,
    embed,
    expand_head_mask,
    extended_attention_mask,
    get_activation,
    is_concrete,
    layer_norm,
)


class FlaxBertEmbeddings(nn.Module):
    """Word (times sqrt(H) with `config.rescale_embeddings`, a BigBird option) + token-type
    (+ absolute position) embeddings, then LayerNorm and dropout."""

    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        hidden = config.hidden_size
        self.word_embeddings = embed(
            config.vocab_size, hidden, config, self.dtype, config.pad_token_id
        )
        self.position_embeddings = embed(config.max_position_embeddings, hidden, config, self.dtype)
        self.token_type_embeddings = embed(config.type_vocab_size, hidden, config, self.dtype)
        self.LayerNorm = layer_norm(config, self.dtype)
        self.dropout = nn.Dropout(rate=config.hidden_dropout_prob)
        self.position_embedding_type = getattr(config, "position_embedding_type", "absolute")
        self.rescale_embeddings = getattr(config, "rescale_embeddings", False)
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
            inputs_embeds = inputs_embeds * math.sqrt(self.config.hidden_size)
        embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids.astype("i4"))
        if self.position_embedding_type == "absolute":
            embeddings = embeddings + self.position_embeddings(position_ids.astype("i4"))
        elif self.is_initializing():
            # Unused with relative positions, but checkpoints carry the table: create it so that
            # loading is strict and saving writes what the other frameworks write.
            self.position_embeddings(position_ids.astype("i4"))
        return self.normalize(embeddings, deterministic)

    def normalize(self, embeddings: jax.Array, deterministic: bool) -> jax.Array:
        return self.dropout(self.LayerNorm(embeddings), deterministic=deterministic)


class FlaxBertSelfAttention(KeyValueCacheMixin):
    """Multi-head scaled dot-product attention, with optional relative position terms and a
    key/value cache for decoding."""

    config: BertConfig
    dtype: Any = jnp.float32
    position_embedding_type: str | None = None
    layer_index: int = 0

    def setup(self) -> None:
        config = self.config
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        bias = getattr(config, "use_bias", True)  # BigBird's configs can drop the biases
        self.query = dense(self.all_head_size, config, self.dtype, bias)
        self.key = dense(self.all_head_size, config, self.dtype, bias)
        self.value = dense(self.all_head_size, config, self.dtype, bias)
        self.dropout = nn.Dropout(rate=config.attention_probs_dropout_prob)
        self.embedding_type = self.position_embedding_type or getattr(
            config, "position_embedding_type", "absolute"
        )
        if self.embedding_type in ("relative_key", "relative_key_query"):
            self.max_position_embeddings = config.max_position_embeddings
            self.distance_embedding = embed(
                2 * config.max_position_embeddings - 1, self.attention_head_size, config, self.dtype
            )
        self.is_decoder = config.is_decoder

    def split_heads(self, x: jax.Array) -> jax.Array:
        batch, length, _ = x.shape
        x = x.reshape(batch, length, self.num_attention_heads, self.attention_head_size)
        return x.transpose(0, 2, 1, 3)  # [B, N, L, D]

    def merge_heads(self, context: jax.Array) -> jax.Array:
        batch, _, length, _ = context.shape
        return context.transpose(0, 2, 1, 3).reshape(batch, length, self.all_head_size)  # [B, L, H]

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
            if self.is_decoder and self.uses_cache(init_cache):
                key, value, past_length = self.concatenate_to_cache(key, value)  # [B, N, K, D]

        scores = jnp.einsum("bnqd,bnkd->bnqk", query, key)  # [B, N, Q, K]
        if self.embedding_type != "absolute":
            scores = scores + self.relative_position_scores(query, key, past_length)
        scores = scores / math.sqrt(self.attention_head_size)
        if attention_mask is not None:
            scores = scores + attention_mask
        probs = self.dropout(jax.nn.softmax(scores, axis=-1), deterministic=deterministic)
        if head_mask is not None:
            probs = probs * head_mask
        context = jnp.einsum("bnqk,bnkd->bnqd", probs, value)  # [B, N, Q, D]
        return self.merge_heads(context), (probs if output_attentions else None)


class FlaxBertSelfOutput(nn.Module):
    """Attention output projection, dropout, residual and LayerNorm."""

    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.dense = dense(self.config.hidden_size, self.config, self.dtype)
        self.LayerNorm = layer_norm(self.config, self.dtype)
        self.dropout = nn.Dropout(rate=self.config.hidden_dropout_prob)

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
    layer_index: int = 0
    # The attention kernel; BigBird swaps in its block-sparse dispatch.
    self_attention_class: ClassVar[type[nn.Module]] = FlaxBertSelfAttention

    def setup(self) -> None:
        self.self = self.self_attention_class(
            self.config, self.dtype, self.position_embedding_type, self.layer_index
        )
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
        **attention_inputs: Any,
    ):
        # attention_inputs: what a swapped-in self-attention needs too (BigBird's block_sparse).
        context, probs = self.self(
            hidden_states,
            attention_mask,
            head_mask,
            encoder_hidden_states,
            init_cache,
            deterministic,
            output_attentions,
            **attention_inputs,
        )
        return self.output(context, hidden_states, deterministic), probs


class FlaxBertIntermediate(nn.Module):
    """First feed-forward projection and activation."""

    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.dense = dense(self.config.intermediate_size, self.config, self.dtype)
        self.intermediate_act_fn = get_activation(self.config.hidden_act)

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return self.intermediate_act_fn(self.dense(hidden_states))


class FlaxBertOutput(FlaxBertSelfOutput):
    """Second feed-forward projection, dropout, residual and LayerNorm (as `FlaxBertSelfOutput`)."""


class FlaxBertLayer(nn.Module):
    """Self-attention, optional cross-attention (decoders), feed-forward."""

    config: BertConfig
    dtype: Any = jnp.float32
    layer_index: int = 0
    attention_class: ClassVar[type[nn.Module]] = FlaxBertAttention

    def setup(self) -> None:
        config = self.config
        self.attention = self.attention_class(config, self.dtype, layer_index=self.layer_index)
        self.is_decoder = config.is_decoder
        self.add_cross_attention = config.add_cross_attention
        if self.add_cross_attention:
            if not self.is_decoder:
                raise ValueError("add_cross_attention=True needs is_decoder=True")
            self.crossattention = self.attention_class(
                config, self.dtype, position_embedding_type="absolute", layer_index=self.layer_index
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
        **attention_inputs: Any,
    ):
        attention_output, self_probs = self.attention(
            hidden_states,
            attention_mask,
            head_mask,
            None,
            init_cache,
            deterministic,
            output_attentions,
            **attention_inputs,
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
    layer_class: ClassVar[type[nn.Module]] = FlaxBertLayer

    def setup(self) -> None:
        layer_class = self.layer_class
        if self.gradient_checkpointing:
            # Recompute each layer in the backward pass; the flags are Python values (argument
            # numbers count `self`).
            layer_class = nn.remat(layer_class, static_argnums=(6, 7, 8))
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
        **attention_inputs: Any,
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
                **attention_inputs,
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
        self.dense = dense(self.config.hidden_size, self.config, self.dtype)
        self.activation = jnp.tanh

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return self.activation(self.dense(hidden_states[:, 0]))


class FlaxBertPredictionHeadTransform(nn.Module):
    """Dense, activation and LayerNorm before the vocabulary projection."""

    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.dense = dense(self.config.hidden_size, self.config, self.dtype)
        self.transform_act_fn = get_activation(self.config.hidden_act)
        self.LayerNorm = layer_norm(self.config, self.dtype)

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
            self.decoder = dense(config.vocab_size, config, self.dtype, use_bias=False)
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
        self.seq_relationship = dense(2, self.config, self.dtype)

    def __call__(self, pooled_output: jax.Array) -> jax.Array:
        return self.seq_relationship(pooled_output)


class FlaxBertPreTrainingHeads(nn.Module):
    config: BertConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.predictions = FlaxBertLMPredictionHead(self.config, self.dtype)
        self.seq_relationship = dense(2, self.config, self.dtype)

    def __call__(
        self,
        sequence_output: jax.Array,
        pooled_output: jax.Array,
        shared_embedding: jax.Array | None = None,
    ):
        prediction_logits = self.predictions(sequence_output, shared_embedding)
        return prediction_logits, self.seq_relationship(pooled_output)


class FlaxBertPreTrainedModel(FlaxPreTrainedModel):
    """Base of the BERT classes: config class, checkpoint prefix, the call every head shares."""

    config_class = BertConfig
    base_model_prefix = "bert"

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
        inputs = self.given_inputs(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            head_mask=head_mask,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
        )
        return self.apply_module(
            inputs,
            params=params,
            dropout_rng=dropout_rng,
            train=train,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=return_dict,
            past_key_values=past_key_values,
        )


def full_attention_masks(
    hidden_states: jax.Array,
    attention_mask: jax.Array | None,
    encoder_hidden_states: jax.Array | None,
    encoder_attention_mask: jax.Array | None,
    causal: bool,
    past_length: int | jax.Array = 0,
    cache_length: int | None = None,
    encoder_mask_name: str = "encoder_attention_mask",
) -> tuple[jax.Array | None, jax.Array | None]:
    """The additive masks of full attention for a call on `hidden_states` `[B, L, H]`:
    self-attention (causal for a decoder, whose keys are the whole cache with a preallocated
    one; None when nothing is masked) and cross-attention (None without an
    `encoder_attention_mask`; `encoder_mask_name` names it in a shape error)."""
    batch, length, _ = hidden_states.shape
    dtype = hidden_states.dtype
    extended_mask = None  # nothing masked
    if causal or attention_mask is not None:
        if attention_mask is None:
            attention_mask = jnp.ones((batch, cache_length or length), dtype="i4")
        extended_mask = extended_attention_mask(attention_mask, length, dtype, causal, past_length)
    encoder_extended_mask = None
    if encoder_hidden_states is not None and encoder_attention_mask is not None:
        encoder_attention_mask = jnp.asarray(encoder_attention_mask)
        checks.check_attention_mask_shape(
            encoder_attention_mask.shape,
            batch,
            length,
            encoder_hidden_states.shape[1],
            encoder_mask_name,
        )
        encoder_extended_mask = extended_attention_mask(
            encoder_attention_mask, length, dtype, causal=False
        )
    return extended_mask, encoder_extended_mask


# The LM decoder shares the word-embedding matrix (when `tie_word_embeddings`, the default).
TIED_LM_DECODER = (("cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"),)


class FlaxBertModule(nn.Module):
    """The bare BERT encoder (or decoder, with `is_decoder`), returning hidden states and the
    pooled first token."""

    config: BertConfig
    dtype: Any = jnp.float32
    add_pooling_layer: bool = True
    gradient_checkpointing: bool = False

    embeddings_class: ClassVar[type[nn.Module]] = FlaxBertEmbeddings
    encoder_class: ClassVar[type[nn.Module]] = FlaxBertEncoder

    def setup(self) -> None:
        self.embeddings = self.embeddings_class(self.config, self.dtype)
        self.encoder = self.encoder_class(self.config, self.dtype, self.gradient_checkpointing)
        self.pooler = self.pooler_layer() if self.add_pooling_layer else None

    def pooler_layer(self) -> nn.Module:
        """The pooler over the first token (a swapped-in model builds its own)."""
        return FlaxBertPooler(self.config, self.dtype)

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
        **encode_inputs: Any,
    ):
        # encode_inputs: what a swapped-in `encode` needs too (BigBird's block_sparse_indices).
        config = self.config
        checks.check_rank("input_ids", input_ids.shape, (2,))
        batch, length = input_ids.shape
        if position_ids is not None:
            checks.check_same_shape(
                "position_ids", position_ids.shape[-1:], (length,), "the input length"
            )
        if attention_mask is not None:
            attention_mask = jnp.asarray(attention_mask)
            # With a preallocated cache the keys are the whole cache; otherwise this call's tokens.
            checks.check_attention_mask_shape(
                attention_mask.shape, batch, length, cache_length or length, "attention_mask"
            )
        if token_type_ids is None:
            token_type_ids = jnp.zeros((batch, length), dtype="i4")
        else:
            checks.check_same_shape(
                "token_type_ids", token_type_ids.shape, (batch, length), "the input"
            )

        embedding_output = self.embeddings(
            input_ids, token_type_ids, position_ids, past_length, deterministic
        )
        dtype = embedding_output.dtype
        head_masks = expand_head_mask(
            head_mask, config.num_hidden_layers, config.num_attention_heads, dtype
        )
        if encoder_hidden_states is not None:
            encoder_hidden_states = jnp.asarray(encoder_hidden_states).astype(dtype)
        sequence_output, hidden_states, attentions, cross_attentions = self.encode(
            embedding_output,
            attention_mask,
            head_masks,
            encoder_hidden_states,
            encoder_attention_mask,
            init_cache,
            past_length,
            cache_length,
            deterministic,
            output_attentions,
            output_hidden_states,
            **encode_inputs,
        )
        pooled_output = self.pooler(sequence_output) if self.pooler is not None else None
        return head_output(
            BaseModelOutputWithPoolingAndCrossAttentions,
            None,
            return_dict,
            last_hidden_state=sequence_output,
            pooler_output=pooled_output,
            hidden_states=hidden_states,
            attentions=attentions,
            cross_attentions=cross_attentions,
        )

    def encode(
        self,
        embedding_output: jax.Array,
        attention_mask: jax.Array | None,
        head_masks: list[jax.Array | None],
        encoder_hidden_states: jax.Array | None,
        encoder_attention_mask: jax.Array | None,
        init_cache: bool,
        past_length: int | jax.Array,
        cache_length: int | None,
        deterministic: bool,
        output_attentions: bool,
        output_hidden_states: bool,
        **attention_inputs: Any,
    ) -> tuple:
        """The encoder stack over `embedding_output` `[B, L, H]` with full attention (causal for
        a decoder): `(sequence_output, hidden_states, attentions, cross_attentions)`.
        `attention_inputs` serve a swapped-in `encode` (BigBird's plan)."""
        extended_mask, encoder_extended_mask = full_attention_masks(
            embedding_output,
            attention_mask,
            encoder_hidden_states,
            encoder_attention_mask,
            self.config.is_decoder,
            past_length,
            cache_length,
        )
        return self.encoder(
            embedding_output,
            extended_mask,
            head_masks,
            encoder_hidden_states,
            encoder_extended_mask,
            init_cache,
            deterministic,
            output_attentions,
            output_hidden_states,
            **attention_inputs,
        )


class FlaxBertModel(FlaxBertPreTrainedModel):
    """The bare BERT encoder (or decoder, with `is_decoder`), returning hidden states and the
    pooled first token."""

    module_class = FlaxBertModule


class FlaxBertHeadModule(nn.Module):
    """Base of the head modules: they build `base_model_class` (`FlaxBertModule`) as `self.bert`,
    without the pooler in heads that do not read the pooled output unless `pooler_in_every_head`
    (BigBird's checkpoints store it with every head). A head's call runs the backbone, passing
    `base_inputs` on (what a swapped-in backbone needs too: BigBird's `block_sparse_indices`),
    then the head's own math, `head(outputs, deterministic, return_dict)`."""

    config: BertConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False
    base_model_class: ClassVar[type[nn.Module]] = FlaxBertModule
    pooler_in_every_head: ClassVar[bool] = False

    def build_base_model(self, add_pooling_layer: bool = True) -> nn.Module:
        add_pooling_layer = add_pooling_layer or self.pooler_in_every_head
        return self.base_model_class(
            self.config, self.dtype, add_pooling_layer, self.gradient_checkpointing
        )

    def shared_embedding(self) -> jax.Array | None:
        """The word-embedding table the LM decoder reuses, or None when the decoder is untied."""
        if not self.config.tie_word_embeddings:
            return None
        return self.bert.variables["params"]["embeddings"]["word_embeddings"]["embedding"]

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
        **base_inputs,
    ):
        outputs = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            head_mask,
            deterministic=deterministic,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            **base_inputs,
        )
        return self.head(outputs, deterministic, return_dict)


class FlaxBertForPreTrainingModule(FlaxBertHeadModule):
    """BERT with the masked-LM and next-sentence-prediction heads used in pretraining."""

    output_class: ClassVar[type] = FlaxBertForPreTrainingOutput

    def setup(self) -> None:
        self.bert = self.build_base_model()
        self.cls = FlaxBertPreTrainingHeads(self.config, self.dtype)

    def head(self, outputs, deterministic: bool, return_dict: bool):
        prediction_logits, seq_relationship_logits = self.cls(
            outputs.last_hidden_state, outputs.pooler_output, self.shared_embedding()
        )
        return head_output(
            self.output_class,
            outputs,
            return_dict,
            prediction_logits=prediction_logits,
            seq_relationship_logits=seq_relationship_logits,
        )


class FlaxBertForPreTraining(FlaxBertPreTrainedModel):
    """BERT with the masked-LM and next-sentence-prediction heads used in pretraining."""

    module_class = FlaxBertForPreTrainingModule
    tied_weights = TIED_LM_DECODER


class FlaxBertForCausalLMModule(FlaxBertHeadModule):
    """BERT as a causal (left-to-right) language model with `is_decoder=True` (else: warns)."""

    output_class: ClassVar[type] = CausalLMOutputWithCrossAttentions

    def setup(self) -> None:
        if self.is_initializing():  # once per model, as the reference's constructor warns
            checks.warn_if_not_decoder(type(self).__name__.removesuffix("Module"), self.config)
        self.bert = self.build_base_model(add_pooling_layer=False)
        self.cls = FlaxBertOnlyMLMHead(self.config, self.dtype)

    def head(self, outputs, deterministic: bool, return_dict: bool):
        logits = self.cls(outputs.last_hidden_state, self.shared_embedding())
        return head_output(self.output_class, outputs, return_dict, logits=logits)


class FlaxBertForCausalLM(FlaxBertPreTrainedModel):
    """BERT as a causal (left-to-right) language model with `is_decoder=True` (else: warns)."""

    module_class = FlaxBertForCausalLMModule
    tied_weights = TIED_LM_DECODER


class FlaxBertForMaskedLMModule(FlaxBertForCausalLMModule):
    """BERT with the masked-language-modelling head: the causal LM's head (the same math), on
    an encoder."""

    output_class = MaskedLMOutput

    def setup(self) -> None:
        self.bert = self.build_base_model(add_pooling_layer=False)
        self.cls = FlaxBertOnlyMLMHead(self.config, self.dtype)


class FlaxBertForMaskedLM(FlaxBertPreTrainedModel):
    """BERT with the masked-language-modelling head."""

    module_class = FlaxBertForMaskedLMModule
    tied_weights = TIED_LM_DECODER


class FlaxBertForNextSentencePredictionModule(FlaxBertHeadModule):
    """BERT with the next-sentence-prediction head (label 1 = sentence B is random)."""

    def setup(self) -> None:
        self.bert = self.build_base_model()
        self.cls = FlaxBertOnlyNSPHead(self.config, self.dtype)

    def head(self, outputs, deterministic: bool, return_dict: bool):
        logits = self.cls(outputs.pooler_output)
        return head_output(NextSentencePredictorOutput, outputs, return_dict, logits=logits)


class FlaxBertForNextSentencePrediction(FlaxBertPreTrainedModel):
    """BERT with the next-sentence-prediction head (label 1 = sentence B is random)."""

    module_class = FlaxBertForNextSentencePredictionModule


class FlaxBertForSequenceClassificationModule(FlaxBertHeadModule):
    """BERT with a linear classification (or regression) head over the pooled output."""

    def setup(self) -> None:
        self.bert = self.build_base_model()
        self.dropout = classifier_dropout(self.config)
        self.classifier = dense(self.config.num_labels, self.config, self.dtype)

    def head(self, outputs, deterministic: bool, return_dict: bool):
        pooled_output = self.dropout(outputs.pooler_output, deterministic=deterministic)
        logits = self.classifier(pooled_output)
        return head_output(SequenceClassifierOutput, outputs, return_dict, logits=logits)


class FlaxBertForSequenceClassification(FlaxBertPreTrainedModel):
    """BERT with a linear classification (or regression) head over the pooled output."""

    module_class = FlaxBertForSequenceClassificationModule


class FlaxBertForMultipleChoiceModule(FlaxBertHeadModule):
    """BERT scoring each of C choices with a linear layer over its pooled output."""

    def setup(self) -> None:
        self.bert = self.build_base_model()
        self.dropout = classifier_dropout(self.config)
        self.classifier = dense(1, self.config, self.dtype)

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
        **base_inputs,
    ):
        checks.check_rank("input_ids", input_ids.shape, (3,))
        num_choices = input_ids.shape[1]

        def flat(x):  # [B, C, L, ...] -> [B*C, L, ...]
            return None if x is None else jnp.asarray(x).reshape(-1, *x.shape[2:])

        outputs = self.bert(
            flat(input_ids),
            flat(attention_mask),
            flat(token_type_ids),
            flat(position_ids),
            head_mask,
            deterministic=deterministic,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            **base_inputs,
        )
        pooled_output = self.dropout(outputs.pooler_output, deterministic=deterministic)
        logits = self.classifier(pooled_output).reshape(-1, num_choices)
        return head_output(MultipleChoiceModelOutput, outputs, return_dict, logits=logits)


class FlaxBertForMultipleChoice(FlaxBertPreTrainedModel):
    """BERT scoring each of C choices with a linear layer over its pooled output."""

    module_class = FlaxBertForMultipleChoiceModule

    def _dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        if len(input_shape) == 2:  # (batch, length) -> one choice each
            input_shape = (input_shape[0], 1, input_shape[1])
        return super()._dummy_inputs(input_shape)


class FlaxBertForTokenClassificationModule(FlaxBertHeadModule):
    """BERT with a linear classifier on every token (e.g. named entities)."""

    def setup(self) -> None:
        self.bert = self.build_base_model(add_pooling_layer=False)
        self.dropout = classifier_dropout(self.config)
        self.classifier = dense(self.config.num_labels, self.config, self.dtype)

    def head(self, outputs, deterministic: bool, return_dict: bool):
        sequence_output = self.dropout(outputs.last_hidden_state, deterministic=deterministic)
        logits = self.classifier(sequence_output)
        return head_output(TokenClassifierOutput, outputs, return_dict, logits=logits)


class FlaxBertForTokenClassification(FlaxBertPreTrainedModel):
    """BERT with a linear classifier on every token (e.g. named entities)."""

    module_class = FlaxBertForTokenClassificationModule


class FlaxBertForQuestionAnsweringModule(FlaxBertHeadModule):
    """BERT with a span head: start and end logits for every token."""

    def setup(self) -> None:
        self.bert = self.build_base_model(add_pooling_layer=False)
        self.qa_outputs = dense(2, self.config, self.dtype)

    def head(self, outputs, deterministic: bool, return_dict: bool):
        logits = self.qa_outputs(outputs.last_hidden_state)  # [B, L, 2]
        return head_output(
            QuestionAnsweringModelOutput,
            outputs,
            return_dict,
            start_logits=logits[..., 0],
            end_logits=logits[..., 1],
        )


class FlaxBertForQuestionAnswering(FlaxBertPreTrainedModel):
    """BERT with a span head: start and end logits for every token."""

    module_class = FlaxBertForQuestionAnsweringModule
