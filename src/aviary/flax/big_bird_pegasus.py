"""BigBirdPegasus in Flax (linen): a BigBird encoder (block-sparse or full attention) and a
Pegasus-style full-attention decoder, for long-document summarisation.

Paper: Zaheer et al., "Big Bird: Transformers for Longer Sequences" (arXiv:2007.14062).

Both stacks are pre-LayerNorm (`x + Dropout(Sublayer(LN(x)))`) and end with a LayerNorm that the
checkpoints call `layernorm_embedding`; every LayerNorm has eps 1e-5. Word embeddings are shared by
the encoder, the decoder and (tied) the LM head, and scaled by sqrt(d_model) (`scale_embedding`);
each stack has its own learned position table, starting at position 0.

The encoder's self-attention is BigBird's (`aviary.flax.big_bird.FlaxBigBirdSelfAttention`),
planned as in `FlaxBigBirdModel`: the wrapper's controller (`model.block_sparse`) decides once
per call, outside the trace, between block-sparse attention (the input padded to whole blocks
with embedded pad tokens) and full attention (short inputs), and hands the module the plan as
`BlockSparseIndices`. The deviations from the reference are the PyTorch file's (on purpose): the
mask is honoured on the full-attention fallback, every per-token output is unpadded, and
`head_mask` applies in block-sparse mode too.

Decoding: `init_cache(batch, max_length)` preallocates every decoder self-attention's keys and
values (as the Flax BERT and BigBird do); a call with `past_key_values=` writes the new keys at
`cache_index` and returns the updated cache. The cross-attention keys and values are recomputed
from `encoder_hidden_states` at each step (the PyTorch cache stores them; the numbers are the same).
Flax heads return logits only: no labels and no loss (see `aviary.flax.modeling_utils` losses).

Shapes: B batch · S source (encoder) tokens · T target (decoder) tokens · H d_model · N heads ·
D head dim · V vocabulary. Attribute names are the reference's, so parameter paths map onto the
canonical checkpoint names. Each linen module `FlaxBigBirdPegasus...Module` computes; the
`FlaxBigBirdPegasus...` class of the same name wraps it with its config, parameters and attention
settings.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from aviary.core import checks
from aviary.core.block_sparse import BlockSparseController, unpad_outputs
from aviary.core.configs import BigBirdPegasusConfig
from aviary.core.outputs import as_encoder_output, head_output
from aviary.flax.bert import full_attention_masks
from aviary.flax.big_bird import FlaxBigBirdSelfAttention
from aviary.flax.big_bird_attention import BlockSparseIndices, BlockSparseModelMixin
from aviary.flax.generation import FlaxGenerationMixin
from aviary.flax.modeling_utils import (
    IGNORE_INDEX,
    BaseModelOutput,
    BaseModelOutputWithPastAndCrossAttentions,
    CausalLMOutputWithCrossAttentions,
    FlaxPreTrainedModel,
    KeyValueCacheMixin,
    Seq2SeqLMOutput,
    Seq2SeqModelOutput,
    Seq2SeqQuestionAnsweringModelOutput,
    Seq2SeqSequenceClassifierOutput,
    check_ids,
    dense,
    embedding_init,
    expand_head_mask,
    extended_attention_mask,
    finish_output,
    get_activation,
    is_concrete,
    normal_init,
)

# The reference builds every BigBirdPegasus LayerNorm with the framework default (no config field).
LAYER_NORM_EPS = 1e-5


def shift_tokens_right(
    input_ids: jax.Array, pad_token_id: int | None, decoder_start_token_id: int | None
) -> jax.Array:
    """Decoder inputs from labels: prepend `decoder_start_token_id`, drop the last token, and
    replace the ignored label -100 by `pad_token_id`. `[B, T]` -> `[B, T]`."""
    checks.check_decoder_start(pad_token_id, decoder_start_token_id)
    input_ids = jnp.asarray(input_ids)
    start = jnp.full_like(input_ids[:, :1], decoder_start_token_id)
    shifted = jnp.concatenate([start, input_ids[:, :-1]], axis=1)  # [B, T]
    return jnp.where(shifted == IGNORE_INDEX, pad_token_id, shifted)


class FlaxBigBirdPegasusLearnedPositionalEmbedding(nn.Embed):
    """Learned positions `past .. past + length - 1` (no offset)."""

    def __call__(self, length: int, past_key_values_length: int | jax.Array = 0) -> jax.Array:
        if is_concrete(past_key_values_length):  # a cache index is traced under jit
            checks.check_sequence_length(length, int(past_key_values_length), self.num_embeddings)
        positions = past_key_values_length + jnp.arange(length)
        return super().__call__(positions)  # [L, H]


class FlaxBigBirdPegasusScaledWordEmbedding(nn.Embed):
    """Word embeddings multiplied by `embed_scale` (sqrt(d_model) with `scale_embedding`)."""

    embed_scale: float = 1.0

    def __call__(self, input_ids: jax.Array) -> jax.Array:
        return super().__call__(input_ids.astype("i4")) * self.embed_scale


class FlaxBigBirdPegasusEncoderAttention(nn.Module):
    """BigBird self-attention (`self`: full or block-sparse, as the plan says) and the output
    projection (`output`, a bare Dense)."""

    config: BigBirdPegasusConfig
    dtype: Any = jnp.float32
    layer_index: int = 0

    def setup(self) -> None:
        config = self.config
        self.self = FlaxBigBirdSelfAttention(config, self.dtype, layer_index=self.layer_index)
        self.output = dense(config.d_model, config, self.dtype, use_bias=config.use_bias)

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: jax.Array | None = None,
        head_mask: jax.Array | None = None,
        deterministic: bool = True,
        output_attentions: bool = False,
        block_sparse: tuple[BlockSparseIndices, jax.Array] | None = None,
    ) -> tuple[jax.Array, jax.Array | None]:
        context, probs = self.self(
            hidden_states,
            attention_mask,
            head_mask,
            deterministic=deterministic,
            output_attentions=output_attentions,
            block_sparse=block_sparse,
        )
        return self.output(context), probs


class FlaxBigBirdPegasusDecoderAttention(KeyValueCacheMixin):
    """Full multi-head attention of the decoder (`decoder_attention_heads` heads): causal
    self-attention (with a preallocated key/value cache) or cross-attention on the encoder
    output."""

    config: BigBirdPegasusConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.embed_dim = embed_dim = config.d_model
        self.num_heads = num_heads = config.decoder_attention_heads
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim={embed_dim} is not a multiple of num_heads={num_heads}")
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim**-0.5
        self.k_proj = dense(embed_dim, config, self.dtype, use_bias=config.use_bias)
        self.v_proj = dense(embed_dim, config, self.dtype, use_bias=config.use_bias)
        self.q_proj = dense(embed_dim, config, self.dtype, use_bias=config.use_bias)
        self.out_proj = dense(embed_dim, config, self.dtype, use_bias=config.use_bias)
        self.dropout_layer = nn.Dropout(rate=config.attention_dropout)

    def split_heads(self, x: jax.Array) -> jax.Array:
        batch, length, _ = x.shape
        x = x.reshape(batch, length, self.num_heads, self.head_dim)
        return x.transpose(0, 2, 1, 3)  # [B, N, L, D]

    def __call__(
        self,
        hidden_states: jax.Array,
        key_value_states: jax.Array | None = None,
        attention_mask: jax.Array | None = None,
        layer_head_mask: jax.Array | None = None,
        init_cache: bool = False,
        deterministic: bool = True,
        output_attentions: bool = False,
    ) -> tuple[jax.Array, jax.Array | None]:
        query = self.split_heads(self.q_proj(hidden_states))  # [B, N, Q, D]
        if key_value_states is not None:
            key = self.split_heads(self.k_proj(key_value_states))  # [B, N, S, D]
            value = self.split_heads(self.v_proj(key_value_states))
        else:
            key = self.split_heads(self.k_proj(hidden_states))
            value = self.split_heads(self.v_proj(hidden_states))
            if self.uses_cache(init_cache):
                key, value, _ = self.concatenate_to_cache(key, value)  # [B, N, K, D]

        scores = jnp.einsum("bnqd,bnkd->bnqk", query * self.scaling, key)  # [B, N, Q, K]
        if attention_mask is not None:
            scores = scores + attention_mask
        probs = jax.nn.softmax(scores, axis=-1)
        if layer_head_mask is not None:
            probs = probs * layer_head_mask
        dropped = self.dropout_layer(probs, deterministic=deterministic)
        context = jnp.einsum("bnqk,bnkd->bnqd", dropped, value)  # [B, N, Q, D]
        batch, _, length, _ = context.shape
        context = context.transpose(0, 2, 1, 3).reshape(batch, length, self.embed_dim)  # [B, Q, H]
        return self.out_proj(context), (probs if output_attentions else None)


class FlaxBigBirdPegasusEncoderLayer(nn.Module):
    """Pre-LN encoder layer: BigBird self-attention, then the feed-forward block."""

    config: BigBirdPegasusConfig
    dtype: Any = jnp.float32
    layer_index: int = 0

    def setup(self) -> None:
        config = self.config
        self.embed_dim = config.d_model
        self.self_attn = FlaxBigBirdPegasusEncoderAttention(config, self.dtype, self.layer_index)
        self.self_attn_layer_norm = nn.LayerNorm(epsilon=LAYER_NORM_EPS, dtype=self.dtype)
        self.dropout = nn.Dropout(rate=config.dropout)
        self.activation_fn = get_activation(config.activation_function)
        self.fc1 = dense(config.encoder_ffn_dim, config, self.dtype)
        self.fc2 = dense(self.embed_dim, config, self.dtype)
        self.final_layer_norm = nn.LayerNorm(epsilon=LAYER_NORM_EPS, dtype=self.dtype)

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: jax.Array | None = None,
        layer_head_mask: jax.Array | None = None,
        deterministic: bool = True,
        output_attentions: bool = False,
        block_sparse: tuple[BlockSparseIndices, jax.Array] | None = None,
    ) -> tuple[jax.Array, jax.Array | None]:
        residual = hidden_states
        attention_output, probs = self.self_attn(
            self.self_attn_layer_norm(hidden_states),
            attention_mask,
            layer_head_mask,
            deterministic,
            output_attentions,
            block_sparse,
        )
        hidden_states = residual + self.dropout(attention_output, deterministic=deterministic)

        # The reference applies no activation dropout in the encoder's feed-forward block.
        residual = hidden_states
        hidden_states = self.activation_fn(self.fc1(self.final_layer_norm(hidden_states)))
        hidden_states = residual + self.dropout(
            self.fc2(hidden_states), deterministic=deterministic
        )
        if hidden_states.dtype == jnp.float16:
            # Keep float16 activations finite, as the reference does.
            clamp_value = float(jnp.finfo(jnp.float16).max) - 1000
            hidden_states = jnp.clip(hidden_states, -clamp_value, clamp_value)
        return hidden_states, probs


class FlaxBigBirdPegasusDecoderLayer(nn.Module):
    """Pre-LN decoder layer: causal self-attention, cross-attention, feed-forward block."""

    config: BigBirdPegasusConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.embed_dim = config.d_model
        self.self_attn = FlaxBigBirdPegasusDecoderAttention(config, self.dtype)
        self.dropout = nn.Dropout(rate=config.dropout)
        self.activation_fn = get_activation(config.activation_function)
        self.activation_dropout = nn.Dropout(rate=config.activation_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(epsilon=LAYER_NORM_EPS, dtype=self.dtype)
        self.encoder_attn = FlaxBigBirdPegasusDecoderAttention(config, self.dtype)
        self.encoder_attn_layer_norm = nn.LayerNorm(epsilon=LAYER_NORM_EPS, dtype=self.dtype)
        self.fc1 = dense(config.decoder_ffn_dim, config, self.dtype)
        self.fc2 = dense(self.embed_dim, config, self.dtype)
        self.final_layer_norm = nn.LayerNorm(epsilon=LAYER_NORM_EPS, dtype=self.dtype)

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: jax.Array | None = None,
        encoder_hidden_states: jax.Array | None = None,
        encoder_attention_mask: jax.Array | None = None,
        layer_head_mask: jax.Array | None = None,
        cross_attn_layer_head_mask: jax.Array | None = None,
        init_cache: bool = False,
        deterministic: bool = True,
        output_attentions: bool = False,
    ):
        residual = hidden_states
        attention_output, self_probs = self.self_attn(
            self.self_attn_layer_norm(hidden_states),
            None,
            attention_mask,
            layer_head_mask,
            init_cache,
            deterministic,
            output_attentions,
        )
        hidden_states = residual + self.dropout(attention_output, deterministic=deterministic)

        cross_probs = None
        if encoder_hidden_states is not None:
            residual = hidden_states
            attention_output, cross_probs = self.encoder_attn(
                self.encoder_attn_layer_norm(hidden_states),
                encoder_hidden_states,
                encoder_attention_mask,
                cross_attn_layer_head_mask,
                False,
                deterministic,
                output_attentions,
            )
            hidden_states = residual + self.dropout(attention_output, deterministic=deterministic)

        residual = hidden_states
        hidden_states = self.activation_fn(self.fc1(self.final_layer_norm(hidden_states)))
        hidden_states = self.fc2(
            self.activation_dropout(hidden_states, deterministic=deterministic)
        )
        hidden_states = residual + self.dropout(hidden_states, deterministic=deterministic)
        return hidden_states, self_probs, cross_probs


class FlaxBigBirdPegasusClassificationHead(nn.Module):
    """Sentence head: dropout, dense (d_model), tanh, dropout, projection to the labels."""

    config: BigBirdPegasusConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.dense = dense(config.d_model, config, self.dtype)
        self.dropout = nn.Dropout(rate=config.classifier_dropout)
        self.out_proj = dense(config.num_labels, config, self.dtype)

    def __call__(self, hidden_states: jax.Array, deterministic: bool = True) -> jax.Array:
        hidden_states = jnp.tanh(
            self.dense(self.dropout(hidden_states, deterministic=deterministic))
        )
        return self.out_proj(self.dropout(hidden_states, deterministic=deterministic))


class FlaxBigBirdPegasusPreTrainedModel(BlockSparseModelMixin, FlaxPreTrainedModel):
    """Base of the BigBirdPegasus classes: config class, checkpoint prefix, the encoder's
    attention settings (`block_sparse`, the controller; see `BlockSparseModelMixin`), and the
    call every head shares (the call's plan, dropout, cache)."""

    config_class = BigBirdPegasusConfig
    base_model_prefix = "model"
    has_encoder = True  # the decoder-only ForCausalLM has none

    def __init__(self, config: BigBirdPegasusConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        # Attention type, random-block policy and plan of each encoder call (block-sparse allowed).
        self.block_sparse = BlockSparseController(config, decoder=False)

    def check_block_sparse(self) -> None:
        """The block-sparse settings (and `encode`) are the encoder's."""
        if not self.has_encoder:
            raise ValueError(f"{type(self).__name__} has no encoder")

    def call_indices(
        self,
        inputs: dict[str, Any],
        params: dict | None,
        train: bool,
        past_key_values: dict | None,
        given: BlockSparseIndices | None,
    ) -> BlockSparseIndices | None:
        """The plan of this call's encoder (`apply_module`; None: full attention, or no encoder
        run: `encoder_outputs` given, or the decoder-only model)."""
        source = inputs.get("input_ids", inputs.get("inputs_embeds"))
        if not self.has_encoder or "encoder_outputs" in inputs:
            return None
        if source is None or np.ndim(source) < 2:
            return None  # (a bad rank is reported by the module)
        return self.call_plan(source.shape[1], inputs, params, train, given)

    def prepare_decoder_input_ids_from_labels(self, labels: jax.Array) -> jax.Array:
        """The decoder inputs the PyTorch model builds from `labels` (`shift_tokens_right`)."""
        return shift_tokens_right(
            labels, self.config.pad_token_id, self.config.decoder_start_token_id
        )

    def _dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        # End-of-sequence ids, so that the sequence-classification head finds one.
        input_ids = jnp.full(input_shape, self.config.eos_token_id or 0, dtype="i4")
        return {"input_ids": input_ids, "attention_mask": jnp.ones_like(input_ids)}

    def _cache_inputs(self, batch_size: int, max_length: int) -> dict[str, Any]:
        decoder_input_ids = jnp.zeros((batch_size, max_length), dtype="i4")
        encoder_state = jnp.zeros((batch_size, 1, self.config.d_model), dtype=self.dtype)
        return {"decoder_input_ids": decoder_input_ids, "encoder_outputs": (encoder_state,)}

    def encode(
        self,
        input_ids=None,
        attention_mask=None,
        head_mask=None,
        inputs_embeds=None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        block_sparse_indices: BlockSparseIndices | None = None,
    ):
        """The encoder alone (a `BaseModelOutput`), planned as a full call would be."""
        self.check_block_sparse()
        inputs = self.given_inputs(
            input_ids=input_ids,
            attention_mask=attention_mask,
            head_mask=head_mask,
            inputs_embeds=inputs_embeds,
        )
        return self.apply_module(
            inputs,
            params=params,
            dropout_rng=dropout_rng,
            train=train,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=return_dict,
            block_sparse_indices=block_sparse_indices,
            method=lambda module, **encoder_inputs: module.model.encoder(**encoder_inputs),
        )

    def __call__(
        self,
        input_ids=None,
        attention_mask=None,
        decoder_input_ids=None,
        decoder_attention_mask=None,
        head_mask=None,
        decoder_head_mask=None,
        cross_attn_head_mask=None,
        encoder_outputs=None,
        inputs_embeds=None,
        decoder_inputs_embeds=None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: dict | None = None,
        block_sparse_indices: BlockSparseIndices | None = None,
    ):
        """Run the model: a pure function of `params` (default: `self.params`) and the inputs.

        `train`, `past_key_values` and `block_sparse_indices` as in the BERT and BigBird calls;
        in a decoding step a `decoder_attention_mask` covers the whole cache `[B, max_length]`.
        """
        inputs = self.given_inputs(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            head_mask=head_mask,
            decoder_head_mask=decoder_head_mask,
            cross_attn_head_mask=cross_attn_head_mask,
            encoder_outputs=encoder_outputs,
            inputs_embeds=inputs_embeds,
            decoder_inputs_embeds=decoder_inputs_embeds,
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
            block_sparse_indices=block_sparse_indices,
        )


def _embed_scale(config: BigBirdPegasusConfig) -> float:
    return math.sqrt(config.d_model) if config.scale_embedding else 1.0


def _word_embedding(config: BigBirdPegasusConfig, dtype: Any):
    return FlaxBigBirdPegasusScaledWordEmbedding(
        config.vocab_size,
        config.d_model,
        embedding_init=embedding_init(config.init_std, config.pad_token_id),
        dtype=dtype,
        embed_scale=_embed_scale(config),
    )


class FlaxBigBirdPegasusStack(nn.Module):
    """What the encoder and the decoder stacks share: dropout, the word embeddings (the model's
    shared table, or their own), the learned positions, the final LayerNorm
    (`layernorm_embedding`), and the checks of their input ids or embeddings."""

    config: BigBirdPegasusConfig
    dtype: Any = jnp.float32
    # The model passes its shared table: one module, whose parameters live under `shared`.
    shared_embedding: nn.Module | None = None
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        config = self.config
        self.dropout = nn.Dropout(rate=config.dropout)
        self.padding_idx = config.pad_token_id
        shared = self.shared_embedding
        self.embed_tokens = shared if shared is not None else _word_embedding(config, self.dtype)
        self.embed_positions = FlaxBigBirdPegasusLearnedPositionalEmbedding(
            config.max_position_embeddings,
            config.d_model,
            embedding_init=normal_init(config.init_std),
            dtype=self.dtype,
        )
        self.layernorm_embedding = nn.LayerNorm(epsilon=LAYER_NORM_EPS, dtype=self.dtype)

    def embed_inputs(
        self, input_ids: jax.Array | None, inputs_embeds: jax.Array | None, prefix: str = ""
    ) -> jax.Array:
        """The word embeddings of `input_ids` `[B, L]`, or the given `inputs_embeds`
        `[B, L, H]`; `prefix` starts the names in the error messages."""
        checks.check_exactly_one_input(input_ids is not None, inputs_embeds is not None)
        if input_ids is not None:
            input_ids = jnp.asarray(input_ids)
            checks.check_rank(f"{prefix}input_ids", input_ids.shape, (2,))
            check_ids(f"{prefix}input_ids", input_ids, self.config.vocab_size)
            return self.embed_tokens(input_ids)
        inputs_embeds = jnp.asarray(inputs_embeds).astype(self.dtype)
        checks.check_rank(f"{prefix}inputs_embeds", inputs_embeds.shape, (3,))
        return inputs_embeds


class FlaxBigBirdPegasusEncoder(FlaxBigBirdPegasusStack):
    """The encoder stack: embeddings, BigBird layers, final LayerNorm (`layernorm_embedding`).

    The call runs block-sparse attention when it is given `block_sparse_indices` (the wrapper's
    plan), else full attention.
    """

    def setup(self) -> None:
        super().setup()
        config = self.config
        self.layerdrop = config.encoder_layerdrop
        self.max_source_positions = config.max_position_embeddings
        layer_class = FlaxBigBirdPegasusEncoderLayer
        if self.gradient_checkpointing:
            # Recompute each layer in the backward pass; the flags are Python values (argument
            # numbers count `self`). The block-sparse indices are a pytree argument.
            layer_class = nn.remat(FlaxBigBirdPegasusEncoderLayer, static_argnums=(4, 5))
        self.layers = [
            layer_class(config, self.dtype, layer_index=i) for i in range(config.encoder_layers)
        ]

    def __call__(
        self,
        input_ids: jax.Array | None = None,
        attention_mask: jax.Array | None = None,
        head_mask: jax.Array | None = None,
        inputs_embeds: jax.Array | None = None,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        block_sparse_indices: BlockSparseIndices | None = None,
    ):
        config = self.config
        inputs_embeds = self.embed_inputs(input_ids, inputs_embeds)
        batch, length = inputs_embeds.shape[:2]
        if attention_mask is not None:
            attention_mask = jnp.asarray(attention_mask)
            checks.check_same_shape(
                "attention_mask", attention_mask.shape, (batch, length), "the input"
            )
        hidden_states = self.dropout(
            inputs_embeds + self.embed_positions(length), deterministic=deterministic
        )  # [B, S, H]
        dtype = hidden_states.dtype
        head_masks = expand_head_mask(
            head_mask, len(self.layers), config.encoder_attention_heads, dtype
        )

        # One plan for every layer of this call (None: full attention, with the mask honoured).
        indices = block_sparse_indices
        block_sparse = None
        extended_mask = None
        if indices is not None:
            key_keep = (
                jnp.ones((batch, length), dtype=dtype)
                if attention_mask is None
                else attention_mask.astype(dtype)
            )
            if indices.pad_length:
                hidden_states, key_keep = self.pad(hidden_states, key_keep, indices.pad_length)
            block_sparse = (indices, key_keep)  # key_keep: [B, padded S]
        elif attention_mask is not None:
            extended_mask = extended_attention_mask(attention_mask, length, dtype, causal=False)

        all_hidden_states = () if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for i, layer in enumerate(self.layers):
            if output_hidden_states:
                all_hidden_states = (*all_hidden_states, hidden_states)
            new_states, probs = layer(
                hidden_states,
                extended_mask,
                head_masks[i],
                deterministic,
                output_attentions,
                block_sparse,
            )
            if not deterministic and self.layerdrop > 0:
                # LayerDrop (training only): the layer is skipped for the whole batch. A
                # skipped layer's attention map is returned as zeros.
                skip = jax.random.uniform(self.make_rng("dropout")) < self.layerdrop
                new_states = jnp.where(skip, hidden_states, new_states)
                if probs is not None:
                    probs = jnp.where(skip, 0.0, probs)
            hidden_states = new_states
            if output_attentions:
                all_attentions = (*all_attentions, probs)
        hidden_states = self.layernorm_embedding(hidden_states)
        if output_hidden_states:
            all_hidden_states = (*all_hidden_states, hidden_states)

        # Every per-token output goes back to the input length.
        hidden_states, all_hidden_states, all_attentions = unpad_outputs(
            indices, hidden_states, all_hidden_states, all_attentions
        )
        output = BaseModelOutput(
            last_hidden_state=hidden_states,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )
        return finish_output(output, return_dict)

    def pad(
        self, hidden_states: jax.Array, key_keep: jax.Array, pad_length: int
    ) -> tuple[jax.Array, jax.Array]:
        """Append `pad_length` embedded pad tokens (word embedding only, no position, as the
        reference) and masked-out keep entries."""
        batch = hidden_states.shape[0]
        pad_ids = jnp.full((batch, pad_length), self.padding_idx, dtype="i4")
        pad_embeddings = self.embed_tokens(pad_ids).astype(hidden_states.dtype)  # [B, pad, H]
        hidden_states = jnp.concatenate([hidden_states, pad_embeddings], axis=1)  # [B, padded S, H]
        key_keep = jnp.pad(key_keep, ((0, 0), (0, pad_length)))
        return hidden_states, key_keep


class FlaxBigBirdPegasusDecoder(FlaxBigBirdPegasusStack):
    """The decoder stack: embeddings, full-attention layers with cross-attention, final
    LayerNorm (`layernorm_embedding`)."""

    def setup(self) -> None:
        super().setup()
        config = self.config
        self.layerdrop = config.decoder_layerdrop
        self.max_target_positions = config.max_position_embeddings
        layer_class = FlaxBigBirdPegasusDecoderLayer
        if self.gradient_checkpointing:
            # The flags init_cache, deterministic, output_attentions are Python values.
            layer_class = nn.remat(FlaxBigBirdPegasusDecoderLayer, static_argnums=(7, 8, 9))
        self.layers = [layer_class(config, self.dtype) for _ in range(config.decoder_layers)]

    def __call__(
        self,
        input_ids: jax.Array | None = None,
        attention_mask: jax.Array | None = None,
        encoder_hidden_states: jax.Array | None = None,
        encoder_attention_mask: jax.Array | None = None,
        head_mask: jax.Array | None = None,
        cross_attn_head_mask: jax.Array | None = None,
        inputs_embeds: jax.Array | None = None,
        init_cache: bool = False,
        past_length: int | jax.Array = 0,
        cache_length: int | None = None,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
    ):
        config = self.config
        inputs_embeds = self.embed_inputs(input_ids, inputs_embeds, "decoder ")
        batch, length = inputs_embeds.shape[:2]
        positions = self.embed_positions(length, past_length)  # [T, H]
        hidden_states = self.dropout(inputs_embeds + positions, deterministic=deterministic)
        dtype = hidden_states.dtype

        # With a preallocated cache the keys are the whole cache; otherwise this call's tokens.
        key_length = cache_length or length
        if attention_mask is not None:
            attention_mask = jnp.asarray(attention_mask)
            checks.check_attention_mask_shape(
                attention_mask.shape, batch, length, key_length, "decoder attention_mask"
            )
        if encoder_hidden_states is not None:
            encoder_hidden_states = jnp.asarray(encoder_hidden_states).astype(dtype)
            checks.check_rank("encoder_hidden_states", encoder_hidden_states.shape, (3,))
        # Causal self-attention mask [B, 1, T, K] (query i at position past + i); cross mask.
        self_mask, cross_mask = full_attention_masks(
            hidden_states,
            attention_mask,
            encoder_hidden_states,
            encoder_attention_mask,
            True,
            past_length,
            cache_length,
            "encoder attention_mask",
        )
        num_layers, num_heads = len(self.layers), config.decoder_attention_heads
        head_masks = expand_head_mask(head_mask, num_layers, num_heads, dtype)
        cross_head_masks = expand_head_mask(cross_attn_head_mask, num_layers, num_heads, dtype)

        all_hidden_states = () if output_hidden_states else None
        all_attentions = () if output_attentions else None
        all_cross_attentions = (
            () if output_attentions and encoder_hidden_states is not None else None
        )
        for i, layer in enumerate(self.layers):
            if output_hidden_states:
                all_hidden_states = (*all_hidden_states, hidden_states)
            new_states, self_probs, cross_probs = layer(
                hidden_states,
                self_mask,
                encoder_hidden_states,
                cross_mask,
                head_masks[i],
                cross_head_masks[i],
                init_cache,
                deterministic,
                output_attentions,
            )
            if not deterministic and self.layerdrop > 0:
                # LayerDrop (training only); the cache of a skipped layer is still written.
                skip = jax.random.uniform(self.make_rng("dropout")) < self.layerdrop
                new_states = jnp.where(skip, hidden_states, new_states)
            hidden_states = new_states
            if output_attentions:
                all_attentions = (*all_attentions, self_probs)
                if all_cross_attentions is not None:
                    all_cross_attentions = (*all_cross_attentions, cross_probs)
        hidden_states = self.layernorm_embedding(hidden_states)
        if output_hidden_states:
            all_hidden_states = (*all_hidden_states, hidden_states)

        output = BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden_states,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
            cross_attentions=all_cross_attentions,
        )
        return finish_output(output, return_dict)


class FlaxBigBirdPegasusModule(nn.Module):
    """The bare encoder-decoder, returning the decoder's hidden states and the encoder's."""

    config: BigBirdPegasusConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        config = self.config
        self.shared = _word_embedding(config, self.dtype)
        self.encoder = FlaxBigBirdPegasusEncoder(
            config, self.dtype, self.shared, self.gradient_checkpointing
        )
        self.decoder = FlaxBigBirdPegasusDecoder(
            config, self.dtype, self.shared, self.gradient_checkpointing
        )

    def __call__(
        self,
        input_ids: jax.Array | None = None,
        attention_mask: jax.Array | None = None,
        decoder_input_ids: jax.Array | None = None,
        decoder_attention_mask: jax.Array | None = None,
        head_mask: jax.Array | None = None,
        decoder_head_mask: jax.Array | None = None,
        cross_attn_head_mask: jax.Array | None = None,
        encoder_outputs=None,
        inputs_embeds: jax.Array | None = None,
        decoder_inputs_embeds: jax.Array | None = None,
        init_cache: bool = False,
        past_length: int | jax.Array = 0,
        cache_length: int | None = None,
        deterministic: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        block_sparse_indices: BlockSparseIndices | None = None,
    ):
        config = self.config
        # Without decoder inputs the decoder reads the encoder input shifted right.
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            if input_ids is None:
                raise ValueError(
                    "without decoder_input_ids or decoder_inputs_embeds the decoder inputs are "
                    "built from input_ids, which are missing: pass input_ids or decoder inputs"
                )
            decoder_input_ids = shift_tokens_right(
                input_ids, config.pad_token_id, config.decoder_start_token_id
            )

        if encoder_outputs is None:
            encoder_outputs = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                head_mask=head_mask,
                inputs_embeds=inputs_embeds,
                deterministic=deterministic,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                return_dict=True,
                block_sparse_indices=block_sparse_indices,
            )
        else:
            encoder_outputs = as_encoder_output(encoder_outputs, BaseModelOutput)

        # The cross-attention mask is the encoder's own (unpadded) attention_mask.
        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=attention_mask,
            head_mask=decoder_head_mask,
            cross_attn_head_mask=cross_attn_head_mask,
            inputs_embeds=decoder_inputs_embeds,
            init_cache=init_cache,
            past_length=past_length,
            cache_length=cache_length,
            deterministic=deterministic,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        return head_output(
            Seq2SeqModelOutput,
            None,
            return_dict,
            last_hidden_state=decoder_outputs.last_hidden_state,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )


