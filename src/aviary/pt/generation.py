"""Greedy and beam-search generation for the PyTorch models (`GenerationMixin.generate`).

An encoder-decoder model runs its encoder once; the decoder then produces one token per step from
its key/value cache (the new token is the only decoder input after the first step). Beam search
reorders the self-attention part of the cache after each step; the cross-attention keys and values
are the same for every beam of an example and stay as they are. The bookkeeping that is not
tensor work (settings, input checks, beam bookkeeping) is `aviary.core.generation`, shared by
the three frameworks.

A model using this mixin provides `forward` with the reference's arguments, `get_encoder()` (for
encoder-decoders) and a `generation_config` attribute.

Shapes: B batch · K beams · P prompt length · T current length · V vocabulary.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from aviary.core.generation import (
    BeamSearch,
    GenerationConfig,
    GenerationConfigMixin,
    check_generation_inputs,
    reorder_key_value_cache,
    resolve_generation_settings,
)


class GenerationMixin(GenerationConfigMixin):
    """`generate()` for PyTorch models with a language-modelling head (greedy and beams)."""

    # -- the cache ------------------------------------------------------------------------------
    def reorder_cache(self, past_key_values: tuple, beam_idx: torch.Tensor) -> tuple:
        """The cache of the beams `beam_idx` (long `[B * K]`, rows of the current beams); see
        `aviary.core.generation.reorder_key_value_cache`."""
        encoder_decoder = bool(getattr(self.config, "is_encoder_decoder", False))
        return reorder_key_value_cache(
            past_key_values, lambda t: t.index_select(0, beam_idx.to(t.device)), encoder_decoder
        )

    # -- generate -------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        *,
        generation_config: GenerationConfig | None = None,
        encoder_outputs: Any = None,
        **settings: Any,
    ) -> torch.Tensor:
        """Generate token ids: greedy (`num_beams=1`) or beam search.

        `settings` (`max_new_tokens`, `num_beams`, `eos_token_id`, ...) override
        `generation_config` (default: the model's, built from its config and
        `generation_config.json`); see `resolve_generation_settings`. Returns long
        `[B * num_return_sequences, T]`: for an encoder-decoder the decoder sequences, starting
        with `decoder_start_token_id`; for a decoder-only model the prompt followed by the new
        tokens. A sequence that ended with `eos_token_id` is padded with `pad_token_id`.
        """
        gen = resolve_generation_settings(self.generation_config, generation_config, **settings)
        sequences, model_kwargs = self._prepare_generation(
            input_ids, attention_mask, encoder_outputs, gen
        )
        if gen.num_beams == 1:
            return self._greedy_search(sequences, model_kwargs, gen)
        return self._beam_search(sequences, model_kwargs, gen)

    def _prepare_generation(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        encoder_outputs: Any,
        gen: GenerationConfig,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """The starting sequences `[B * K, P]` and the per-step model arguments (beams of one
        example are adjacent rows)."""
        k = gen.num_beams
        encoder_decoder = bool(getattr(self.config, "is_encoder_decoder", False))
        input_shape = None if input_ids is None else tuple(input_ids.shape)
        check_generation_inputs(input_shape, encoder_decoder, encoder_outputs is not None)
        if attention_mask is None and input_ids is not None:
            attention_mask = self._infer_attention_mask(input_ids, gen)

        if not encoder_decoder:
            sequences = input_ids.repeat_interleave(k, dim=0)  # [B * K, P]
            return sequences, {"attention_mask": attention_mask.repeat_interleave(k, dim=0)}

        if encoder_outputs is None:
            encoder_outputs = self.get_encoder()(
                input_ids=input_ids, attention_mask=attention_mask, return_dict=True
            )
        encoder_states = encoder_outputs[0]  # [B, S, H]
        batch = encoder_states.shape[0]
        sequences = torch.full(
            (batch * k, 1), gen.decoder_start(), dtype=torch.long, device=encoder_states.device
        )
        model_kwargs = {
            # (last_hidden_state,) as the tuple form of the encoder output: [B * K, S, H]
            "encoder_outputs": (encoder_states.repeat_interleave(k, dim=0),),
            "attention_mask": (
                None if attention_mask is None else attention_mask.repeat_interleave(k, dim=0)
            ),
        }
        return sequences, model_kwargs

    @staticmethod
    def _infer_attention_mask(input_ids: torch.Tensor, gen: GenerationConfig) -> torch.Tensor:
        # Padding tokens are masked out when the prompt has some; else all ones.
        pad = gen.prompt_pad_token_id
        if pad is not None and bool((input_ids == pad).any()):
            return (input_ids != pad).long()
        return torch.ones_like(input_ids)

    def _next_token_logits(
        self,
        sequences: torch.Tensor,
        model_kwargs: dict[str, Any],
        past: tuple | None,
        gen: GenerationConfig,
    ) -> tuple[torch.Tensor, tuple | None]:
        """Logits `[B * K, V]` of the token after `sequences`, and the updated cache."""
        use_cache = bool(gen.use_cache)
        new = sequences[:, -1:] if (use_cache and past is not None) else sequences
        if getattr(self.config, "is_encoder_decoder", False):
            outputs = self(
                attention_mask=model_kwargs["attention_mask"],
                encoder_outputs=model_kwargs["encoder_outputs"],
                decoder_input_ids=new,
                past_key_values=past if use_cache else None,
                use_cache=use_cache,
                return_dict=True,
            )
        else:
            mask = model_kwargs["attention_mask"]  # [B * K, P] -> [B * K, T]
            grown = sequences.shape[1] - mask.shape[1]
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], grown)], dim=1)
            outputs = self(
                input_ids=new,
                attention_mask=mask,
                past_key_values=past if use_cache else None,
                use_cache=use_cache,
                return_dict=True,
            )
        logits = outputs.logits[:, -1, :].float()
        return logits, (outputs.past_key_values if use_cache else None)

    @staticmethod
    def _process_scores(scores: torch.Tensor, length: int, gen: GenerationConfig) -> torch.Tensor:
        """`scores` `[B * K, V]` with the ids `gen.suppressed_token_ids(length)` at -inf."""
        suppressed = gen.suppressed_token_ids(length)
        if suppressed:
            scores = scores.clone()
            scores[:, suppressed] = -float("inf")
        return scores

    def _greedy_search(
        self, sequences: torch.Tensor, model_kwargs: dict[str, Any], gen: GenerationConfig
    ) -> torch.Tensor:
        prompt_length = sequences.shape[1]
        max_length = gen.max_length_for(prompt_length)
        eos = torch.tensor(gen.eos_token_ids, dtype=torch.long, device=sequences.device)
        unfinished = torch.ones(sequences.shape[0], dtype=torch.bool, device=sequences.device)
        past = None
        while sequences.shape[1] < max_length:
            logits, past = self._next_token_logits(sequences, model_kwargs, past, gen)
            scores = self._process_scores(logits, sequences.shape[1], gen)
            next_tokens = torch.argmax(scores, dim=-1)  # [B]
            if eos.numel():
                # Finished rows continue with padding.
                next_tokens = torch.where(unfinished, next_tokens, gen.pad_token_id)
            sequences = torch.cat([sequences, next_tokens[:, None]], dim=1)
            if eos.numel():
                unfinished = unfinished & ~torch.isin(next_tokens, eos)
                if not bool(unfinished.any()):
                    break
        return sequences

    def _beam_search(
        self, sequences: torch.Tensor, model_kwargs: dict[str, Any], gen: GenerationConfig
    ) -> torch.Tensor:
        k = gen.num_beams
        batch = sequences.shape[0] // k
        search = BeamSearch(gen, batch, prompt_length=sequences.shape[1])
        device = sequences.device
        beam_scores = torch.from_numpy(search.initial_scores()).to(device)  # [B * K]
        past = None
        while True:
            logits, past = self._next_token_logits(sequences, model_kwargs, past, gen)
            scores = F.log_softmax(logits, dim=-1)  # [B * K, V]
            scores = self._process_scores(scores, sequences.shape[1], gen)
            scores = scores + beam_scores[:, None]
            vocab = scores.shape[-1]
            scores = scores.view(batch, k * vocab)
            top_scores, top_ids = torch.topk(
                scores, search.num_candidates, dim=1, largest=True, sorted=True
            )
            new_scores, new_tokens, rows = search.step(
                sequences.cpu().numpy(), top_scores.cpu().numpy(), top_ids.cpu().numpy(), vocab
            )
            beam_scores = torch.from_numpy(new_scores).to(device)
            rows_t = torch.from_numpy(rows).to(device)
            sequences = torch.cat(
                [sequences[rows_t], torch.from_numpy(new_tokens).to(device)[:, None]], dim=1
            )  # [B * K, T + 1]
            if past is not None:
                past = self.reorder_cache(past, rows_t)
            if search.is_done(sequences.shape[1]):
                break
        best = search.finalize(sequences.cpu().numpy(), beam_scores.cpu().numpy())
        return torch.from_numpy(best).to(device)
