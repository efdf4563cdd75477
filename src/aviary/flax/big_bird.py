"""BigBird in Flax (linen): BERT (`aviary.flax.bert`) plus what differs.

Paper: Zaheer et al., "Big Bird: Transformers for Longer Sequences" (arXiv:2007.14062).

BigBird reuses BERT's modules under BERT's attribute names (embeddings, self-output,
feed-forward, prediction heads), so the checkpoint names are BERT's. What it writes itself: the
embeddings' dropout-before-LayerNorm order, the self-attention dispatch (block-sparse or full),
the model call (pad, unpad), its pooler, the classification head and the question-answering head.
Heads whose math is BERT's are BERT's heads over `FlaxBigBirdModule`.

Attention is block-sparse (`attention_type="block_sparse"`, the default) or full
(`"original_full"`). The wrapper's `aviary.core.block_sparse.BlockSparseController`
(`model.block_sparse`) plans each call once, outside the traced computation; the plan enters the
module as `BlockSparseIndices` and every layer gets it. A short input (at most
`(5 + 2 r) * block_size` tokens) runs full attention for that call only. Inputs whose length is
not a multiple of `block_size` are padded on the right and every per-token output is unpadded.

The random-block policy is a model setting (`model.set_block_sparse_policy`); under `jax.jit`,
"resample" needs the plan drawn outside: `indices = model.block_sparse_indices(length,
train=True)`, passed to the jitted function and on as `model(..., block_sparse_indices=indices)`.
Decoding (`is_decoder`, original_full only) is the Flax BERT's.

Shapes: B batch · C choices · L tokens · H hidden · N heads · D head dim.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from aviary.core.block_sparse import BlockSparseController, unpad_outputs
from aviary.core.configs import BigBirdConfig
from aviary.core.outputs import head_output
from aviary.flax.bert import (
    FlaxBertAttention,
    FlaxBertEmbeddings,
    FlaxBertEncoder,
    FlaxBertForCausalLM,
    FlaxBertForCausalLMModule,
    FlaxBertForMaskedLM,
    FlaxBertForMaskedLMModule,
    FlaxBertForMultipleChoice,
    FlaxBertForMultipleChoiceModule,
    FlaxBertForPreTraining,
    FlaxBertForPreTrainingModule,
    FlaxBertForTokenClassification,
    FlaxBertForTokenClassificationModule,
    FlaxBertHeadModule,
    FlaxBertIntermediate,
    FlaxBertLayer,
    FlaxBertModule,
    FlaxBertOutput,
    FlaxBertPreTrainedModel,
    FlaxBertSelfAttention,
)
from aviary.flax.big_bird_attention import (
    BlockSparseIndices,
    BlockSparseModelMixin,
    block_sparse_attention,
)
from aviary.flax.modeling_utils import (
    FlaxBigBirdForPreTrainingOutput,
    FlaxBigBirdForQuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    classifier_dropout,
    dense,
    get_activation,
)

# The reference's penalty on question tokens in the span logits.
QUESTION_LOGIT_PENALTY = 1e6


class FlaxBigBirdEmbeddings(FlaxBertEmbeddings):
    """BERT's embeddings (word embeddings times sqrt(H) with `rescale_embeddings`), with dropout
    before the LayerNorm: the original code's encoder LayerNorm lives here."""

    def normalize(self, embeddings: jax.Array, deterministic: bool) -> jax.Array:
        return self.LayerNorm(self.dropout(embeddings, deterministic=deterministic))


class FlaxBigBirdSelfAttention(FlaxBertSelfAttention):
    """BERT's multi-head attention (full, with a key/value cache for decoding and
    cross-attention) or, when the call's plan says so (`block_sparse`), block-sparse attention."""

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
        if block_sparse is None:
            return super().__call__(
                hidden_states,
                attention_mask,
                head_mask,
                encoder_hidden_states,
                init_cache,
                deterministic,
                output_attentions,
            )
        if encoder_hidden_states is not None:
            raise ValueError(
                "BigBird cross-attention needs attention_type='original_full'; block-sparse "
                "attention is self-attention only"
            )
        indices, key_keep = block_sparse  # key_keep: [B, padded L]
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
            context = context * head_mask
        return self.merge_heads(context), probs