class FlaxBigBirdPegasusModel(FlaxBigBirdPegasusPreTrainedModel):
    """The bare encoder-decoder, returning the decoder's hidden states and the encoder's."""

    module_class = FlaxBigBirdPegasusModule


class FlaxBigBirdPegasusHeadModule(nn.Module):
    """Base of the head modules (as `FlaxBertHeadModule`): they build `base_model_class`
    (`FlaxBigBirdPegasusModule`) as `self.model`. A head's call runs it on the inputs of that
    module, then the head's own math, `head(outputs, deterministic, return_dict)`."""

    config: BigBirdPegasusConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False
    base_model_class: ClassVar[type[nn.Module]] = FlaxBigBirdPegasusModule

    def build_base_model(self) -> nn.Module:
        return self.base_model_class(self.config, self.dtype, self.gradient_checkpointing)

    def __call__(self, deterministic: bool = True, return_dict: bool = True, **base_inputs):
        outputs = self.model(deterministic=deterministic, **base_inputs)
        return self.head(outputs, deterministic, return_dict)

    def lm_logits(self, embed_tokens: nn.Embed, hidden_states: jax.Array) -> jax.Array:
        """Vocabulary logits `[B, T, V]` of an LM head: the word embeddings `[V, H]` when tied
        (`tie_word_embeddings`, the default), else its own `lm_head`."""
        if self.config.tie_word_embeddings:
            return embed_tokens.attend(hidden_states)
        return self.lm_head(hidden_states)


