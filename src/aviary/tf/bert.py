"""BERT in TensorFlow / Keras 3.

Paper: Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding" (arXiv:1810.04805). Relative positions: Shaw et al. (arXiv:1803.02155) and
Huang et al. (arXiv:2009.13658, method 4).

Shapes: B batch · C choices · Q queries · K keys · L tokens · H hidden · N heads · D head dim.
Layer names are the PyTorch attribute names, so variable paths map to the canonical checkpoint
names by the generic rule; this file defines the same classes in the same order as
`aviary.pt.bert`. Dropout layers follow the `training` flag of the outermost call (Keras passes
it down), as PyTorch modules follow `self.training`.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from aviary.core import checks
from aviary.core.configs import BertConfig
from aviary.core.outputs import resolve_output_flags
from aviary.tf.modeling_utils import (
    LazyBuildLayer,
    TFBaseModelOutputWithPoolingAndCrossAttentions,
    TFBertForPreTrainingOutput,
    TFCausalLMOutputWithCrossAttentions,
    TFMaskedLMOutput,
    TFMultipleChoiceModelOutput,
    TFNextSentencePredictorOutput,
    TFPreTrainedModel,
    TFQuestionAnsweringModelOutput,
    TFSequenceClassifierOutput,
    TFTokenClassifierOutput,
    causal_lm_loss,
    check_ids,
    check_mask_shape,
    check_shape,
    classification_loss,
    classifier_dropout,
    dense,
    embedding,
    expand_head_mask,
    extended_attention_mask,
    get_activation,
    layer_norm,
    masked_lm_loss,
    sequence_classification_loss,
    shape_list,
    span_outputs,
    token_classification_loss,
    unpack_inputs,
    vocabulary_logits,
)


class TFBertEmbeddings(LazyBuildLayer):
    """Word (times sqrt(H) with BigBird's `rescale_embeddings`) + token-type (+ absolute position)
    embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.word_embeddings = embedding(
            config.vocab_size, config.hidden_size, config, "word_embeddings"
        )
        self.position_embeddings = embedding(
            config.max_position_embeddings, config.hidden_size, config, "position_embeddings"
        )
        self.token_type_embeddings = embedding(
            config.type_vocab_size, config.hidden_size, config, "token_type_embeddings"
        )
        self.LayerNorm = layer_norm(config)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)
        self.position_embedding_type = getattr(config, "position_embedding_type", "absolute")
        self.rescale_embeddings = getattr(config, "rescale_embeddings", False)
        self.hidden_size = config.hidden_size
        self.max_position_embeddings = config.max_position_embeddings

    def build(self, input_shape=None) -> None:
        # Every table exists from the start: with relative positions `position_embeddings` is
        # never called, but it is part of the checkpoint, as in PyTorch.
        for table in (self.word_embeddings, self.position_embeddings, self.token_type_embeddings):
            table.build()
        super().build(input_shape)

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
        check_ids("token_type_ids", token_type_ids, self.token_type_embeddings.input_dim)
        if inputs_embeds is None:
            check_ids("input_ids", input_ids, self.word_embeddings.input_dim)
            inputs_embeds = self.word_embeddings(input_ids)
        if self.rescale_embeddings:
            inputs_embeds = inputs_embeds * math.sqrt(self.hidden_size)
        embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids)
        if self.position_embedding_type == "absolute":
            embeddings = embeddings + self.position_embeddings(position_ids)
        return self.normalize(embeddings)

    def normalize(self, embeddings: tf.Tensor) -> tf.Tensor:
        return self.dropout(self.LayerNorm(embeddings))


