"""BigBirdPegasus in PyTorch: a BigBird encoder (block-sparse or full attention) and a
Pegasus-style full-attention decoder, for long-document summarisation.

Paper: Zaheer et al., "Big Bird: Transformers for Longer Sequences" (arXiv:2007.14062).

Both stacks are pre-LayerNorm (`x + Dropout(Sublayer(LN(x)))`) and end with a LayerNorm that the
checkpoints call `layernorm_embedding`; every LayerNorm has eps 1e-5. Word embeddings are shared by
the encoder, the decoder and (tied) the LM head, and scaled by sqrt(d_model) (`scale_embedding`);
each stack has its own learned position table, starting at position 0.

The encoder's self-attention is BigBird's (`aviary.pt.big_bird.BigBirdSelfAttention`). As in
`BigBirdModel`, the encoder's `aviary.core.block_sparse.BlockSparseController`
(`encoder.block_sparse`) decides once per forward whether the call runs block-sparse (padding the
input to a multiple of `block_size` with embedded pad tokens) or full attention (inputs of at most
`(5 + 2 r) * block_size` tokens), and the encoder never rewrites its modules. Deviations from the reference
library, on purpose:

* the reference's encoder ignores the attention mask after falling back to full attention on a
  short input (it passes block-sparse arguments to the full-attention module); aviary honours it,
  so padded and unpadded inputs give the same outputs on the real tokens;
* every per-token encoder output (`last_hidden_state`, `hidden_states`, `attentions`) is
  unpadded, not only the last hidden state;
* `head_mask` also applies in block-sparse mode (the reference ignores it there).

Shapes: B batch · S source (encoder) tokens · T target (decoder) tokens · H d_model · N heads ·
D head dim · V vocabulary. Attribute names are the reference's, so state-dict names are the
canonical checkpoint names.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from aviary.core import checks
from aviary.core.block_sparse import AttentionPlan, BlockSparseController, unpad_outputs
from aviary.core.configs import BigBirdPegasusConfig
from aviary.core.generation import GenerationConfig
from aviary.core.outputs import (
    as_encoder_output,
    resolve_output_flags,
    resolve_return_dict,
)
from aviary.pt.big_bird import BigBirdSelfAttention, block_sparse_inputs
from aviary.pt.big_bird_attention import BlockSparseIndices, BlockSparseModelMixin
from aviary.pt.generation import GenerationMixin
from aviary.pt.modeling_utils import (
    IGNORE_INDEX,
    BaseModelOutput,
    BaseModelOutputWithPastAndCrossAttentions,
    CausalLMOutputWithCrossAttentions,
    LayerStack,
    PreTrainedModel,
    Seq2SeqLMOutput,
    Seq2SeqModelOutput,
    Seq2SeqQuestionAnsweringModelOutput,
    Seq2SeqSequenceClassifierOutput,
    check_ids,
    expand_head_mask,
    extended_attention_mask,
    get_activation,
    masked_lm_loss,
    sequence_classification_loss,
    span_outputs,
)

# The reference builds every BigBirdPegasus LayerNorm with the framework default (no config field).
LAYER_NORM_EPS = 1e-5


def shift_tokens_right(
    input_ids: torch.Tensor, pad_token_id: int | None, decoder_start_token_id: int | None
) -> torch.Tensor:
    """Decoder inputs from labels: prepend `decoder_start_token_id`, drop the last token, and
    replace the ignored label -100 by `pad_token_id`. `[B, T]` -> `[B, T]`."""
    checks.check_decoder_start(pad_token_id, decoder_start_token_id)
    start = torch.full_like(input_ids[:, :1], decoder_start_token_id)
    shifted = torch.cat([start, input_ids[:, :-1]], dim=1)  # [B, T]
    return torch.where(shifted == IGNORE_INDEX, pad_token_id, shifted)


class BigBirdPegasusLearnedPositionalEmbedding(nn.Embedding):
    """Learned positions `past .. past + length - 1` (no offset)."""

    def forward(self, length: int, past_key_values_length: int = 0) -> torch.Tensor:
        checks.check_sequence_length(length, past_key_values_length, self.num_embeddings)
        positions = torch.arange(
            past_key_values_length, past_key_values_length + length, device=self.weight.device
        )
        return super().forward(positions)  # [L, H]


class BigBirdPegasusScaledWordEmbedding(nn.Embedding):
    """Word embeddings multiplied by `embed_scale` (sqrt(d_model) with `scale_embedding`)."""

    def __init__(
        self, num_embeddings: int, embedding_dim: int, padding_idx: int, embed_scale: float = 1.0
    ) -> None:
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx)
        self.embed_scale = embed_scale

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return super().forward(input_ids) * self.embed_scale


class BigBirdPegasusEncoderAttention(nn.Module):
    """BigBird self-attention (`self`: full or block-sparse, as the plan says) and the output
    projection (`output`, a bare Linear)."""

    def __init__(self, config: BigBirdPegasusConfig, layer_index: int = 0) -> None:
        super().__init__()
        self.self = BigBirdSelfAttention(config, layer_index=layer_index)
        self.output = nn.Linear(config.d_model, config.d_model, bias=config.use_bias)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        block_sparse: tuple[BlockSparseIndices, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        context, probs, _ = self.self(
            hidden_states, attention_mask, head_mask, None, None, output_attentions, block_sparse
        )
        return self.output(context), probs


class BigBirdPegasusDecoderAttention(nn.Module):
    """Full multi-head attention of the decoder: causal self-attention or cross-attention on the
    encoder output, with a key/value cache."""

    def __init__(
        self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True
    ) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim={embed_dim} is not a multiple of num_heads={num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim**-0.5
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.attn_implementation = "sdpa"

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)  # [B, N, L, D]

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_value_states: torch.Tensor | None = None,
        past_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
        layer_head_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, torch.Tensor]]:
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
                key = torch.cat([past_key_value[0], key], dim=2)  # [B, N, K, D]
                value = torch.cat([past_key_value[1], value], dim=2)
        present = (key, value)

        eager = (
            self.attn_implementation == "eager" or output_attentions or layer_head_mask is not None
        )
        probs = None
        if not eager:
            # scaled_dot_product_attention scales by 1/sqrt(D) = self.scaling.
            context = nn.functional.scaled_dot_product_attention(
                query,
                key,
                value,
                attn_mask=attention_mask,
                dropout_p=self.dropout.p if self.training else 0.0,
            )
        else:
            scores = torch.matmul(query * self.scaling, key.transpose(-1, -2))  # [B, N, Q, K]
            if attention_mask is not None:
                scores = scores + attention_mask
            probs = torch.softmax(scores, dim=-1)
            if layer_head_mask is not None:
                probs = probs * layer_head_mask
            context = torch.matmul(self.dropout(probs), value)  # [B, N, Q, D]
        batch, _, length, _ = context.shape
        context = context.transpose(1, 2).reshape(batch, length, self.embed_dim)  # [B, Q, H]
        return self.out_proj(context), (probs if output_attentions else None), present


class BigBirdPegasusEncoderLayer(nn.Module):
    """Pre-LN encoder layer: BigBird self-attention, then the feed-forward block."""

    def __init__(self, config: BigBirdPegasusConfig, layer_index: int = 0) -> None:
        super().__init__()
        self.embed_dim = config.d_model
        self.self_attn = BigBirdPegasusEncoderAttention(config, layer_index)
        self.self_attn_layer_norm = nn.LayerNorm(self.embed_dim, eps=LAYER_NORM_EPS)
        self.dropout = nn.Dropout(config.dropout)
        self.activation_fn = get_activation(config.activation_function)
        self.fc1 = nn.Linear(self.embed_dim, config.encoder_ffn_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, self.embed_dim)
        self.final_layer_norm = nn.LayerNorm(self.embed_dim, eps=LAYER_NORM_EPS)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        layer_head_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        block_sparse: tuple[BlockSparseIndices, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        residual = hidden_states
        attention_output, probs = self.self_attn(
            self.self_attn_layer_norm(hidden_states),
            attention_mask,
            layer_head_mask,
            output_attentions,
            block_sparse,
        )
        hidden_states = residual + self.dropout(attention_output)

        # The reference applies no activation dropout in the encoder's feed-forward block.
        residual = hidden_states
        hidden_states = self.activation_fn(self.fc1(self.final_layer_norm(hidden_states)))
        hidden_states = residual + self.dropout(self.fc2(hidden_states))
        if hidden_states.dtype == torch.float16:
            # Keep float16 activations finite, as the reference does.
            clamp_value = torch.finfo(torch.float16).max - 1000
            hidden_states = torch.clamp(hidden_states, min=-clamp_value, max=clamp_value)
        return hidden_states, probs


class BigBirdPegasusDecoderLayer(nn.Module):
    """Pre-LN decoder layer: causal self-attention, cross-attention, feed-forward block."""

    def __init__(self, config: BigBirdPegasusConfig) -> None:
        super().__init__()
        self.embed_dim = config.d_model
        self.self_attn = BigBirdPegasusDecoderAttention(
            self.embed_dim,
            config.decoder_attention_heads,
            dropout=config.attention_dropout,
            bias=config.use_bias,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.activation_fn = get_activation(config.activation_function)
        self.activation_dropout = nn.Dropout(config.activation_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(self.embed_dim, eps=LAYER_NORM_EPS)
        self.encoder_attn = BigBirdPegasusDecoderAttention(
            self.embed_dim,
            config.decoder_attention_heads,
            dropout=config.attention_dropout,
            bias=config.use_bias,
        )
        self.encoder_attn_layer_norm = nn.LayerNorm(self.embed_dim, eps=LAYER_NORM_EPS)
        self.fc1 = nn.Linear(self.embed_dim, config.decoder_ffn_dim)
        self.fc2 = nn.Linear(config.decoder_ffn_dim, self.embed_dim)
        self.final_layer_norm = nn.LayerNorm(self.embed_dim, eps=LAYER_NORM_EPS)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        layer_head_mask: torch.Tensor | None = None,
        cross_attn_layer_head_mask: torch.Tensor | None = None,
        past_key_value: tuple[torch.Tensor, ...] | None = None,
        output_attentions: bool = False,
    ):
        # The cache of a layer holds (self key, self value[, cross key, cross value]).
        self_past = past_key_value[:2] if past_key_value is not None else None
        residual = hidden_states
        attention_output, self_probs, present = self.self_attn(
            self.self_attn_layer_norm(hidden_states),
            None,
            self_past,
            attention_mask,
            layer_head_mask,
            output_attentions,
        )
        hidden_states = residual + self.dropout(attention_output)

        cross_probs = None
        if encoder_hidden_states is not None:
            cross_past = past_key_value[2:4] if past_key_value is not None else ()
            residual = hidden_states
            attention_output, cross_probs, cross_present = self.encoder_attn(
                self.encoder_attn_layer_norm(hidden_states),
                encoder_hidden_states,
                cross_past or None,
                encoder_attention_mask,
                cross_attn_layer_head_mask,
                output_attentions,
            )
            hidden_states = residual + self.dropout(attention_output)
            present = present + cross_present

        residual = hidden_states
        hidden_states = self.activation_fn(self.fc1(self.final_layer_norm(hidden_states)))
        hidden_states = self.fc2(self.activation_dropout(hidden_states))
        hidden_states = residual + self.dropout(hidden_states)
        return hidden_states, self_probs, cross_probs, present


class BigBirdPegasusClassificationHead(nn.Module):
    """Sentence head: dropout, dense, tanh, dropout, projection to the labels."""

    def __init__(
        self, input_dim: int, inner_dim: int, num_classes: int, pooler_dropout: float
    ) -> None:
        super().__init__()
        self.dense = nn.Linear(input_dim, inner_dim)
        self.dropout = nn.Dropout(pooler_dropout)
        self.out_proj = nn.Linear(inner_dim, num_classes)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = torch.tanh(self.dense(self.dropout(hidden_states)))
        return self.out_proj(self.dropout(hidden_states))


class BigBirdPegasusPreTrainedModel(BlockSparseModelMixin, PreTrainedModel):
    """Base of the BigBirdPegasus classes: config class, checkpoint prefix, encoder settings."""

    config_class = BigBirdPegasusConfig
    base_model_prefix = "model"
    # "flex_attention": block-sparse encoder calls run BigBird's compiled FlexAttention kernel
    # (inference); the decoder and full-attention calls use SDPA.
    attn_implementations = ("sdpa", "eager", "flex_attention")

    def get_encoder(self) -> BigBirdPegasusEncoder:
        encoder = getattr(self.base_model, "encoder", None)
        if encoder is None:
            raise ValueError(f"{type(self).__name__} has no encoder")
        return encoder

    def get_decoder(self) -> BigBirdPegasusDecoder:
        return self.base_model.decoder

    def block_sparse_controller(self) -> BlockSparseController:
        """The encoder's controller: the block-sparse settings are the encoder's."""
        return self.get_encoder().block_sparse


def _embed_scale(config: BigBirdPegasusConfig) -> float:
    return math.sqrt(config.d_model) if config.scale_embedding else 1.0


def _word_embedding(config: BigBirdPegasusConfig) -> BigBirdPegasusScaledWordEmbedding:
    return BigBirdPegasusScaledWordEmbedding(
        config.vocab_size, config.d_model, config.pad_token_id, _embed_scale(config)
    )


class BigBirdPegasusStack(LayerStack):
    """What the encoder and the decoder stacks share: dropout, the word embeddings (the model's
    shared table, or their own), the learned positions, the layers, the final LayerNorm
    (`layernorm_embedding`), the checks of their input ids or embeddings, and LayerDrop."""

    def __init__(
        self,
        config: BigBirdPegasusConfig,
        embed_tokens: BigBirdPegasusScaledWordEmbedding | None,
        layers: list[nn.Module],
        layerdrop: float,
    ) -> None:
        super().__init__()
        self.config = config
        self.dropout = nn.Dropout(config.dropout)
        self.layerdrop = layerdrop
        self.padding_idx = config.pad_token_id
        # The model passes its shared table: one module, listed under both names.
        self.embed_tokens = embed_tokens if embed_tokens is not None else _word_embedding(config)
        self.embed_positions = BigBirdPegasusLearnedPositionalEmbedding(
            config.max_position_embeddings, config.d_model
        )
        self.layers = nn.ModuleList(layers)
        self.layernorm_embedding = nn.LayerNorm(config.d_model, eps=LAYER_NORM_EPS)

    def embed_inputs(
        self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None, prefix: str = ""
    ) -> torch.Tensor:
        """The word embeddings of `input_ids` `[B, L]`, or the given `inputs_embeds`
        `[B, L, H]`; `prefix` starts the names in the error messages."""
        checks.check_exactly_one_input(input_ids is not None, inputs_embeds is not None)
        if input_ids is not None:
            checks.check_rank(f"{prefix}input_ids", input_ids.shape, (2,))
            check_ids(f"{prefix}input_ids", input_ids, self.embed_tokens.num_embeddings)
            return self.embed_tokens(input_ids)
        checks.check_rank(f"{prefix}inputs_embeds", inputs_embeds.shape, (3,))
        return inputs_embeds

    def layer_dropped(self) -> bool:
        """LayerDrop (training only): whether the next layer is skipped for the whole batch."""
        return self.training and self.layerdrop > 0 and bool(torch.rand([]) < self.layerdrop)


class BigBirdPegasusEncoder(BigBirdPegasusStack):
    """The encoder stack: embeddings, BigBird layers, final LayerNorm (`layernorm_embedding`)."""

    def __init__(
        self,
        config: BigBirdPegasusConfig,
        embed_tokens: BigBirdPegasusScaledWordEmbedding | None = None,
    ) -> None:
        layers = [BigBirdPegasusEncoderLayer(config, i) for i in range(config.encoder_layers)]
        super().__init__(config, embed_tokens, layers, config.encoder_layerdrop)
        self.max_source_positions = config.max_position_embeddings
        # Attention type, random-block policy and the plan of each call (an encoder: block-sparse
        # attention is allowed).
        self.block_sparse = BlockSparseController(config, decoder=False)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ):
        config = self.config
        output_attentions, output_hidden_states = resolve_output_flags(
            config, output_attentions, output_hidden_states
        )

        inputs_embeds = self.embed_inputs(input_ids, inputs_embeds)
        batch, length = inputs_embeds.shape[:2]
        if attention_mask is not None:
            checks.check_same_shape(
                "attention_mask", attention_mask.shape, (batch, length), "the input"
            )
        hidden_states = self.dropout(inputs_embeds + self.embed_positions(length))  # [B, S, H]
        dtype = hidden_states.dtype
        head_masks = expand_head_mask(
            head_mask, len(self.layers), config.encoder_attention_heads, dtype
        )

        # One plan for every layer of this call (None: full attention, with the mask honoured).
        plan = self.block_sparse.plan(length, training=self.training)
        block_sparse = None
        extended_mask = None
        if plan is not None:
            hidden_states, block_sparse = block_sparse_inputs(
                plan, hidden_states, attention_mask, self.pad
            )
        elif attention_mask is not None and (
            torch.compiler.is_compiling() or not bool(torch.all(attention_mask == 1))
        ):
            extended_mask = extended_attention_mask(attention_mask, length, dtype, causal=False)

        all_hidden_states = () if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for i, layer in enumerate(self.layers):
            if output_hidden_states:
                all_hidden_states = (*all_hidden_states, hidden_states)
            probs = None
            if not self.layer_dropped():
                hidden_states, probs = self.run_layer(
                    layer,
                    hidden_states,
                    extended_mask,
                    head_masks[i],
                    output_attentions,
                    block_sparse,
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
        output = BaseModelOutput(
            last_hidden_state=hidden_states,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )
        return output if resolve_return_dict(config, return_dict) else output.to_tuple()

    def pad(
        self, hidden_states: torch.Tensor, key_keep: torch.Tensor, plan: AttentionPlan
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append `plan.pad_length` embedded pad tokens (word embedding only, no position, as the
        reference) and masked-out keep entries."""
        batch = hidden_states.shape[0]
        pad_ids = hidden_states.new_full(
            (batch, plan.pad_length), self.padding_idx, dtype=torch.long
        )
        pad_embeddings = self.embed_tokens(pad_ids).to(hidden_states.dtype)  # [B, pad, H]
        hidden_states = torch.cat([hidden_states, pad_embeddings], dim=1)  # [B, padded S, H]
        key_keep = nn.functional.pad(key_keep, (0, plan.pad_length), value=0.0)
        return hidden_states, key_keep