class FlaxBigBirdPegasusForConditionalGenerationModule(FlaxBigBirdPegasusHeadModule):
    """BigBirdPegasus with the language-modelling head, for summarisation."""

    def setup(self) -> None:
        config = self.config
        self.model = self.build_base_model()
        # Stored in checkpoints, not trained (a buffer in PyTorch), as the reference.
        self.final_logits_bias = self.param(
            "final_logits_bias", nn.initializers.zeros, (1, config.vocab_size)
        )
        if not config.tie_word_embeddings:
            self.lm_head = dense(config.vocab_size, config, self.dtype, use_bias=False)

    def head(self, outputs, deterministic: bool, return_dict: bool):
        lm_logits = self.lm_logits(self.model.shared, outputs.last_hidden_state)
        lm_logits = lm_logits + self.final_logits_bias.astype(self.dtype)  # [B, T, V]
        return head_output(Seq2SeqLMOutput, outputs, return_dict, logits=lm_logits)


class FlaxBigBirdPegasusForConditionalGeneration(
    FlaxGenerationMixin, FlaxBigBirdPegasusPreTrainedModel
):
    """BigBirdPegasus with the language-modelling head, for summarisation; see `generate`."""

    module_class = FlaxBigBirdPegasusForConditionalGenerationModule
    # The LM head shares the word-embedding matrix (when `tie_word_embeddings`, the default).
    tied_weights = (("lm_head.weight", "model.shared.weight"),)


