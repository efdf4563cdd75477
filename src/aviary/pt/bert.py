"""BERT in PyTorch.

Paper: Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding" (arXiv:1810.04805). Relative positions: Shaw et al. (arXiv:1803.02155) and
Huang et al. (arXiv:2009.13658, method 4).

Shapes: B batch · C choices · Q queries · K keys · L tokens · H hidden · N heads · D head dim.
Attribute names are the reference's, so state-dict names are the canonical checkpoint names; the TF
and Flax files define the same classes in the same order with the same attribute names.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from aviary.core import checks
from aviary.core.configs import BertConfig
from aviary.core.outputs import resolve_output_flags
from aviary.pt.modeling_utils import (
    BaseModelOutputWithPoolingAndCrossAttentions,
    BertForPreTrainingOutput,
    CausalLMOutputWithCrossAttentions,
    LayerStack,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    NextSentencePredictorOutput,
    PreTrainedModel,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
    causal_lm_loss,
    check_ids,
    classification_loss,
    classifier_dropout,
    expand_head_mask,
    extended_attention_mask,
    get_activation,
    masked_lm_loss,
    sequence_classification_loss,
    span_outputs,
    token_classification_loss,
)


class BertEmbeddings(nn.Module):
    """Word (times sqrt(H) with BigBird's `rescale_embeddings`) + token-type (+ absolute position)
    embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.position_embedding_type = getattr(config, "position_embedding_type", "absolute")
        self.rescale_embeddings = getattr(config, "rescale_embeddings", False)
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
        if self.position_embedding_type == "absolute":
            embeddings = embeddings + self.position_embeddings(position_ids)
        return self.normalize(embeddings)

    def normalize(self, embeddings: torch.Tensor) -> torch.Tensor:
        """LayerNorm, then dropout (BigBird swaps the two)."""
        return self.dropout(self.LayerNorm(embeddings))


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention, with optional relative position terms and a
    key/value cache for decoding."""

    def __init__(
        self,
        config: BertConfig,
        position_embedding_type: str | None = None,
        layer_index: int = 0,
    ) -> None:
        super().__init__()
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        bias = getattr(config, "use_bias", True)  # BigBird's configs can drop the biases
        self.query = nn.Linear(config.hidden_size, self.all_head_size, bias=bias)
        self.key = nn.Linear(config.hidden_size, self.all_head_size, bias=bias)
        self.value = nn.Linear(config.hidden_size, self.all_head_size, bias=bias)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self.position_embedding_type = position_embedding_type or getattr(
            config, "position_embedding_type", "absolute"
        )
        if self.position_embedding_type in ("relative_key", "relative_key_query"):
            self.max_position_embeddings = config.max_position_embeddings
            self.distance_embedding = nn.Embedding(
                2 * config.max_position_embeddings - 1, self.attention_head_size
            )
        self.is_decoder = config.is_decoder
        self.layer_index = layer_index
        self.attn_implementation = "sdpa"

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        x = x.view(batch, length, self.num_attention_heads, self.attention_head_size)
        return x.transpose(1, 2)  # [B, N, L, D]

    def merge_heads(self, context: torch.Tensor) -> torch.Tensor:
        batch, _, length, _ = context.shape
        return context.transpose(1, 2).reshape(batch, length, self.all_head_size)  # [B, L, H]

    def relative_position_scores(
        self, query: torch.Tensor, key: torch.Tensor, past_length: int
    ) -> torch.Tensor:
        """Scores from the learned distance embeddings, `[B, N, Q, K]` (before scaling)."""
        query_length, key_length = query.shape[2], key.shape[2]
        # Query i sits at position past_length + i (the reference assumes one-token steps).
        query_pos = torch.arange(past_length, past_length + query_length, device=query.device)
        key_pos = torch.arange(key_length, device=query.device)
        distance = query_pos[:, None] - key_pos[None, :]  # [Q, K]
        table = self.distance_embedding(distance + self.max_position_embeddings - 1)
        table = table.to(query.dtype)  # [Q, K, D]
        scores = torch.einsum("bnqd,qkd->bnqk", query, table)
        if self.position_embedding_type == "relative_key_query":
            scores = scores + torch.einsum("bnkd,qkd->bnqk", key, table)
        return scores

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        past_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, ...] | None]:
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
                past_length = past_key_value[0].shape[2]
                key = torch.cat([past_key_value[0], key], dim=2)  # [B, N, K, D]
                value = torch.cat([past_key_value[1], value], dim=2)
        present = (key, value) if self.is_decoder else None

        relative = self.position_embedding_type != "absolute"
        eager = (
            self.attn_implementation == "eager"
            or output_attentions
            or head_mask is not None
            or relative
        )
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
            if relative:
                scores = scores + self.relative_position_scores(query, key, past_length)
            scores = scores / math.sqrt(self.attention_head_size)
            if attention_mask is not None:
                scores = scores + attention_mask
            probs = self.dropout(torch.softmax(scores, dim=-1))
            if head_mask is not None:
                probs = probs * head_mask
            context = torch.matmul(probs, value)  # [B, N, Q, D]
        return self.merge_heads(context), (probs if output_attentions else None), present


class BertSelfOutput(nn.Module):
    """Attention output projection, dropout, residual and LayerNorm."""

    def __init__(self, config: BertConfig, input_size: int | None = None) -> None:
        super().__init__()
        self.dense = nn.Linear(input_size or config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class BertAttention(nn.Module):
    """Self- or cross-attention followed by its output block."""

    # The attention kernel; BigBird swaps in its block-sparse dispatch.
    self_attention_class = BertSelfAttention

    def __init__(
        self,
        config: BertConfig,
        position_embedding_type: str | None = None,
        layer_index: int = 0,
    ) -> None:
        super().__init__()
        self.self = self.self_attention_class(config, position_embedding_type, layer_index)
        self.output = BertSelfOutput(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        past_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
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
            output_attentions,
            **attention_inputs,
        )
        return self.output(context, hidden_states), probs, present


class BertIntermediate(nn.Module):
    """First feed-forward projection and activation."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = get_activation(config.hidden_act)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(hidden_states))


class BertOutput(BertSelfOutput):
    """Second feed-forward projection, dropout, residual and LayerNorm: the layers and the
    computation of `BertSelfOutput`, from the intermediate size."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config, config.intermediate_size)


class BertLayer(nn.Module):
    """Self-attention, optional cross-attention (decoders), feed-forward."""

    attention_class = BertAttention

    def __init__(self, config: BertConfig, layer_index: int = 0) -> None:
        super().__init__()
        self.attention = self.attention_class(config, layer_index=layer_index)
        self.is_decoder = config.is_decoder
        self.add_cross_attention = config.add_cross_attention
        if self.add_cross_attention:
            if not self.is_decoder:
                raise ValueError("add_cross_attention=True needs is_decoder=True")
            self.crossattention = self.attention_class(
                config, position_embedding_type="absolute", layer_index=layer_index
            )
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        past_key_value: tuple[torch.Tensor, ...] | None = None,
        output_attentions: bool = False,
        **attention_inputs,
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
            **attention_inputs,
        )
        cross_probs = None
        if self.is_decoder and encoder_hidden_states is not None:
            if not self.add_cross_attention:
                raise ValueError(
                    "encoder_hidden_states were given, but the model has no cross-attention "
                    "layers: build it with add_cross_attention=True"
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


class BertEncoder(LayerStack):
    """The stack of layers; collects hidden states, attentions and the cache."""

    layer_class = BertLayer

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.layer = nn.ModuleList(
            [self.layer_class(config, layer_index=i) for i in range(config.num_hidden_layers)]
        )

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
            hidden_states, self_probs, cross_probs, present = self.run_layer(
                layer,
                hidden_states,
                attention_mask,
                head_masks[i],
                encoder_hidden_states,
                encoder_attention_mask,
                past,
                output_attentions,
                **attention_inputs,
            )
            if use_cache:
                presents = (*presents, present)
            if output_attentions:
                all_attentions = (*all_attentions, self_probs)
                if all_cross_attentions is not None:
                    all_cross_attentions = (*all_cross_attentions, cross_probs)
            if output_hidden_states:
                all_hidden_states = (*all_hidden_states, hidden_states)
        return hidden_states, presents, all_hidden_states, all_attentions, all_cross_attentions


class BertPooler(nn.Module):
    """Dense + tanh over the first ([CLS]) token."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden_states[:, 0]))


class BertPredictionHeadTransform(nn.Module):
    """Dense, activation and LayerNorm before the vocabulary projection."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = get_activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class BertLMPredictionHead(nn.Module):
    """Vocabulary logits; the decoder weight is tied to the word embeddings by the model."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.decoder.bias = self.bias  # one tensor, stored as `predictions.bias`

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden_states))


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(config)

    def forward(self, sequence_output: torch.Tensor) -> torch.Tensor:
        return self.predictions(sequence_output)


