"""BigBirdPegasus in TensorFlow / Keras 3: a BigBird encoder (block-sparse or full attention) and a
Pegasus-style full-attention decoder, for long-document summarisation.

Paper: Zaheer et al., "Big Bird: Transformers for Longer Sequences" (arXiv:2007.14062).

Both stacks are pre-LayerNorm (`x + Dropout(Sublayer(LN(x)))`) and end with a LayerNorm that the
checkpoints call `layernorm_embedding`; every LayerNorm has eps 1e-5. Word embeddings are shared by
the encoder, the decoder and (tied) the LM head, and scaled by sqrt(d_model) (`scale_embedding`);
each stack has its own learned position table, starting at position 0.

The encoder's self-attention is BigBird's (`aviary.tf.big_bird.TFBigBirdSelfAttention`). As in
`TFBigBirdModel`, the encoder's `aviary.core.block_sparse.BlockSparseController`
(`encoder.block_sparse`) decides once per call whether the call runs block-sparse (padding the
input to a multiple of `block_size` with embedded pad tokens) or full attention (inputs of at most
`(5 + 2 r) * block_size` tokens), and the encoder never rewrites its layers. The plan depends only
on the (static) encoder length, the policy and the `training` flag, so under `tf.function` it is
made while tracing. Deviations from the reference library, on purpose (as
`aviary.pt.big_bird_pegasus`):

* the reference's encoder ignores the attention mask after falling back to full attention on a
  short input; aviary honours it, so padded and unpadded inputs give the same outputs on the real
  tokens;
* every per-token encoder output (`last_hidden_state`, `hidden_states`, `attentions`) is
  unpadded, not only the last hidden state;
* `head_mask` also applies in block-sparse mode (the reference ignores it there).

Shapes: B batch · S source (encoder) tokens · T target (decoder) tokens · H d_model · N heads ·
D head dim · V vocabulary. Layer names are the PyTorch attribute names, so variable paths map to
the canonical checkpoint names by the generic rule; this file defines the same classes in the same
order as `aviary.pt.big_bird_pegasus`. Dropout layers follow the `training` flag of the outermost
call (Keras passes it down).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from aviary.core import checks
from aviary.core.block_sparse import AttentionPlan, BlockSparseController, unpad_outputs
from aviary.core.configs import BigBirdPegasusConfig
from aviary.core.generation import GenerationConfig
from aviary.core.outputs import (
    as_encoder_output,
    resolve_output_flags,
    resolve_return_dict,
)
from aviary.tf.big_bird import BlockSparseInputs, TFBigBirdSelfAttention
from aviary.tf.big_bird_attention import BlockSparseModelMixin, plan_call
from aviary.tf.generation import TFGenerationMixin
from aviary.tf.modeling_utils import (
    IGNORE_INDEX,
    LazyBuildLayer,
    TFBaseModelOutput,
    TFBaseModelOutputWithPastAndCrossAttentions,
    TFCausalLMOutputWithCrossAttentions,
    TFPreTrainedModel,
    TFSeq2SeqLMOutput,
    TFSeq2SeqModelOutput,
    TFSeq2SeqQuestionAnsweringModelOutput,
    TFSeq2SeqSequenceClassifierOutput,
    check_ids,
    check_mask_shape,
    check_shape,
    dense,
    embedding,
    expand_head_mask,
    extended_attention_mask,
    get_activation,
    masked_lm_loss,
    python_bool,
    sequence_classification_loss,
    shape_list,
    span_outputs,
    static_shape,
    unpack_inputs,
    vocabulary_logits,
)

# The reference builds every BigBirdPegasus LayerNorm with the framework default (no config field).
LAYER_NORM_EPS = 1e-5


def _layer_norm(name: str) -> keras.layers.LayerNormalization:
    return keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPS, name=name)


def shift_tokens_right(
    input_ids: tf.Tensor, pad_token_id: int | None, decoder_start_token_id: int | None
) -> tf.Tensor:
    """Decoder inputs from labels: prepend `decoder_start_token_id`, drop the last token, and
    replace the ignored label -100 by `pad_token_id`. `[B, T]` -> `[B, T]`."""
    checks.check_decoder_start(pad_token_id, decoder_start_token_id)
    input_ids = tf.convert_to_tensor(input_ids)
    start = tf.fill(tf.shape(input_ids[:, :1]), tf.cast(decoder_start_token_id, input_ids.dtype))
    shifted = tf.concat([start, input_ids[:, :-1]], axis=1)  # [B, T]
    pad = tf.fill(tf.shape(shifted), tf.cast(pad_token_id, shifted.dtype))
    return tf.where(tf.equal(shifted, IGNORE_INDEX), pad, shifted)


class TFBigBirdPegasusLearnedPositionalEmbedding(keras.layers.Embedding):
    """Learned positions `past .. past + length - 1` (no offset)."""

    def call(self, length, past_key_values_length=0) -> tf.Tensor:
        if isinstance(length, int) and isinstance(past_key_values_length, int):
            checks.check_sequence_length(length, past_key_values_length, self.input_dim)
        positions = tf.range(past_key_values_length, past_key_values_length + length)
        return tf.gather(self.embeddings, positions)  # [L, H]


class TFBigBirdPegasusScaledWordEmbedding(keras.layers.Embedding):
    """Word embeddings multiplied by `embed_scale` (sqrt(d_model) with `scale_embedding`)."""

    def __init__(self, *args, embed_scale: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.embed_scale = embed_scale

    def call(self, input_ids: tf.Tensor) -> tf.Tensor:
        return super().call(input_ids) * self.embed_scale


class TFBigBirdPegasusEncoderAttention(LazyBuildLayer):
    """BigBird self-attention (`self`: full or block-sparse, as the plan says) and the output
    projection (`output`, a bare Dense)."""

    def __init__(self, config: BigBirdPegasusConfig, layer_index: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.self = TFBigBirdSelfAttention(config, layer_index=layer_index, name="self")
        # Keras reserves the attribute `output`; the layer keeps the checkpoint name "output".
        self.output_layer = dense(config.d_model, config, "output", use_bias=config.use_bias)

    def call(
        self,
        hidden_states: tf.Tensor,
        attention_mask: tf.Tensor | None = None,
        head_mask: tf.Tensor | None = None,
        output_attentions: bool = False,
        block_sparse: BlockSparseInputs | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor | None]:
        context, probs, _ = self.self(
            hidden_states,
            attention_mask,
            head_mask,
            None,
            None,
            output_attentions=output_attentions,
            block_sparse=block_sparse,
        )
        return self.output_layer(context), probs


class TFBigBirdPegasusDecoderAttention(LazyBuildLayer):
    """Full multi-head attention of the decoder (`decoder_attention_heads` heads): causal
    self-attention or cross-attention on the encoder output, with a key/value cache."""

    def __init__(self, config: BigBirdPegasusConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.embed_dim = embed_dim = config.d_model
        self.num_heads = num_heads = config.decoder_attention_heads
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim={embed_dim} is not a multiple of num_heads={num_heads}")
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim**-0.5
        self.k_proj = dense(embed_dim, config, "k_proj", use_bias=config.use_bias)
        self.v_proj = dense(embed_dim, config, "v_proj", use_bias=config.use_bias)
        self.q_proj = dense(embed_dim, config, "q_proj", use_bias=config.use_bias)
        self.out_proj = dense(embed_dim, config, "out_proj", use_bias=config.use_bias)
        self.dropout = keras.layers.Dropout(config.attention_dropout)

    def split_heads(self, x: tf.Tensor) -> tf.Tensor:
        batch, length, _ = shape_list(x)
        x = tf.reshape(x, (batch, length, self.num_heads, self.head_dim))
        return tf.transpose(x, (0, 2, 1, 3))  # [B, N, L, D]

    def call(
        self,
        hidden_states: tf.Tensor,
        key_value_states: tf.Tensor | None = None,
        past_key_value: tuple[tf.Tensor, tf.Tensor] | None = None,
        attention_mask: tf.Tensor | None = None,
        layer_head_mask: tf.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[tf.Tensor, tf.Tensor | None, tuple[tf.Tensor, tf.Tensor]]:
        query = self.split_heads(self.q_proj(hidden_states))  # [B, N, Q, D]
        if key_value_states is not None:
            if past_key_value is not None:  # cross-attention keys are computed once per sequence
                key, value = past_key_value
            else:
                key = self.split_heads(self.k_proj(key_value_states))  # [B, N, S, D]
                value = self.split_heads(self.v_proj(key_value_states))
        else:
            key = self.split_heads(self.k_proj(hidden_states))
            value = self.split_heads(self.v_proj(hidden_states))
            if past_key_value is not None:
                key = tf.concat([past_key_value[0], key], axis=2)  # [B, N, K, D]
                value = tf.concat([past_key_value[1], value], axis=2)
        present = (key, value)

        scores = tf.matmul(query * self.scaling, key, transpose_b=True)  # [B, N, Q, K]
        if attention_mask is not None:
            scores = scores + tf.cast(attention_mask, scores.dtype)
        # Softmax in float32: under mixed precision a float16 softmax loses the small weights.
        probs = tf.cast(tf.nn.softmax(tf.cast(scores, tf.float32), axis=-1), scores.dtype)
        if layer_head_mask is not None:
            probs = probs * tf.cast(layer_head_mask, probs.dtype)
        context = tf.matmul(self.dropout(probs), value)  # [B, N, Q, D]
        batch, _, length, _ = shape_list(context)
        context = tf.reshape(
            tf.transpose(context, (0, 2, 1, 3)), (batch, length, self.embed_dim)
        )  # [B, Q, H]
        return self.out_proj(context), (probs if output_attentions else None), present


class TFBigBirdPegasusEncoderLayer(LazyBuildLayer):
    """Pre-LN encoder layer: BigBird self-attention, then the feed-forward block."""

    def __init__(self, config: BigBirdPegasusConfig, layer_index: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.embed_dim = config.d_model
        self.self_attn = TFBigBirdPegasusEncoderAttention(config, layer_index, name="self_attn")
        self.self_attn_layer_norm = _layer_norm("self_attn_layer_norm")
        self.dropout = keras.layers.Dropout(config.dropout)
        self.activation_fn = get_activation(config.activation_function)
        self.fc1 = dense(config.encoder_ffn_dim, config, "fc1")
        self.fc2 = dense(self.embed_dim, config, "fc2")
        self.final_layer_norm = _layer_norm("final_layer_norm")

    def call(
        self,
        hidden_states: tf.Tensor,
        attention_mask: tf.Tensor | None = None,
        layer_head_mask: tf.Tensor | None = None,
        output_attentions: bool = False,
        block_sparse: BlockSparseInputs | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor | None]:
        residual = hidden_states
        attention_output, probs = self.self_attn(
            self.self_attn_layer_norm(hidden_states),
            attention_mask,
            layer_head_mask,
            output_attentions=output_attentions,
            block_sparse=block_sparse,
        )
        hidden_states = residual + self.dropout(attention_output)

        # The reference applies no activation dropout in the encoder's feed-forward block.
        residual = hidden_states
        hidden_states = self.activation_fn(self.fc1(self.final_layer_norm(hidden_states)))
        hidden_states = residual + self.dropout(self.fc2(hidden_states))
        if hidden_states.dtype == tf.float16:
            # Keep float16 activations finite, as the reference does.
            clamp_value = float(np.finfo(np.float16).max) - 1000
            hidden_states = tf.clip_by_value(hidden_states, -clamp_value, clamp_value)
        return hidden_states, probs


class TFBigBirdPegasusDecoderLayer(LazyBuildLayer):
    """Pre-LN decoder layer: causal self-attention, cross-attention, feed-forward block."""

    def __init__(self, config: BigBirdPegasusConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.embed_dim = config.d_model
        self.self_attn = TFBigBirdPegasusDecoderAttention(config, name="self_attn")
        self.dropout = keras.layers.Dropout(config.dropout)
        self.activation_fn = get_activation(config.activation_function)
        self.activation_dropout = keras.layers.Dropout(config.activation_dropout)
        self.self_attn_layer_norm = _layer_norm("self_attn_layer_norm")
        self.encoder_attn = TFBigBirdPegasusDecoderAttention(config, name="encoder_attn")
        self.encoder_attn_layer_norm = _layer_norm("encoder_attn_layer_norm")
        self.fc1 = dense(config.decoder_ffn_dim, config, "fc1")
        self.fc2 = dense(self.embed_dim, config, "fc2")
        self.final_layer_norm = _layer_norm("final_layer_norm")

    def call(
        self,
        hidden_states: tf.Tensor,
        attention_mask: tf.Tensor | None = None,
        encoder_hidden_states: tf.Tensor | None = None,
        encoder_attention_mask: tf.Tensor | None = None,
        layer_head_mask: tf.Tensor | None = None,
        cross_attn_layer_head_mask: tf.Tensor | None = None,
        past_key_value: tuple[tf.Tensor, ...] | None = None,
        output_attentions: bool = False,
    ):
        # The cache of a layer holds (self key, self value[, cross key, cross value]).
        self_past = tuple(past_key_value[:2]) if past_key_value is not None else None
        residual = hidden_states
        attention_output, self_probs, present = self.self_attn(
            self.self_attn_layer_norm(hidden_states),
            None,
            self_past,
            attention_mask,
            layer_head_mask,
            output_attentions=output_attentions,
        )
        hidden_states = residual + self.dropout(attention_output)

        cross_probs = None
        if encoder_hidden_states is not None:
            cross_past = tuple(past_key_value[2:4]) if past_key_value is not None else ()
            residual = hidden_states
            attention_output, cross_probs, cross_present = self.encoder_attn(
                self.encoder_attn_layer_norm(hidden_states),
                encoder_hidden_states,
                cross_past or None,
                encoder_attention_mask,
                cross_attn_layer_head_mask,
                output_attentions=output_attentions,
            )
            hidden_states = residual + self.dropout(attention_output)
            present = present + cross_present

        residual = hidden_states
        hidden_states = self.activation_fn(self.fc1(self.final_layer_norm(hidden_states)))
        hidden_states = self.fc2(self.activation_dropout(hidden_states))
        hidden_states = residual + self.dropout(hidden_states)
        return hidden_states, self_probs, cross_probs, present


class TFBigBirdPegasusClassificationHead(LazyBuildLayer):
    """Sentence head: dropout, dense, tanh, dropout, projection to the labels."""

    def __init__(
        self,
        input_dim: int,
        inner_dim: int,
        num_classes: int,
        pooler_dropout: float,
        init_std: float = 0.02,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        initializer = keras.initializers.RandomNormal(stddev=init_std)
        self.dense = keras.layers.Dense(inner_dim, kernel_initializer=initializer, name="dense")
        self.dropout = keras.layers.Dropout(pooler_dropout)
        self.out_proj = keras.layers.Dense(
            num_classes, kernel_initializer=initializer, name="out_proj"
        )

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        hidden_states = tf.tanh(self.dense(self.dropout(hidden_states)))
        return self.out_proj(self.dropout(hidden_states))


class TFBigBirdPegasusPreTrainedModel(BlockSparseModelMixin, TFPreTrainedModel):
    """Base of the BigBirdPegasus classes: config class, checkpoint prefix, encoder settings."""

    config_class = BigBirdPegasusConfig
    base_model_prefix = "model"

    def get_encoder(self) -> TFBigBirdPegasusEncoder:
        encoder = getattr(self._base_model(), "encoder", None)
        if encoder is None:
            raise ValueError(f"{type(self).__name__} has no encoder")
        return encoder

    def get_decoder(self) -> TFBigBirdPegasusDecoder:
        return self._base_model().decoder

    def block_sparse_controller(self) -> BlockSparseController | None:
        encoder = getattr(self._base_model(), "encoder", None)  # None: the decoder-only model
        return None if encoder is None else encoder.block_sparse


def _embed_scale(config: BigBirdPegasusConfig) -> float:
    return math.sqrt(config.d_model) if config.scale_embedding else 1.0


def _word_embedding(
    config: BigBirdPegasusConfig, name: str = "embed_tokens"
) -> TFBigBirdPegasusScaledWordEmbedding:
    return embedding(
        config.vocab_size,
        config.d_model,
        config,
        name,
        TFBigBirdPegasusScaledWordEmbedding,
        embed_scale=_embed_scale(config),
    )


class TFBigBirdPegasusStack(LazyBuildLayer):
    """What the encoder and the decoder stacks share: dropout, the word embeddings (the model's
    shared table, or their own), the learned positions, the final LayerNorm
    (`layernorm_embedding`), and the checks of their input ids or embeddings."""

    def __init__(
        self,
        config: BigBirdPegasusConfig,
        embed_tokens: TFBigBirdPegasusScaledWordEmbedding | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.dropout = keras.layers.Dropout(config.dropout)
        self.padding_idx = config.pad_token_id
        # The model passes its shared table: one layer, its variable built in the model's scope.
        self.embed_tokens = embed_tokens if embed_tokens is not None else _word_embedding(config)
        self.embed_positions = embedding(
            config.max_position_embeddings,
            config.d_model,
            config,
            "embed_positions",
            TFBigBirdPegasusLearnedPositionalEmbedding,
        )
        self.layernorm_embedding = _layer_norm("layernorm_embedding")

    def embed_inputs(
        self, input_ids: tf.Tensor | None, inputs_embeds: tf.Tensor | None, prefix: str = ""
    ) -> tf.Tensor:
        """The word embeddings of `input_ids` `[B, L]`, or the given `inputs_embeds`
        `[B, L, H]`; `prefix` starts the names in the error messages."""
        checks.check_exactly_one_input(input_ids is not None, inputs_embeds is not None)
        if input_ids is not None:
            checks.check_rank(f"{prefix}input_ids", input_ids.shape, (2,))
            check_ids(f"{prefix}input_ids", input_ids, self.config.vocab_size)
            return self.embed_tokens(input_ids)
        checks.check_rank(f"{prefix}inputs_embeds", inputs_embeds.shape, (3,))
        return inputs_embeds


class TFBigBirdPegasusEncoder(TFBigBirdPegasusStack):
    """The encoder stack: embeddings, BigBird layers, final LayerNorm (`layernorm_embedding`)."""

    def __init__(self, config: BigBirdPegasusConfig, *args, **kwargs) -> None:
        super().__init__(config, *args, **kwargs)
        self.layerdrop = config.encoder_layerdrop
        self.max_source_positions = config.max_position_embeddings
        # Keras names list elements by their layer names: `layers_._{i}` is `layers.{i}`.
        self.layers = [
            TFBigBirdPegasusEncoderLayer(config, i, name=f"layers_._{i}")
            for i in range(config.encoder_layers)
        ]
        # Attention type, random-block policy and the plan of each call (an encoder: block-sparse
        # attention is allowed).
        self.block_sparse = BlockSparseController(config, decoder=False)

    def call(
        self,
        input_ids: tf.Tensor | None = None,
        attention_mask: tf.Tensor | None = None,
        head_mask: tf.Tensor | None = None,
        inputs_embeds: tf.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        training=False,
    ):
        config = self.config
        output_attentions, output_hidden_states = resolve_output_flags(
            config, output_attentions, output_hidden_states
        )
        training = python_bool("training", training)

        inputs_embeds = self.embed_inputs(input_ids, inputs_embeds)
        length = shape_list(inputs_embeds)[1]
        if attention_mask is not None:
            check_shape(
                "attention_mask", attention_mask, tuple(inputs_embeds.shape[:2]), "the input"
            )
        positions = self.embed_positions(length=length)  # [S, H]
        hidden_states = self.dropout(inputs_embeds + positions)  # [B, S, H]
        dtype = hidden_states.dtype
        head_masks = expand_head_mask(
            head_mask, len(self.layers), config.encoder_attention_heads, dtype
        )

        # One plan for every layer of this call (None: full attention, with the mask honoured),
        # made while tracing: a block-sparse call needs a static length.
        plan = plan_call(self.block_sparse, length, "encoder", training=training)
        block_sparse = None
        extended_mask = None
        if plan is not None:
            hidden_states, block_sparse = BlockSparseInputs.for_call(
                self.block_sparse, plan, training, hidden_states, attention_mask, self.pad
            )
        elif attention_mask is not None:
            extended_mask = extended_attention_mask(attention_mask, length, dtype, causal=False)

        all_hidden_states = () if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for i, layer in enumerate(self.layers):
            if output_hidden_states:
                all_hidden_states = (*all_hidden_states, hidden_states)
            probs = None
            # LayerDrop (training only): the layer is skipped for the whole batch (decided in
            # Python, so while tracing: once per traced function).
            if not (training and self.layerdrop > 0 and np.random.random() < self.layerdrop):
                hidden_states, probs = layer(
                    hidden_states,
                    extended_mask,
                    head_masks[i],
                    output_attentions=output_attentions,
                    block_sparse=block_sparse,
                )
            if output_attentions:
                all_attentions = (*all_attentions, probs)
        hidden_states = self.layernorm_embedding(hidden_states)
        if output_hidden_states:
            all_hidden_states = (*all_hidden_states, hidden_states)

        # Every per-token output goes back to the input length.
        hidden_states, all_hidden_states, all_attentions = unpad_outputs(
            plan, hidden_states, all_hidden_states, all_attentions
        )
        output = TFBaseModelOutput(
            last_hidden_state=hidden_states,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )
        return output if resolve_return_dict(config, return_dict) else output.to_tuple()

    def pad(
        self, hidden_states: tf.Tensor, key_keep: tf.Tensor, plan: AttentionPlan
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Append `plan.pad_length` embedded pad tokens (word embedding only, no position, as the
        reference) and masked-out keep entries."""
        batch = shape_list(hidden_states)[0]
        pad_ids = tf.fill((batch, plan.pad_length), self.padding_idx)
        pad_embeddings = tf.cast(self.embed_tokens(pad_ids), hidden_states.dtype)  # [B, pad, H]
        hidden_states = tf.concat([hidden_states, pad_embeddings], axis=1)  # [B, padded S, H]
        key_keep = tf.pad(key_keep, [[0, 0], [0, plan.pad_length]])
        return hidden_states, key_keep