class FlaxBigBirdPegasusForSequenceClassificationModule(FlaxBigBirdPegasusHeadModule):
    """BigBirdPegasus with a classification (or regression) head on the decoder state at the
    last end-of-sequence token of the input (read from `input_ids`: its own call)."""

    def setup(self) -> None:
        self.model = self.build_base_model()
        self.classification_head = FlaxBigBirdPegasusClassificationHead(self.config, self.dtype)

    def __call__(
        self, input_ids=None, deterministic: bool = True, return_dict: bool = True, **base_inputs
    ):
        """`base_inputs`: the other inputs of `FlaxBigBirdPegasusModule`."""
        if input_ids is None:
            # The end-of-sequence positions are read from input_ids.
            raise NotImplementedError(
                "FlaxBigBirdPegasusForSequenceClassification needs input_ids (inputs_embeds "
                "alone are not supported)"
            )
        outputs = self.model(input_ids, deterministic=deterministic, **base_inputs)
        hidden_states = outputs.last_hidden_state  # [B, T, H]
        sentence_representation = self._last_eos_states(input_ids, hidden_states)  # [B, H]
        logits = self.classification_head(sentence_representation, deterministic)
        return head_output(Seq2SeqSequenceClassifierOutput, outputs, return_dict, logits=logits)

    def _last_eos_states(self, input_ids: jax.Array, hidden_states: jax.Array) -> jax.Array:
        """The decoder state at the last `eos_token_id` of each row of `input_ids`; every row
        must hold the same (non-zero) number of them, as the reference requires."""
        eos = self.config.eos_token_id
        eos_mask = input_ids == eos  # [B, S]
        # While `jax.jit` traces the ids only the shapes can be checked (one eos per row stands
        # in for the unknown counts).
        counts = np.asarray(eos_mask).sum(axis=1) if is_concrete(input_ids) else [1]
        checks.check_eos_positions(input_ids.shape, hidden_states.shape, counts, eos)
        positions = jnp.arange(input_ids.shape[1])  # [S]
        last_eos = jnp.argmax(eos_mask.astype("i4") * positions, axis=1)  # [B]
        return hidden_states[jnp.arange(input_ids.shape[0]), last_eos]


