"""BigBird in PyTorch: BERT (`aviary.pt.bert`) plus what differs.

Paper: Zaheer et al., "Big Bird: Transformers for Longer Sequences" (arXiv:2007.14062).

BigBird reuses BERT's modules under BERT's attribute names (embeddings, self-output,
feed-forward, prediction heads), so the checkpoint names are BERT's. What it writes itself: the
embeddings' dropout-before-LayerNorm order, the self-attention dispatch (block-sparse or full),
the model forward (plan, pad, unpad), its pooler, the classification head and the
question-answering head. Heads whose math is BERT's are BERT's heads over `BigBirdModel`.

Attention is block-sparse (`attention_type="block_sparse"`, the default) or full
(`"original_full"`). Which one a call runs, the padding it needs and the random key blocks are
decided once per forward, outside the layers, by the model's
`aviary.core.block_sparse.BlockSparseController` (`model.block_sparse`); every layer gets the same
plan and the model never rewrites its modules. A short input (at most `(5 + 2 r) * block_size`
tokens) runs full attention for that call only; the next long input is block-sparse again. Inputs
whose length is not a multiple of `block_size` are padded on the right and every per-token output
(`last_hidden_state`, `hidden_states`, `attentions`, logits) is unpadded again.

The random-block policy is a model setting: `model.set_block_sparse_policy("resample",
rng=np.random.default_rng(0))`; see `aviary.core.block_sparse` for "reference" (default),
"fixed" and "resample".

Shapes: B batch · C choices · L tokens · H hidden · N heads · D head dim.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from aviary.core import checks
from aviary.core.block_sparse import AttentionPlan, BlockSparseController, unpad_outputs
from aviary.core.configs import BigBirdConfig
from aviary.pt.bert import (
    BertAttention,
    BertEmbeddings,
    BertEncoder,
    BertForMaskedLM,
    BertForMultipleChoice,
    BertForPreTraining,
    BertForTokenClassification,
    BertIntermediate,
    BertLayer,
    BertLMHeadModel,
    BertModel,
    BertOutput,
    BertPreTrainedModel,
    BertSelfAttention,
)
from aviary.pt.big_bird_attention import (
    BlockSparseIndices,
    BlockSparseModelMixin,
    block_sparse_attention,
    flex_block_sparse_attention,
)
from aviary.pt.modeling_utils import (
    BigBirdForPreTrainingOutput,
    BigBirdForQuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    classifier_dropout,
    get_activation,
    sequence_classification_loss,
    span_outputs,
)

# The reference's penalty on question tokens in the span logits.
QUESTION_LOGIT_PENALTY = 1e6


def block_sparse_inputs(
    plan: AttentionPlan,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor | None,
    pad: Callable[[torch.Tensor, torch.Tensor, AttentionPlan], tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, tuple[BlockSparseIndices, torch.Tensor]]:
    """The inputs of a block-sparse call on `hidden_states` `[B, L, H]`: those states padded by
    `pad` (the model's) to the plan's length, and the layers' `block_sparse=(indices, key_keep)`."""
    batch, length = hidden_states.shape[:2]
    dtype, device = hidden_states.dtype, hidden_states.device
    key_keep = (
        torch.ones(batch, length, dtype=dtype, device=device)
        if attention_mask is None
        else attention_mask.to(dtype)
    )
    if plan.pad_length:
        hidden_states, key_keep = pad(hidden_states, key_keep, plan)
    indices = BlockSparseIndices.from_plan(plan, device, dtype)
    return hidden_states, (indices, key_keep)  # key_keep: [B, padded L]


class BigBirdEmbeddings(BertEmbeddings):
    """BERT's embeddings (word embeddings times sqrt(H) with `rescale_embeddings`), with dropout
    before the LayerNorm: the original code's encoder LayerNorm lives here."""

    def normalize(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(embeddings))


class BigBirdSelfAttention(BertSelfAttention):
    """BERT's multi-head attention (full, with a key/value cache for decoding and
    cross-attention) or, when the forward's plan says so (`block_sparse`), block-sparse
    attention."""

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        past_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
        output_attentions: bool = False,
        block_sparse: tuple[BlockSparseIndices, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, ...] | None]:
        if block_sparse is None:
            return super().forward(
                hidden_states,
                attention_mask,
                head_mask,
                encoder_hidden_states,
                past_key_value,
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
        layout = None
        if self.attn_implementation == "flex_attention" and not output_attentions:
            # FlexAttention has no backward on CPU: the gather kernel serves training there.
            needs_backward = torch.is_grad_enabled() and query.requires_grad
            if query.device.type != "cpu" or not needs_backward:
                layout = indices.flex_layout(self.layer_index, key_keep)
        if layout is not None:
            context = flex_block_sparse_attention(
                query, key, value, layout, key_keep, indices.block_size
            )
            probs = None
        else:
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
        return self.merge_heads(context), probs, None


class BigBirdAttention(BertAttention):
    """BERT's attention block around BigBird's self-attention."""

    self_attention_class = BigBirdSelfAttention


class BigBirdLayer(BertLayer):
    """BERT's layer with BigBird's attention; `block_sparse` reaches the self-attention."""

    attention_class = BigBirdAttention


class BigBirdEncoder(BertEncoder):
    """BERT's stack of BigBird layers; every layer gets the call's `block_sparse` plan."""

    layer_class = BigBirdLayer


class BigBirdPreTrainedModel(BlockSparseModelMixin, BertPreTrainedModel):
    """Base of the BigBird classes: config class, attention settings. The checkpoint prefix is
    BERT's ("bert"); every head's backbone has the pooler, as BigBird's checkpoints store it."""

    config_class = BigBirdConfig
    pooler_in_every_head = True
    # "flex_attention": block-sparse calls run one compiled FlexAttention kernel (inference on
    # CPU; the gather kernel serves training and output_attentions); full attention uses SDPA.
    attn_implementations = ("sdpa", "eager", "flex_attention")


class BigBirdPooler(nn.Linear):
    """Dense + tanh over the first token: one Linear, which BigBird's checkpoints call
    `pooler` (BERT's is `pooler.dense`)."""

    def __init__(self, config: BigBirdConfig) -> None:
        super().__init__(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return torch.tanh(super().forward(hidden_states[:, 0]))


class BigBirdModel(BigBirdPreTrainedModel, BertModel):
    """The bare BigBird encoder (or full-attention decoder), returning hidden states and the
    pooled first token: BERT's model whose encoder runs block-sparse when the call's plan says
    so."""

    embeddings_class = BigBirdEmbeddings
    encoder_class = BigBirdEncoder
    pooler_class = BigBirdPooler

    def __init__(
        self,
        config: BigBirdConfig,
        add_pooling_layer: bool = True,
        attn_implementation: str | None = None,
    ) -> None:
        super().__init__(config, add_pooling_layer, attn_implementation)
        # Attention type, random-block policy and the plan of each call.
        self.block_sparse = BlockSparseController(config)

    def encode(
        self,
        embedding_output: torch.Tensor,
        attention_mask: torch.Tensor | None,
        head_masks: list[torch.Tensor | None],
        encoder_hidden_states: torch.Tensor | None,
        encoder_attention_mask: torch.Tensor | None,
        past_key_values: tuple | None,
        use_cache: bool,
        output_attentions: bool,
        output_hidden_states: bool,
    ) -> tuple:
        """The encoder stack over `embedding_output` `[B, L, H]`, block-sparse when this call's
        plan says so (padded to whole blocks, every per-token output unpadded again), else
        BERT's full attention: `(sequence_output, presents, hidden_states, attentions,
        cross_attentions)`."""
        # One plan for every layer of this call (None: full attention).
        plan = self.block_sparse.plan(
            embedding_output.shape[1],
            training=self.training,
            past_length=past_key_values[0][0].shape[2] if past_key_values is not None else 0,
            attention_mask_rank=None if attention_mask is None else attention_mask.dim(),
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
            embedding_output, block_sparse = block_sparse_inputs(
                plan, embedding_output, attention_mask, self.pad
            )
            attention_mask = None  # the keep-mask travels in block_sparse
        sequence_output, presents, hidden_states, attentions, cross_attentions = super().encode(
            embedding_output,
            attention_mask,
            head_masks,
            encoder_hidden_states,
            encoder_attention_mask,
            past_key_values,
            use_cache,
            output_attentions,
            output_hidden_states,
            block_sparse=block_sparse,
        )
        # Every per-token output goes back to the input length.
        sequence_output, hidden_states, attentions = unpad_outputs(
            plan, sequence_output, hidden_states, attentions
        )
        return sequence_output, presents, hidden_states, attentions, cross_attentions

    def pad(
        self, embedding_output: torch.Tensor, key_keep: torch.Tensor, plan: AttentionPlan
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append `plan.pad_length` embedded pad tokens (position and token type as the
        reference pads them) and masked-out keep entries."""
        batch = embedding_output.shape[0]
        device = embedding_output.device
        pad_ids = torch.full(
            (batch, plan.pad_length), self.config.pad_token_id, dtype=torch.long, device=device
        )
        pad_embeddings = self.embeddings(
            pad_ids, torch.zeros_like(pad_ids), pad_ids, None
        )  # [B, pad, H]; positions = pad_token_id, as the reference pads position_ids
        embedding_output = torch.cat([embedding_output, pad_embeddings], dim=1)
        key_keep = nn.functional.pad(key_keep, (0, plan.pad_length), value=0.0)
        return embedding_output, key_keep


BigBirdPreTrainedModel.base_model_class = BigBirdModel


class BigBirdForPreTraining(BigBirdPreTrainedModel, BertForPreTraining):
    """BigBird with the masked-LM and next-sentence-prediction heads used in pretraining."""

    output_class = BigBirdForPreTrainingOutput


class BigBirdForCausalLM(BigBirdPreTrainedModel, BertLMHeadModel):
    """BigBird as a causal (left-to-right) language model with `is_decoder=True` and
    `attention_type="original_full"` (block-sparse attention is not causal). Without
    `is_decoder` it warns, as the reference, and runs as configured (bidirectional)."""

    def forward(
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
        labels=None,
        use_cache=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        # The reference's argument order (past_key_values before labels); BERT's head computes.
        return super().forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            head_mask=head_mask,
            inputs_embeds=inputs_embeds,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            labels=labels,
            past_key_values=past_key_values,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=return_dict,
        )


class BigBirdForMaskedLM(BigBirdPreTrainedModel, BertForMaskedLM):
    """BigBird with the masked-language-modelling head."""


class BigBirdClassificationHead(nn.Module):
    """RoBERTa-style sentence head on the first token: dropout, dense, `hidden_act`, dropout,
    projection to the labels."""

    def __init__(self, config: BigBirdConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = classifier_dropout(config)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)
        self.activation = get_activation(config.hidden_act)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.dropout(features[:, 0])  # [B, H]
        x = self.activation(self.dense(x))
        return self.out_proj(self.dropout(x))


class BigBirdForSequenceClassification(BigBirdPreTrainedModel):
    """BigBird with a classification (or regression) head on the first token."""

    def __init__(self, config: BigBirdConfig, attn_implementation: str | None = None) -> None:
        super().__init__(config, attn_implementation)
        self.num_labels = config.num_labels
        self.bert = self.build_base_model()
        self.classifier = BigBirdClassificationHead(config)
        self.post_init()

    def head(self, outputs, labels: torch.Tensor | None, return_dict: bool | None):
        logits = self.classifier(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            loss = sequence_classification_loss(logits, labels, self.config)
        return self.head_output(
            SequenceClassifierOutput, outputs, return_dict, loss=loss, logits=logits
        )


class BigBirdForMultipleChoice(BigBirdPreTrainedModel, BertForMultipleChoice):
    """BigBird scoring each of C choices with a linear layer over its pooled output."""

    def __init__(self, config: BigBirdConfig, attn_implementation: str | None = None) -> None:
        super().__init__(config, attn_implementation)
        # The reference's BigBird ignores classifier_dropout here.
        self.dropout = nn.Dropout(config.hidden_dropout_prob)


class BigBirdForTokenClassification(BigBirdPreTrainedModel, BertForTokenClassification):
    """BigBird with a linear classifier on every token (e.g. named entities)."""


class BigBirdForQuestionAnsweringHead(nn.Module):
    """Span head: dropout, a feed-forward block with residual and LayerNorm, start/end logits."""

    def __init__(self, config: BigBirdConfig) -> None:
        super().__init__()
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)

    def forward(self, encoder_output: torch.Tensor) -> torch.Tensor:
        hidden_states = self.intermediate(self.dropout(encoder_output))
        hidden_states = self.output(hidden_states, encoder_output)
        return self.qa_outputs(hidden_states)  # [B, L, 2]


def question_mask(question_lengths: torch.Tensor, length: int) -> torch.Tensor:
    """`[B, L]` long: 1 on the first `question_lengths` positions of each row, else 0."""
    positions = torch.arange(length, device=question_lengths.device)[None]  # [1, L]
    return (positions < question_lengths.reshape(-1, 1)).long()


class BigBirdForQuestionAnswering(BigBirdPreTrainedModel):
    """BigBird with a span head for extractive question answering.

    Question tokens (the first `question_lengths` of each row; by default everything up to and
    including the first `sep_token_id`) cannot be predicted: their logits are lowered by 1e6,
    except position 0 ([CLS], the "no answer" position). Without `token_type_ids`, question tokens
    get type 0 and the rest type 1.
    """

    def __init__(
        self,
        config: BigBirdConfig,
        add_pooling_layer: bool = False,
        attn_implementation: str | None = None,
    ) -> None:
        super().__init__(config, attn_implementation)
        self.sep_token_id = config.sep_token_id
        self.bert = self.base_model_class(config, add_pooling_layer=add_pooling_layer)
        self.qa_classifier = BigBirdForQuestionAnsweringHead(config)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        question_lengths=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        inputs_embeds=None,
        start_positions=None,
        end_positions=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        checks.check_exactly_one_input(input_ids is not None, inputs_embeds is not None)
        length = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        if question_lengths is None and input_ids is not None:
            # <cls> question <sep> context <sep>: the question ends at the first separator (a
            # row without one gets question length 1, i.e. only [CLS]).
            is_sep = (input_ids == self.sep_token_id).int()
            question_lengths = torch.argmax(is_sep, dim=-1) + 1  # [B]
        logits_mask = None
        if question_lengths is not None:
            question = question_mask(torch.as_tensor(question_lengths), length)  # [B, L]
            if token_type_ids is None:
                token_type_ids = 1 - question
            logits_mask = question.clone()
            logits_mask[:, 0] = 0  # [CLS] stays available for "no answer"
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
            logits = logits - logits_mask[:, :, None].to(logits.dtype) * QUESTION_LOGIT_PENALTY
        return self.head_output(
            BigBirdForQuestionAnsweringModelOutput,
            outputs,
            return_dict,
            **span_outputs(logits, start_positions, end_positions),
        )
