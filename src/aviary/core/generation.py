"""Framework-neutral pieces of text generation: the generation settings and beam bookkeeping.

Every framework's `generate` runs the model and picks tokens with its own tensors; what is decided
outside the model lives here, once, in numpy:

* `GenerationConfig`: the generation settings (`max_length`, `num_beams`, token ids, ...), built
  from a model config the way the reference does (a model config's generation keys, such as the
  hub's `num_beams=5, length_penalty=0.8`, become the defaults) or read from
  `generation_config.json`.
* `resolve_generation_settings`: the settings of one `generate` call (the call's arguments over
  the model's generation config), checked. `GenerationConfigMixin`: `generation_config.json`
  travels with a model through `from_pretrained` / `save_pretrained`. Each framework's
  `generate(input_ids, attention_mask, *, generation_config=None, encoder_outputs=None,
  **settings)` starts with these two and then runs its own tensor loop.
* `GenerationConfig.decoder_start`, `prompt_pad_token_id`, `suppressed_token_ids` and
  `check_generation_inputs`: the decisions of a call's first steps (the decoder start token, the
  attention mask of a prompt given without one, the ids forbidden at a length, the inputs).
* `BeamSearch`: one beam-search call's bookkeeping (the stopping length, how many candidates
  each step takes, the numpy side of each step and the final sequences), over
  `BeamSearchScorer`, and `reorder_key_value_cache`, the cache layout of the beams.
* `BeamSearchScorer`: the reference's beam search bookkeeping. Each step it receives the best
  `2 * num_beams` continuations of every example (scores, token ids, source beams), files the ones
  that end in an end-of-sequence token as finished hypotheses and returns the `num_beams` beams to
  continue; at the end it picks the best hypotheses and pads them into one array.

Beam scores are summed log-probabilities; a finished hypothesis is ranked by
`score / generated_length ** length_penalty`, where the generated length counts the tokens after
the prompt (the decoder start token, for encoder-decoders), the end-of-sequence token included.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from aviary.core.io import atomic_write_text

GENERATION_CONFIG_NAME = "generation_config.json"

# The settings `generate` understands, with the reference's defaults.
GENERATION_DEFAULTS: dict[str, Any] = {
    "max_length": 20,
    "max_new_tokens": None,
    "min_length": 0,
    "num_beams": 1,
    "num_return_sequences": 1,
    "length_penalty": 1.0,
    "early_stopping": False,
    "do_sample": False,
    "use_cache": True,
    "bos_token_id": None,
    "eos_token_id": None,
    "pad_token_id": None,
    "decoder_start_token_id": None,
}

# Settings of the reference that change its output and that aviary does not implement, with their
# neutral values. A config that sets one of them otherwise gets a warning: its output may differ.
UNSUPPORTED_SETTINGS: dict[str, Any] = {
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "repetition_penalty": 1.0,
    "bad_words_ids": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "num_beam_groups": 1,
    "diversity_penalty": 0.0,
    "min_new_tokens": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
}

EARLY_STOPPING_VALUES = (True, False, "never")


class GenerationConfig:
    """The settings of `generate` (see `GENERATION_DEFAULTS`); unknown keys are kept."""

    def __init__(self, **kwargs: Any) -> None:
        for name, default in GENERATION_DEFAULTS.items():
            setattr(self, name, copy.deepcopy(kwargs.pop(name, default)))
        self._extra_keys = sorted(kwargs)
        for name, value in kwargs.items():
            setattr(self, name, value)

    @classmethod
    def from_model_config(cls, config: object) -> GenerationConfig:
        """The reference's defaults for a model: every generation key the model config carries
        (token ids, and e.g. `num_beams`, `length_penalty`, `max_length` on hub configs)."""
        names = (*GENERATION_DEFAULTS, *UNSUPPORTED_SETTINGS)
        found = {}
        for name in names:
            value = getattr(config, name, None)
            if value is not None:
                found[name] = value
        return cls(**found)

    def to_dict(self) -> dict[str, Any]:
        out = {name: copy.deepcopy(getattr(self, name)) for name in GENERATION_DEFAULTS}
        out.update({name: copy.deepcopy(getattr(self, name)) for name in self._extra_keys})
        return dict(sorted(out.items()))

    def copy(self, **overrides: Any) -> GenerationConfig:
        """A new config with `overrides` replacing some values."""
        return type(self)(**{**self.to_dict(), **overrides})

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> GenerationConfig:
        """Read `folder/generation_config.json`."""
        path = Path(folder)
        if path.is_dir():
            path = path / GENERATION_CONFIG_NAME
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path} does not hold a JSON object")
        data.pop("transformers_version", None)
        data.pop("_from_model_config", None)
        return cls(**data)

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write `folder/generation_config.json` atomically; returns its path."""
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        target = path / GENERATION_CONFIG_NAME
        atomic_write_text(target, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return target

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"GenerationConfig {json.dumps(self.to_dict(), sort_keys=True)}"

    # -- one call -------------------------------------------------------------------------------
    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        """`eos_token_id` as a tuple (the reference accepts one id or a list)."""
        eos = self.eos_token_id
        if eos is None:
            return ()
        return tuple(int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]))

    def _check(self, stacklevel: int) -> None:
        if self.do_sample:
            raise ValueError("sampling (do_sample=True) is not implemented; use greedy or beams")
        for name in ("num_beams", "num_return_sequences", "max_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_new_tokens is not None and (
            isinstance(self.max_new_tokens, bool)
            or not isinstance(self.max_new_tokens, int)
            or self.max_new_tokens < 1
        ):
            raise ValueError(
                f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}"
            )
        if self.num_return_sequences > self.num_beams:
            raise ValueError(
                f"num_return_sequences={self.num_return_sequences} is more than "
                f"num_beams={self.num_beams}: beam search returns at most num_beams sequences"
            )
        if self.early_stopping not in EARLY_STOPPING_VALUES:
            raise ValueError(
                f"early_stopping must be True, False or 'never', got {self.early_stopping!r}"
            )
        if not isinstance(self.length_penalty, (int, float)):
            raise ValueError(f"length_penalty must be a number, got {self.length_penalty!r}")
        for name, neutral in UNSUPPORTED_SETTINGS.items():
            value = getattr(self, name, neutral)
            if value is not None and value != neutral:
                warnings.warn(
                    f"generation setting {name}={value!r} is not implemented by aviary and is "
                    "ignored; outputs may differ from the reference",
                    stacklevel=stacklevel,
                )

    def max_length_for(self, prompt_length: int) -> int:
        """Total length (prompt included) at which generation stops: `prompt + max_new_tokens`
        when `max_new_tokens` is set (it wins over `max_length`), else `max_length`."""
        if self.max_new_tokens is not None:
            return prompt_length + self.max_new_tokens
        if self.max_length <= prompt_length:
            raise ValueError(
                f"max_length={self.max_length} leaves no room to generate after a prompt of "
                f"{prompt_length} tokens; raise max_length or pass max_new_tokens"
            )
        return self.max_length

    def decoder_start(self) -> int:
        """The first decoder token of an encoder-decoder: `decoder_start_token_id`, else
        `bos_token_id`."""
        start = self.decoder_start_token_id
        if start is None:
            start = self.bos_token_id
        if start is None:
            raise ValueError(
                "generation needs decoder_start_token_id (or bos_token_id) in the arguments, "
                "the generation config or the model config"
            )
        return int(start)

    @property
    def prompt_pad_token_id(self) -> int | None:
        """The id that marks padding in a prompt given without an attention mask: `pad_token_id`,
        unless it is also an end-of-sequence id (then padding cannot be told apart from text and,
        as in the reference, nothing is masked)."""
        if self.pad_token_id in self.eos_token_ids:
            return None
        return self.pad_token_id

    def suppressed_token_ids(self, length: int) -> list[int]:
        """The ids whose scores become -inf for the token after a sequence of `length` tokens
        (prompt included). The reference's default score processing: end-of-sequence is
        forbidden while the sequence is shorter than `min_length`."""
        if self.min_length and length < self.min_length:
            return list(self.eos_token_ids)
        return []