class FlaxBigBirdAttention(FlaxBertAttention):
    """BERT's attention block around BigBird's self-attention."""

    self_attention_class = FlaxBigBirdSelfAttention


class FlaxBigBirdLayer(FlaxBertLayer):
    """BERT's layer with BigBird's attention; `block_sparse` reaches the self-attention."""

    attention_class = FlaxBigBirdAttention


class FlaxBigBirdEncoder(FlaxBertEncoder):
    """BERT's stack of BigBird layers; every layer gets the call's `block_sparse` plan."""

    layer_class = FlaxBigBirdLayer


class FlaxBigBirdPreTrainedModel(BlockSparseModelMixin, FlaxBertPreTrainedModel):
    """Base of the BigBird classes: config class, attention settings (`block_sparse`, the
    controller), and the call every head shares: planned here, outside the module."""

    config_class = BigBirdConfig

    def __init__(self, config: BigBirdConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        # Attention type, random-block policy and the plan of each call.
        self.block_sparse = BlockSparseController(config)

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
        """BERT's call, planned here (`train=True` plans for training); `block_sparse_indices`
        (from `block_sparse_indices()`) overrides the plan the model's policy would make."""
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
            indices_rng=indices_rng,
            block_sparse_indices=block_sparse_indices,
        )

    def call_indices(
        self,
        inputs: dict[str, Any],
        params: dict | None,
        train: bool,
        past_key_values: dict | None,
        given: BlockSparseIndices | None,
    ) -> BlockSparseIndices | None:
        """The plan of this call (`apply_module`; a decoding step is full attention)."""
        if past_key_values is not None and given is None:
            return None
        input_ids, mask = inputs["input_ids"], inputs.get("attention_mask")
        return self.call_plan(
            input_ids.shape[-1],
            inputs,
            params,
            train,
            given,
            # A [batch, (choices,) sequence] mask has the rank of the ids.
            attention_mask_rank=None if mask is None else np.ndim(mask) - input_ids.ndim + 2,
            has_encoder_hidden_states="encoder_hidden_states" in inputs,
        )


class FlaxBigBirdPooler(nn.Dense):
    """Dense + tanh over the first token; the checkpoint names its weights `pooler.*` (BERT's
    pooler holds a `dense`)."""

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return jnp.tanh(super().__call__(hidden_states[:, 0]))


class FlaxBigBirdModule(FlaxBertModule):
    """The bare BigBird encoder (or full-attention decoder), returning hidden states and the
    pooled first token. `block_sparse_indices` is the call's plan (from the wrapper; None: full
    attention)."""

    embeddings_class = FlaxBigBirdEmbeddings
    encoder_class = FlaxBigBirdEncoder

    def pooler_layer(self) -> nn.Module:
        config = self.config
        return dense(config.hidden_size, config, self.dtype, layer_class=FlaxBigBirdPooler)

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
        block_sparse_indices: BlockSparseIndices | None = None,
    ) -> tuple:
        """The encoder stack over `embedding_output` `[B, L, H]`, block-sparse when this call's
        plan (`block_sparse_indices`, from the wrapper) says so (padded to whole blocks, every
        per-token output unpadded again), else BERT's full attention: `(sequence_output,
        hidden_states, attentions, cross_attentions)`."""
        batch, length, _ = embedding_output.shape
        dtype = embedding_output.dtype
        if encoder_hidden_states is not None and not self.config.add_cross_attention:
            raise ValueError(
                "encoder_hidden_states were given, but the model has no cross-attention "
                "layers: build it with is_decoder=True, add_cross_attention=True and "
                "attention_type='original_full'"
            )
        indices = block_sparse_indices
        block_sparse = None
        if indices is not None:
            key_keep = (
                jnp.ones((batch, length), dtype=dtype)
                if attention_mask is None
                else attention_mask.astype(dtype)
            )
            if indices.pad_length:
                embedding_output, key_keep = self.pad(
                    embedding_output, key_keep, indices, deterministic
                )
            block_sparse = (indices, key_keep)  # key_keep: [B, padded L]
            attention_mask = None  # the keep-mask travels in block_sparse
        sequence_output, hidden_states, attentions, cross_attentions = super().encode(
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
            block_sparse=block_sparse,
        )
        # Every per-token output goes back to the input length (the indices carry the plan's
        # seq_len and pad_length).
        sequence_output, hidden_states, attentions = unpad_outputs(
            indices, sequence_output, hidden_states, attentions
        )
        return sequence_output, hidden_states, attentions, cross_attentions

    def pad(
        self,
        embedding_output: jax.Array,
        key_keep: jax.Array,
        indices: BlockSparseIndices,
        deterministic: bool,
    ) -> tuple[jax.Array, jax.Array]:
        """Append `indices.pad_length` embedded pad tokens (position and token type as the
        reference pads them) and masked-out keep entries."""
        batch, pad_length = embedding_output.shape[0], indices.pad_length
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