class BertOnlyNSPHead(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, pooled_output: torch.Tensor) -> torch.Tensor:
        return self.seq_relationship(pooled_output)


class BertPreTrainingHeads(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, sequence_output: torch.Tensor, pooled_output: torch.Tensor):
        return self.predictions(sequence_output), self.seq_relationship(pooled_output)


class BertPreTrainedModel(PreTrainedModel):
    """Base of the BERT classes: config class, checkpoint prefix, the backbone of the heads.

    Every head builds `base_model_class` (`BertModel`) as `self.bert`; heads that do not read the
    pooled output build it without the pooler, unless `pooler_in_every_head` (BigBird's
    checkpoints store the pooler with every head). A head whose inputs are the encoder's plus
    `labels` uses `forward` below and writes only `head(outputs, labels, return_dict)`; the
    others keep their own forward (the reference's signature) and end in their `head` where they
    can.
    """

    config_class = BertConfig
    base_model_prefix = "bert"
    pooler_in_every_head = False

    def build_base_model(self, add_pooling_layer: bool = True) -> BertModel:
        add_pooling_layer = add_pooling_layer or self.pooler_in_every_head
        return self.base_model_class(self.config, add_pooling_layer=add_pooling_layer)

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
        """The call of the heads whose inputs are the encoder's plus `labels`: the backbone
        once, then the head's own math, loss and output, `head(outputs, labels, return_dict)`."""
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