def check_generation_inputs(
    input_shape: tuple[int, ...] | None, encoder_decoder: bool, has_encoder_outputs: bool
) -> None:
    """The inputs of one `generate` call: `input_ids` of shape `input_shape` (None when not
    given) must be `[batch, length]`; a decoder-only model needs them (the prompt), an
    encoder-decoder needs them or `encoder_outputs`."""
    if input_shape is not None and len(input_shape) != 2:
        raise ValueError(f"input_ids must be [batch, length], got {tuple(input_shape)}")
    if input_shape is None and not encoder_decoder:
        raise ValueError("a decoder-only model needs input_ids (the prompt) to generate")
    if input_shape is None and not has_encoder_outputs:
        raise ValueError("give input_ids (or encoder_outputs) to generate")


def resolve_generation_settings(
    model_generation_config: GenerationConfig,
    generation_config: GenerationConfig | None = None,
    **settings: Any,
) -> GenerationConfig:
    """The settings of one `generate` call.

    Each setting comes from the first place that gives it: the call's `settings` (a value of None
    counts as not given), then `generation_config` when the call passes one, else the model's
    `model_generation_config` (read from `generation_config.json` when the checkpoint has one,
    else built from the model config by `GenerationConfig.from_model_config`), then
    `GENERATION_DEFAULTS`. The names of `settings` are those of `GENERATION_DEFAULTS`
    (`max_new_tokens`, `max_length`, `min_length`, `num_beams`, `num_return_sequences`,
    `length_penalty`, `early_stopping`, `decoder_start_token_id`, `bos_token_id`,
    `eos_token_id`, `pad_token_id`, `use_cache`, `do_sample`); another name is a `TypeError`.

    The result is checked (clear `ValueError`s; a warning for each setting of
    `UNSUPPORTED_SETTINGS` that is not neutral), and a missing `pad_token_id` becomes the first
    end-of-sequence id, as in the reference.
    """
    unknown = set(settings) - set(GENERATION_DEFAULTS)
    if unknown:
        raise TypeError(f"generate() got unknown settings: {', '.join(sorted(unknown))}")
    base = generation_config if generation_config is not None else model_generation_config
    gen = base.copy(**{name: value for name, value in settings.items() if value is not None})
    # The warnings point at the caller of `generate`: _check <- here <- generate <- caller.
    gen._check(stacklevel=4)
    if gen.pad_token_id is None and gen.eos_token_ids:
        gen.pad_token_id = gen.eos_token_ids[0]
    return gen


