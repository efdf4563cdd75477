"""BigBird in TensorFlow / Keras 3.

Paper: Zaheer et al., "Big Bird: Transformers for Longer Sequences" (arXiv:2007.14062).

Attention is block-sparse (`attention_type="block_sparse"`, the default) or full
(`"original_full"`). Which one a call runs, the padding it needs and the random key blocks are
decided once per call, outside the layers, by `aviary.core.block_sparse.plan_for_config`; every
layer gets the same plan and the model never rewrites its layers. A short input (at most
`(5 + 2 r) * block_size` tokens) runs full attention for that call only; the next long input is
block-sparse again. Inputs whose length is not a multiple of `block_size` are padded on the right
and every per-token output (`last_hidden_state`, `hidden_states`, `attentions`, logits) is unpadded
again.

The plan depends only on the (static) sequence length, the policy and the `training` flag, so
under `tf.function` and `jit_compile=True` it is made while tracing and enters the graph as
constants. The random-block policy is a model setting: `model.set_block_sparse_policy("resample",
rng=np.random.default_rng(0))`; see `aviary.core.block_sparse` for "reference" (default),
"fixed" and "resample". Inside a `tf.function`, "resample" draws a fresh plan at every run with
`tf.numpy_function` (and once while tracing, for the shapes), so it cannot be XLA-compiled.
Changing the attention type or the policy clears the functions Keras traced for `fit` /
`evaluate` / `predict`; a `tf.function` of your own keeps the plan it was traced with until it is
traced again.

Shapes: B batch · C choices · L tokens · H hidden · N heads · D head dim.
Layer names are the PyTorch attribute names, so variable paths map to the canonical checkpoint
names by the generic rule; this file defines the same classes in the same order as
`aviary.pt.big_bird`. Dropout layers follow the `training` flag of the outermost call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from aviary.core import checks
from aviary.core.block_sparse import AttentionPlan, check_policy, plan_for_config
from aviary.core.configs import ATTENTION_TYPES, BigBirdConfig
from aviary.tf.big_bird_attention import BlockSparseIndices, block_sparse_attention
from aviary.tf.modeling_utils import (
    LazyBuildLayer,
    TFBaseModelOutputWithPoolingAndCrossAttentions,
    TFCausalLMOutputWithCrossAttentions,
    TFMaskedLMOutput,
    TFMultipleChoiceModelOutput,
    TFPreTrainedModel,
    TFSequenceClassifierOutput,
    TFTokenClassifierOutput,
    causal_lm_loss,
    check_ids,
    check_shape,
    classification_loss,
    expand_head_mask,
    extended_attention_mask,
    finish_output,
    get_activation,
    masked_lm_loss,
    sequence_classification_loss,
    shape_list,
    span_loss,
    static_shape,
    tf_output_class,
    token_classification_loss,
    unpack_inputs,
)

TFBigBirdForPreTrainingOutput = tf_output_class("BigBirdForPreTrainingOutput")
TFBigBirdForQuestionAnsweringModelOutput = tf_output_class("BigBirdForQuestionAnsweringModelOutput")

# The reference's penalty on question tokens in the span logits.
QUESTION_LOGIT_PENALTY = 1e6


@dataclass(frozen=True, eq=False)
class BlockSparseInputs:
    """What every layer's block-sparse attention needs: the call's plan as tensors and the
    `[B, padded L]` keep-mask (PyTorch passes the pair as a tuple; Keras refuses a call argument
    that nests tensors together with other objects, so here it is one object)."""

    indices: BlockSparseIndices
    key_keep: tf.Tensor


def _dense(units: int, config: BigBirdConfig, name: str, use_bias: bool = True):
    return keras.layers.Dense(
        units,
        use_bias=use_bias,
        kernel_initializer=keras.initializers.RandomNormal(stddev=config.initializer_range),
        name=name,
    )


def _embedding(rows: int, config: BigBirdConfig, name: str) -> keras.layers.Embedding:
    return keras.layers.Embedding(
        rows,
        config.hidden_size,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=config.initializer_range),
        name=name,
    )


def _layer_norm(config: BigBirdConfig) -> keras.layers.LayerNormalization:
    return keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="LayerNorm")


class TFBigBirdEmbeddings(LazyBuildLayer):
    """Word (optionally scaled by sqrt(H)) + token-type + position embeddings, then dropout and
    LayerNorm (in this order: the original code's encoder LayerNorm lives here)."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.word_embeddings = _embedding(config.vocab_size, config, "word_embeddings")
        self.position_embeddings = _embedding(
            config.max_position_embeddings, config, "position_embeddings"
        )
        self.token_type_embeddings = _embedding(
            config.type_vocab_size, config, "token_type_embeddings"
        )
        self.LayerNorm = _layer_norm(config)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)
        self.rescale_embeddings = config.rescale_embeddings
        self.hidden_size = config.hidden_size
        self.max_position_embeddings = config.max_position_embeddings
        self.vocab_size = config.vocab_size
        self.type_vocab_size = config.type_vocab_size

    def call(
        self,
        input_ids: tf.Tensor | None,
        token_type_ids: tf.Tensor,
        position_ids: tf.Tensor | None,
        inputs_embeds: tf.Tensor | None,
        past_key_values_length: int | tf.Tensor = 0,
    ) -> tf.Tensor:
        length = shape_list(input_ids if input_ids is not None else inputs_embeds)[1]
        if position_ids is None:
            if isinstance(length, int) and isinstance(past_key_values_length, int):
                checks.check_sequence_length(
                    length, past_key_values_length, self.max_position_embeddings
                )
            # The rows of PyTorch's `position_ids` buffer that this call needs.
            position_ids = tf.range(past_key_values_length, past_key_values_length + length)[None]
        else:
            check_ids("position_ids", position_ids, self.max_position_embeddings)
        check_ids("token_type_ids", token_type_ids, self.type_vocab_size)
        if inputs_embeds is None:
            check_ids("input_ids", input_ids, self.vocab_size)
            inputs_embeds = self.word_embeddings(input_ids)
        if self.rescale_embeddings:
            inputs_embeds = inputs_embeds * math.sqrt(self.hidden_size)
        embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        return self.LayerNorm(self.dropout(embeddings))