class TFBigBirdPegasusDecoder(TFBigBirdPegasusStack):
    """The decoder stack: embeddings, full-attention layers with cross-attention, final
    LayerNorm (`layernorm_embedding`)."""

    def __init__(self, config: BigBirdPegasusConfig, *args, **kwargs) -> None:
        super().__init__(config, *args, **kwargs)
        self.layerdrop = config.decoder_layerdrop
        self.max_target_positions = config.max_position_embeddings
        self.layers = [
            TFBigBirdPegasusDecoderLayer(config, name=f"layers_._{i}")
            for i in range(config.decoder_layers)
        ]

    def call(
        self,
        input_ids: tf.Tensor | None = None,
        attention_mask: tf.Tensor | None = None,
        encoder_hidden_states: tf.Tensor | None = None,
        encoder_attention_mask: tf.Tensor | None = None,
        head_mask: tf.Tensor | None = None,
        cross_attn_head_mask: tf.Tensor | None = None,
        past_key_values: tuple | None = None,
        inputs_embeds: tf.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        training=False,
    ):
        config = self.config
        output_attentions, output_hidden_states = resolve_output_flags(
            config, output_attentions, output_hidden_states
        )
        use_cache = config.use_cache if use_cache is None else use_cache
        training = python_bool("training", training)

        inputs_embeds = self.embed_inputs(input_ids, inputs_embeds, "decoder ")
        batch, length = shape_list(inputs_embeds)[:2]
        past_length = shape_list(past_key_values[0][0])[2] if past_key_values is not None else 0
        positions = self.embed_positions(length=length, past_key_values_length=past_length)
        hidden_states = self.dropout(inputs_embeds + positions)  # [B, T, H]
        dtype = hidden_states.dtype

        # Causal self-attention mask [B, 1, T, past + T]; a single new token sees every key (a
        # length only known at run time gets the mask, which is then all zeros).
        self_mask = None
        if attention_mask is not None:
            check_mask_shape(
                "decoder attention_mask", attention_mask, batch, length, past_length + length
            )
        if attention_mask is not None or not (isinstance(length, int) and length == 1):
            keep = attention_mask
            if keep is None:
                keep = tf.ones((batch, past_length + length), dtype=dtype)
            self_mask = extended_attention_mask(keep, length, dtype, causal=True)
        cross_mask = None
        if encoder_hidden_states is not None:
            checks.check_rank("encoder_hidden_states", encoder_hidden_states.shape, (3,))
            if encoder_attention_mask is not None:
                encoder_length = encoder_hidden_states.shape[1]
                check_mask_shape(
                    "encoder attention_mask", encoder_attention_mask, batch, length, encoder_length
                )
                cross_mask = extended_attention_mask(
                    encoder_attention_mask, length, dtype, causal=False
                )
        num_layers, num_heads = len(self.layers), config.decoder_attention_heads
        head_masks = expand_head_mask(head_mask, num_layers, num_heads, dtype)
        cross_head_masks = expand_head_mask(cross_attn_head_mask, num_layers, num_heads, dtype)

        all_hidden_states = () if output_hidden_states else None
        all_attentions = () if output_attentions else None
        all_cross_attentions = (
            () if output_attentions and encoder_hidden_states is not None else None
        )
        presents = () if use_cache else None
        for i, layer in enumerate(self.layers):
            if output_hidden_states:
                all_hidden_states = (*all_hidden_states, hidden_states)
            past = tuple(past_key_values[i]) if past_key_values is not None else None
            self_probs = cross_probs = present = None
            if not (training and self.layerdrop > 0 and np.random.random() < self.layerdrop):
                hidden_states, self_probs, cross_probs, present = layer(
                    hidden_states,
                    self_mask,
                    encoder_hidden_states,
                    cross_mask,
                    head_masks[i],
                    cross_head_masks[i],
                    past,
                    output_attentions=output_attentions,
                )
            if use_cache:
                presents = (*presents, present)
            if output_attentions:
                all_attentions = (*all_attentions, self_probs)
                if all_cross_attentions is not None:
                    all_cross_attentions = (*all_cross_attentions, cross_probs)
        hidden_states = self.layernorm_embedding(hidden_states)
        if output_hidden_states:
            all_hidden_states = (*all_hidden_states, hidden_states)

        output = TFBaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden_states,
            past_key_values=presents,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
            cross_attentions=all_cross_attentions,
        )
        return output if resolve_return_dict(config, return_dict) else output.to_tuple()


