"""Greedy and beam-search generation for the Flax models (`FlaxGenerationMixin.generate`).

An encoder-decoder model runs its encoder once; the decoder then produces one token per step from
a preallocated key/value cache of the final length (`init_cache`), through one jitted step
function (the new token is the only decoder input after the first step, so every step after the
first has the same shapes and compiles once). Beam search reorders the cache rows after each step.
The bookkeeping that is not tensor work (settings, input checks, beam bookkeeping) is
`aviary.core.generation`, shared by the three frameworks; the token choice runs on the host in
numpy, as in the PyTorch loop.

A model using this mixin provides the wrapper `__call__` with the reference's arguments plus
`params=` and `past_key_values=`, and `encode()` and `init_cache()` (for encoder-decoders); the
mixin sets its `generation_config` from the model config.

Shapes: B batch · K beams · P prompt length · T current length · V vocabulary · M max length.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aviary.core.generation import (
    BeamSearch,
    GenerationConfig,
    GenerationConfigMixin,
    check_generation_inputs,
    resolve_generation_settings,
)


class FlaxGenerationMixin(GenerationConfigMixin):
    """`generate()` for Flax models with a language-modelling head (greedy and beams)."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        # The settings the model config implies (`from_pretrained` reads generation_config.json).
        self.generation_config = GenerationConfig.from_model_config(self.config)

    # -- the cache ------------------------------------------------------------------------------
    @staticmethod
    def reorder_cache(past_key_values: dict, beam_idx: np.ndarray) -> dict:
        """The cache of the beams `beam_idx` (int `[B * K]`, rows of the current beams): every
        cached key and value is indexed on its batch axis; the cache indices stay. (The Flax
        decoders cache only self-attention; cross-attention is recomputed from the encoder
        output, whose rows are the same for every beam of an example.)"""
        rows = jnp.asarray(beam_idx)

        def move(path, leaf):
            name = getattr(path[-1], "key", None)
            return leaf[rows] if name in ("cached_key", "cached_value") else leaf

        return jax.tree_util.tree_map_with_path(move, past_key_values)

    # -- generate -------------------------------------------------------------------------------
    def generate(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        *,
        generation_config: GenerationConfig | None = None,
        encoder_outputs: Any = None,
        params: dict | None = None,
        **settings: Any,
    ) -> np.ndarray:
        """Generate token ids: greedy (`num_beams=1`) or beam search.

        `settings` (`max_new_tokens`, `num_beams`, `eos_token_id`, ...) override
        `generation_config` (default: the model's, built from its config and
        `generation_config.json`); see `resolve_generation_settings`. `params` default to the
        model's. Returns int64 `[B * num_return_sequences, T]`: for an encoder-decoder the
        decoder sequences, starting with `decoder_start_token_id`; for a decoder-only model the
        prompt followed by the new tokens. A sequence that ended with `eos_token_id` is padded
        with `pad_token_id`.
        """
        gen = resolve_generation_settings(self.generation_config, generation_config, **settings)
        params = self.params if params is None else params
        sequences, model_kwargs = self._prepare_generation(
            input_ids, attention_mask, encoder_outputs, gen, params
        )
        if gen.num_beams == 1:
            return self._greedy_search(sequences, model_kwargs, gen)
        return self._beam_search(sequences, model_kwargs, gen)

    def _prepare_generation(
        self,
        input_ids: Any,
        attention_mask: Any,
        encoder_outputs: Any,
        gen: GenerationConfig,
        params: dict,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """The starting sequences `[B * K, P]` and the per-step model arguments, `params`
        included (beams of one example are adjacent rows)."""
        k = gen.num_beams
        encoder_decoder = bool(getattr(self.config, "is_encoder_decoder", False))
        if input_ids is not None:
            input_ids = np.asarray(input_ids)
        input_shape = None if input_ids is None else input_ids.shape
        check_generation_inputs(input_shape, encoder_decoder, encoder_outputs is not None)
        if attention_mask is None and input_ids is not None:
            attention_mask = self._infer_attention_mask(input_ids, gen)
        if attention_mask is not None:
            attention_mask = np.asarray(attention_mask)

        if not encoder_decoder:
            sequences = np.repeat(input_ids.astype(np.int64), k, axis=0)  # [B * K, P]
            return sequences, {
                "attention_mask": np.repeat(attention_mask, k, axis=0),
                "params": params,
            }

        if encoder_outputs is None:
            encoder_outputs = self.encode(input_ids, attention_mask, params=params)
        encoder_states = encoder_outputs[0]  # [B, S, H]
        batch = encoder_states.shape[0]
        sequences = np.full((batch * k, 1), gen.decoder_start(), dtype=np.int64)
        model_kwargs = {
            # (last_hidden_state,) as the tuple form of the encoder output: [B * K, S, H]
            "encoder_outputs": (jnp.repeat(jnp.asarray(encoder_states), k, axis=0),),
            "attention_mask": (
                None if attention_mask is None else jnp.asarray(np.repeat(attention_mask, k, 0))
            ),
            "params": params,
        }
        return sequences, model_kwargs

    @staticmethod
    def _infer_attention_mask(input_ids: np.ndarray, gen: GenerationConfig) -> np.ndarray:
        # Padding tokens are masked out when the prompt has some; else all ones.
        pad = gen.prompt_pad_token_id
        if pad is not None and bool((input_ids == pad).any()):
            return (input_ids != pad).astype(np.int64)
        return np.ones_like(input_ids)

    def _decoder_step(self, cache, new_ids, model_kwargs):
        """Logits `[B * K, V]` of the token after `new_ids` (written into `cache` at its index)
        and the updated cache; a pure function, jitted once per model (`_jitted_step`). Without
        a cache (None) `new_ids` are the whole sequence. A decoder-only model's keys are masked
        by `model_kwargs["step_mask"]` (the prompt mask grown to the cache or the sequence)."""
        if getattr(self.config, "is_encoder_decoder", False):
            outputs = self(
                attention_mask=model_kwargs["attention_mask"],
                encoder_outputs=model_kwargs["encoder_outputs"],
                decoder_input_ids=new_ids,
                params=model_kwargs["params"],
                past_key_values=cache,
            )
        else:
            outputs = self(
                input_ids=new_ids,
                attention_mask=model_kwargs["step_mask"],
                params=model_kwargs["params"],
                past_key_values=cache,
            )
        return outputs.logits[:, -1, :].astype(jnp.float32), outputs.past_key_values

    def _jitted_step(self):
        step = self.__dict__.get("_jitted_step_function")
        if step is None:
            step = jax.jit(self._decoder_step)
            self.__dict__["_jitted_step_function"] = step
        return step

    def _next_token_logits(
        self,
        sequences: np.ndarray,
        model_kwargs: dict[str, Any],
        cache: dict | None,
        gen: GenerationConfig,
        max_length: int,
    ) -> tuple[np.ndarray, dict | None]:
        """Logits `[B * K, V]` (numpy float32) of the token after `sequences`, and the cache."""
        encoder_decoder = bool(getattr(self.config, "is_encoder_decoder", False))
        if gen.use_cache and cache is not None:
            new = sequences[:, -1:]
        else:  # the first step with a cache, and every step without, feed the whole sequence
            new = sequences
            if gen.use_cache:
                cache = self.init_cache(sequences.shape[0], max_length)
            if not encoder_decoder:
                # The self-attention keys are the whole cache [B * K, M] (the causal rule hides
                # the positions not written yet) or, without a cache, the sequence [B * K, T].
                mask = model_kwargs["attention_mask"]  # [B * K, P]
                grown = (max_length if gen.use_cache else sequences.shape[1]) - mask.shape[1]
                model_kwargs["step_mask"] = jnp.asarray(
                    np.concatenate([mask, np.ones((mask.shape[0], grown), mask.dtype)], 1)
                )
        # Jitted with or without a cache: without one, each new length compiles once, which is
        # still far faster than running the step op by op.
        logits, cache = self._jitted_step()(cache, jnp.asarray(new), model_kwargs)
        return np.asarray(logits), cache

    @staticmethod
    def _process_scores(scores: np.ndarray, length: int, gen: GenerationConfig) -> np.ndarray:
        """`scores` `[B * K, V]` with the ids `gen.suppressed_token_ids(length)` at -inf."""
        suppressed = gen.suppressed_token_ids(length)
        if suppressed:
            scores = scores.copy()
            scores[:, suppressed] = -np.inf
        return scores

    def _greedy_search(
        self, sequences: np.ndarray, model_kwargs: dict[str, Any], gen: GenerationConfig
    ) -> np.ndarray:
        prompt_length = sequences.shape[1]
        max_length = gen.max_length_for(prompt_length)
        eos = np.asarray(gen.eos_token_ids, dtype=np.int64)
        unfinished = np.ones(sequences.shape[0], dtype=bool)
        cache = None
        while sequences.shape[1] < max_length:
            logits, cache = self._next_token_logits(sequences, model_kwargs, cache, gen, max_length)
            scores = self._process_scores(logits, sequences.shape[1], gen)
            next_tokens = np.argmax(scores, axis=-1)  # [B]
            if eos.size:
                # Finished rows continue with padding.
                next_tokens = np.where(unfinished, next_tokens, gen.pad_token_id)
            sequences = np.concatenate([sequences, next_tokens[:, None]], axis=1)
            if eos.size:
                unfinished = unfinished & ~np.isin(next_tokens, eos)
                if not unfinished.any():
                    break
        return sequences

    def _beam_search(
        self, sequences: np.ndarray, model_kwargs: dict[str, Any], gen: GenerationConfig
    ) -> np.ndarray:
        k = gen.num_beams
        batch = sequences.shape[0] // k
        search = BeamSearch(gen, batch, prompt_length=sequences.shape[1])
        beam_scores = search.initial_scores()  # [B * K]
        cache = None
        while True:
            logits, cache = self._next_token_logits(
                sequences, model_kwargs, cache, gen, search.max_length
            )
            scores = np.asarray(jax.nn.log_softmax(jnp.asarray(logits), axis=-1))  # [B * K, V]
            scores = self._process_scores(scores, sequences.shape[1], gen)
            scores = scores + beam_scores[:, None]
            vocab = scores.shape[-1]
            scores = scores.reshape(batch, k * vocab)
            # The best `candidates` per example, best first (a stable sort keeps ties in order).
            top_ids = np.argsort(-scores, axis=1, kind="stable")[:, : search.num_candidates]
            top_scores = np.take_along_axis(scores, top_ids, axis=1)
            beam_scores, new_tokens, rows = search.step(sequences, top_scores, top_ids, vocab)
            sequences = np.concatenate([sequences[rows], new_tokens[:, None]], axis=1)
            if cache is not None:
                cache = self.reorder_cache(cache, rows)  # [B * K, ...] rows of the new beams
            if search.is_done(sequences.shape[1]):
                break
        return search.finalize(sequences, beam_scores)