class BertModel(BertPreTrainedModel):
    """The bare BERT encoder (or decoder, with `is_decoder`), returning hidden states and the
    pooled first token."""

    # The modules of the model; BigBird swaps in its own.
    embeddings_class = BertEmbeddings
    encoder_class = BertEncoder
    pooler_class = BertPooler

    def __init__(
        self,
        config: BertConfig,
        add_pooling_layer: bool = True,
        attn_implementation: str | None = None,
    ) -> None:
        super().__init__(config, attn_implementation)
        self.embeddings = self.embeddings_class(config)
        self.encoder = self.encoder_class(config)
        self.pooler = self.pooler_class(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

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
        output_attentions, output_hidden_states = resolve_output_flags(
            config, output_attentions, output_hidden_states
        )
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

        embedding_output = self.embeddings(
            input_ids, token_type_ids, position_ids, inputs_embeds, past_length
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
            use_cache,
            output_attentions,
            output_hidden_states,
        )
        pooled_output = self.pooler(sequence_output) if self.pooler is not None else None
        return self.head_output(
            BaseModelOutputWithPoolingAndCrossAttentions,
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
        embedding_output: torch.Tensor,
        attention_mask: torch.Tensor | None,
        head_masks: list[torch.Tensor | None],
        encoder_hidden_states: torch.Tensor | None,
        encoder_attention_mask: torch.Tensor | None,
        past_key_values: tuple | None,
        use_cache: bool,
        output_attentions: bool,
        output_hidden_states: bool,
        **attention_inputs,
    ) -> tuple:
        """The encoder stack over `embedding_output` `[B, L, H]` with full attention:
        `(sequence_output, presents, hidden_states, attentions, cross_attentions)`.
        `attention_inputs` serve a swapped-in `encode` (BigBird's plan)."""
        config = self.config
        batch, length, _ = embedding_output.shape
        dtype, device = embedding_output.dtype, embedding_output.device
        past_length = past_key_values[0][0].shape[2] if past_key_values is not None else 0
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
        else:
            extended_mask = None  # no padding: lets SDPA use its fastest kernel

        encoder_extended_mask = None
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
        return self.encoder(
            embedding_output,
            extended_mask,
            head_masks,
            encoder_hidden_states,
            encoder_extended_mask,
            past_key_values,
            use_cache,
            output_attentions,
            output_hidden_states,
            **attention_inputs,
        )


BertPreTrainedModel.base_model_class = BertModel


class BertForPreTraining(BertPreTrainedModel):
    """BERT with the masked-LM and next-sentence-prediction heads used in pretraining."""

    tied_weights = TIED_LM_DECODER
    output_class = BertForPreTrainingOutput

    def __init__(self, config: BertConfig, attn_implementation: str | None = None) -> None:
        super().__init__(config, attn_implementation)
        self.bert = self.build_base_model()
        self.cls = BertPreTrainingHeads(config)
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
            outputs.last_hidden_state, outputs.pooler_output
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


class BertLMHeadModel(BertPreTrainedModel):
    """BERT as a causal (left-to-right) language model with `is_decoder=True` (else: warns)."""

    tied_weights = TIED_LM_DECODER

    def __init__(self, config: BertConfig, attn_implementation: str | None = None) -> None:
        super().__init__(config, attn_implementation)
        checks.warn_if_not_decoder(type(self).__name__, config)
        self.bert = self.build_base_model(add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
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
        past_key_values=None,
        use_cache=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
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
            past_key_values,
            use_cache,
            output_attentions,
            output_hidden_states,
            return_dict=True,
        )
        return self.head(outputs, labels, return_dict)

    def head(self, outputs, labels: torch.Tensor | None, return_dict: bool | None):
        logits = self.cls(outputs.last_hidden_state)
        loss = causal_lm_loss(logits, labels) if labels is not None else None
        return self.head_output(
            CausalLMOutputWithCrossAttentions, outputs, return_dict, loss=loss, logits=logits
        )


class BertForMaskedLM(BertPreTrainedModel):
    """BERT with the masked-language-modelling head."""

    tied_weights = TIED_LM_DECODER

    def __init__(self, config: BertConfig, attn_implementation: str | None = None) -> None:
        super().__init__(config, attn_implementation)
        self.bert = self.build_base_model(add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
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

    def head(self, outputs, labels: torch.Tensor | None, return_dict: bool | None):
        logits = self.cls(outputs.last_hidden_state)
        loss = masked_lm_loss(logits, labels) if labels is not None else None
        return self.head_output(MaskedLMOutput, outputs, return_dict, loss=loss, logits=logits)


class BertForNextSentencePrediction(BertPreTrainedModel):
    """BERT with the next-sentence-prediction head (label 1 = sentence B is random)."""

    def __init__(self, config: BertConfig, attn_implementation: str | None = None) -> None:
        super().__init__(config, attn_implementation)
        self.bert = self.build_base_model()
        self.cls = BertOnlyNSPHead(config)
        self.post_init()

    def head(self, outputs, labels: torch.Tensor | None, return_dict: bool | None):
        logits = self.cls(outputs.pooler_output)
        loss = classification_loss(logits, labels) if labels is not None else None
        return self.head_output(
            NextSentencePredictorOutput, outputs, return_dict, loss=loss, logits=logits
        )


class BertForSequenceClassification(BertPreTrainedModel):
    """BERT with a linear classification (or regression) head over the pooled output."""

    def __init__(self, config: BertConfig, attn_implementation: str | None = None) -> None:
        super().__init__(config, attn_implementation)
        self.num_labels = config.num_labels
        self.bert = self.build_base_model()
        self.dropout = classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def head(self, outputs, labels: torch.Tensor | None, return_dict: bool | None):
        logits = self.classifier(self.dropout(outputs.pooler_output))
        loss = None
        if labels is not None:
            loss = sequence_classification_loss(logits, labels, self.config)
        return self.head_output(
            SequenceClassifierOutput, outputs, return_dict, loss=loss, logits=logits
        )


class BertForMultipleChoice(BertPreTrainedModel):
    """BERT scoring each of C choices with a linear layer over its pooled output."""

    def __init__(self, config: BertConfig, attn_implementation: str | None = None) -> None:
        super().__init__(config, attn_implementation)
        self.bert = self.build_base_model()
        self.dropout = classifier_dropout(config)
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
        if input_ids is not None:
            checks.check_rank("input_ids", input_ids.shape, (3,))
            num_choices = input_ids.shape[1]
        else:
            checks.check_rank("inputs_embeds", inputs_embeds.shape, (4,))
            num_choices = inputs_embeds.shape[1]

        def flat(x):  # [B, C, L, ...] -> [B*C, L, ...]
            return None if x is None else x.reshape(-1, *x.shape[2:])

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
        logits = self.classifier(self.dropout(outputs.pooler_output)).view(-1, num_choices)
        loss = classification_loss(logits, labels) if labels is not None else None
        return self.head_output(
            MultipleChoiceModelOutput, outputs, return_dict, loss=loss, logits=logits
        )


class BertForTokenClassification(BertPreTrainedModel):
    """BERT with a linear classifier on every token (e.g. named entities)."""

    def __init__(self, config: BertConfig, attn_implementation: str | None = None) -> None:
        super().__init__(config, attn_implementation)
        self.num_labels = config.num_labels
        self.bert = self.build_base_model(add_pooling_layer=False)
        self.dropout = classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def head(self, outputs, labels: torch.Tensor | None, return_dict: bool | None):
        logits = self.classifier(self.dropout(outputs.last_hidden_state))
        loss = token_classification_loss(logits, labels) if labels is not None else None
        return self.head_output(
            TokenClassifierOutput, outputs, return_dict, loss=loss, logits=logits
        )


class BertForQuestionAnswering(BertPreTrainedModel):
    """BERT with a span head: start and end logits for every token."""

    def __init__(self, config: BertConfig, attn_implementation: str | None = None) -> None:
        super().__init__(config, attn_implementation)
        self.bert = self.build_base_model(add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
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
            QuestionAnsweringModelOutput,
            outputs,
            return_dict,
            **span_outputs(logits, start_positions, end_positions),
        )