class FlaxBigBirdPegasusForSequenceClassification(FlaxBigBirdPegasusPreTrainedModel):
    """BigBirdPegasus with a classification (or regression) head on the decoder state at the
    last end-of-sequence token of the input."""

    module_class = FlaxBigBirdPegasusForSequenceClassificationModule


class FlaxBigBirdPegasusForQuestionAnsweringModule(FlaxBigBirdPegasusHeadModule):
    """BigBirdPegasus with a span head (start/end logits) on the decoder's hidden states."""

    def setup(self) -> None:
        self.model = self.build_base_model()
        self.qa_outputs = dense(2, self.config, self.dtype)

    def head(self, outputs, deterministic: bool, return_dict: bool):
        logits = self.qa_outputs(outputs.last_hidden_state)  # [B, T, 2]
        start_logits, end_logits = logits[..., 0], logits[..., 1]  # [B, T] each
        return head_output(
            Seq2SeqQuestionAnsweringModelOutput,
            outputs,
            return_dict,
            start_logits=start_logits,
            end_logits=end_logits,
        )


class FlaxBigBirdPegasusForQuestionAnswering(FlaxBigBirdPegasusPreTrainedModel):
    """BigBirdPegasus with a span head (start/end logits) on the decoder's hidden states."""

    module_class = FlaxBigBirdPegasusForQuestionAnsweringModule