class TFBigBirdSelfAttention(LazyBuildLayer):
    """Multi-head attention of one layer: full attention (with a key/value cache for decoding and
    cross-attention) or, when the call's plan says so, block-sparse attention."""

    def __init__(self, config: BigBirdConfig, layer_index: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.query = _dense(self.all_head_size, config, "query", use_bias=config.use_bias)
        self.key = _dense(self.all_head_size, config, "key", use_bias=config.use_bias)
        self.value = _dense(self.all_head_size, config, "value", use_bias=config.use_bias)
        self.dropout = keras.layers.Dropout(config.attention_probs_dropout_prob)
        self.is_decoder = config.is_decoder
        self.layer_index = layer_index  # selects this layer's rows of the plan

    def split_heads(self, x: tf.Tensor) -> tf.Tensor:
        batch, length, _ = shape_list(x)
        x = tf.reshape(x, (batch, length, self.num_attention_heads, self.attention_head_size))
        return tf.transpose(x, (0, 2, 1, 3))  # [B, N, L, D]

    def call(
        self,
        hidden_states: tf.Tensor,
        attention_mask: tf.Tensor | None = None,
        head_mask: tf.Tensor | None = None,
        encoder_hidden_states: tf.Tensor | None = None,
        past_key_value: tuple[tf.Tensor, tf.Tensor] | None = None,
        output_attentions: bool = False,
        block_sparse: BlockSparseInputs | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor | None, tuple[tf.Tensor, ...] | None]:
        query = self.split_heads(self.query(hidden_states))  # [B, N, Q, D]
        if block_sparse is not None:
            indices, key_keep = block_sparse.indices, block_sparse.key_keep
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
                context = context * tf.cast(head_mask, context.dtype)
            return self.merge_heads(context), probs, None

        if encoder_hidden_states is not None:
            if past_key_value is not None:  # cross-attention keys are computed once per sequence
                key, value = past_key_value
            else:
                key = self.split_heads(self.key(encoder_hidden_states))
                value = self.split_heads(self.value(encoder_hidden_states))
        else:
            key = self.split_heads(self.key(hidden_states))
            value = self.split_heads(self.value(hidden_states))
            if past_key_value is not None:
                key = tf.concat([past_key_value[0], key], axis=2)  # [B, N, K, D]
                value = tf.concat([past_key_value[1], value], axis=2)
        present = (key, value) if self.is_decoder else None

        scores = tf.matmul(query, key, transpose_b=True)  # [B, N, Q, K]
        scores = scores / math.sqrt(self.attention_head_size)
        if attention_mask is not None:
            scores = scores + tf.cast(attention_mask, scores.dtype)
        # Softmax in float32: under mixed precision a float16 softmax loses the small weights.
        probs = tf.cast(tf.nn.softmax(tf.cast(scores, tf.float32), axis=-1), scores.dtype)
        probs = self.dropout(probs)
        if head_mask is not None:
            probs = probs * tf.cast(head_mask, probs.dtype)
        context = tf.matmul(probs, value)  # [B, N, Q, D]
        return self.merge_heads(context), (probs if output_attentions else None), present

    def merge_heads(self, context: tf.Tensor) -> tf.Tensor:
        batch, _, length, _ = shape_list(context)
        return tf.reshape(
            tf.transpose(context, (0, 2, 1, 3)), (batch, length, self.all_head_size)
        )  # [B, L, H]


class TFBigBirdSelfOutput(LazyBuildLayer):
    """Attention output projection, dropout, residual and LayerNorm."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dense = _dense(config.hidden_size, config, "dense")
        self.LayerNorm = _layer_norm(config)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    def call(self, hidden_states: tf.Tensor, input_tensor: tf.Tensor) -> tf.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class TFBigBirdAttention(LazyBuildLayer):
    """Self- or cross-attention followed by its output block."""

    def __init__(self, config: BigBirdConfig, layer_index: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.self = TFBigBirdSelfAttention(config, layer_index, name="self")
        # Keras reserves the attribute `output`; the layer keeps the checkpoint name "output".
        self.output_layer = TFBigBirdSelfOutput(config, name="output")

    def call(
        self,
        hidden_states: tf.Tensor,
        attention_mask: tf.Tensor | None = None,
        head_mask: tf.Tensor | None = None,
        encoder_hidden_states: tf.Tensor | None = None,
        past_key_value: tuple[tf.Tensor, tf.Tensor] | None = None,
        output_attentions: bool = False,
        block_sparse: BlockSparseInputs | None = None,
    ):
        if block_sparse is not None and encoder_hidden_states is not None:
            raise ValueError(
                "BigBird cross-attention needs attention_type='original_full'; block-sparse "
                "attention is self-attention only"
            )
        context, probs, present = self.self(
            hidden_states,
            attention_mask,
            head_mask,
            encoder_hidden_states,
            past_key_value,
            output_attentions=output_attentions,
            block_sparse=block_sparse,
        )
        return self.output_layer(context, hidden_states), probs, present


class TFBigBirdIntermediate(LazyBuildLayer):
    """First feed-forward projection and activation."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dense = _dense(config.intermediate_size, config, "dense")
        self.intermediate_act_fn = get_activation(config.hidden_act)

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        return self.intermediate_act_fn(self.dense(hidden_states))


class TFBigBirdOutput(LazyBuildLayer):
    """Second feed-forward projection, dropout, residual and LayerNorm."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dense = _dense(config.hidden_size, config, "dense")
        self.LayerNorm = _layer_norm(config)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    def call(self, hidden_states: tf.Tensor, input_tensor: tf.Tensor) -> tf.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class TFBigBirdLayer(LazyBuildLayer):
    """Self-attention, optional cross-attention (decoders), feed-forward."""

    def __init__(self, config: BigBirdConfig, layer_index: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.attention = TFBigBirdAttention(config, layer_index, name="attention")
        self.is_decoder = config.is_decoder
        self.add_cross_attention = config.add_cross_attention
        if self.add_cross_attention:
            if not self.is_decoder:
                raise ValueError("add_cross_attention=True needs is_decoder=True")
            self.crossattention = TFBigBirdAttention(config, layer_index, name="crossattention")
        self.intermediate = TFBigBirdIntermediate(config, name="intermediate")
        self.output_layer = TFBigBirdOutput(config, name="output")

    def call(
        self,
        hidden_states: tf.Tensor,
        attention_mask: tf.Tensor | None = None,
        head_mask: tf.Tensor | None = None,
        encoder_hidden_states: tf.Tensor | None = None,
        encoder_attention_mask: tf.Tensor | None = None,
        past_key_value: tuple[tf.Tensor, ...] | None = None,
        output_attentions: bool = False,
        block_sparse: BlockSparseInputs | None = None,
    ):
        # A decoder layer's cache holds (self key, self value[, cross key, cross value]).
        self_past = tuple(past_key_value[:2]) if past_key_value is not None else None
        attention_output, self_probs, present = self.attention(
            hidden_states,
            attention_mask,
            head_mask,
            None,
            self_past,
            output_attentions=output_attentions,
            block_sparse=block_sparse,
        )
        cross_probs = None
        if encoder_hidden_states is not None:
            if not self.add_cross_attention:
                raise ValueError(
                    "encoder_hidden_states were given, but the model has no cross-attention "
                    "layers: build it with is_decoder=True, add_cross_attention=True and "
                    "attention_type='original_full'"
                )
            cross_past = tuple(past_key_value[2:]) if past_key_value is not None else ()
            attention_output, cross_probs, cross_present = self.crossattention(
                attention_output,
                encoder_attention_mask,
                head_mask,
                encoder_hidden_states,
                cross_past or None,
                output_attentions=output_attentions,
            )
            present = present + cross_present
        layer_output = self.output_layer(self.intermediate(attention_output), attention_output)
        return layer_output, self_probs, cross_probs, present


class TFBigBirdEncoder(LazyBuildLayer):
    """The stack of layers; collects hidden states, attentions and the cache."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config
        # Keras names list elements `layer_._{i}`, the reference's convention.
        self.layer = [
            TFBigBirdLayer(config, layer_index=i, name=f"layer_._{i}")
            for i in range(config.num_hidden_layers)
        ]

    def call(
        self,
        hidden_states: tf.Tensor,
        attention_mask: tf.Tensor | None,
        head_masks: list[tf.Tensor | None],
        encoder_hidden_states: tf.Tensor | None,
        encoder_attention_mask: tf.Tensor | None,
        past_key_values: tuple | None,
        use_cache: bool,
        output_attentions: bool,
        output_hidden_states: bool,
        block_sparse: BlockSparseInputs | None = None,
    ):
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        all_cross_attentions = (
            () if output_attentions and encoder_hidden_states is not None else None
        )
        presents = () if use_cache else None
        for i, layer in enumerate(self.layer):
            past = past_key_values[i] if past_key_values is not None else None
            outputs = layer(
                hidden_states,
                attention_mask,
                head_masks[i],
                encoder_hidden_states,
                encoder_attention_mask,
                past,
                output_attentions=output_attentions,
                block_sparse=block_sparse,
            )
            hidden_states, self_probs, cross_probs, present = outputs
            if use_cache:
                presents = (*presents, present)
            if output_attentions:
                all_attentions = (*all_attentions, self_probs)
                if all_cross_attentions is not None:
                    all_cross_attentions = (*all_cross_attentions, cross_probs)
            if output_hidden_states:
                all_hidden_states = (*all_hidden_states, hidden_states)
        return hidden_states, presents, all_hidden_states, all_attentions, all_cross_attentions


class TFBigBirdPredictionHeadTransform(LazyBuildLayer):
    """Dense, activation and LayerNorm before the vocabulary projection."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dense = _dense(config.hidden_size, config, "dense")
        self.transform_act_fn = get_activation(config.hidden_act)
        self.LayerNorm = _layer_norm(config)

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class TFBigBirdLMPredictionHead(LazyBuildLayer):
    """Vocabulary logits. With tied embeddings (the default) the decoder is the transposed
    word-embedding matrix, passed in by the model, so the checkpoint stores it once; an untied
    config gets its own `decoder` weight."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.vocab_size = config.vocab_size
        self.transform = TFBigBirdPredictionHeadTransform(config, name="transform")
        self.decoder = None
        if not config.tie_word_embeddings:
            self.decoder = _dense(config.vocab_size, config, "decoder", use_bias=False)

    def build(self, input_shape) -> None:
        self.bias = self.add_weight(name="bias", shape=(self.vocab_size,), initializer="zeros")
        super().build(input_shape)

    def call(self, hidden_states: tf.Tensor, word_embeddings: tf.Tensor) -> tf.Tensor:
        hidden_states = self.transform(hidden_states)
        if self.decoder is not None:
            logits = self.decoder(hidden_states)
        else:
            weight = tf.cast(word_embeddings, hidden_states.dtype)  # [V, H]
            logits = tf.einsum("blh,vh->blv", hidden_states, weight)
        return logits + tf.cast(self.bias, logits.dtype)


class TFBigBirdOnlyMLMHead(LazyBuildLayer):
    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.predictions = TFBigBirdLMPredictionHead(config, name="predictions")

    def call(self, sequence_output: tf.Tensor, word_embeddings: tf.Tensor) -> tf.Tensor:
        return self.predictions(sequence_output, word_embeddings)


class TFBigBirdPreTrainingHeads(LazyBuildLayer):
    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.predictions = TFBigBirdLMPredictionHead(config, name="predictions")
        self.seq_relationship = _dense(2, config, "seq_relationship")

    def call(self, sequence_output: tf.Tensor, pooled_output: tf.Tensor, word_embeddings):
        return (
            self.predictions(sequence_output, word_embeddings),
            self.seq_relationship(pooled_output),
        )


class TFBigBirdPreTrainedModel(TFPreTrainedModel):
    """Base of the BigBird classes: config class, checkpoint prefix, attention settings."""

    config_class = BigBirdConfig
    base_model_prefix = "bert"

    def _base_model(self) -> TFBigBirdModel:
        # A method, not a property as in PyTorch: Keras's `.keras` saving walks the attributes,
        # and one that returns the model itself would send it round in circles.
        return getattr(self, self.base_model_prefix, self)

    def dummy_inputs(self) -> dict[str, tf.Tensor]:
        inputs = {"input_ids": tf.constant([[1, 2, 3]], dtype=tf.int32)}
        if self.config.add_cross_attention:  # creates the cross-attention variables
            inputs["encoder_hidden_states"] = tf.zeros((1, 2, self.config.hidden_size))
        return inputs

    def build_with_dummies(self) -> None:
        # The dummy call is short, so it runs full attention: that is no news to warn about.
        base = self._base_model()
        base.plan_warnings = False
        try:
            super().build_with_dummies()
        finally:
            base.plan_warnings = True

    def set_attention_type(self, attention_type: str) -> None:
        """Choose `"block_sparse"` or `"original_full"` attention for later calls (the config
        is left as it is). Block-sparse calls still fall back to full attention on short inputs."""
        self._base_model().set_attention_type(attention_type)
        self._forget_traced_functions()

    def set_block_sparse_policy(
        self, policy: str = "reference", rng: np.random.Generator | None = None
    ) -> None:
        """Choose how block-sparse calls draw their random key blocks.

        `"reference"` (default; the reference library's numbers: layer-seeded plans in training,
        the all-zero plan in eval), `"fixed"` (the seeded plan in training and eval) or
        `"resample"` (a fresh plan per call from `rng`, a `numpy.random.Generator`).
        """
        self._base_model().set_block_sparse_policy(policy, rng)
        self._forget_traced_functions()

    def _forget_traced_functions(self) -> None:
        # Keras traces `fit` / `evaluate` / `predict` once; their graphs hold the old plan.
        self.train_function = self.test_function = self.predict_function = None


def _word_embeddings(model: TFBigBirdModel) -> keras.Variable:
    """The word-embedding matrix `[V, H]` the tied LM decoder multiplies by (built by the
    model's call, which runs before the head's)."""
    return model.embeddings.word_embeddings.embeddings


def _python_bool(name: str, value) -> bool:
    """`training` decides the plan, so it must be known while tracing."""
    if isinstance(value, tf.Tensor):
        if not tf.executing_eagerly():
            raise ValueError(
                f"BigBird needs {name} as a Python bool (it chooses the block-sparse plan while "
                "tracing), got a symbolic tensor"
            )
        value = value.numpy()
    return bool(value)


def _in_xla_context() -> bool:
    """Whether the function being traced is compiled with XLA (`jit_compile=True`)."""
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - a TF without the internal module
        return False
    graph = tf.compat.v1.get_default_graph()
    return bool(control_flow_util.GraphOrParentsInXlaContext(graph))


@keras.saving.register_keras_serializable(package="aviary")
class TFBigBirdModel(TFBigBirdPreTrainedModel):
    """The bare BigBird encoder (or full-attention decoder), returning hidden states and the
    pooled first token."""

    def __init__(self, config: BigBirdConfig, add_pooling_layer: bool = True, **kwargs) -> None:
        super().__init__(config, **kwargs)
        config = self.config
        self.add_pooling_layer = add_pooling_layer
        self.attention_type = config.attention_type
        self.block_sparse_policy = "reference"
        self.block_sparse_rng: np.random.Generator | None = None
        self.plan_warnings = True  # off while the dummy call builds the variables
        self._check_decoder_attention(self.attention_type)
        self.embeddings = TFBigBirdEmbeddings(config, name="embeddings")
        self.encoder = TFBigBirdEncoder(config, name="encoder")
        if add_pooling_layer:
            self.pooler = _dense(config.hidden_size, config, "pooler")
            self.activation = tf.tanh
        else:
            self.pooler = None
            self.activation = None

    def get_config(self) -> dict:
        return {**super().get_config(), "add_pooling_layer": self.add_pooling_layer}

    def _check_decoder_attention(self, attention_type: str) -> None:
        if attention_type not in ATTENTION_TYPES:
            raise ValueError(
                f"attention_type={attention_type!r} is not one of {', '.join(ATTENTION_TYPES)}"
            )
        if attention_type == "block_sparse" and (
            self.config.is_decoder or self.config.add_cross_attention
        ):
            raise ValueError(
                "BigBird as a decoder (is_decoder or add_cross_attention) needs "
                "attention_type='original_full': block-sparse attention is neither causal nor "
                "cross-attention. Build the config with attention_type='original_full' (or pass "
                "attention_type='original_full' to from_pretrained)."
            )

    def set_attention_type(self, attention_type: str) -> None:
        self._check_decoder_attention(attention_type)
        self.attention_type = attention_type
        self._forget_traced_functions()

    def set_block_sparse_policy(
        self, policy: str = "reference", rng: np.random.Generator | None = None
    ) -> None:
        check_policy(policy, rng)
        self.block_sparse_policy = policy
        self.block_sparse_rng = rng
        # "resample" draws with numpy at every step, which XLA cannot compile: Keras's
        # `jit_compile="auto"` then picks plain graph mode.
        self.supports_jit = policy != "resample"
        self._forget_traced_functions()

    def get_input_embeddings(self) -> keras.layers.Embedding:
        return self.embeddings.word_embeddings

    def plan(self, seq_len: int, training: bool = False) -> AttentionPlan | None:
        """The block-sparse plan of a call on `seq_len` tokens, or None for full attention.

        Every call computes this once (while tracing, inside a `tf.function`). Under the
        "resample" policy each call draws from the policy's generator (so calling it yourself
        advances that generator too).
        """
        if self.attention_type != "block_sparse":
            return None
        if not isinstance(seq_len, int):
            raise ValueError(
                "block-sparse attention plans from the sequence length, which must be known "
                "while tracing: give the input a static length (for example "
                "tf.TensorSpec([None, 4096], tf.int32)) or use attention_type='original_full'"
            )
        plan = plan_for_config(
            self.config,
            seq_len,
            training=training,
            policy=self.block_sparse_policy,
            rng=self.block_sparse_rng,
            warn=self.plan_warnings,
        )
        return plan if plan.use_block_sparse else None

    def _block_sparse_indices(
        self, plan: AttentionPlan, training: bool, dtype: tf.DType
    ) -> BlockSparseIndices:
        """The plan as tensors. Eagerly, and for the plans that depend only on shapes, they are
        constants; "resample" inside a `tf.function` draws a fresh plan at every run."""
        key_blocks = None
        if self.block_sparse_policy == "resample" and not tf.executing_eagerly():
            if _in_xla_context():
                raise ValueError(
                    "the 'resample' block-sparse policy draws its random blocks with numpy at "
                    "every step, which XLA cannot compile: use jit_compile=False, or the "
                    "'fixed' or 'reference' policy"
                )

            def draw() -> np.ndarray:
                return self.plan(plan.seq_len, training).key_blocks

            key_blocks = tf.numpy_function(draw, [], tf.int32, stateful=True)
            key_blocks.set_shape(plan.key_blocks.shape)
        return BlockSparseIndices.from_plan(plan, dtype, key_blocks)

    @unpack_inputs
    def call(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        inputs_embeds=None,
        encoder_hidden_states=None,
        encoder_attention_mask=None,
        past_key_values=None,
        use_cache=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        training=False,
    ):
        config = self.config
        output_attentions = (
            config.output_attentions if output_attentions is None else output_attentions
        )
        output_hidden_states = (
            config.output_hidden_states if output_hidden_states is None else output_hidden_states
        )
        return_dict = config.use_return_dict if return_dict is None else return_dict
        use_cache = (config.use_cache if use_cache is None else use_cache) and config.is_decoder

        checks.check_exactly_one_input(input_ids is not None, inputs_embeds is not None)
        if input_ids is not None:
            checks.check_rank("input_ids", input_ids.shape, (2,))
            batch, length = shape_list(input_ids)
        else:
            checks.check_rank("inputs_embeds", inputs_embeds.shape, (3,))
            batch, length = shape_list(inputs_embeds)[:2]
        past_length = shape_list(past_key_values[0][0])[2] if past_key_values is not None else 0

        if token_type_ids is None:
            token_type_ids = tf.zeros((batch, length), dtype=tf.int32)
        else:
            check_shape("token_type_ids", token_type_ids, (batch, length), "the input")
        if position_ids is not None and isinstance(length, int):
            checks.check_same_shape(
                "position_ids", position_ids.shape[-1:], (length,), "the input length"
            )
        if attention_mask is not None:
            mask_shape = static_shape(attention_mask)
            sizes = (batch, length, past_length + length)
            if mask_shape is not None and all(isinstance(s, int) for s in sizes):
                checks.check_attention_mask_shape(
                    mask_shape, batch, length, past_length + length, "attention_mask"
                )
        if encoder_hidden_states is not None and self.attention_type == "block_sparse":
            raise ValueError(
                "encoder_hidden_states need cross-attention, which BigBird only has with "
                "attention_type='original_full'"
            )

        # One plan for every layer of this call (None: full attention).
        training = _python_bool("training", training)
        plan = self.plan(length, training) if past_length == 0 else None
        if plan is not None and attention_mask is not None and attention_mask.shape.rank != 2:
            raise ValueError(
                "block-sparse attention takes a [batch, sequence] attention_mask, got shape "
                f"{tuple(attention_mask.shape)}"
            )
        embedding_output = self.embeddings(
            input_ids=input_ids,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            past_key_values_length=past_length,
        )
        dtype = embedding_output.dtype
        head_masks = expand_head_mask(
            head_mask, config.num_hidden_layers, config.num_attention_heads, dtype
        )

        block_sparse = None
        extended_mask = None
        encoder_extended_mask = None
        if plan is not None:
            key_keep = (
                tf.ones((batch, length), dtype=dtype)
                if attention_mask is None
                else tf.cast(attention_mask, dtype)
            )
            if plan.pad_length:
                embedding_output, key_keep = self._pad(embedding_output, key_keep, plan)
            indices = self._block_sparse_indices(plan, training, dtype)
            block_sparse = BlockSparseInputs(indices, key_keep)  # key_keep: [B, padded L]
        else:
            # Without padding and outside a decoder there is nothing to mask (as TF BERT).
            if config.is_decoder or attention_mask is not None:
                if attention_mask is None:
                    attention_mask = tf.ones((batch, past_length + length))
                extended_mask = extended_attention_mask(
                    attention_mask, length, dtype, config.is_decoder
                )
            if encoder_hidden_states is not None and encoder_attention_mask is not None:
                mask_shape = static_shape(encoder_attention_mask)
                encoder_length = encoder_hidden_states.shape[1]
                if mask_shape is not None and all(
                    isinstance(s, int) for s in (batch, length, encoder_length)
                ):
                    checks.check_attention_mask_shape(
                        mask_shape, batch, length, encoder_length, "encoder_attention_mask"
                    )
                encoder_extended_mask = extended_attention_mask(
                    encoder_attention_mask, length, dtype, causal=False
                )

        sequence_output, presents, hidden_states, attentions, cross_attentions = self.encoder(
            embedding_output,
            extended_mask,
            head_masks=head_masks,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_extended_mask,
            past_key_values=past_key_values,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            block_sparse=block_sparse,
        )
        if plan is not None and plan.pad_length:
            # Every per-token output goes back to the input length.
            sequence_output = sequence_output[:, :length]
            if hidden_states is not None:
                hidden_states = tuple(h[:, :length] for h in hidden_states)
            if attentions is not None:
                attentions = tuple(a[:, :, :length, :length] for a in attentions)
        pooled_output = None
        if self.pooler is not None:
            pooled_output = self.activation(self.pooler(sequence_output[:, 0]))
        output = TFBaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=sequence_output,
            pooler_output=pooled_output,
            hidden_states=hidden_states,
            past_key_values=presents,
            attentions=attentions,
            cross_attentions=cross_attentions,
        )
        return finish_output(output, return_dict)

    def _pad(
        self, embedding_output: tf.Tensor, key_keep: tf.Tensor, plan: AttentionPlan
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Append `plan.pad_length` embedded pad tokens (position and token type as the
        reference pads them) and masked-out keep entries."""
        batch = shape_list(embedding_output)[0]
        pad_ids = tf.fill((batch, plan.pad_length), self.config.pad_token_id)
        pad_embeddings = self.embeddings(
            pad_ids, tf.zeros_like(pad_ids), pad_ids, None
        )  # [B, pad, H]; positions = pad_token_id, as the reference pads position_ids
        embedding_output = tf.concat([embedding_output, pad_embeddings], axis=1)
        key_keep = tf.pad(key_keep, [[0, 0], [0, plan.pad_length]])
        return embedding_output, key_keep


def _base_inputs(**kwargs):
    """The arguments every head passes through to `TFBigBirdModel`, always as an output object."""
    return {**kwargs, "return_dict": True}


@keras.saving.register_keras_serializable(package="aviary")
class TFBigBirdForPreTraining(TFBigBirdPreTrainedModel):
    """BigBird with the masked-LM and next-sentence-prediction heads used in pretraining."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.bert = TFBigBirdModel(self.config, add_pooling_layer=True, name="bert")
        self.cls = TFBigBirdPreTrainingHeads(self.config, name="cls")

    @unpack_inputs
    def call(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        inputs_embeds=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        labels=None,
        next_sentence_label=None,
        training=False,
    ):
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        outputs = self.bert(
            **_base_inputs(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                head_mask=head_mask,
                inputs_embeds=inputs_embeds,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
            )
        )
        prediction_logits, seq_relationship_logits = self.cls(
            outputs.last_hidden_state,
            outputs.pooler_output,
            word_embeddings=_word_embeddings(self.bert),
        )
        # The sum of the losses whose labels are given (the reference adds the NSP loss only
        # when the MLM labels are given too).
        loss = None
        if labels is not None:
            loss = masked_lm_loss(prediction_logits, labels)
        if next_sentence_label is not None:
            nsp = classification_loss(seq_relationship_logits, next_sentence_label)
            loss = nsp if loss is None else loss + nsp
        output = TFBigBirdForPreTrainingOutput(
            loss=loss,
            prediction_logits=prediction_logits,
            seq_relationship_logits=seq_relationship_logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


@keras.saving.register_keras_serializable(package="aviary")
class TFBigBirdForCausalLM(TFBigBirdPreTrainedModel):
    """BigBird as a causal (left-to-right) language model; needs `is_decoder=True` and
    `attention_type="original_full"` (block-sparse attention is not causal)."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        if not self.config.is_decoder:
            raise ValueError("TFBigBirdForCausalLM needs a config with is_decoder=True")
        self.bert = TFBigBirdModel(self.config, name="bert")
        self.cls = TFBigBirdOnlyMLMHead(self.config, name="cls")

    @unpack_inputs
    def call(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        inputs_embeds=None,
        encoder_hidden_states=None,
        encoder_attention_mask=None,
        past_key_values=None,
        use_cache=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        labels=None,
        training=False,
    ):
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        if labels is not None:
            use_cache = False
        outputs = self.bert(
            **_base_inputs(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                head_mask=head_mask,
                inputs_embeds=inputs_embeds,
                encoder_hidden_states=encoder_hidden_states,
                encoder_attention_mask=encoder_attention_mask,
                past_key_values=past_key_values,
                use_cache=use_cache,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
            )
        )
        logits = self.cls(outputs.last_hidden_state, word_embeddings=_word_embeddings(self.bert))
        loss = causal_lm_loss(logits, labels) if labels is not None else None
        output = TFCausalLMOutputWithCrossAttentions(
            loss=loss,
            logits=logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            cross_attentions=outputs.cross_attentions,
        )
        return finish_output(output, return_dict)


@keras.saving.register_keras_serializable(package="aviary")
class TFBigBirdForMaskedLM(TFBigBirdPreTrainedModel):
    """BigBird with the masked-language-modelling head."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.bert = TFBigBirdModel(self.config, name="bert")
        self.cls = TFBigBirdOnlyMLMHead(self.config, name="cls")

    @unpack_inputs
    def call(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        inputs_embeds=None,
        encoder_hidden_states=None,
        encoder_attention_mask=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        labels=None,
        training=False,
    ):
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        outputs = self.bert(
            **_base_inputs(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                head_mask=head_mask,
                inputs_embeds=inputs_embeds,
                encoder_hidden_states=encoder_hidden_states,
                encoder_attention_mask=encoder_attention_mask,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
            )
        )
        logits = self.cls(outputs.last_hidden_state, word_embeddings=_word_embeddings(self.bert))
        loss = masked_lm_loss(logits, labels) if labels is not None else None
        output = TFMaskedLMOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class TFBigBirdClassificationHead(LazyBuildLayer):
    """RoBERTa-style sentence head on the first token: dropout, dense, `hidden_act`, dropout,
    projection to the labels."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dense = _dense(config.hidden_size, config, "dense")
        dropout = config.classifier_dropout
        self.dropout = keras.layers.Dropout(
            config.hidden_dropout_prob if dropout is None else dropout
        )
        self.out_proj = _dense(config.num_labels, config, "out_proj")
        self.activation = get_activation(config.hidden_act)

    def call(self, features: tf.Tensor) -> tf.Tensor:
        x = self.dropout(features[:, 0])  # [B, H]
        x = self.activation(self.dense(x))
        return self.out_proj(self.dropout(x))


@keras.saving.register_keras_serializable(package="aviary")
class TFBigBirdForSequenceClassification(TFBigBirdPreTrainedModel):
    """BigBird with a classification (or regression) head on the first token."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.num_labels = self.config.num_labels
        self.bert = TFBigBirdModel(self.config, name="bert")
        self.classifier = TFBigBirdClassificationHead(self.config, name="classifier")

    @unpack_inputs
    def call(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        inputs_embeds=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        labels=None,
        training=False,
    ):
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        outputs = self.bert(
            **_base_inputs(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                head_mask=head_mask,
                inputs_embeds=inputs_embeds,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
            )
        )
        logits = self.classifier(outputs.last_hidden_state)
        loss = (
            sequence_classification_loss(logits, labels, self.config)
            if labels is not None
            else None
        )
        output = TFSequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


@keras.saving.register_keras_serializable(package="aviary")
class TFBigBirdForMultipleChoice(TFBigBirdPreTrainedModel):
    """BigBird scoring each of C choices with a linear layer over its pooled output."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.bert = TFBigBirdModel(self.config, name="bert")
        self.dropout = keras.layers.Dropout(self.config.hidden_dropout_prob)
        self.classifier = _dense(1, self.config, "classifier")

    def dummy_inputs(self) -> dict[str, tf.Tensor]:
        return {"input_ids": tf.constant([[[1, 2, 3], [3, 2, 1]]], dtype=tf.int32)}

    @unpack_inputs
    def call(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        inputs_embeds=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        labels=None,
        training=False,
    ):
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        if input_ids is not None:
            checks.check_rank("input_ids", input_ids.shape, (3,))
            num_choices = shape_list(input_ids)[1]
        else:
            checks.check_rank("inputs_embeds", inputs_embeds.shape, (4,))
            num_choices = shape_list(inputs_embeds)[1]

        def flat(x):  # [B, C, L, ...] -> [B*C, L, ...]
            return None if x is None else tf.reshape(x, (-1, *shape_list(x)[2:]))

        outputs = self.bert(
            **_base_inputs(
                input_ids=flat(input_ids),
                attention_mask=flat(attention_mask),
                token_type_ids=flat(token_type_ids),
                position_ids=flat(position_ids),
                head_mask=head_mask,
                inputs_embeds=flat(inputs_embeds),
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
            )
        )
        logits = self.classifier(self.dropout(outputs.pooler_output))
        logits = tf.reshape(logits, (-1, num_choices))
        loss = classification_loss(logits, labels) if labels is not None else None
        output = TFMultipleChoiceModelOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


@keras.saving.register_keras_serializable(package="aviary")
class TFBigBirdForTokenClassification(TFBigBirdPreTrainedModel):
    """BigBird with a linear classifier on every token (e.g. named entities)."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        config = self.config
        self.num_labels = config.num_labels
        self.bert = TFBigBirdModel(config, name="bert")
        dropout = config.classifier_dropout
        self.dropout = keras.layers.Dropout(
            config.hidden_dropout_prob if dropout is None else dropout
        )
        self.classifier = _dense(config.num_labels, config, "classifier")

    @unpack_inputs
    def call(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        inputs_embeds=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        labels=None,
        training=False,
    ):
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        outputs = self.bert(
            **_base_inputs(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                head_mask=head_mask,
                inputs_embeds=inputs_embeds,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
            )
        )
        logits = self.classifier(self.dropout(outputs.last_hidden_state))
        loss = token_classification_loss(logits, labels) if labels is not None else None
        output = TFTokenClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class TFBigBirdForQuestionAnsweringHead(LazyBuildLayer):
    """Span head: dropout, a feed-forward block with residual and LayerNorm, start/end logits."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)
        self.intermediate = TFBigBirdIntermediate(config, name="intermediate")
        self.output_layer = TFBigBirdOutput(config, name="output")
        self.qa_outputs = _dense(2, config, "qa_outputs")

    def call(self, encoder_output: tf.Tensor) -> tf.Tensor:
        hidden_states = self.intermediate(self.dropout(encoder_output))
        hidden_states = self.output_layer(hidden_states, encoder_output)
        return self.qa_outputs(hidden_states)  # [B, L, 2]


def question_mask(question_lengths: tf.Tensor, length: int | tf.Tensor) -> tf.Tensor:
    """`[B, L]` int32: 1 on the first `question_lengths` positions of each row, else 0."""
    positions = tf.range(length)[None]  # [1, L]
    lengths = tf.reshape(tf.cast(question_lengths, tf.int32), (-1, 1))  # [B, 1]
    return tf.cast(positions < lengths, tf.int32)


@keras.saving.register_keras_serializable(package="aviary")
class TFBigBirdForQuestionAnswering(TFBigBirdPreTrainedModel):
    """BigBird with a span head for extractive question answering.

    Question tokens (the first `question_lengths` of each row; by default everything up to and
    including the first `sep_token_id`) cannot be predicted: their logits are lowered by 1e6,
    except position 0 ([CLS], the "no answer" position). Without `token_type_ids`, question tokens
    get type 0 and the rest type 1.
    """

    def __init__(self, config: BigBirdConfig, add_pooling_layer: bool = False, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.add_pooling_layer = add_pooling_layer
        self.sep_token_id = self.config.sep_token_id
        self.bert = TFBigBirdModel(self.config, add_pooling_layer=add_pooling_layer, name="bert")
        self.qa_classifier = TFBigBirdForQuestionAnsweringHead(self.config, name="qa_classifier")

    def get_config(self) -> dict:
        return {**super().get_config(), "add_pooling_layer": self.add_pooling_layer}

    @unpack_inputs
    def call(
        self,
        input_ids=None,
        attention_mask=None,
        question_lengths=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        inputs_embeds=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        start_positions=None,
        end_positions=None,
        training=False,
    ):
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        checks.check_exactly_one_input(input_ids is not None, inputs_embeds is not None)
        length = shape_list(input_ids if input_ids is not None else inputs_embeds)[1]
        if question_lengths is None and input_ids is not None:
            # <cls> question <sep> context <sep>: the question ends at the first separator (a
            # row without one gets question length 1, i.e. only [CLS]).
            is_sep = tf.cast(
                tf.equal(input_ids, tf.cast(self.sep_token_id, input_ids.dtype)), tf.int32
            )
            question_lengths = tf.argmax(is_sep, axis=-1, output_type=tf.int32) + 1  # [B]
        logits_mask = None
        if question_lengths is not None:
            question = question_mask(tf.convert_to_tensor(question_lengths), length)  # [B, L]
            if token_type_ids is None:
                token_type_ids = 1 - question
            # [CLS] stays available for "no answer".
            logits_mask = question * tf.cast(tf.range(length) > 0, tf.int32)[None]
        outputs = self.bert(
            **_base_inputs(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                head_mask=head_mask,
                inputs_embeds=inputs_embeds,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
            )
        )
        logits = self.qa_classifier(outputs.last_hidden_state)  # [B, L, 2]
        if logits_mask is not None:
            # float16 cannot hold 1e6 (and inf * 0 is NaN): there the penalty is what it holds.
            penalty = min(QUESTION_LOGIT_PENALTY, float(logits.dtype.max) / 4)
            logits = tf.where(logits_mask[:, :, None] > 0, logits - penalty, logits)
        start_logits, end_logits = tf.unstack(logits, axis=-1)
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = span_loss(start_logits, end_logits, start_positions, end_positions)
        output = TFBigBirdForQuestionAnsweringModelOutput(
            loss=loss,
            start_logits=start_logits,
            end_logits=end_logits,
            pooler_output=outputs.pooler_output,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)
