"""BigBird in TensorFlow / Keras 3: BERT (`aviary.tf.bert`) plus what differs.

Paper: Zaheer et al., "Big Bird: Transformers for Longer Sequences" (arXiv:2007.14062).

BigBird reuses BERT's layers under BERT's attribute names (embeddings, self-output,
feed-forward, prediction heads), so the variable paths and checkpoint names are BERT's. What it
writes itself: the embeddings' dropout-before-LayerNorm order, the self-attention dispatch
(block-sparse or full), the model's `encode` (plan, pad, unpad), its pooler, the classification head and
the question-answering head. Heads whose math is BERT's are BERT's heads over `TFBigBirdModel`.

Attention is block-sparse (`attention_type="block_sparse"`, the default) or full
(`"original_full"`). Which one a call runs, the padding it needs and the random key blocks are
decided once per call, outside the layers, by the model's
`aviary.core.block_sparse.BlockSparseController` (`model.block_sparse`); every layer gets the same
plan and the model never rewrites its layers. A short input (at most `(5 + 2 r) * block_size`
tokens) runs full attention for that call only; the next long input is block-sparse again. Inputs
whose length is not a multiple of `block_size` are padded on the right and every per-token output
(`last_hidden_state`, `hidden_states`, `attentions`, logits) is unpadded again.

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
This file defines the same classes in the same order as `aviary.pt.big_bird`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import tensorflow as tf

from aviary.core import checks
from aviary.core.block_sparse import AttentionPlan, BlockSparseController, unpad_outputs
from aviary.core.configs import BigBirdConfig
from aviary.tf.bert import (
    TFBertAttention,
    TFBertEmbeddings,
    TFBertEncoder,
    TFBertForMaskedLM,
    TFBertForMultipleChoice,
    TFBertForPreTraining,
    TFBertForTokenClassification,
    TFBertIntermediate,
    TFBertLayer,
    TFBertLMHeadModel,
    TFBertModel,
    TFBertOutput,
    TFBertPreTrainedModel,
    TFBertSelfAttention,
)
from aviary.tf.big_bird_attention import (
    BlockSparseIndices,
    BlockSparseModelMixin,
    block_sparse_attention,
    plan_call,
)
from aviary.tf.modeling_utils import (
    LazyBuildLayer,
    TFBigBirdForPreTrainingOutput,
    TFBigBirdForQuestionAnsweringModelOutput,
    TFSequenceClassifierOutput,
    classifier_dropout,
    dense,
    get_activation,
    python_bool,
    sequence_classification_loss,
    shape_list,
    span_outputs,
    unpack_inputs,
)

# The reference's penalty on question tokens in the span logits.
QUESTION_LOGIT_PENALTY = 1e6


@dataclass(frozen=True, eq=False)
class BlockSparseInputs:
    """What every layer's block-sparse attention needs: the call's plan as tensors and the
    `[B, padded L]` keep-mask (PyTorch passes the pair as a tuple; Keras refuses a call argument
    that nests tensors together with other objects, so here it is one object)."""

    indices: BlockSparseIndices
    key_keep: tf.Tensor

    @classmethod
    def for_call(
        cls,
        controller: BlockSparseController,
        plan: AttentionPlan,
        training: bool,
        hidden_states: tf.Tensor,
        attention_mask: tf.Tensor | None,
        pad: Callable[[tf.Tensor, tf.Tensor, AttentionPlan], tuple[tf.Tensor, tf.Tensor]],
    ) -> tuple[tf.Tensor, BlockSparseInputs]:
        """The inputs of a block-sparse call on `hidden_states` `[B, L, H]`, and those states
        padded by `pad` (the model's) to the plan's length."""
        batch, length = shape_list(hidden_states)[:2]
        dtype = hidden_states.dtype
        key_keep = (
            tf.ones((batch, length), dtype=dtype)
            if attention_mask is None
            else tf.cast(attention_mask, dtype)
        )
        if plan.pad_length:
            hidden_states, key_keep = pad(hidden_states, key_keep, plan)
        indices = BlockSparseIndices.for_call(controller, plan, training, dtype)
        return hidden_states, cls(indices, key_keep)  # key_keep: [B, padded L]


class TFBigBirdEmbeddings(TFBertEmbeddings):
    """BERT's embeddings (word embeddings times sqrt(H) with `rescale_embeddings`), with dropout
    before the LayerNorm: the original code's encoder LayerNorm lives here."""

    def normalize(self, embeddings: tf.Tensor) -> tf.Tensor:
        return self.LayerNorm(self.dropout(embeddings))


class TFBigBirdSelfAttention(TFBertSelfAttention):
    """BERT's multi-head attention (full, with a key/value cache for decoding and
    cross-attention) or, when the call's plan says so (`block_sparse`), block-sparse
    attention."""

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
        if block_sparse is None:
            return super().call(
                hidden_states,
                attention_mask,
                head_mask,
                encoder_hidden_states,
                past_key_value,
                output_attentions=output_attentions,
            )
        if encoder_hidden_states is not None:
            raise ValueError(
                "BigBird cross-attention needs attention_type='original_full'; block-sparse "
                "attention is self-attention only"
            )
        indices, key_keep = block_sparse.indices, block_sparse.key_keep  # key_keep: [B, padded L]
        query = self.split_heads(self.query(hidden_states))  # [B, N, L, D]
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
            # The reference ignores head_mask here; aviary applies it (to the context, which is
            # the same as to the probabilities).
            context = context * tf.cast(head_mask, context.dtype)
        return self.merge_heads(context), probs, None


class TFBigBirdAttention(TFBertAttention):
    """BERT's attention block around BigBird's self-attention."""

    self_attention_class = TFBigBirdSelfAttention


class TFBigBirdLayer(TFBertLayer):
    """BERT's layer with BigBird's attention; `block_sparse` reaches the self-attention."""

    attention_class = TFBigBirdAttention


class TFBigBirdEncoder(TFBertEncoder):
    """BERT's stack of BigBird layers; every layer gets the call's `block_sparse` plan."""

    layer_class = TFBigBirdLayer


class TFBigBirdPreTrainedModel(BlockSparseModelMixin, TFBertPreTrainedModel):
    """Base of the BigBird classes: config class, attention settings. The checkpoint prefix is
    BERT's ("bert"); every head's backbone has the pooler, as BigBird's checkpoints store it."""

    config_class = BigBirdConfig
    pooler_in_every_head = True


class TFBigBirdPooler(keras.layers.Dense):
    """Dense + tanh over the first token: one Dense, which BigBird's checkpoints call `pooler`
    (BERT's is `pooler.dense`)."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        initializer = keras.initializers.RandomNormal(stddev=config.initializer_range)
        super().__init__(config.hidden_size, kernel_initializer=initializer, **kwargs)

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        return tf.tanh(super().call(hidden_states[:, 0]))


class TFBigBirdModel(TFBigBirdPreTrainedModel, TFBertModel):
    """The bare BigBird encoder (or full-attention decoder), returning hidden states and the
    pooled first token: BERT's model whose encoder runs block-sparse when the call's plan says
    so."""

    embeddings_class = TFBigBirdEmbeddings
    encoder_class = TFBigBirdEncoder
    pooler_class = TFBigBirdPooler

    def __init__(self, config: BigBirdConfig, add_pooling_layer: bool = True, **kwargs) -> None:
        super().__init__(config, add_pooling_layer, **kwargs)
        # Attention type, random-block policy and the plan of each call.
        self.block_sparse = BlockSparseController(self.config)

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
    ) -> tuple:
        """The encoder stack over `embedding_output` `[B, L, H]`, block-sparse when this call's
        plan says so (padded to whole blocks, every per-token output unpadded again), else
        BERT's full attention: `(sequence_output, presents, hidden_states, attentions,
        cross_attentions)`."""
        # One plan for every layer of this call (None: full attention); `training` chooses it.
        training = python_bool("training", training)
        plan = plan_call(
            self.block_sparse,
            shape_list(embedding_output)[1],
            training=training,
            past_length=past_length,
            attention_mask_rank=None if attention_mask is None else attention_mask.shape.rank,
            has_encoder_hidden_states=encoder_hidden_states is not None,
        )
        if encoder_hidden_states is not None and not self.config.add_cross_attention:
            raise ValueError(
                "encoder_hidden_states were given, but the model has no cross-attention "
                "layers: build it with is_decoder=True, add_cross_attention=True and "
                "attention_type='original_full'"
            )
        block_sparse = None
        if plan is not None:
            embedding_output, block_sparse = BlockSparseInputs.for_call(
                self.block_sparse, plan, training, embedding_output, attention_mask, self.pad
            )
            attention_mask = None  # the keep-mask travels in block_sparse
        sequence_output, presents, hidden_states, attentions, cross_attentions = super().encode(
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
            block_sparse=block_sparse,
        )
        # Every per-token output goes back to the input length.
        sequence_output, hidden_states, attentions = unpad_outputs(
            plan, sequence_output, hidden_states, attentions
        )
        return sequence_output, presents, hidden_states, attentions, cross_attentions

    def pad(
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


TFBigBirdPreTrainedModel.base_model_class = TFBigBirdModel


class TFBigBirdForPreTraining(TFBigBirdPreTrainedModel, TFBertForPreTraining):
    """BigBird with the masked-LM and next-sentence-prediction heads used in pretraining."""

    output_class = TFBigBirdForPreTrainingOutput


class TFBigBirdForCausalLM(TFBigBirdPreTrainedModel, TFBertLMHeadModel):
    """BigBird as a causal (left-to-right) language model with `is_decoder=True` and
    `attention_type="original_full"` (block-sparse attention is not causal). Without
    `is_decoder` it warns, as the reference, and runs as configured (bidirectional)."""


class TFBigBirdForMaskedLM(TFBigBirdPreTrainedModel, TFBertForMaskedLM):
    """BigBird with the masked-language-modelling head."""


class TFBigBirdClassificationHead(LazyBuildLayer):
    """RoBERTa-style sentence head on the first token: dropout, dense, `hidden_act`, dropout,
    projection to the labels."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dense = dense(config.hidden_size, config, "dense")
        self.dropout = classifier_dropout(config)
        self.out_proj = dense(config.num_labels, config, "out_proj")
        self.activation = get_activation(config.hidden_act)

    def call(self, features: tf.Tensor) -> tf.Tensor:
        x = self.dropout(features[:, 0])  # [B, H]
        x = self.activation(self.dense(x))
        return self.out_proj(self.dropout(x))


class TFBigBirdForSequenceClassification(TFBigBirdPreTrainedModel):
    """BigBird with a classification (or regression) head on the first token."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.num_labels = self.config.num_labels
        self.bert = self.build_base_model()
        self.classifier = TFBigBirdClassificationHead(self.config, name="classifier")

    def head(self, outputs, labels: tf.Tensor | None, return_dict: bool | None):
        logits = self.classifier(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            loss = sequence_classification_loss(logits, labels, self.config)
        return self.head_output(
            TFSequenceClassifierOutput, outputs, return_dict, loss=loss, logits=logits
        )


class TFBigBirdForMultipleChoice(TFBigBirdPreTrainedModel, TFBertForMultipleChoice):
    """BigBird scoring each of C choices with a linear layer over its pooled output."""

    def choice_dropout(self) -> keras.layers.Dropout:
        # The reference's BigBird ignores classifier_dropout here.
        return keras.layers.Dropout(self.config.hidden_dropout_prob)


class TFBigBirdForTokenClassification(TFBigBirdPreTrainedModel, TFBertForTokenClassification):
    """BigBird with a linear classifier on every token (e.g. named entities)."""


class TFBigBirdForQuestionAnsweringHead(LazyBuildLayer):
    """Span head: dropout, a feed-forward block with residual and LayerNorm, start/end logits."""

    def __init__(self, config: BigBirdConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)
        self.intermediate = TFBertIntermediate(config, name="intermediate")
        self.output_layer = TFBertOutput(config, name="output")
        self.qa_outputs = dense(2, config, "qa_outputs")

    def call(self, encoder_output: tf.Tensor) -> tf.Tensor:
        hidden_states = self.intermediate(self.dropout(encoder_output))
        hidden_states = self.output_layer(hidden_states, encoder_output)
        return self.qa_outputs(hidden_states)  # [B, L, 2]


def question_mask(question_lengths: tf.Tensor, length: int | tf.Tensor) -> tf.Tensor:
    """`[B, L]` int32: 1 on the first `question_lengths` positions of each row, else 0."""
    positions = tf.range(length)[None]  # [1, L]
    lengths = tf.reshape(tf.cast(question_lengths, tf.int32), (-1, 1))  # [B, 1]
    return tf.cast(positions < lengths, tf.int32)


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
        self.bert = self.base_model_class(
            self.config, add_pooling_layer=add_pooling_layer, name="bert"
        )
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
        logits = self.qa_classifier(outputs.last_hidden_state)  # [B, L, 2]
        if logits_mask is not None:
            # float16 cannot hold 1e6 (and inf * 0 is NaN): there the penalty is what it holds.
            penalty = min(QUESTION_LOGIT_PENALTY, float(logits.dtype.max) / 4)
            logits = tf.where(logits_mask[:, :, None] > 0, logits - penalty, logits)
        return self.head_output(
            TFBigBirdForQuestionAnsweringModelOutput,
            outputs,
            return_dict,
            **span_outputs(logits, start_positions, end_positions),
        )