class FlaxBigBirdPegasusDecoderWrapper(nn.Module):
    """Holds the decoder as `decoder`, so that a decoder-only model has the checkpoint names
    `model.decoder.*` of the encoder-decoder; its call is the decoder's."""

    config: BigBirdPegasusConfig
    dtype: Any = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self) -> None:
        self.decoder = FlaxBigBirdPegasusDecoder(
            self.config, self.dtype, gradient_checkpointing=self.gradient_checkpointing
        )

    def __call__(self, **decoder_inputs):
        return self.decoder(**decoder_inputs)


class FlaxBigBirdPegasusForCausalLMModule(FlaxBigBirdPegasusHeadModule):
    """The BigBirdPegasus decoder alone as a causal language model; cross-attention runs when
    `encoder_hidden_states` are given. Its inputs are those of `FlaxBigBirdPegasusDecoder`."""

    base_model_class = FlaxBigBirdPegasusDecoderWrapper

    def setup(self) -> None:
        config = self.config
        self.model = self.build_base_model()
        if not config.tie_word_embeddings:
            self.lm_head = dense(config.vocab_size, config, self.dtype, use_bias=False)

    def head(self, outputs, deterministic: bool, return_dict: bool):
        logits = self.lm_logits(self.model.decoder.embed_tokens, outputs.last_hidden_state)
        # As the reference: labels are compared position by position with the logits (not
        # shifted), so a training loop passes the next tokens to `masked_lm_loss`.
        return head_output(CausalLMOutputWithCrossAttentions, outputs, return_dict, logits=logits)