class GenerationConfigMixin:
    """`generation_config.json` travels with a model: `from_pretrained` reads it when the folder
    has one (else the model keeps the settings built from its config), `save_pretrained` writes
    it. Framework neutral; it goes before the framework's pretrained-model class in the bases."""

    generation_config: GenerationConfig

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, *args: Any, **kwargs: Any):
        result = super().from_pretrained(folder, *args, **kwargs)
        model = result[0] if isinstance(result, tuple) else result
        if (Path(folder) / GENERATION_CONFIG_NAME).is_file():
            model.generation_config = GenerationConfig.from_pretrained(folder)
        return result

    def save_pretrained(self, folder: str | os.PathLike, *args: Any, **kwargs: Any) -> Path:
        folder = super().save_pretrained(folder, *args, **kwargs)
        self.generation_config.save_pretrained(folder)
        return folder


# ------------------------------------------------------------------------------------------------
# Beam search bookkeeping


def reorder_key_value_cache(past_key_values: tuple, take_rows: Any, encoder_decoder: bool) -> tuple:
    """The key/value cache of the new beams (PyTorch and TF layout): `take_rows(t)` is the
    framework's gather of the new beams' rows of one cached tensor `[B * K, ...]`.

    Each layer holds `(self key, self value[, cross key, cross value])`; an encoder-decoder's
    cross-attention entries are identical across the beams of an example and are kept.
    """
    reordered = []
    for layer_past in past_key_values:
        moved = tuple(take_rows(t) for t in layer_past[:2])
        rest = tuple(layer_past[2:])
        if not encoder_decoder:
            rest = tuple(take_rows(t) for t in rest)
        reordered.append(moved + rest)
    return tuple(reordered)