class FlaxBigBirdHeadModule(FlaxBertHeadModule):
    """Base of the BigBird head modules: the backbone is `FlaxBigBirdModule`, with the pooler in
    every head (BigBird's checkpoints store it)."""

    base_model_class = FlaxBigBirdModule
    pooler_in_every_head = True


class FlaxBigBirdForPreTrainingModule(FlaxBigBirdHeadModule, FlaxBertForPreTrainingModule):
    """BigBird with the masked-LM and next-sentence-prediction heads used in pretraining."""

    output_class = FlaxBigBirdForPreTrainingOutput


class FlaxBigBirdForPreTraining(FlaxBigBirdPreTrainedModel, FlaxBertForPreTraining):
    """BigBird with the masked-LM and next-sentence-prediction heads used in pretraining."""

    module_class = FlaxBigBirdForPreTrainingModule


class FlaxBigBirdForCausalLMModule(FlaxBigBirdHeadModule, FlaxBertForCausalLMModule):
    """BigBird as a causal (left-to-right) language model with `is_decoder=True` and
    `attention_type="original_full"` (block-sparse attention is not causal). Without
    `is_decoder` it warns, as the reference, and runs as configured (bidirectional)."""


class FlaxBigBirdForCausalLM(FlaxBigBirdPreTrainedModel, FlaxBertForCausalLM):
    """BigBird as a causal (left-to-right) language model with `is_decoder=True` and
    `attention_type="original_full"` (block-sparse attention is not causal). Without
    `is_decoder` it warns, as the reference, and runs as configured (bidirectional)."""

    module_class = FlaxBigBirdForCausalLMModule


class FlaxBigBirdForMaskedLMModule(FlaxBigBirdHeadModule, FlaxBertForMaskedLMModule):
    """BigBird with the masked-language-modelling head."""


class FlaxBigBirdForMaskedLM(FlaxBigBirdPreTrainedModel, FlaxBertForMaskedLM):
    """BigBird with the masked-language-modelling head."""

    module_class = FlaxBigBirdForMaskedLMModule


class FlaxBigBirdClassificationHead(nn.Module):
    """RoBERTa-style sentence head on the first token: dropout, dense, `hidden_act`, dropout,
    projection to the labels."""

    config: BigBirdConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.dense = dense(config.hidden_size, config, self.dtype)
        self.dropout = classifier_dropout(config)
        self.out_proj = dense(config.num_labels, config, self.dtype)
        self.activation = get_activation(config.hidden_act)

    def __call__(self, features: jax.Array, deterministic: bool = True) -> jax.Array:
        x = self.dropout(features[:, 0], deterministic=deterministic)  # [B, H]
        x = self.activation(self.dense(x))
        return self.out_proj(self.dropout(x, deterministic=deterministic))


class FlaxBigBirdForSequenceClassificationModule(FlaxBigBirdHeadModule):
    """BigBird with a classification (or regression) head on the first token."""

    def setup(self) -> None:
        self.bert = self.build_base_model()
        self.classifier = FlaxBigBirdClassificationHead(self.config, self.dtype)

    def head(self, outputs, deterministic: bool, return_dict: bool):
        logits = self.classifier(outputs.last_hidden_state, deterministic)
        return head_output(SequenceClassifierOutput, outputs, return_dict, logits=logits)


class FlaxBigBirdForSequenceClassification(FlaxBigBirdPreTrainedModel):
    """BigBird with a classification (or regression) head on the first token."""

    module_class = FlaxBigBirdForSequenceClassificationModule


