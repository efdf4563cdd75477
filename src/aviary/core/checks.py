"""Input checks shared by the three frameworks.

The frameworks read the few numbers a check needs (shapes, the smallest and largest id) and call
these functions, so that bad input gets the same clear `ValueError` everywhere instead of a crash
deep inside an embedding lookup or a broadcast.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any


def check_exactly_one_input(has_ids: bool, has_embeds: bool) -> None:
    """Exactly one of `input_ids` and `inputs_embeds` must be given."""
    if has_ids and has_embeds:
        raise ValueError("give either input_ids or inputs_embeds, not both")
    if not has_ids and not has_embeds:
        raise ValueError("give input_ids or inputs_embeds")


def check_ids_in_range(name: str, low: int, high: int, size: int) -> None:
    """Ids of the `name` table must lie in [0, size)."""
    if low < 0 or high >= size:
        bad = low if low < 0 else high
        raise ValueError(
            f"{name} contains id {bad}, outside the table of size {size} (0..{size - 1})"
        )


def check_rank(name: str, shape: Sequence[int], ranks: Sequence[int]) -> None:
    """`name` must have one of the given ranks."""
    if len(shape) not in ranks:
        wanted = " or ".join(str(r) for r in ranks)
        raise ValueError(f"{name} must have rank {wanted}, got shape {tuple(shape)}")


def check_sequence_length(length: int, past_length: int, max_positions: int) -> None:
    """Positions `past_length .. past_length + length - 1` must have an embedding."""
    if past_length + length > max_positions:
        extra = f" (after {past_length} cached positions)" if past_length else ""
        raise ValueError(
            f"sequence length {length}{extra} is longer than max_position_embeddings="
            f"{max_positions}"
        )


def check_same_shape(name: str, shape: Sequence[int], expected: Sequence[int], what: str) -> None:
    """`name` must have the shape `expected` (the shape of `what`)."""
    if tuple(shape) != tuple(expected):
        raise ValueError(f"{name} has shape {tuple(shape)}, but {what} has shape {tuple(expected)}")


def check_attention_mask_shape(
    shape: Sequence[int], batch: int, query_length: int, key_length: int, name: str
) -> None:
    """A mask is `[batch, key_length]` or `[batch, query_length, key_length]`."""
    if tuple(shape) not in ((batch, key_length), (batch, query_length, key_length)):
        raise ValueError(
            f"{name} has shape {tuple(shape)}; expected ({batch}, {key_length}) or "
            f"({batch}, {query_length}, {key_length}) for a batch of {batch} with "
            f"{query_length} queries and {key_length} keys"
        )


def check_head_mask_shape(shape: Sequence[int], num_layers: int, num_heads: int) -> None:
    """`head_mask` is `[heads]` or `[layers, heads]`."""
    if tuple(shape) not in ((num_heads,), (num_layers, num_heads)):
        raise ValueError(
            f"head_mask has shape {tuple(shape)}; expected ({num_heads},) or "
            f"({num_layers}, {num_heads})"
        )


def warn_if_not_decoder(class_name: str, config: Any) -> None:
    """Warn, as the reference does, when a causal-LM head is built on a config without
    `is_decoder=True` (an encoder checkpoint). The model still runs as configured: attention is
    bidirectional and there is no cache; the loss is still next-token."""
    if not getattr(config, "is_decoder", False):
        warnings.warn(
            f"If you want to use `{class_name}` as a standalone, add `is_decoder=True`.",
            UserWarning,
            stacklevel=3,
        )


def resolve_problem_type(problem_type: str | None, num_labels: int, integer_labels: bool) -> str:
    """The sequence-classification loss to use when the config does not name one.

    As the reference: one label means regression; integer labels mean single-label
    classification; float labels (multi-hot) mean multi-label classification. Unlike the reference,
    the config is not changed by the first call.
    """
    if problem_type is not None:
        return problem_type
    if num_labels == 1:
        return "regression"
    return "single_label_classification" if integer_labels else "multi_label_classification"


def check_eos_positions(
    ids_shape: Sequence[int], states_shape: Sequence[int], eos_counts: Sequence[int], eos: int
) -> None:
    """The sequence-classification head of an encoder-decoder reads the decoder state at the
    last `eos` of each row of `input_ids` (shape `ids_shape`, decoder output `states_shape`):
    the positions must index the decoder output and every row must hold the same, non-zero
    number of `eos` tokens (`eos_counts`, one per row), as the reference requires."""
    if tuple(states_shape[:2]) != tuple(ids_shape):
        raise ValueError(
            f"the decoder output has {states_shape[1]} positions but input_ids has "
            f"{ids_shape[1]}: the end-of-sequence positions of input_ids must index "
            "the decoder output (leave decoder_input_ids unset or give them the same length)"
        )
    counts = [int(c) for c in eos_counts]
    if min(counts) != max(counts):
        raise ValueError(
            f"All examples must have the same number of <eos> tokens (eos_token_id={eos}); got "
            f"{counts} per row"
        )
    if counts[0] == 0:
        raise ValueError(
            f"no <eos> token (eos_token_id={eos}) in input_ids: the classification head reads "
            "the decoder state at the last one"
        )


def check_decoder_start(pad_token_id: int | None, decoder_start_token_id: int | None) -> None:
    """Building decoder inputs from labels needs both ids."""
    if decoder_start_token_id is None:
        raise ValueError("decoder_start_token_id must be set to build decoder inputs from labels")
    if pad_token_id is None:
        raise ValueError("pad_token_id must be set to build decoder inputs from labels")
