"""BigBird in PyTorch.

Paper: Zaheer et al., "Big Bird: Transformers for Longer Sequences" (arXiv:2007.14062).

Attention is block-sparse (`attention_type="block_sparse"`, the default) or full
(`"original_full"`). Which one a call runs, the padding it needs and the random key blocks are
decided once per forward, outside the layers, by `aviary.core.block_sparse.plan_for_config`; every
layer gets the same plan and the model never rewrites its modules. A short input (at most
`(5 + 2 r) * block_size` tokens) runs full attention for that call only; the next long input is
block-sparse again. Inputs whose length is not a multiple of `block_size` are padded on the right
and every per-token output (`last_hidden_state`, `hidden_states`, `attentions`, logits) is unpadded
again.

The random-block policy is a model setting: `model.set_block_sparse_policy("resample",
rng=np.random.default_rng(0))`; see `aviary.core.block_sparse` for "reference" (default),
"fixed" and "resample".

Shapes: B batch · C choices · L tokens · H hidden · N heads · D head dim.
Attribute names are the reference's, so state-dict names are the canonical checkpoint names.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from aviary.core import checks
from aviary.core.block_sparse import AttentionPlan, check_policy, plan_for_config
from aviary.core.configs import ATTENTION_TYPES, BigBirdConfig
from aviary.core.outputs import output_class
from aviary.pt.big_bird_attention import (
    BlockSparseIndices,
    block_sparse_attention,
    flex_block_sparse_attention,
)
from aviary.pt.modeling_utils import (
    BaseModelOutputWithPoolingAndCrossAttentions,
    CausalLMOutputWithCrossAttentions,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    PreTrainedModel,
    SequenceClassifierOutput,
    TokenClassifierOutput,
    causal_lm_loss,
    check_ids,
    expand_head_mask,
    extended_attention_mask,
    finish_output,
    get_activation,
    masked_lm_loss,
    sequence_classification_loss,
    span_loss,
    token_classification_loss,
)

BigBirdForPreTrainingOutput = output_class("BigBirdForPreTrainingOutput")
BigBirdForQuestionAnsweringModelOutput = output_class("BigBirdForQuestionAnsweringModelOutput")

# The reference's penalty on question tokens in the span logits.
QUESTION_LOGIT_PENALTY = 1e6


class BigBirdEmbeddings(nn.Module):
    """Word (optionally scaled by sqrt(H)) + token-type + position embeddings, then dropout and
    LayerNorm (in this order: the original code's encoder LayerNorm lives here)."""

    def __init__(self, config: BigBirdConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.rescale_embeddings = config.rescale_embeddings
        self.hidden_size = config.hidden_size
        self.max_position_embeddings = config.max_position_embeddings
        self.register_buffer(
            "position_ids", torch.arange(config.max_position_embeddings)[None], persistent=False
        )

    def forward(
        self,
        input_ids: torch.Tensor | None,
        token_type_ids: torch.Tensor,
        position_ids: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None,
        past_key_values_length: int = 0,
    ) -> torch.Tensor:
        length = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        if position_ids is None:
            checks.check_sequence_length(
                length, past_key_values_length, self.max_position_embeddings
            )
            position_ids = self.position_ids[
                :, past_key_values_length : past_key_values_length + length
            ]
        else:
            check_ids("position_ids", position_ids, self.max_position_embeddings)
        check_ids("token_type_ids", token_type_ids, self.token_type_embeddings.num_embeddings)
        if inputs_embeds is None:
            check_ids("input_ids", input_ids, self.word_embeddings.num_embeddings)
            inputs_embeds = self.word_embeddings(input_ids)
        if self.rescale_embeddings:
            inputs_embeds = inputs_embeds * math.sqrt(self.hidden_size)
        embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        return self.LayerNorm(self.dropout(embeddings))


class BigBirdSelfAttention(nn.Module):
    """Multi-head attention of one layer: full attention (with a key/value cache for decoding and
    cross-attention) or, when the forward's plan says so, block-sparse attention."""

    def __init__(self, config: BigBirdConfig, layer_index: int = 0) -> None:
        super().__init__()
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.query = nn.Linear(config.hidden_size, self.all_head_size, bias=config.use_bias)
        self.key = nn.Linear(config.hidden_size, self.all_head_size, bias=config.use_bias)
        self.value = nn.Linear(config.hidden_size, self.all_head_size, bias=config.use_bias)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self.is_decoder = config.is_decoder
        self.layer_index = layer_index  # selects this layer's rows of the plan
        self.attn_implementation = "sdpa"

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        x = x.view(batch, length, self.num_attention_heads, self.attention_head_size)
        return x.transpose(1, 2)  # [B, N, L, D]

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
        query = self.split_heads(self.query(hidden_states))  # [B, N, Q, D]
        if block_sparse is not None:
            indices, key_keep = block_sparse
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
                # The reference ignores head_mask here; aviary applies it (to the context, which
                # is the same as to the probabilities).
                context = context * head_mask
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
                key = torch.cat([past_key_value[0], key], dim=2)  # [B, N, K, D]
                value = torch.cat([past_key_value[1], value], dim=2)
        present = (key, value) if self.is_decoder else None

        eager = self.attn_implementation == "eager" or output_attentions or head_mask is not None
        if not eager:
            context = nn.functional.scaled_dot_product_attention(
                query,
                key,
                value,
                attn_mask=attention_mask,
                dropout_p=self.dropout.p if self.training else 0.0,
            )
            probs = None
        else:
            scores = torch.matmul(query, key.transpose(-1, -2))  # [B, N, Q, K]
            scores = scores / math.sqrt(self.attention_head_size)
            if attention_mask is not None:
                scores = scores + attention_mask
            probs = self.dropout(torch.softmax(scores, dim=-1))
            if head_mask is not None:
                probs = probs * head_mask
            context = torch.matmul(probs, value)  # [B, N, Q, D]
        return self.merge_heads(context), (probs if output_attentions else None), present

    def merge_heads(self, context: torch.Tensor) -> torch.Tensor:
        batch, _, length, _ = context.shape
        return context.transpose(1, 2).reshape(batch, length, self.all_head_size)  # [B, L, H]


class BigBirdSelfOutput(nn.Module):
    """Attention output projection, dropout, residual and LayerNorm."""

    def __init__(self, config: BigBirdConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class BigBirdAttention(nn.Module):
    """Self- or cross-attention followed by its output block."""

    def __init__(self, config: BigBirdConfig, layer_index: int = 0) -> None:
        super().__init__()
        self.self = BigBirdSelfAttention(config, layer_index)
        self.output = BigBirdSelfOutput(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        past_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
        output_attentions: bool = False,
        block_sparse: tuple[BlockSparseIndices, torch.Tensor] | None = None,
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
            output_attentions,
            block_sparse,
        )
        return self.output(context, hidden_states), probs, present


class BigBirdIntermediate(nn.Module):
    """First feed-forward projection and activation."""

    def __init__(self, config: BigBirdConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = get_activation(config.hidden_act)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(hidden_states))


class BigBirdOutput(nn.Module):
    """Second feed-forward projection, dropout, residual and LayerNorm."""

    def __init__(self, config: BigBirdConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class BigBirdLayer(nn.Module):
    """Self-attention, optional cross-attention (decoders), feed-forward."""

    def __init__(self, config: BigBirdConfig, layer_index: int = 0) -> None:
        super().__init__()
        self.attention = BigBirdAttention(config, layer_index)
        self.is_decoder = config.is_decoder
        self.add_cross_attention = config.add_cross_attention
        if self.add_cross_attention:
            if not self.is_decoder:
                raise ValueError("add_cross_attention=True needs is_decoder=True")
            self.crossattention = BigBirdAttention(config, layer_index)
        self.intermediate = BigBirdIntermediate(config)
        self.output = BigBirdOutput(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        past_key_value: tuple[torch.Tensor, ...] | None = None,
        output_attentions: bool = False,
        block_sparse: tuple[BlockSparseIndices, torch.Tensor] | None = None,
    ):
        # A decoder layer's cache holds (self key, self value[, cross key, cross value]).
        self_past = past_key_value[:2] if past_key_value is not None else None
        attention_output, self_probs, present = self.attention(
            hidden_states,
            attention_mask,
            head_mask,
            None,
            self_past,
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
            cross_past = past_key_value[2:] if past_key_value is not None else ()
            attention_output, cross_probs, cross_present = self.crossattention(
                attention_output,
                encoder_attention_mask,
                head_mask,
                encoder_hidden_states,
                cross_past or None,
                output_attentions,
            )
            present = present + cross_present
        layer_output = self.output(self.intermediate(attention_output), attention_output)
        return layer_output, self_probs, cross_probs, present


class BigBirdEncoder(nn.Module):
    """The stack of layers; collects hidden states, attentions and the cache."""

    def __init__(self, config: BigBirdConfig) -> None:
        super().__init__()
        self.config = config
        self.layer = nn.ModuleList(
            [BigBirdLayer(config, layer_index=i) for i in range(config.num_hidden_layers)]
        )
        self.gradient_checkpointing = False

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        head_masks: list[torch.Tensor | None],
        encoder_hidden_states: torch.Tensor | None,
        encoder_attention_mask: torch.Tensor | None,
        past_key_values: tuple | None,
        use_cache: bool,
        output_attentions: bool,
        output_hidden_states: bool,
        block_sparse: tuple[BlockSparseIndices, torch.Tensor] | None = None,
    ):
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        all_cross_attentions = (
            () if output_attentions and encoder_hidden_states is not None else None
        )
        presents = () if use_cache else None
        for i, layer in enumerate(self.layer):
            past = past_key_values[i] if past_key_values is not None else None
            args = (
                hidden_states,
                attention_mask,
                head_masks[i],
                encoder_hidden_states,
                encoder_attention_mask,
                past,
                output_attentions,
                block_sparse,
            )
            if self.gradient_checkpointing and self.training:
                outputs = checkpoint(layer, *args, use_reentrant=False)
            else:
                outputs = layer(*args)
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


class BigBirdPredictionHeadTransform(nn.Module):
    """Dense, activation and LayerNorm before the vocabulary projection."""

    def __init__(self, config: BigBirdConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = get_activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class BigBirdLMPredictionHead(nn.Module):
    """Vocabulary logits; the decoder weight is tied to the word embeddings by the model."""

    def __init__(self, config: BigBirdConfig) -> None:
        super().__init__()
        self.transform = BigBirdPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.decoder.bias = self.bias  # one tensor, stored as `predictions.bias`

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden_states))


class BigBirdOnlyMLMHead(nn.Module):
    def __init__(self, config: BigBirdConfig) -> None:
        super().__init__()
        self.predictions = BigBirdLMPredictionHead(config)

    def forward(self, sequence_output: torch.Tensor) -> torch.Tensor:
        return self.predictions(sequence_output)


class BigBirdPreTrainingHeads(nn.Module):
    def __init__(self, config: BigBirdConfig) -> None:
        super().__init__()
        self.predictions = BigBirdLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, sequence_output: torch.Tensor, pooled_output: torch.Tensor | None):
        return self.predictions(sequence_output), self.seq_relationship(pooled_output)


class BigBirdPreTrainedModel(PreTrainedModel):
    """Base of the BigBird classes: config class, checkpoint prefix, attention settings."""

    config_class = BigBirdConfig
    base_model_prefix = "bert"
    # "flex_attention": block-sparse calls run one compiled FlexAttention kernel (inference on
    # CPU; the gather kernel serves training and output_attentions); full attention uses SDPA.
    attn_implementations = ("sdpa", "eager", "flex_attention")

    def set_attention_type(self, attention_type: str) -> None:
        """Choose `"block_sparse"` or `"original_full"` attention for later calls (the config
        is left as it is). Block-sparse calls still fall back to full attention on short inputs."""
        self.base_model.set_attention_type(attention_type)

    def set_block_sparse_policy(
        self, policy: str = "reference", rng: np.random.Generator | None = None
    ) -> None:
        """Choose how block-sparse calls draw their random key blocks.

        `"reference"` (default; the reference library's numbers: layer-seeded plans in training,
        the all-zero plan in eval), `"fixed"` (the seeded plan in training and eval) or
        `"resample"` (a fresh plan per call from `rng`, a `numpy.random.Generator`).
        """
        self.base_model.set_block_sparse_policy(policy, rng)


# The LM decoder shares the word-embedding matrix (when `tie_word_embeddings`, the default).
TIED_LM_DECODER = (("cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"),)


class BigBirdModel(BigBirdPreTrainedModel):
    """The bare BigBird encoder (or full-attention decoder), returning hidden states and the
    pooled first token."""

    def __init__(
        self,
        config: BigBirdConfig,
        add_pooling_layer: bool = True,
        attn_implementation: str | None = None,
    ) -> None:
        super().__init__(config, attn_implementation)
        self.attention_type = config.attention_type
        self.block_sparse_policy = "reference"
        self.block_sparse_rng: np.random.Generator | None = None
        self._check_decoder_attention(self.attention_type)
        self.embeddings = BigBirdEmbeddings(config)
        self.encoder = BigBirdEncoder(config)
        if add_pooling_layer:
            self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
            self.activation = nn.Tanh()
        else:
            self.pooler = None
            self.activation = None
        self.post_init()

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

    def set_block_sparse_policy(
        self, policy: str = "reference", rng: np.random.Generator | None = None
    ) -> None:
        check_policy(policy, rng)
        self.block_sparse_policy = policy
        self.block_sparse_rng = rng

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def plan(self, seq_len: int) -> AttentionPlan | None:
        """The block-sparse plan of a call on `seq_len` tokens, or None for full attention.

        Every forward calls this once. Under the "resample" policy each call draws from the
        policy's generator (so calling it yourself advances that generator too).
        """
        if self.attention_type != "block_sparse":
            return None
        plan = plan_for_config(
            self.config,
            seq_len,
            training=self.training,
            policy=self.block_sparse_policy,
            rng=self.block_sparse_rng,
        )
        return plan if plan.use_block_sparse else None

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        past_key_values: tuple | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
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
        if self.encoder.gradient_checkpointing and self.training:
            use_cache = False  # the cache would hold activations checkpointing means to drop

        checks.check_exactly_one_input(input_ids is not None, inputs_embeds is not None)
        if input_ids is not None:
            checks.check_rank("input_ids", input_ids.shape, (2,))
            batch, length = input_ids.shape
            device = input_ids.device
        else:
            checks.check_rank("inputs_embeds", inputs_embeds.shape, (3,))
            batch, length = inputs_embeds.shape[:2]
            device = inputs_embeds.device
        past_length = past_key_values[0][0].shape[2] if past_key_values is not None else 0

        if token_type_ids is None:
            token_type_ids = torch.zeros(batch, length, dtype=torch.long, device=device)
        else:
            checks.check_same_shape(
                "token_type_ids", token_type_ids.shape, (batch, length), "the input"
            )
        if position_ids is not None:
            checks.check_same_shape(
                "position_ids", position_ids.shape[-1:], (length,), "the input length"
            )
        if attention_mask is not None:
            checks.check_attention_mask_shape(
                attention_mask.shape, batch, length, past_length + length, "attention_mask"
            )
        if encoder_hidden_states is not None and self.attention_type == "block_sparse":
            raise ValueError(
                "encoder_hidden_states need cross-attention, which BigBird only has with "
                "attention_type='original_full'"
            )

        # One plan for every layer of this call (None: full attention).
        plan = self.plan(length) if past_length == 0 else None
        if plan is not None and attention_mask is not None and attention_mask.dim() != 2:
            raise ValueError(
                "block-sparse attention takes a [batch, sequence] attention_mask, got shape "
                f"{tuple(attention_mask.shape)}"
            )
        embedding_output = self.embeddings(
            input_ids, token_type_ids, position_ids, inputs_embeds, past_length
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
                torch.ones(batch, length, dtype=dtype, device=device)
                if attention_mask is None
                else attention_mask.to(dtype)
            )
            if plan.pad_length:
                embedding_output, key_keep = self._pad(embedding_output, key_keep, plan)
            indices = BlockSparseIndices.from_plan(plan, device, dtype)
            block_sparse = (indices, key_keep)  # key_keep: [B, padded L]
        else:
            needs_mask = config.is_decoder or (
                attention_mask is not None
                and (torch.compiler.is_compiling() or not bool(torch.all(attention_mask == 1)))
            )
            if needs_mask:
                if attention_mask is None:
                    attention_mask = torch.ones(batch, past_length + length, device=device)
                extended_mask = extended_attention_mask(
                    attention_mask, length, dtype, config.is_decoder
                )
            if encoder_hidden_states is not None and encoder_attention_mask is not None:
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

        sequence_output, presents, hidden_states, attentions, cross_attentions = self.encoder(
            embedding_output,
            extended_mask,
            head_masks,
            encoder_hidden_states,
            encoder_extended_mask,
            past_key_values,
            use_cache,
            output_attentions,
            output_hidden_states,
            block_sparse,
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
        output = BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=sequence_output,
            pooler_output=pooled_output,
            hidden_states=hidden_states,
            past_key_values=presents,
            attentions=attentions,
            cross_attentions=cross_attentions,
        )
        return finish_output(output, return_dict)

    def _pad(
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


def _base_inputs(**kwargs):
    """The arguments every head passes through to `BigBirdModel`, always as an output object."""
    return {**kwargs, "return_dict": True}


class BigBirdForPreTraining(BigBirdPreTrainedModel):
    """BigBird with the masked-LM and next-sentence-prediction heads used in pretraining."""

    tied_weights = TIED_LM_DECODER

    def __init__(self, config: BigBirdConfig, attn_implementation: str | None = None) -> None:
        super().__init__(config, attn_implementation)
        self.bert = BigBirdModel(config, add_pooling_layer=True)
        self.cls = BigBirdPreTrainingHeads(config)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        inputs_embeds=None,
        labels=None,
        next_sentence_label=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
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
            outputs.last_hidden_state, outputs.pooler_output
        )
        # The sum of the losses whose labels are given (the reference adds the NSP loss only
        # when the MLM labels are given too).
        loss = None
        if labels is not None:
            loss = masked_lm_loss(prediction_logits, labels)
        if next_sentence_label is not None:
            nsp = nn.functional.cross_entropy(
                seq_relationship_logits.float(), next_sentence_label.reshape(-1)
            )
            loss = nsp if loss is None else loss + nsp
        output = BigBirdForPreTrainingOutput(
            loss=loss,
            prediction_logits=prediction_logits,
            seq_relationship_logits=seq_relationship_logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class BigBirdForCausalLM(BigBirdPreTrainedModel):
    """BigBird as a causal (left-to-right) language model; needs `is_decoder=True` and
    `attention_type="original_full"` (block-sparse attention is not causal)."""

    tied_weights = TIED_LM_DECODER

    def __init__(self, config: BigBirdConfig, attn_implementation: str | None = None) -> None:
        super().__init__(config, attn_implementation)
        if not config.is_decoder:
            raise ValueError("BigBirdForCausalLM needs a config with is_decoder=True")
        self.bert = BigBirdModel(config)
        self.cls = BigBirdOnlyMLMHead(config)
        self.post_init()

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
        logits = self.cls(outputs.last_hidden_state)
        loss = causal_lm_loss(logits, labels) if labels is not None else None
        output = CausalLMOutputWithCrossAttentions(
            loss=loss,
            logits=logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            cross_attentions=outputs.cross_attentions,
        )
        return finish_output(output, return_dict)


class BigBirdForMaskedLM(BigBirdPreTrainedModel):
    """BigBird with the masked-language-modelling head."""

    tied_weights = TIED_LM_DECODER

    def __init__(self, config: BigBirdConfig, attn_implementation: str | None = None) -> None:
        super().__init__(config, attn_implementation)
        self.bert = BigBirdModel(config)
        self.cls = BigBirdOnlyMLMHead(config)
        self.post_init()

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
        labels=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
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
        logits = self.cls(outputs.last_hidden_state)
        loss = masked_lm_loss(logits, labels) if labels is not None else None
        output = MaskedLMOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class BigBirdClassificationHead(nn.Module):
    """RoBERTa-style sentence head on the first token: dropout, dense, `hidden_act`, dropout,
    projection to the labels."""

    def __init__(self, config: BigBirdConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
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
        self.bert = BigBirdModel(config)
        self.classifier = BigBirdClassificationHead(config)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        inputs_embeds=None,
        labels=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
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
        output = SequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class BigBirdForMultipleChoice(BigBirdPreTrainedModel):
    """BigBird scoring each of C choices with a linear layer over its pooled output."""

    def __init__(self, config: BigBirdConfig, attn_implementation: str | None = None) -> None:
        super().__init__(config, attn_implementation)
        self.bert = BigBirdModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        inputs_embeds=None,
        labels=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        if input_ids is not None:
            checks.check_rank("input_ids", input_ids.shape, (3,))
            num_choices = input_ids.shape[1]
        else:
            checks.check_rank("inputs_embeds", inputs_embeds.shape, (4,))
            num_choices = inputs_embeds.shape[1]

        def flat(x):  # [B, C, L, ...] -> [B*C, L, ...]
            return None if x is None else x.reshape(-1, *x.shape[2:])

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
        logits = self.classifier(self.dropout(outputs.pooler_output)).view(-1, num_choices)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.float(), labels.reshape(-1))
        output = MultipleChoiceModelOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class BigBirdForTokenClassification(BigBirdPreTrainedModel):
    """BigBird with a linear classifier on every token (e.g. named entities)."""

    def __init__(self, config: BigBirdConfig, attn_implementation: str | None = None) -> None:
        super().__init__(config, attn_implementation)
        self.num_labels = config.num_labels
        self.bert = BigBirdModel(config)
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        inputs_embeds=None,
        labels=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
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
        output = TokenClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)


class BigBirdForQuestionAnsweringHead(nn.Module):
    """Span head: dropout, a feed-forward block with residual and LayerNorm, start/end logits."""

    def __init__(self, config: BigBirdConfig) -> None:
        super().__init__()
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.intermediate = BigBirdIntermediate(config)
        self.output = BigBirdOutput(config)
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
        self.bert = BigBirdModel(config, add_pooling_layer=add_pooling_layer)
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
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
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
            logits = logits - logits_mask[:, :, None].to(logits.dtype) * QUESTION_LOGIT_PENALTY
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = span_loss(start_logits, end_logits, start_positions, end_positions)
        output = BigBirdForQuestionAnsweringModelOutput(
            loss=loss,
            start_logits=start_logits,
            end_logits=end_logits,
            pooler_output=outputs.pooler_output,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return finish_output(output, return_dict)