class BeamHypotheses:
    """The best `num_beams` finished hypotheses of one example, each ranked by
    `sum of log-probabilities / generated_length ** length_penalty`."""

    def __init__(
        self,
        num_beams: int,
        length_penalty: float,
        early_stopping: bool | str,
        max_length: int | None = None,
    ) -> None:
        self.num_beams = num_beams
        self.length_penalty = length_penalty
        self.early_stopping = early_stopping
        self.max_length = max_length
        self.beams: list[tuple[float, np.ndarray]] = []
        self.worst_score = 1e9

    def __len__(self) -> int:
        return len(self.beams)

    def add(self, tokens: np.ndarray, sum_logprobs: float, generated_length: int) -> None:
        """File a hypothesis if it is among the best `num_beams` so far."""
        score = sum_logprobs / (generated_length**self.length_penalty)
        if len(self) < self.num_beams or score > self.worst_score:
            self.beams.append((score, tokens))
            if len(self) > self.num_beams:
                ranked = sorted((s, i) for i, (s, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst_score = ranked[1][0]
            else:
                self.worst_score = min(score, self.worst_score)

    def is_done(self, best_sum_logprobs: float, cur_len: int, decoder_prompt_len: int) -> bool:
        """Whether no running beam can still beat the worst kept hypothesis (for
        `early_stopping=False` a heuristic at the current length, as the reference)."""
        if len(self) < self.num_beams:
            return False
        if self.early_stopping is True:
            return True
        if self.early_stopping is False or self.length_penalty <= 0.0:
            best_length = cur_len - decoder_prompt_len
        else:  # "never": the best score a beam could reach at the longest length
            best_length = self.max_length - decoder_prompt_len
        return self.worst_score >= best_sum_logprobs / best_length**self.length_penalty


class BeamSearchScorer:
    """Beam search over a batch: `process` once per generated token, `finalize` at the end.

    Arrays are numpy; beams of example `e` are rows `e * num_beams .. e * num_beams + K - 1`
    (K = `num_beams`) of the flattened `[batch * K, ...]` arrays.
    """

    def __init__(
        self,
        batch_size: int,
        num_beams: int,
        length_penalty: float = 1.0,
        early_stopping: bool | str = False,
        num_beam_hyps_to_keep: int = 1,
        max_length: int | None = None,
    ) -> None:
        if num_beams < 2:
            raise ValueError(f"beam search needs num_beams >= 2, got {num_beams} (use greedy)")
        self.num_beams = num_beams
        self.num_beam_hyps_to_keep = num_beam_hyps_to_keep
        self.hypotheses = [
            BeamHypotheses(num_beams, length_penalty, early_stopping, max_length)
            for _ in range(batch_size)
        ]
        self.done = np.zeros(batch_size, dtype=bool)

    @property
    def is_done(self) -> bool:
        return bool(self.done.all())

    def initial_beam_scores(self) -> np.ndarray:
        """`float32 [batch * K]`: 0 for the first beam of each example, -1e9 for the others, so
        that the first step does not pick the same token from K identical beams."""
        scores = np.zeros((len(self.hypotheses), self.num_beams), dtype=np.float32)
        scores[:, 1:] = -1e9
        return scores.reshape(-1)

    def process(
        self,
        input_ids: np.ndarray,
        next_scores: np.ndarray,
        next_tokens: np.ndarray,
        next_indices: np.ndarray,
        eos_token_ids: tuple[int, ...],
        pad_token_id: int | None,
        decoder_prompt_len: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step.

        input_ids: `[batch * K, cur_len]`, the running beams; next_scores / next_tokens /
        next_indices: `[batch, 2K]`, the best continuations of each example, best first (summed
        log-probabilities, token ids, beam within the example). Returns the beams to continue as
        `[batch * K]` arrays: scores (float32), token ids and source rows of `input_ids`.
        """
        batch_size = len(self.hypotheses)
        k = self.num_beams
        cur_len = input_ids.shape[-1] + 1  # the length the scores were computed for
        beam_scores = np.zeros((batch_size, k), dtype=np.float32)
        beam_tokens = np.zeros((batch_size, k), dtype=np.int64)
        beam_rows = np.zeros((batch_size, k), dtype=np.int64)
        for example, hypotheses in enumerate(self.hypotheses):
            if self.done[example]:
                # A finished example keeps running on padding (its output is already decided).
                beam_tokens[example] = pad_token_id if pad_token_id is not None else 0
                beam_rows[example] = example * k
                continue
            beam = 0
            for rank, (token, score, source) in enumerate(
                zip(next_tokens[example], next_scores[example], next_indices[example])
            ):
                row = example * k + int(source)
                if int(token) in eos_token_ids:
                    # Only a continuation among the K best may finish a hypothesis.
                    if rank >= k:
                        continue
                    hypotheses.add(
                        input_ids[row].copy(), float(score), cur_len - decoder_prompt_len
                    )
                else:
                    beam_scores[example, beam] = score
                    beam_tokens[example, beam] = token
                    beam_rows[example, beam] = row
                    beam += 1
                if beam == k:
                    break
            if beam < k:
                raise ValueError(
                    f"at most {2 * k - beam} of the {2 * k} best continuations may end the "
                    "sequence; pass more candidates per example"
                )
            self.done[example] = self.done[example] or hypotheses.is_done(
                float(np.max(next_scores[example])), cur_len, decoder_prompt_len
            )
        return beam_scores.reshape(-1), beam_tokens.reshape(-1), beam_rows.reshape(-1)

    def finalize(
        self,
        input_ids: np.ndarray,
        final_beam_scores: np.ndarray,
        max_length: int,
        eos_token_ids: tuple[int, ...],
        pad_token_id: int | None,
        decoder_prompt_len: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best `num_beam_hyps_to_keep` hypotheses of each example.

        Beams still running are filed as hypotheses first. Returns `int64 [batch * keep, L]`
        sequences (shorter ones get an end-of-sequence token, then padding) and their scores.
        """
        k = self.num_beams
        for example, hypotheses in enumerate(self.hypotheses):
            if self.done[example]:
                continue
            for beam in range(k):
                row = example * k + beam
                hypotheses.add(
                    input_ids[row].copy(),
                    float(final_beam_scores[row]),
                    input_ids.shape[-1] - decoder_prompt_len,
                )
        best: list[np.ndarray] = []
        best_scores: list[float] = []
        for hypotheses in self.hypotheses:
            ranked = sorted(hypotheses.beams, key=lambda beam: beam[0])
            for _ in range(self.num_beam_hyps_to_keep):
                score, tokens = ranked.pop()
                best.append(tokens)
                best_scores.append(score)
        lengths = [len(tokens) for tokens in best]
        out_length = min(max(lengths) + 1, max_length)
        fill = pad_token_id if pad_token_id is not None else 0
        sequences = np.full((len(best), out_length), fill, dtype=np.int64)
        for i, tokens in enumerate(best):
            sequences[i, : len(tokens)] = tokens
            if len(tokens) < out_length:
                if not eos_token_ids:
                    raise ValueError("a hypothesis ended early without an end-of-sequence token")
                sequences[i, len(tokens)] = eos_token_ids[0]
        return sequences, np.asarray(best_scores, dtype=np.float32)


class BeamSearch:
    """The bookkeeping of one beam-search `generate` call, over a `BeamSearchScorer`.

    A framework's loop computes, with its own tensors, the summed log-probabilities of every
    continuation `[B, K * V]` and the best `num_candidates` of each example; `step` files the
    finished ones and returns the beams to continue, `finalize` the output sequences.
    """

    def __init__(self, gen: GenerationConfig, batch_size: int, prompt_length: int) -> None:
        self.gen = gen
        self.prompt_length = prompt_length
        self.max_length = gen.max_length_for(prompt_length)
        self.scorer = BeamSearchScorer(
            batch_size,
            gen.num_beams,
            length_penalty=gen.length_penalty,
            early_stopping=gen.early_stopping,
            num_beam_hyps_to_keep=gen.num_return_sequences,
            max_length=self.max_length,
        )
        # Enough candidates that K of them do not end the sequence.
        self.num_candidates = max(2, 1 + len(gen.eos_token_ids)) * gen.num_beams

    def initial_scores(self) -> np.ndarray:
        """`float32 [B * K]`, see `BeamSearchScorer.initial_beam_scores`."""
        return self.scorer.initial_beam_scores()

    def step(
        self, sequences: np.ndarray, top_scores: np.ndarray, top_ids: np.ndarray, vocab_size: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """sequences: `[B * K, T]`; top_scores / top_ids: `[B, num_candidates]`, best first, ids
        into an example's `[K * V]` scores. Returns the beams to continue as `[B * K]` arrays:
        scores (float32), token ids and source rows of `sequences`."""
        return self.scorer.process(
            sequences,
            top_scores,
            top_ids % vocab_size,  # the token
            top_ids // vocab_size,  # the beam within the example
            self.gen.eos_token_ids,
            self.gen.pad_token_id,
            self.prompt_length,
        )

    def is_done(self, length: int) -> bool:
        """Whether the loop stops with sequences of `length` tokens."""
        return self.scorer.is_done or length >= self.max_length

    def finalize(self, sequences: np.ndarray, beam_scores: np.ndarray) -> np.ndarray:
        """`int64 [B * num_return_sequences, L]`: the best hypotheses, padded
        (`BeamSearchScorer.finalize`)."""
        best, _ = self.scorer.finalize(
            sequences,
            beam_scores,
            self.max_length,
            self.gen.eos_token_ids,
            self.gen.pad_token_id,
            self.prompt_length,
        )
        return best