class FlaxBigBirdForMultipleChoiceModule(FlaxBigBirdHeadModule, FlaxBertForMultipleChoiceModule):
    """BigBird scoring each of C choices with a linear layer over its pooled output."""

    def setup(self) -> None:
        self.bert = self.build_base_model()
        # The reference's BigBird ignores classifier_dropout here.
        self.dropout = nn.Dropout(rate=self.config.hidden_dropout_prob)
        self.classifier = dense(1, self.config, self.dtype)


class FlaxBigBirdForMultipleChoice(FlaxBigBirdPreTrainedModel, FlaxBertForMultipleChoice):
    """BigBird scoring each of C choices with a linear layer over its pooled output."""

    module_class = FlaxBigBirdForMultipleChoiceModule


class FlaxBigBirdForTokenClassificationModule(
    FlaxBigBirdHeadModule, FlaxBertForTokenClassificationModule
):
    """BigBird with a linear classifier on every token (e.g. named entities)."""


class FlaxBigBirdForTokenClassification(FlaxBigBirdPreTrainedModel, FlaxBertForTokenClassification):
    """BigBird with a linear classifier on every token (e.g. named entities)."""

    module_class = FlaxBigBirdForTokenClassificationModule


class FlaxBigBirdForQuestionAnsweringHead(nn.Module):
    """Span head: dropout, a feed-forward block with residual and LayerNorm, start/end logits."""

    config: BigBirdConfig
    dtype: Any = jnp.float32

    def setup(self) -> None:
        config = self.config
        self.dropout = nn.Dropout(rate=config.hidden_dropout_prob)
        self.intermediate = FlaxBertIntermediate(config, self.dtype)
        self.output = FlaxBertOutput(config, self.dtype)
        self.qa_outputs = dense(2, config, self.dtype)

    def __call__(self, encoder_output: jax.Array, deterministic: bool = True) -> jax.Array:
        hidden_states = self.intermediate(self.dropout(encoder_output, deterministic=deterministic))
        hidden_states = self.output(hidden_states, encoder_output, deterministic)
        return self.qa_outputs(hidden_states)  # [B, L, 2]


def question_mask(question_lengths: jax.Array, length: int) -> jax.Array:
    """`[B, L]` int32: 1 on the first `question_lengths` positions of each row, else 0."""
    positions = jnp.arange(length)[None]  # [1, L]
    return (positions < jnp.asarray(question_lengths).reshape(-1, 1)).astype(jnp.int32)


class FlaxBigBirdForQuestionAnsweringModule(FlaxBigBirdHeadModule):
    """BigBird with a span head for extractive question answering.

    Question tokens (the first `question_lengths` of each row; by default everything up to and
    including the first `sep_token_id`) cannot be predicted: their logits are lowered by 1e6,
    except position 0 ([CLS], the "no answer" position). Without `token_type_ids`, question tokens
    get type 0 and the rest type 1.
    """

    add_pooling_layer: bool = False

    def setup(self) -> None:
        self.sep_token_id = self.config.sep_token_id
        self.bert = self.base_model_class(
            self.config, self.dtype, self.add_pooling_layer, self.gradient_checkpointing
        )
        self.qa_classifier = FlaxBigBirdForQuestionAnsweringHead(self.config, self.dtype)

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
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            head_mask,
            deterministic=deterministic,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            block_sparse_indices=block_sparse_indices,
        )
        logits = self.qa_classifier(outputs.last_hidden_state, deterministic)  # [B, L, 2]
        logits = logits - logits_mask[:, :, None].astype(logits.dtype) * QUESTION_LOGIT_PENALTY
        return head_output(
            FlaxBigBirdForQuestionAnsweringModelOutput,
            outputs,
            return_dict,
            start_logits=logits[..., 0],
            end_logits=logits[..., 1],
        )


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
        inputs = self.given_inputs(
            input_ids=input_ids,
            attention_mask=attention_mask,
            question_lengths=question_lengths,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            head_mask=head_mask,
        )
        return self.apply_module(
            inputs,
            params=params,
            dropout_rng=dropout_rng,
            train=train,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=return_dict,
            indices_rng=indices_rng,
            block_sparse_indices=block_sparse_indices,
        )