class TFBigBirdPegasusModel(TFBigBirdPegasusPreTrainedModel):
    """The bare encoder-decoder, returning the decoder's hidden states and the encoder's."""

    def __init__(self, config: BigBirdPegasusConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        config = self.config
        self.shared = _word_embedding(config, "shared")
        self.encoder = TFBigBirdPegasusEncoder(config, self.shared, name="encoder")
        self.decoder = TFBigBirdPegasusDecoder(config, self.shared, name="decoder")

    def get_input_embeddings(self) -> keras.layers.Embedding:
        return self.shared

    @unpack_inputs
    def call(
        self,
        input_ids=None,
        attention_mask=None,
        decoder_input_ids=None,
        decoder_attention_mask=None,
        head_mask=None,
        decoder_head_mask=None,
        cross_attn_head_mask=None,
        encoder_outputs=None,
        past_key_values=None,
        inputs_embeds=None,
        decoder_inputs_embeds=None,
        use_cache=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        training=False,
    ):
        config = self.config
        if not self.shared.built:
            # Built here, in the model's scope, so its variable is `shared` (`model.shared.weight`)
            # although the encoder and the decoder call it.
            self.shared.build(None)
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
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                return_dict=True,
                training=training,
            )
        else:
            encoder_outputs = as_encoder_output(encoder_outputs, TFBaseModelOutput)

        # The cross-attention mask is the encoder's own (unpadded) attention_mask.
        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=attention_mask,
            head_mask=decoder_head_mask,
            cross_attn_head_mask=cross_attn_head_mask,
            past_key_values=past_key_values,
            inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            training=training,
        )
        return self.head_output(
            TFSeq2SeqModelOutput,
            None,
            return_dict,
            last_hidden_state=decoder_outputs.last_hidden_state,
            past_key_values=decoder_outputs.past_key_values,
            cross_attentions=decoder_outputs.cross_attentions,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )


class TFBigBirdPegasusForConditionalGeneration(TFGenerationMixin, TFBigBirdPegasusPreTrainedModel):
    """BigBirdPegasus with the language-modelling head, for summarisation; see `generate`."""

    # The LM head shares the word-embedding matrix (when `tie_word_embeddings`, the default).
    tied_weights = (("lm_head.weight", "model.shared.weight"),)

    def __init__(self, config: BigBirdPegasusConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        config = self.config
        self.model = TFBigBirdPegasusModel(config, name="model")
        self.lm_head = (
            None
            if config.tie_word_embeddings
            else dense(config.vocab_size, config, "lm_head", use_bias=False)
        )
        self.generation_config = GenerationConfig.from_model_config(config)

    def build(self, input_shape=None) -> None:
        # A non-trainable variable (stored in checkpoints, not trained), as the reference's buffer.
        self.final_logits_bias = self.add_weight(
            name="final_logits_bias",
            shape=(1, self.config.vocab_size),
            initializer="zeros",
            trainable=False,
        )
        super().build(input_shape)

    def get_input_embeddings(self) -> keras.layers.Embedding:
        return self.model.shared

    def prepare_decoder_input_ids_from_labels(self, labels: tf.Tensor) -> tf.Tensor:
        """The decoder inputs the model builds from `labels` (`shift_tokens_right`)."""
        return shift_tokens_right(
            labels, self.config.pad_token_id, self.config.decoder_start_token_id
        )

    @unpack_inputs
    def call(
        self,
        input_ids=None,
        attention_mask=None,
        decoder_input_ids=None,
        decoder_attention_mask=None,
        head_mask=None,
        decoder_head_mask=None,
        cross_attn_head_mask=None,
        encoder_outputs=None,
        past_key_values=None,
        inputs_embeds=None,
        decoder_inputs_embeds=None,
        labels=None,
        use_cache=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        training=False,
    ):
        if labels is not None:
            use_cache = False
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            head_mask=head_mask,
            decoder_head_mask=decoder_head_mask,
            cross_attn_head_mask=cross_attn_head_mask,
            encoder_outputs=encoder_outputs,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            decoder_inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            training=training,
        )
        lm_logits = vocabulary_logits(
            self.lm_head, self.model.shared.embeddings, outputs.last_hidden_state
        )
        lm_logits = lm_logits + tf.cast(self.final_logits_bias, lm_logits.dtype)  # [B, T, V]
        loss = masked_lm_loss(lm_logits, labels) if labels is not None else None
        return self.head_output(
            TFSeq2SeqLMOutput, outputs, return_dict, loss=loss, logits=lm_logits
        )