class TFBertSelfAttention(LazyBuildLayer):
    """Multi-head scaled dot-product attention, with optional relative position terms and a
    key/value cache for decoding."""

    def __init__(
        self,
        config: BertConfig,
        position_embedding_type: str | None = None,
        layer_index: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        bias = getattr(config, "use_bias", True)  # BigBird's configs can drop the biases
        self.query = dense(self.all_head_size, config, "query", use_bias=bias)
        self.key = dense(self.all_head_size, config, "key", use_bias=bias)
        self.value = dense(self.all_head_size, config, "value", use_bias=bias)
        self.dropout = keras.layers.Dropout(config.attention_probs_dropout_prob)
        self.position_embedding_type = position_embedding_type or getattr(
            config, "position_embedding_type", "absolute"
        )
        if self.position_embedding_type in ("relative_key", "relative_key_query"):
            self.max_position_embeddings = config.max_position_embeddings
            self.distance_embedding = embedding(
                2 * config.max_position_embeddings - 1,
                self.attention_head_size,
                config,
                "distance_embedding",
            )
        self.is_decoder = config.is_decoder
        self.layer_index = layer_index

    def split_heads(self, x: tf.Tensor) -> tf.Tensor:
        batch, length, _ = shape_list(x)
        x = tf.reshape(x, (batch, length, self.num_attention_heads, self.attention_head_size))
        return tf.transpose(x, (0, 2, 1, 3))  # [B, N, L, D]

    def merge_heads(self, context: tf.Tensor) -> tf.Tensor:
        batch, _, length, _ = shape_list(context)
        return tf.reshape(
            tf.transpose(context, (0, 2, 1, 3)), (batch, length, self.all_head_size)
        )  # [B, L, H]

    def relative_position_scores(
        self, query: tf.Tensor, key: tf.Tensor, past_length: int | tf.Tensor
    ) -> tf.Tensor:
        """Scores from the learned distance embeddings, `[B, N, Q, K]` (before scaling)."""
        query_length, key_length = shape_list(query)[2], shape_list(key)[2]
        # Query i sits at position past_length + i (the reference assumes one-token steps).
        query_pos = tf.range(past_length, past_length + query_length)
        key_pos = tf.range(key_length)
        distance = query_pos[:, None] - key_pos[None, :]  # [Q, K]
        table = self.distance_embedding(distance + self.max_position_embeddings - 1)
        table = tf.cast(table, query.dtype)  # [Q, K, D]
        scores = tf.einsum("bnqd,qkd->bnqk", query, table)
        if self.position_embedding_type == "relative_key_query":
            scores = scores + tf.einsum("bnkd,qkd->bnqk", key, table)
        return scores

    def call(
        self,
        hidden_states: tf.Tensor,
        attention_mask: tf.Tensor | None = None,
        head_mask: tf.Tensor | None = None,
        encoder_hidden_states: tf.Tensor | None = None,
        past_key_value: tuple[tf.Tensor, tf.Tensor] | None = None,
        output_attentions: bool = False,
    ) -> tuple[tf.Tensor, tf.Tensor | None, tuple[tf.Tensor, ...] | None]:
        query = self.split_heads(self.query(hidden_states))  # [B, N, Q, D]
        past_length = 0
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
                past_length = shape_list(past_key_value[0])[2]
                key = tf.concat([past_key_value[0], key], axis=2)  # [B, N, K, D]
                value = tf.concat([past_key_value[1], value], axis=2)
        present = (key, value) if self.is_decoder else None

        scores = tf.matmul(query, key, transpose_b=True)  # [B, N, Q, K]
        if self.position_embedding_type != "absolute":
            scores = scores + self.relative_position_scores(query, key, past_length)
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


class TFBertSelfOutput(LazyBuildLayer):
    """Attention output projection, dropout, residual and LayerNorm."""

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dense = dense(config.hidden_size, config, "dense")
        self.LayerNorm = layer_norm(config)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    def call(self, hidden_states: tf.Tensor, input_tensor: tf.Tensor) -> tf.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class TFBertAttention(LazyBuildLayer):
    """Self- or cross-attention followed by its output block."""

    # The attention kernel; BigBird swaps in its block-sparse dispatch.
    self_attention_class = TFBertSelfAttention

    def __init__(
        self,
        config: BertConfig,
        position_embedding_type: str | None = None,
        layer_index: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.self = self.self_attention_class(
            config, position_embedding_type, layer_index, name="self"
        )
        # Keras reserves the attribute `output`; the layer keeps the checkpoint name "output".
        self.output_layer = TFBertSelfOutput(config, name="output")

    def call(
        self,
        hidden_states: tf.Tensor,
        attention_mask: tf.Tensor | None = None,
        head_mask: tf.Tensor | None = None,
        encoder_hidden_states: tf.Tensor | None = None,
        past_key_value: tuple[tf.Tensor, tf.Tensor] | None = None,
        output_attentions: bool = False,
        **attention_inputs,
    ):
        # attention_inputs: what a swapped-in self-attention needs too (BigBird's block_sparse).
        context, probs, present = self.self(
            hidden_states,
            attention_mask,
            head_mask,
            encoder_hidden_states,
            past_key_value,
            output_attentions=output_attentions,
            **attention_inputs,
        )
        return self.output_layer(context, hidden_states), probs, present


class TFBertIntermediate(LazyBuildLayer):
    """First feed-forward projection and activation."""

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dense = dense(config.intermediate_size, config, "dense")
        self.intermediate_act_fn = get_activation(config.hidden_act)

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        return self.intermediate_act_fn(self.dense(hidden_states))


class TFBertOutput(TFBertSelfOutput):
    """Second feed-forward projection, dropout, residual and LayerNorm: the layers and the
    computation of `TFBertSelfOutput` (Keras infers the wider input)."""


class TFBertLayer(LazyBuildLayer):
    """Self-attention, optional cross-attention (decoders), feed-forward."""

    attention_class = TFBertAttention

    def __init__(self, config: BertConfig, layer_index: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.attention = self.attention_class(config, layer_index=layer_index, name="attention")
        self.is_decoder = config.is_decoder
        self.add_cross_attention = config.add_cross_attention
        if self.add_cross_attention:
            if not self.is_decoder:
                raise ValueError("add_cross_attention=True needs is_decoder=True")
            self.crossattention = self.attention_class(
                config,
                position_embedding_type="absolute",
                layer_index=layer_index,
                name="crossattention",
            )
        self.intermediate = TFBertIntermediate(config, name="intermediate")
        self.output_layer = TFBertOutput(config, name="output")

    def call(
        self,
        hidden_states: tf.Tensor,
        attention_mask: tf.Tensor | None = None,
        head_mask: tf.Tensor | None = None,
        encoder_hidden_states: tf.Tensor | None = None,
        encoder_attention_mask: tf.Tensor | None = None,
        past_key_value: tuple[tf.Tensor, ...] | None = None,
        output_attentions: bool = False,
        **attention_inputs,
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
            **attention_inputs,
        )
        cross_probs = None
        if self.is_decoder and encoder_hidden_states is not None:
            if not self.add_cross_attention:
                raise ValueError(
                    "encoder_hidden_states were given, but the model has no cross-attention "
                    "layers: build it with add_cross_attention=True"
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


class TFBertEncoder(LazyBuildLayer):
    """The stack of layers; collects hidden states, attentions and the cache."""

    layer_class = TFBertLayer

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config
        # Keras names list elements `layer_._{i}`, the reference's convention.
        self.layer = [
            self.layer_class(config, layer_index=i, name=f"layer_._{i}")
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
        **attention_inputs,
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
                **attention_inputs,
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


class TFBertPooler(LazyBuildLayer):
    """Dense + tanh over the first ([CLS]) token."""

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dense = dense(config.hidden_size, config, "dense")
        self.activation = tf.tanh

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        return self.activation(self.dense(hidden_states[:, 0]))


class TFBertPredictionHeadTransform(LazyBuildLayer):
    """Dense, activation and LayerNorm before the vocabulary projection."""

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dense = dense(config.hidden_size, config, "dense")
        self.transform_act_fn = get_activation(config.hidden_act)
        self.LayerNorm = layer_norm(config)

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class TFBertLMPredictionHead(LazyBuildLayer):
    """Vocabulary logits. With tied embeddings (the default) the decoder is the transposed
    word-embedding matrix, passed in by the model, so the checkpoint stores it once; an untied
    config gets its own `decoder` weight."""

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.vocab_size = config.vocab_size
        self.transform = TFBertPredictionHeadTransform(config, name="transform")
        self.decoder = None
        if not config.tie_word_embeddings:
            self.decoder = dense(config.vocab_size, config, "decoder", use_bias=False)

    def build(self, input_shape) -> None:
        self.bias = self.add_weight(name="bias", shape=(self.vocab_size,), initializer="zeros")
        super().build(input_shape)

    def call(self, hidden_states: tf.Tensor, word_embeddings: tf.Tensor) -> tf.Tensor:
        logits = vocabulary_logits(self.decoder, word_embeddings, self.transform(hidden_states))
        return logits + tf.cast(self.bias, logits.dtype)


class TFBertOnlyMLMHead(LazyBuildLayer):
    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.predictions = TFBertLMPredictionHead(config, name="predictions")

    def call(self, sequence_output: tf.Tensor, word_embeddings: tf.Tensor) -> tf.Tensor:
        return self.predictions(sequence_output, word_embeddings)


class TFBertOnlyNSPHead(LazyBuildLayer):
    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seq_relationship = dense(2, config, "seq_relationship")

    def call(self, pooled_output: tf.Tensor) -> tf.Tensor:
        return self.seq_relationship(pooled_output)


class TFBertPreTrainingHeads(LazyBuildLayer):
    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.predictions = TFBertLMPredictionHead(config, name="predictions")
        self.seq_relationship = dense(2, config, "seq_relationship")

    def call(self, sequence_output: tf.Tensor, pooled_output: tf.Tensor, word_embeddings):
        return (
            self.predictions(sequence_output, word_embeddings),
            self.seq_relationship(pooled_output),
        )


class TFBertPreTrainedModel(TFPreTrainedModel):
    """Base of the BERT classes: config class, checkpoint prefix, dummy inputs, the heads' backbone.

    Every head builds `base_model_class` (`TFBertModel`) as `self.bert`; heads that do not read
    the pooled output build it without the pooler, unless `pooler_in_every_head` (BigBird's
    checkpoints store the pooler with every head). A head whose inputs are the encoder's plus
    `labels` uses `call` below and writes only `head(outputs, labels, return_dict)`; the others
    keep their own call (the reference's signature) and end in their `head` where they can.
    """

    config_class = BertConfig
    base_model_prefix = "bert"
    pooler_in_every_head = False

    def build_base_model(self, add_pooling_layer: bool = True) -> TFBertModel:
        add_pooling_layer = add_pooling_layer or self.pooler_in_every_head
        return self.base_model_class(self.config, add_pooling_layer=add_pooling_layer, name="bert")

    def dummy_inputs(self) -> dict[str, tf.Tensor]:
        inputs = {"input_ids": tf.constant([[1, 2, 3]], dtype=tf.int32)}
        if self.config.add_cross_attention:  # creates the cross-attention variables
            inputs["encoder_hidden_states"] = tf.zeros((1, 2, self.config.hidden_size))
        return inputs

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
        """The call of the heads whose inputs are the encoder's plus `labels`: the backbone
        (`self.bert`) once, then the head's own math, `head(outputs, labels, return_dict)`."""
        outputs = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            head_mask,
            inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        return self.head(outputs, labels, return_dict)


# The LM decoder shares the word-embedding matrix (when `tie_word_embeddings`, the default).
TIED_LM_DECODER = (("cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"),)


def _word_embeddings(model: TFBertModel) -> keras.Variable:
    """The word-embedding matrix `[V, H]` the tied LM decoder multiplies by (built by the
    model's call, which runs before the head's)."""
    return model.embeddings.word_embeddings.embeddings


def checked_token_type_ids(
    input_ids: tf.Tensor | None,
    inputs_embeds: tf.Tensor | None,
    token_type_ids: tf.Tensor | None,
    position_ids: tf.Tensor | None,
    attention_mask: tf.Tensor | None,
    past_length: int | tf.Tensor,
) -> tf.Tensor:
    """Check the inputs of a BERT-style model call (exactly one of `input_ids` `[B, L]` and
    `inputs_embeds` `[B, L, H]`; token types, positions and mask of matching shapes, where known
    while tracing) and return the token types, zeros when not given."""
    checks.check_exactly_one_input(input_ids is not None, inputs_embeds is not None)
    if input_ids is not None:
        checks.check_rank("input_ids", input_ids.shape, (2,))
        batch, length = shape_list(input_ids)
    else:
        checks.check_rank("inputs_embeds", inputs_embeds.shape, (3,))
        batch, length = shape_list(inputs_embeds)[:2]
    if position_ids is not None and isinstance(length, int):
        checks.check_same_shape(
            "position_ids", position_ids.shape[-1:], (length,), "the input length"
        )
    if attention_mask is not None:
        check_mask_shape("attention_mask", attention_mask, batch, length, past_length + length)
    if token_type_ids is None:
        return tf.zeros((batch, length), dtype=tf.int32)
    check_shape("token_type_ids", token_type_ids, (batch, length), "the input")
    return token_type_ids


def full_attention_masks(
    config: BertConfig,
    embedding_output: tf.Tensor,
    attention_mask: tf.Tensor | None,
    past_length: int | tf.Tensor,
    encoder_hidden_states: tf.Tensor | None,
    encoder_attention_mask: tf.Tensor | None,
) -> tuple[tf.Tensor | None, tf.Tensor | None]:
    """The additive masks of full attention for a call on `embedding_output` `[B, L, H]`:
    self-attention (causal for a decoder; None without padding outside a decoder, as PyTorch)
    and cross-attention (None without an `encoder_attention_mask`)."""
    batch, length, _ = shape_list(embedding_output)
    dtype = embedding_output.dtype
    extended_mask = None
    if config.is_decoder or attention_mask is not None:
        if attention_mask is None:
            attention_mask = tf.ones((batch, past_length + length))
        extended_mask = extended_attention_mask(attention_mask, length, dtype, config.is_decoder)
    encoder_extended_mask = None
    if encoder_hidden_states is not None and encoder_attention_mask is not None:
        encoder_length = encoder_hidden_states.shape[1]
        check_mask_shape(
            "encoder_attention_mask", encoder_attention_mask, batch, length, encoder_length
        )
        encoder_extended_mask = extended_attention_mask(
            encoder_attention_mask, length, dtype, causal=False
        )
    return extended_mask, encoder_extended_mask


class TFBertModel(TFBertPreTrainedModel):
    """The bare BERT encoder (or decoder, with `is_decoder`), returning hidden states and the
    pooled first token."""

    # The layers of the model; BigBird swaps in its own.
    embeddings_class = TFBertEmbeddings
    encoder_class = TFBertEncoder
    pooler_class = TFBertPooler

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True, **kwargs) -> None:
        super().__init__(config, **kwargs)
        config = self.config
        self.add_pooling_layer = add_pooling_layer
        self.embeddings = self.embeddings_class(config, name="embeddings")
        self.encoder = self.encoder_class(config, name="encoder")
        self.pooler = self.pooler_class(config, name="pooler") if add_pooling_layer else None

    def get_config(self) -> dict:
        return {**super().get_config(), "add_pooling_layer": self.add_pooling_layer}

    def get_input_embeddings(self) -> keras.layers.Embedding:
        return self.embeddings.word_embeddings

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
        output_attentions, output_hidden_states = resolve_output_flags(
            config, output_attentions, output_hidden_states
        )
        use_cache = (config.use_cache if use_cache is None else use_cache) and config.is_decoder
        past_length = shape_list(past_key_values[0][0])[2] if past_key_values is not None else 0
        token_type_ids = checked_token_type_ids(
            input_ids, inputs_embeds, token_type_ids, position_ids, attention_mask, past_length
        )

        embedding_output = self.embeddings(
            input_ids,
            token_type_ids,
            position_ids,
            inputs_embeds,
            past_key_values_length=past_length,
        )
        head_masks = expand_head_mask(
            head_mask, config.num_hidden_layers, config.num_attention_heads, embedding_output.dtype
        )
        sequence_output, presents, hidden_states, attentions, cross_attentions = self.encode(
            embedding_output,
            attention_mask,
            head_masks,
            encoder_hidden_states,
            encoder_attention_mask,
            past_key_values,
            past_length,
            use_cache,
            output_attentions,
            output_hidden_states,
            training,
        )
        pooled_output = self.pooler(sequence_output) if self.pooler is not None else None
        return self.head_output(
            TFBaseModelOutputWithPoolingAndCrossAttentions,
            None,
            return_dict,
            last_hidden_state=sequence_output,
            pooler_output=pooled_output,
            hidden_states=hidden_states,
            past_key_values=presents,
            attentions=attentions,
            cross_attentions=cross_attentions,
        )

    def encode(
        self,
        embedding_output: tf.Tensor,
        attention_mask: tf.Tensor | None,
        head_masks: list[tf.Tensor | None],
        encoder_hidden_states: tf.Tensor | None,
        encoder_attention_mask: tf.Tensor | None,
        past_key_values: tuple | None,
        past_length: int | tf.Tensor,
        use_cache: bool,
        output_attentions: bool,
        output_hidden_states: bool,
        training: bool,
        **attention_inputs,
    ) -> tuple:
        """The encoder stack over `embedding_output` `[B, L, H]` with full attention (causal for
        a decoder): `(sequence_output, presents, hidden_states, attentions, cross_attentions)`.
        `training` and `attention_inputs` serve a swapped-in `encode` (BigBird's plan)."""
        extended_mask, encoder_extended_mask = full_attention_masks(
            self.config,
            embedding_output,
            attention_mask,
            past_length,
            encoder_hidden_states,
            encoder_attention_mask,
        )
        return self.encoder(
            embedding_output,
            extended_mask,
            head_masks=head_masks,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_extended_mask,
            past_key_values=past_key_values,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            **attention_inputs,
        )


TFBertPreTrainedModel.base_model_class = TFBertModel


class TFBertForPreTraining(TFBertPreTrainedModel):
    """BERT with the masked-LM and next-sentence-prediction heads used in pretraining."""

    tied_weights = TIED_LM_DECODER
    output_class = TFBertForPreTrainingOutput

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.bert = self.build_base_model()
        self.cls = TFBertPreTrainingHeads(self.config, name="cls")

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
        outputs = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            head_mask,
            inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        prediction_logits, seq_relationship_logits = self.cls(
            outputs.last_hidden_state,
            outputs.pooler_output,
            word_embeddings=_word_embeddings(self.bert),
        )
        # The sum of the losses whose labels are given (the reference needs both to give any).
        loss = masked_lm_loss(prediction_logits, labels) if labels is not None else None
        if next_sentence_label is not None:
            nsp = classification_loss(seq_relationship_logits, next_sentence_label)
            loss = nsp if loss is None else loss + nsp
        return self.head_output(
            self.output_class,
            outputs,
            return_dict,
            loss=loss,
            prediction_logits=prediction_logits,
            seq_relationship_logits=seq_relationship_logits,
        )


class TFBertLMHeadModel(TFBertPreTrainedModel):
    """BERT as a causal (left-to-right) language model with `is_decoder=True` (else: warns)."""

    tied_weights = TIED_LM_DECODER

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        checks.warn_if_not_decoder(type(self).__name__, self.config)
        self.bert = self.build_base_model(add_pooling_layer=False)
        self.cls = TFBertOnlyMLMHead(self.config, name="cls")

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
        if labels is not None:
            use_cache = False
        outputs = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            head_mask,
            inputs_embeds,
            encoder_hidden_states,
            encoder_attention_mask,
            past_key_values=past_key_values,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        return self.head(outputs, labels, return_dict)

    def head(self, outputs, labels: tf.Tensor | None, return_dict: bool | None):
        logits = self.cls(outputs.last_hidden_state, word_embeddings=_word_embeddings(self.bert))
        loss = causal_lm_loss(logits, labels) if labels is not None else None
        return self.head_output(
            TFCausalLMOutputWithCrossAttentions, outputs, return_dict, loss=loss, logits=logits
        )


class TFBertForMaskedLM(TFBertPreTrainedModel):
    """BERT with the masked-language-modelling head."""

    tied_weights = TIED_LM_DECODER

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.bert = self.build_base_model(add_pooling_layer=False)
        self.cls = TFBertOnlyMLMHead(self.config, name="cls")

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
        outputs = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            head_mask,
            inputs_embeds,
            encoder_hidden_states,
            encoder_attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        return self.head(outputs, labels, return_dict)

    def head(self, outputs, labels: tf.Tensor | None, return_dict: bool | None):
        logits = self.cls(outputs.last_hidden_state, word_embeddings=_word_embeddings(self.bert))
        loss = masked_lm_loss(logits, labels) if labels is not None else None
        return self.head_output(TFMaskedLMOutput, outputs, return_dict, loss=loss, logits=logits)


class TFBertForNextSentencePrediction(TFBertPreTrainedModel):
    """BERT with the next-sentence-prediction head (label 1 = sentence B is random). The label
    argument is `next_sentence_label`, as in the reference TF class (PyTorch: `labels`)."""

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.bert = self.build_base_model()
        self.cls = TFBertOnlyNSPHead(self.config, name="cls")

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
        next_sentence_label=None,
        training=False,
    ):
        outputs = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            head_mask,
            inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        return self.head(outputs, next_sentence_label, return_dict)

    def head(self, outputs, labels: tf.Tensor | None, return_dict: bool | None):
        logits = self.cls(outputs.pooler_output)
        loss = classification_loss(logits, labels) if labels is not None else None
        return self.head_output(
            TFNextSentencePredictorOutput, outputs, return_dict, loss=loss, logits=logits
        )


class TFBertForSequenceClassification(TFBertPreTrainedModel):
    """BERT with a linear classification (or regression) head over the pooled output."""

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        config = self.config
        self.num_labels = config.num_labels
        self.bert = self.build_base_model()
        self.dropout = classifier_dropout(config)
        self.classifier = dense(config.num_labels, config, "classifier")

    def head(self, outputs, labels: tf.Tensor | None, return_dict: bool | None):
        logits = self.classifier(self.dropout(outputs.pooler_output))
        loss = None
        if labels is not None:
            loss = sequence_classification_loss(logits, labels, self.config)
        return self.head_output(
            TFSequenceClassifierOutput, outputs, return_dict, loss=loss, logits=logits
        )


class TFBertForMultipleChoice(TFBertPreTrainedModel):
    """BERT scoring each of C choices with a linear layer over its pooled output."""

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        config = self.config
        self.bert = self.build_base_model()
        self.dropout = self.choice_dropout()
        self.classifier = dense(1, config, "classifier")

    def choice_dropout(self) -> keras.layers.Dropout:
        return classifier_dropout(self.config)

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
        if input_ids is not None:
            checks.check_rank("input_ids", input_ids.shape, (3,))
            num_choices = shape_list(input_ids)[1]
        else:
            checks.check_rank("inputs_embeds", inputs_embeds.shape, (4,))
            num_choices = shape_list(inputs_embeds)[1]

        def flat(x):  # [B, C, L, ...] -> [B*C, L, ...]
            return None if x is None else tf.reshape(x, (-1, *shape_list(x)[2:]))

        outputs = self.bert(
            flat(input_ids),
            flat(attention_mask),
            flat(token_type_ids),
            flat(position_ids),
            head_mask,
            flat(inputs_embeds),
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.classifier(self.dropout(outputs.pooler_output))
        logits = tf.reshape(logits, (-1, num_choices))
        loss = classification_loss(logits, labels) if labels is not None else None
        return self.head_output(
            TFMultipleChoiceModelOutput, outputs, return_dict, loss=loss, logits=logits
        )


class TFBertForTokenClassification(TFBertPreTrainedModel):
    """BERT with a linear classifier on every token (e.g. named entities)."""

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        config = self.config
        self.num_labels = config.num_labels
        self.bert = self.build_base_model(add_pooling_layer=False)
        self.dropout = classifier_dropout(config)
        self.classifier = dense(config.num_labels, config, "classifier")

    def head(self, outputs, labels: tf.Tensor | None, return_dict: bool | None):
        logits = self.classifier(self.dropout(outputs.last_hidden_state))
        loss = token_classification_loss(logits, labels) if labels is not None else None
        return self.head_output(
            TFTokenClassifierOutput, outputs, return_dict, loss=loss, logits=logits
        )


class TFBertForQuestionAnswering(TFBertPreTrainedModel):
    """BERT with a span head: start and end logits for every token."""

    def __init__(self, config: BertConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.bert = self.build_base_model(add_pooling_layer=False)
        self.qa_outputs = dense(2, self.config, "qa_outputs")

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
        start_positions=None,
        end_positions=None,
        training=False,
    ):
        outputs = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            head_mask,
            inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.qa_outputs(outputs.last_hidden_state)  # [B, L, 2]
        return self.head_output(
            TFQuestionAnsweringModelOutput,
            outputs,
            return_dict,
            **span_outputs(logits, start_positions, end_positions),
        )