class FlaxBigBirdPegasusForCausalLM(FlaxGenerationMixin, FlaxBigBirdPegasusPreTrainedModel):
    """The BigBirdPegasus decoder alone as a causal language model (the config is used with
    `is_decoder=True, is_encoder_decoder=False`); cross-attention runs when
    `encoder_hidden_states` are given. Unlike the BERT-style causal LMs, the labels of a loss are
    not shifted (as the reference): `labels[:, t]` is the target of position t."""

    module_class = FlaxBigBirdPegasusForCausalLMModule
    tied_weights = (("lm_head.weight", "model.decoder.embed_tokens.weight"),)
    has_encoder = False

    def __init__(self, config: BigBirdPegasusConfig, *args: Any, **kwargs: Any) -> None:
        if isinstance(config, BigBirdPegasusConfig):
            config = config.copy(is_decoder=True, is_encoder_decoder=False)
        super().__init__(config, *args, **kwargs)

    def _dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        # A one-token memory builds the cross-attention parameters too.
        memory = jnp.zeros((input_shape[0], 1, self.config.d_model), dtype=self.dtype)
        return {"input_ids": jnp.zeros(input_shape, dtype="i4"), "encoder_hidden_states": memory}

    def _cache_inputs(self, batch_size: int, max_length: int) -> dict[str, Any]:
        return {"input_ids": jnp.zeros((batch_size, max_length), dtype="i4")}

    def __call__(
        self,
        input_ids=None,
        attention_mask=None,
        encoder_hidden_states=None,
        encoder_attention_mask=None,
        head_mask=None,
        cross_attn_head_mask=None,
        inputs_embeds=None,
        params: dict | None = None,
        dropout_rng: jax.Array | None = None,
        train: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: dict | None = None,
    ):
        """Run the decoder: `past_key_values` (from `init_cache`) makes the call a decoding
        step; its `attention_mask`, if given, covers the whole cache `[B, max_length]`."""
        inputs = self.given_inputs(
            input_ids=input_ids,
            attention_mask=attention_mask,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            head_mask=head_mask,
            cross_attn_head_mask=cross_attn_head_mask,
            inputs_embeds=inputs_embeds,
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