class TFBigBirdPegasusForSequenceClassification(TFBigBirdPegasusPreTrainedModel):
    """BigBirdPegasus with a classification (or regression) head on the decoder state at the
    last end-of-sequence token of the input."""

    def __init__(self, config: BigBirdPegasusConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        config = self.config
        self.model = TFBigBirdPegasusModel(config, name="model")
        self.classification_head = TFBigBirdPegasusClassificationHead(
            config.d_model,
            config.d_model,
            config.num_labels,
            config.classifier_dropout,
            init_std=config.init_std,
            name="classification_head",
        )

    def dummy_inputs(self) -> dict[str, tf.Tensor]:
        # The head reads the decoder state at the last <eos> of the input.
        return {"input_ids": tf.constant([[self.config.eos_token_id]], tf.int32)}

    @unpack_inputs
    def call(
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
        labels=None,
        use_cache=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        training=False,
    ):
        if input_ids is None:
            # The end-of-sequence positions are read from input_ids.
            raise NotImplementedError(
                f"{type(self).__name__} needs input_ids (inputs_embeds alone are not supported)"
            )
        if labels is not None:
            use_cache = False
        outputs = self.model(
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
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            training=training,
        )
        hidden_states = outputs.last_hidden_state  # [B, T, H]
        sentence_representation = self._last_eos_states(input_ids, hidden_states)  # [B, H]
        logits = self.classification_head(sentence_representation)
        loss = (
            sequence_classification_loss(logits, labels, self.config)
            if labels is not None
            else None
        )
        return self.head_output(
            TFSeq2SeqSequenceClassifierOutput, outputs, return_dict, loss=loss, logits=logits
        )

    def _last_eos_states(self, input_ids: tf.Tensor, hidden_states: tf.Tensor) -> tf.Tensor:
        """The decoder state at the last `eos_token_id` of each row of `input_ids`; every row
        must hold the same (non-zero) number of them, as the reference requires."""
        eos = self.config.eos_token_id
        eos_mask = tf.cast(tf.equal(input_ids, tf.cast(eos, input_ids.dtype)), tf.int32)  # [B, S]
        counts = tf.reduce_sum(eos_mask, axis=1)  # [B]
        eager = tf.executing_eagerly()
        ids_shape, states_shape = static_shape(input_ids), static_shape(hidden_states)
        if ids_shape is not None and states_shape is not None:
            # While tracing only the shapes can be checked here (one eos per row stands in for
            # the unknown counts); the graph checks the counts when it runs.
            checks.check_eos_positions(
                ids_shape, states_shape, counts.numpy() if eager else [1], eos
            )
        if not eager:
            tf.debugging.assert_equal(
                tf.reduce_min(counts),
                tf.reduce_max(counts),
                message="All examples must have the same number of <eos> tokens",
            )
            tf.debugging.assert_positive(counts, message="no <eos> token in input_ids")
        positions = tf.range(shape_list(input_ids)[1])  # [S]
        last_eos = tf.argmax(eos_mask * positions[None], axis=1, output_type=tf.int32)  # [B]
        return tf.gather(hidden_states, last_eos, batch_dims=1)  # [B, H]


class TFBigBirdPegasusForQuestionAnswering(TFBigBirdPegasusPreTrainedModel):
    """BigBirdPegasus with a span head (start/end logits) on the decoder's hidden states."""

    def __init__(self, config: BigBirdPegasusConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        config = self.config
        self.model = TFBigBirdPegasusModel(config, name="model")
        self.qa_outputs = dense(2, config, "qa_outputs")

    @unpack_inputs
    def call(
        self,
        input_ids=None,
        attention_mask=None,
        decoder_input_ids=None,
        decoder_attention_mask=None,
        head_mask=None,
        decoder_head_mask=None,
        cross_attn_head_mask=None,
        encoder_outputs=None,
        start_positions=None,
        end_positions=None,
        inputs_embeds=None,
        decoder_inputs_embeds=None,
        use_cache=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        training=False,
    ):
        if start_positions is not None and end_positions is not None:
            use_cache = False
        outputs = self.model(
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
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            training=training,
        )
        logits = self.qa_outputs(outputs.last_hidden_state)  # [B, T, 2]
        return self.head_output(
            TFSeq2SeqQuestionAnsweringModelOutput,
            outputs,
            return_dict,
            **span_outputs(logits, start_positions, end_positions),
        )


class TFBigBirdPegasusDecoderWrapper(LazyBuildLayer):
    """Holds the decoder as `decoder`, so that a decoder-only model has the checkpoint names
    `model.decoder.*` of the encoder-decoder."""

    def __init__(self, config: BigBirdPegasusConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.decoder = TFBigBirdPegasusDecoder(config, name="decoder")


class TFBigBirdPegasusForCausalLM(TFGenerationMixin, TFBigBirdPegasusPreTrainedModel):
    """The BigBirdPegasus decoder alone as a causal language model (the config is used with
    `is_decoder=True, is_encoder_decoder=False`); cross-attention runs when
    `encoder_hidden_states` are given. Unlike the BERT-style causal LMs, the loss does not shift
    the labels (as the reference): `labels[:, t]` is the target of position t."""

    # Tied (the default) to `model.decoder.embed_tokens`, else its own `lm_head`.
    tied_weights = (("lm_head.weight", "model.decoder.embed_tokens.weight"),)

    def __init__(self, config: BigBirdPegasusConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        config = self.config = self.config.copy(is_decoder=True, is_encoder_decoder=False)
        self.model = TFBigBirdPegasusDecoderWrapper(config, name="model")
        self.lm_head = (
            None
            if config.tie_word_embeddings
            else dense(config.vocab_size, config, "lm_head", use_bias=False)
        )
        self.generation_config = GenerationConfig.from_model_config(config)

    def get_input_embeddings(self) -> keras.layers.Embedding:
        return self.model.decoder.embed_tokens

    def dummy_inputs(self) -> dict[str, tf.Tensor]:
        # Encoder states create the cross-attention variables (the checkpoint has them).
        return {
            "input_ids": tf.constant([[1, 2, 3]], dtype=tf.int32),
            "encoder_hidden_states": tf.zeros((1, 2, self.config.d_model)),
        }

    @unpack_inputs
    def call(
        self,
        input_ids=None,
        attention_mask=None,
        encoder_hidden_states=None,
        encoder_attention_mask=None,
        head_mask=None,
        cross_attn_head_mask=None,
        past_key_values=None,
        inputs_embeds=None,
        labels=None,
        use_cache=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        training=False,
    ):
        # In the wrapper's name scope, so that the variables are `model/decoder/*`.
        with keras.name_scope(self.model.name):
            outputs = self.model.decoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                encoder_hidden_states=encoder_hidden_states,
                encoder_attention_mask=encoder_attention_mask,
                head_mask=head_mask,
                cross_attn_head_mask=cross_attn_head_mask,
                past_key_values=past_key_values,
                inputs_embeds=inputs_embeds,
                use_cache=use_cache,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                return_dict=True,
                training=training,
            )
        logits = vocabulary_logits(
            self.lm_head, self.model.decoder.embed_tokens.embeddings, outputs.last_hidden_state
        )  # [B, T, V]
        # As the reference: labels are compared position by position with the logits (not
        # shifted here), so pass the next tokens as labels.
        loss = masked_lm_loss(logits, labels) if labels is not None else None
        return self.head_output(
            TFCausalLMOutputWithCrossAttentions, outputs, return_dict, loss=loss, logits=logits
        )
