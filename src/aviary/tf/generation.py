"""Greedy and beam-search generation for the TensorFlow / Keras 3 models (`TFGenerationMixin.generate`).

An encoder-decoder model runs its encoder once; the decoder then produces one token per step from
its key/value cache (the new token is the only decoder input after the first step). Beam search
reorders the self-attention part of the cache after each step; the cross-attention keys and values
are the same for every beam of an example and stay as they are. The bookkeeping that is not
tensor work (settings, input checks, beam bookkeeping) is `aviary.core.generation`, shared by
the three frameworks. The loop runs eagerly (each step is one model call). Parallel text of
`aviary.pt.generation`.

A model using this mixin provides `call` with the reference's arguments, `get_encoder()` (for
encoder-decoders) and a `generation_config` attribute.

Shapes: B batch · K beams · P prompt length · T current length · V vocabulary.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from aviary.core.generation import (
    BeamSearch,
    GenerationConfig,
    GenerationConfigMixin,
    check_generation_inputs,
    reorder_key_value_cache,
    resolve_generation_settings,
)


class TFGenerationMixin(GenerationConfigMixin):
    """`generate()` for Keras models with a language-modelling head (greedy and beams)."""

    # -- the cache ------------------------------------------------------------------------------
    def reorder_cache(self, past_key_values: tuple, beam_idx: tf.Tensor) -> tuple:
        """The cache of the beams `beam_idx` (int `[B * K]`, rows of the current beams); see
        `aviary.core.generation.reorder_key_value_cache`."""
        encoder_decoder = bool(getattr(self.config, "is_encoder_decoder", False))
        return reorder_key_value_cache(
            past_key_values, lambda t: tf.gather(t, beam_idx, axis=0), encoder_decoder
        )

    # -- generate -------------------------------------------------------------------------------
    def generate(
        self,
        input_ids: tf.Tensor | np.ndarray | None = None,
        attention_mask: tf.Tensor | np.ndarray | None = None,
        *,
        generation_config: GenerationConfig | None = None,
        encoder_outputs: Any = None,
        **settings: Any,
    ) -> tf.Tensor:
        """Generate token ids: greedy (`num_beams=1`) or beam search.

        `settings` (`max_new_tokens`, `num_beams`, `eos_token_id`, ...) override
        `generation_config` (default: the model's, built from its config and
        `generation_config.json`); see `resolve_generation_settings`. Returns int64
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
        input_ids: tf.Tensor | np.ndarray | None,
        attention_mask: tf.Tensor | np.ndarray | None,
        encoder_outputs: Any,
        gen: GenerationConfig,
    ) -> tuple[tf.Tensor, dict[str, Any]]:
        """The starting sequences `[B * K, P]` and the per-step model arguments (beams of one
        example are adjacent rows)."""
        k = gen.num_beams
        encoder_decoder = bool(getattr(self.config, "is_encoder_decoder", False))
        if input_ids is not None:
            input_ids = tf.cast(tf.convert_to_tensor(input_ids), tf.int64)
        input_shape = None if input_ids is None else tuple(input_ids.shape)
        check_generation_inputs(input_shape, encoder_decoder, encoder_outputs is not None)
        if attention_mask is None and input_ids is not None:
            attention_mask = self._infer_attention_mask(input_ids, gen)
        if attention_mask is not None:
            attention_mask = tf.cast(tf.convert_to_tensor(attention_mask), tf.int64)

        if not encoder_decoder:
            sequences = tf.repeat(input_ids, k, axis=0)  # [B * K, P]
            return sequences, {"attention_mask": tf.repeat(attention_mask, k, axis=0)}

        if encoder_outputs is None:
            encoder_outputs = self.get_encoder()(
                input_ids=input_ids, attention_mask=attention_mask, return_dict=True
            )
        encoder_states = encoder_outputs[0]  # [B, S, H]
        batch = encoder_states.shape[0]
        sequences = tf.fill((batch * k, 1), tf.constant(gen.decoder_start(), tf.int64))
        model_kwargs = {
            # (last_hidden_state,) as the tuple form of the encoder output: [B * K, S, H]
            "encoder_outputs": (tf.repeat(encoder_states, k, axis=0),),
            "attention_mask": (
                None if attention_mask is None else tf.repeat(attention_mask, k, axis=0)
            ),
        }
        return sequences, model_kwargs

    @staticmethod
    def _infer_attention_mask(input_ids: tf.Tensor, gen: GenerationConfig) -> tf.Tensor:
        # Padding tokens are masked out when the prompt has some; else all ones.
        pad = gen.prompt_pad_token_id
        is_pad = tf.equal(input_ids, tf.cast(pad, input_ids.dtype)) if pad is not None else None
        if is_pad is not None and bool(tf.reduce_any(is_pad)):
            return tf.cast(tf.logical_not(is_pad), tf.int64)
        return tf.ones_like(input_ids, dtype=tf.int64)

    def _next_token_logits(
        self,
        sequences: tf.Tensor,
        model_kwargs: dict[str, Any],
        past: tuple | None,
        gen: GenerationConfig,
    ) -> tuple[tf.Tensor, tuple | None]:
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
                training=False,
            )
        else:
            mask = model_kwargs["attention_mask"]  # [B * K, P] -> [B * K, T]
            grown = sequences.shape[1] - mask.shape[1]
            mask = tf.concat([mask, tf.ones((mask.shape[0], grown), mask.dtype)], axis=1)
            outputs = self(
                input_ids=new,
                attention_mask=mask,
                past_key_values=past if use_cache else None,
                use_cache=use_cache,
                return_dict=True,
                training=False,
            )
        logits = tf.cast(outputs.logits[:, -1, :], tf.float32)
        return logits, (outputs.past_key_values if use_cache else None)

    @staticmethod
    def _process_scores(scores: tf.Tensor, length: int, gen: GenerationConfig) -> tf.Tensor:
        """`scores` `[B * K, V]` with the ids `gen.suppressed_token_ids(length)` at -inf."""
        suppressed = gen.suppressed_token_ids(length)
        if suppressed:
            forbidden = np.zeros(scores.shape[-1], dtype=bool)  # [V]
            forbidden[suppressed] = True
            scores = tf.where(forbidden[None], tf.constant(-np.inf, scores.dtype), scores)
        return scores

    def _greedy_search(
        self, sequences: tf.Tensor, model_kwargs: dict[str, Any], gen: GenerationConfig
    ) -> tf.Tensor:
        prompt_length = sequences.shape[1]
        max_length = gen.max_length_for(prompt_length)
        eos = tf.constant(gen.eos_token_ids, dtype=tf.int64)
        unfinished = tf.ones(sequences.shape[0], dtype=tf.bool)
        past = None
        while sequences.shape[1] < max_length:
            logits, past = self._next_token_logits(sequences, model_kwargs, past, gen)
            scores = self._process_scores(logits, sequences.shape[1], gen)
            next_tokens = tf.argmax(scores, axis=-1, output_type=tf.int64)  # [B]
            if gen.eos_token_ids:
                # Finished rows continue with padding.
                pad = tf.fill(tf.shape(next_tokens), tf.constant(gen.pad_token_id, tf.int64))
                next_tokens = tf.where(unfinished, next_tokens, pad)
            sequences = tf.concat([sequences, next_tokens[:, None]], axis=1)
            if gen.eos_token_ids:
                is_eos = tf.reduce_any(tf.equal(next_tokens[:, None], eos[None]), axis=1)
                unfinished = tf.logical_and(unfinished, tf.logical_not(is_eos))
                if not bool(tf.reduce_any(unfinished)):
                    break
        return sequences

    def _beam_search(
        self, sequences: tf.Tensor, model_kwargs: dict[str, Any], gen: GenerationConfig
    ) -> tf.Tensor:
        k = gen.num_beams
        batch = sequences.shape[0] // k
        search = BeamSearch(gen, batch, prompt_length=sequences.shape[1])
        beam_scores = tf.constant(search.initial_scores())  # [B * K]
        past = None
        while True:
            logits, past = self._next_token_logits(sequences, model_kwargs, past, gen)
            scores = tf.nn.log_softmax(logits, axis=-1)  # [B * K, V]
            scores = self._process_scores(scores, sequences.shape[1], gen)
            scores = scores + beam_scores[:, None]
            vocab = scores.shape[-1]
            scores = tf.reshape(scores, (batch, k * vocab))
            top_scores, top_ids = tf.math.top_k(scores, search.num_candidates, sorted=True)
            new_scores, new_tokens, rows = search.step(
                sequences.numpy(), top_scores.numpy(), top_ids.numpy(), vocab
            )
            beam_scores = tf.constant(new_scores)
            sequences = tf.concat(
                [tf.gather(sequences, rows), tf.constant(new_tokens, tf.int64)[:, None]], axis=1
            )  # [B * K, T + 1]
            if past is not None:
                past = self.reorder_cache(past, tf.constant(rows))
            if search.is_done(sequences.shape[1]):
                break
        best = search.finalize(sequences.numpy(), beam_scores.numpy())
        return tf.constant(best)