class BigBirdPegasusDecoder(BigBirdPegasusStack):
    """The decoder stack: embeddings, full-attention layers with cross-attention, final
    LayerNorm (`layernorm_embedding`)."""

    def __init__(
        self,
        config: BigBirdPegasusConfig,
        embed_tokens: BigBirdPegasusScaledWordEmbedding | None = None,
    ) -> None:
        layers = [BigBirdPegasusDecoderLayer(config) for _ in range(config.decoder_layers)]
        super().__init__(config, embed_tokens, layers, config.decoder_layerdrop)
        self.max_target_positions = config.max_position_embeddings

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        cross_attn_head_mask: torch.Tensor | None = None,
        past_key_values: tuple | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ):
        config = self.config
        output_attentions, output_hidden_states = resolve_output_flags(
            config, output_attentions, output_hidden_states
        )
        use_cache = config.use_cache if use_cache is None else use_cache
        if self.gradient_checkpointing and self.training:
            use_cache = False  # the cache would hold activations checkpointing means to drop

        inputs_embeds = self.embed_inputs(input_ids, inputs_embeds, "decoder ")
        batch, length = inputs_embeds.shape[:2]
        past_length = past_key_values[0][0].shape[2] if past_key_values is not None else 0
        positions = self.embed_positions(length, past_length)  # [T, H]
        hidden_states = self.dropout(inputs_embeds + positions)  # [B, T, H]
        dtype = hidden_states.dtype

        # Causal self-attention mask [B, 1, T, past + T]; a single new token sees every key.
        self_mask = None
        if attention_mask is not None:
            checks.check_attention_mask_shape(
                attention_mask.shape, batch, length, past_length + length, "decoder attention_mask"
            )
        if attention_mask is not None or length > 1:
            keep = attention_mask
            if keep is None:
                keep = torch.ones(batch, past_length + length, device=hidden_states.device)
            self_mask = extended_attention_mask(keep, length, dtype, causal=True)
        cross_mask = None
        if encoder_hidden_states is not None:
            checks.check_rank("encoder_hidden_states", encoder_hidden_states.shape, (3,))
            if encoder_attention_mask is not None:
                checks.check_attention_mask_shape(
                    encoder_attention_mask.shape,
                    batch,
                    length,
                    encoder_hidden_states.shape[1],
                    "encoder attention_mask",
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
            past = past_key_values[i] if past_key_values is not None else None
            self_probs = cross_probs = present = None
            if not self.layer_dropped():
                hidden_states, self_probs, cross_probs, present = self.run_layer(
                    layer,
                    hidden_states,
                    self_mask,
                    encoder_hidden_states,
                    cross_mask,
                    head_masks[i],
                    cross_head_masks[i],
                    past,
                    output_attentions,
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

        output = BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden_states,
            past_key_values=presents,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
            cross_attentions=all_cross_attentions,
        )
        return output if resolve_return_dict(config, return_dict) else output.to_tuple()


class BigBirdPegasusModel(BigBirdPegasusPreTrainedModel):
    """The bare encoder-decoder, returning the decoder's hidden states and the encoder's."""

    def __init__(
        self, config: BigBirdPegasusConfig, attn_implementation: str | None = None
    ) -> None:
        super().__init__(config, attn_implementation)
        self.shared = _word_embedding(config)
        self.encoder = BigBirdPegasusEncoder(config, self.shared)
        self.decoder = BigBirdPegasusDecoder(config, self.shared)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        decoder_head_mask: torch.Tensor | None = None,
        cross_attn_head_mask: torch.Tensor | None = None,
        encoder_outputs=None,
        past_key_values: tuple | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
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
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                return_dict=True,
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
            past_key_values=past_key_values,
            inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        return self.head_output(
            Seq2SeqModelOutput,
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


class BigBirdPegasusForConditionalGeneration(GenerationMixin, BigBirdPegasusPreTrainedModel):
    """BigBirdPegasus with the language-modelling head, for summarisation; see `generate`."""

    # The LM head shares the word-embedding matrix (when `tie_word_embeddings`, the default).
    tied_weights = (("lm_head.weight", "model.shared.weight"),)

    def __init__(
        self, config: BigBirdPegasusConfig, attn_implementation: str | None = None
    ) -> None:
        super().__init__(config, attn_implementation)
        self.model = BigBirdPegasusModel(config)
        # A persistent buffer (stored in checkpoints, not trained), as the reference.
        self.register_buffer("final_logits_bias", torch.zeros(1, config.vocab_size))
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.post_init()
        self.generation_config = GenerationConfig.from_model_config(config)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.shared

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """The decoder inputs the model builds from `labels` (`shift_tokens_right`)."""
        return shift_tokens_right(
            labels, self.config.pad_token_id, self.config.decoder_start_token_id
        )

    def forward(
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
        )
        lm_logits = self.lm_head(outputs.last_hidden_state) + self.final_logits_bias  # [B, T, V]
        loss = masked_lm_loss(lm_logits, labels) if labels is not None else None
        return self.head_output(Seq2SeqLMOutput, outputs, return_dict, loss=loss, logits=lm_logits)


class BigBirdPegasusForSequenceClassification(BigBirdPegasusPreTrainedModel):
    """BigBirdPegasus with a classification (or regression) head on the decoder state at the
    last end-of-sequence token of the input."""

    def __init__(
        self, config: BigBirdPegasusConfig, attn_implementation: str | None = None
    ) -> None:
        super().__init__(config, attn_implementation)
        self.model = BigBirdPegasusModel(config)
        self.classification_head = BigBirdPegasusClassificationHead(
            config.d_model, config.d_model, config.num_labels, config.classifier_dropout
        )
        self.post_init()

    def forward(
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
            Seq2SeqSequenceClassifierOutput, outputs, return_dict, loss=loss, logits=logits
        )

    def _last_eos_states(self, input_ids: torch.Tensor, hidden_states: torch.Tensor):
        """The decoder state at the last `eos_token_id` of each row of `input_ids`; every row
        must hold the same (non-zero) number of them, as the reference requires."""
        eos = self.config.eos_token_id
        eos_mask = input_ids == eos  # [B, S]
        checks.check_eos_positions(
            input_ids.shape, hidden_states.shape, eos_mask.sum(dim=1).tolist(), eos
        )
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)  # [S]
        last_eos = torch.argmax(eos_mask.long() * positions, dim=1)  # [B]
        return hidden_states[torch.arange(input_ids.shape[0], device=input_ids.device), last_eos]


class BigBirdPegasusForQuestionAnswering(BigBirdPegasusPreTrainedModel):
    """BigBirdPegasus with a span head (start/end logits) on the decoder's hidden states."""

    def __init__(
        self, config: BigBirdPegasusConfig, attn_implementation: str | None = None
    ) -> None:
        super().__init__(config, attn_implementation)
        self.model = BigBirdPegasusModel(config)
        self.qa_outputs = nn.Linear(config.d_model, 2)
        self.post_init()

    def forward(
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
        )
        logits = self.qa_outputs(outputs.last_hidden_state)  # [B, T, 2]
        return self.head_output(
            Seq2SeqQuestionAnsweringModelOutput,
            outputs,
            return_dict,
            **span_outputs(logits, start_positions, end_positions),
        )


class BigBirdPegasusDecoderWrapper(nn.Module):
    """Holds the decoder as `decoder`, so that a decoder-only model has the checkpoint names
    `model.decoder.*` of the encoder-decoder."""

    def __init__(self, config: BigBirdPegasusConfig) -> None:
        super().__init__()
        self.decoder = BigBirdPegasusDecoder(config)

    def forward(self, *args, **kwargs):
        return self.decoder(*args, **kwargs)


class BigBirdPegasusForCausalLM(GenerationMixin, BigBirdPegasusPreTrainedModel):
    """The BigBirdPegasus decoder alone as a causal language model (the config is used with
    `is_decoder=True, is_encoder_decoder=False`); cross-attention runs when
    `encoder_hidden_states` are given. Unlike the BERT-style causal LMs, the loss does not shift
    the labels (as the reference): `labels[:, t]` is the target of position t."""

    tied_weights = (("lm_head.weight", "model.decoder.embed_tokens.weight"),)

    def __init__(
        self, config: BigBirdPegasusConfig, attn_implementation: str | None = None
    ) -> None:
        config = config.copy(is_decoder=True, is_encoder_decoder=False)
        super().__init__(config, attn_implementation)
        self.model = BigBirdPegasusDecoderWrapper(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.post_init()
        self.generation_config = GenerationConfig.from_model_config(config)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.decoder.embed_tokens

    def forward(
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
    ):
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
        )
        logits = self.lm_head(outputs.last_hidden_state)  # [B, T, V]
        # As the reference: labels are compared position by position with the logits (not
        # shifted here), so pass the next tokens as labels.
        loss = masked_lm_loss(logits, labels) if labels is not None else None
        return self.head_output(
            CausalLMOutputWithCrossAttentions, outputs, return_dict, loss=loss, logits=logits
        )
