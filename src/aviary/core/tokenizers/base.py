"""The shared tokenizer base: special tokens, truncation, padding, tensors, decoding, save/load.

Every concrete tokenizer only says how one text becomes ids (and offsets, for fast tokenizers), how ids
become text, and which special-token template its family uses. Everything that turns those ids into
model inputs lives here, once, so the slow and fast tokenizer of a family cannot drift apart.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SPECIAL_TOKEN_NAMES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
TOKENIZER_FILE = "tokenizer.json"

# A model_max_length this large means "no limit known" (the reference uses the same sentinel).
VERY_LARGE_INTEGER = int(1e30)

PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")


class BatchEncoding(dict):
    """The tokenizer's output: a dict of model inputs that also answers attribute access."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as error:
            raise AttributeError(name) from error


class EncodedText:
    """Ids of one text without special tokens, and the character span of each id (fast only)."""

    __slots__ = ("ids", "offsets")

    def __init__(self, ids: list[int], offsets: list[tuple[int, int]] | None = None) -> None:
        self.ids = ids
        self.offsets = offsets


def clean_up_tokenization(text: str) -> str:
    """Remove the spaces that joining word pieces leaves before punctuation and English clitics."""
    return (
        text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
    )


def _token_content(token: Any) -> str | None:
    """Special tokens are stored in configs as strings or as {"content": ...} dicts."""
    if token is None or isinstance(token, str):
        return token
    if isinstance(token, dict) and "content" in token:
        return token["content"]
    content = getattr(token, "content", None)
    if isinstance(content, str):
        return content
    raise TypeError(f"a special token must be a string, got {type(token).__name__}: {token!r}")


def _as_int_list(ids: Any) -> list[int]:
    """Accept lists, tuples, numpy arrays and framework tensors (anything with .tolist())."""
    if hasattr(ids, "numpy") and not isinstance(ids, np.ndarray):
        ids = ids.numpy()
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if isinstance(ids, int):
        return [ids]
    return [int(i) for i in ids]


def _check_text(value: Any, argument: str) -> tuple[list[str], bool]:
    """Return (texts, is_batch) and reject anything that is not a string or a list of strings."""
    if isinstance(value, str):
        return [value], False
    if isinstance(value, (list, tuple)):
        for position, item in enumerate(value):
            if not isinstance(item, str):
                raise TypeError(
                    f"{argument} must be a string or a list of strings; item {position} is "
                    f"{type(item).__name__}: {item!r}"
                )
        return list(value), True
    raise TypeError(
        f"{argument} must be a string or a list of strings, got {type(value).__name__}: {value!r}"
    )


def to_tensor(rows: list, return_tensors: str | None, dtype: str = "int64") -> Any:
    """Convert padded rows to the requested framework; frameworks are imported only here."""
    if return_tensors is None:
        return rows
    try:
        array = np.asarray(rows, dtype=dtype)
    except ValueError as error:
        raise ValueError(
            "the sequences have different lengths, so they cannot become one tensor; "
            "pass padding=True (or 'max_length') together with return_tensors"
        ) from error
    if return_tensors == "np":
        return array
    if return_tensors == "pt":
        import torch

        return torch.from_numpy(array)
    if return_tensors == "tf":
        import tensorflow as tf

        return tf.constant(array)
    if return_tensors == "jax":
        import jax.numpy as jnp

        return jnp.asarray(array)
    raise ValueError(
        f"return_tensors must be 'np', 'pt', 'tf', 'jax' or None, got {return_tensors!r}"
    )


class PreTrainedTokenizerBase:
    """What every aviary tokenizer shares: the reference tokenizer API over a per-family core.

    Subclasses implement `_encode_texts` (texts to ids without special tokens),
    `convert_tokens_to_string` (or `_decode_ids`), `_convert_token_to_id`,
    `_convert_id_to_token`, `get_vocab`, `vocab_size`, `tokenize` and `save_vocabulary`, and set
    the family's special-token template.
    """

    #: file names that `from_pretrained` looks for, by constructor argument
    vocab_files_names: dict[str, str] = {}
    #: the inputs the family's models take; decides which outputs `__call__` returns by default
    model_input_names: list[str] = ["input_ids", "token_type_ids", "attention_mask"]
    #: the family's special-token layout, as (special token attribute or "A"/"B", token type id)
    single_template: tuple[tuple[str, int], ...] = (("cls_token", 0), ("A", 0), ("sep_token", 0))
    pair_template: tuple[tuple[str, int], ...] = (
        ("cls_token", 0),
        ("A", 0),
        ("sep_token", 0),
        ("B", 1),
        ("sep_token", 1),
    )
    is_fast = False
    #: special tokens that swallow the whitespace on their left (BigBird's `[MASK]`)
    lstrip_tokens: tuple[str, ...] = ()
    default_clean_up_tokenization_spaces = True

    def __init__(
        self,
        *,
        model_max_length: int | None = None,
        padding_side: str = "right",
        truncation_side: str = "right",
        clean_up_tokenization_spaces: bool | None = None,
        additional_special_tokens: Sequence[Any] | None = None,
        **special_tokens: Any,
    ) -> None:
        unknown = set(special_tokens) - set(SPECIAL_TOKEN_NAMES)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected arguments: {sorted(unknown)}")
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        if truncation_side not in ("right", "left"):
            raise ValueError(f"truncation_side must be 'right' or 'left', got {truncation_side!r}")
        self._special_tokens: dict[str, str | None] = {
            name: _token_content(special_tokens.get(name)) for name in SPECIAL_TOKEN_NAMES
        }
        self.additional_special_tokens: list[str] = [
            _token_content(token) for token in (additional_special_tokens or [])
        ]
        self.model_max_length = VERY_LARGE_INTEGER if model_max_length is None else model_max_length
        self.padding_side = padding_side
        self.truncation_side = truncation_side
        self.clean_up_tokenization_spaces = (
            self.default_clean_up_tokenization_spaces
            if clean_up_tokenization_spaces is None
            else clean_up_tokenization_spaces
        )
        self.name_or_path = ""
        self._special_token_pattern: re.Pattern | None = None

    # ----------------------------------------------------------------------------- special tokens

    @property
    def special_tokens_map(self) -> dict[str, Any]:
        """The special tokens that are set, by attribute name."""
        mapping: dict[str, Any] = {k: v for k, v in self._special_tokens.items() if v is not None}
        if self.additional_special_tokens:
            mapping["additional_special_tokens"] = list(self.additional_special_tokens)
        return mapping

    @property
    def all_special_tokens(self) -> list[str]:
        """Every special token string, without repeats, in attribute order."""
        seen: dict[str, None] = {}
        for token in [*self._special_tokens.values(), *self.additional_special_tokens]:
            if token is not None:
                seen[token] = None
        return list(seen)

    @property
    def all_special_ids(self) -> list[int]:
        """The ids of `all_special_tokens`."""
        return [self._convert_token_to_id(token) for token in self.all_special_tokens]

    def _special_id_set(self) -> frozenset[int]:
        return frozenset(self.all_special_ids)

    def _special_tokens_regex(self) -> re.Pattern | None:
        """A pattern that finds literal special tokens in text (longest first, so no prefix wins)."""
        if self._special_token_pattern is None:
            tokens = sorted(self.all_special_tokens, key=len, reverse=True)
            if not tokens:
                return None
            self._special_token_pattern = re.compile(
                "(" + "|".join(re.escape(token) for token in tokens) + ")"
            )
        return self._special_token_pattern

    def split_on_special_tokens(self, text: str) -> list[str]:
        """Split text into plain segments and special tokens (special tokens at odd positions)."""
        pattern = self._special_tokens_regex()
        if pattern is None:
            return [text]
        parts = pattern.split(text)
        if self.lstrip_tokens:
            for index in range(1, len(parts), 2):
                if parts[index] in self.lstrip_tokens:
                    parts[index - 1] = parts[index - 1].rstrip()
        return parts

    # ------------------------------------------------------------------------ vocabulary and ids

    def __len__(self) -> int:
        return len(self.get_vocab())

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]) -> int | list[int]:
        """Token string(s) to id(s); unknown tokens become the unknown token's id."""
        if isinstance(tokens, str):
            return self._convert_token_to_id(tokens)
        return [self._convert_token_to_id(token) for token in tokens]

    def convert_ids_to_tokens(
        self, ids: int | Iterable[int], skip_special_tokens: bool = False
    ) -> str | list[str]:
        """Id(s) to token string(s)."""
        if isinstance(ids, (int, np.integer)):
            return self._convert_id_to_token(int(ids))
        ids = _as_int_list(ids)
        if skip_special_tokens:
            special = self._special_id_set()
            ids = [i for i in ids if i not in special]
        return [self._convert_id_to_token(i) for i in ids]

    # --------------------------------------------------------------- templates of special tokens

    def _template(self, pair: bool) -> tuple[tuple[str, int], ...]:
        return self.pair_template if pair else self.single_template

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many special tokens the template adds to one text or to a pair."""
        return sum(1 for part, _ in self._template(pair) if part not in ("A", "B"))

    def _fill_template(self, first: list, second: list | None, special: Any) -> list:
        """Lay out `first`/`second` and, for special tokens, `special(attribute, type_id)`."""
        out: list = []
        for part, type_id in self._template(second is not None):
            if part == "A":
                out.extend(first)
            elif part == "B":
                out.extend(second)
            else:
                out.append(special(part, type_id))
        return out

    def build_inputs_with_special_tokens(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        """Add the family's special tokens to one sequence or a pair of sequences."""
        return self._fill_template(
            list(token_ids_0),
            None if token_ids_1 is None else list(token_ids_1),
            lambda part, _: self._convert_token_to_id(self._special_tokens[part]),
        )

    def create_token_type_ids_from_sequences(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        """Token type ids for the sequence(s) with special tokens: 0 for the first, 1 for the second."""
        types: list[int] = []
        for part, type_id in self._template(token_ids_1 is not None):
            if part == "A":
                types.extend([type_id] * len(token_ids_0))
            elif part == "B":
                types.extend([type_id] * len(token_ids_1))
            else:
                types.append(type_id)
        return types

    def get_special_tokens_mask(
        self,
        token_ids_0: list[int],
        token_ids_1: list[int] | None = None,
        already_has_special_tokens: bool = False,
    ) -> list[int]:
        """1 for a special token, 0 for a sequence token."""
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError(
                    "pass one sequence that already has special tokens, not a pair, when "
                    "already_has_special_tokens=True"
                )
            special = self._special_id_set()
            return [1 if i in special else 0 for i in _as_int_list(token_ids_0)]
        return self._fill_template(
            [0] * len(token_ids_0),
            None if token_ids_1 is None else [0] * len(token_ids_1),
            lambda part, _: 1,
        )

    # ------------------------------------------------------------------------------ encoding

    def _encode_texts(self, texts: list[str], with_offsets: bool) -> list[EncodedText]:
        """Ids (and offsets) of each text, without special tokens. Implemented per tokenizer."""
        raise NotImplementedError

    def _resolve_padding(self, padding: Any, max_length: int | None) -> str:
        if padding is True:
            return "longest"
        if padding is False or padding is None:
            return "do_not_pad"
        if padding not in PADDING_STRATEGIES:
            raise ValueError(
                f"padding must be True, False or one of {PADDING_STRATEGIES}, got {padding!r}"
            )
        return padding

    def _resolve_truncation(self, truncation: Any, max_length: int | None) -> str:
        if truncation is None:
            # Like the reference: a max_length on its own means "truncate to it".
            return "longest_first" if max_length is not None else "do_not_truncate"
        if truncation is True:
            return "longest_first"
        if truncation is False:
            return "do_not_truncate"
        if truncation not in TRUNCATION_STRATEGIES:
            raise ValueError(
                f"truncation must be True, False or one of {TRUNCATION_STRATEGIES}, got {truncation!r}"
            )
        return truncation

    def _truncate(
        self,
        first: EncodedText,
        second: EncodedText | None,
        strategy: str,
        max_length: int,
    ) -> tuple[EncodedText, EncodedText | None]:
        """Cut the sequences so that, with special tokens, they fit in max_length."""
        budget = max_length - self.num_special_tokens_to_add(second is not None)
        if budget < 0:
            raise ValueError(
                f"max_length={max_length} is smaller than the {self.num_special_tokens_to_add(second is not None)} "
                f"special tokens that {type(self).__name__} adds"
            )
        length_a = len(first.ids)
        length_b = 0 if second is None else len(second.ids)
        excess = length_a + length_b - budget
        if excess <= 0:
            return first, second
        keep_a, keep_b = length_a, length_b
        if strategy == "longest_first":
            # Remove one token at a time from the longer sequence, the second one on ties (the
            # reference's slow rule), computed in closed form.
            difference = min(abs(length_a - length_b), excess)
            if length_a > length_b:
                keep_a -= difference
            else:
                keep_b -= difference
            excess -= difference
            keep_b -= (excess + 1) // 2
            keep_a -= excess // 2
            if second is None:
                keep_a, keep_b = budget, 0
        elif strategy == "only_first" or (strategy == "only_second" and second is None):
            if strategy == "only_second":
                raise ValueError("truncation='only_second' needs a text_pair")
            keep_a -= excess
        elif strategy == "only_second":
            keep_b -= excess
        if keep_a < 0 or keep_b < 0:
            raise ValueError(
                f"truncation={strategy!r} cannot fit the input into max_length={max_length}: the other "
                "sequence alone is longer; use truncation='longest_first'"
            )
        return self._cut(first, keep_a), None if second is None else self._cut(second, keep_b)

    def _cut(self, encoded: EncodedText, keep: int) -> EncodedText:
        if keep >= len(encoded.ids):
            return encoded
        if self.truncation_side == "right":
            window = slice(0, keep)
        else:
            window = slice(len(encoded.ids) - keep, None)
        offsets = None if encoded.offsets is None else encoded.offsets[window]
        return EncodedText(encoded.ids[window], offsets)

    def __call__(
        self,
        text: str | list[str],
        text_pair: str | list[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
    ) -> BatchEncoding:
        """Tokenize one text, a pair, or a batch of texts (or pairs) into model inputs."""
        texts, is_batch = _check_text(text, "text")
        pairs: list[str] | None = None
        if text_pair is not None:
            pairs, pair_is_batch = _check_text(text_pair, "text_pair")
            if pair_is_batch != is_batch or len(pairs) != len(texts):
                raise ValueError(
                    f"text and text_pair must both be strings or lists of the same length "
                    f"(got {len(texts)} texts and {len(pairs)} pairs)"
                )
        if return_offsets_mapping and not self.is_fast:
            raise NotImplementedError(
                "return_offsets_mapping needs a fast tokenizer; use the family's *TokenizerFast class"
            )
        if max_length is not None and (not isinstance(max_length, int) or max_length < 0):
            raise ValueError(f"max_length must be a non-negative integer, got {max_length!r}")
        if pad_to_multiple_of is not None and (
            not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of <= 0
        ):
            raise ValueError(
                f"pad_to_multiple_of must be a positive integer, got {pad_to_multiple_of!r}"
            )
        padding_strategy = self._resolve_padding(padding, max_length)
        truncation_strategy = self._resolve_truncation(truncation, max_length)
        limit = max_length
        if limit is None and (
            truncation_strategy != "do_not_truncate" or padding_strategy == "max_length"
        ):
            limit = self.model_max_length
            if limit >= VERY_LARGE_INTEGER:
                raise ValueError(
                    f"{type(self).__name__} has no model_max_length; pass max_length= to truncate "
                    "or to pad to a fixed length"
                )

        encoded_first = self._encode_texts(texts, return_offsets_mapping)
        encoded_second = (
            self._encode_texts(pairs, return_offsets_mapping) if pairs is not None else None
        )

        want_types = (
            "token_type_ids" in self.model_input_names
            if return_token_type_ids is None
            else return_token_type_ids
        )
        want_mask = (
            "attention_mask" in self.model_input_names
            if return_attention_mask is None
            else return_attention_mask
        )
        columns: dict[str, list] = {"input_ids": []}
        if want_types:
            columns["token_type_ids"] = []
        if want_mask:
            columns["attention_mask"] = []
        if return_special_tokens_mask:
            columns["special_tokens_mask"] = []
        if return_offsets_mapping:
            columns["offset_mapping"] = []

        special_ids = {
            name: self._convert_token_to_id(token)
            for name, token in self._special_tokens.items()
            if token is not None
        }
        for index, first in enumerate(encoded_first):
            second = None if encoded_second is None else encoded_second[index]
            if truncation_strategy != "do_not_truncate":
                first, second = self._truncate(first, second, truncation_strategy, limit)
            self._assemble(first, second, add_special_tokens, special_ids, columns)

        if padding_strategy != "do_not_pad":
            self._pad_columns(columns, padding_strategy, limit, pad_to_multiple_of)
        if return_length:
            columns["length"] = [len(row) for row in columns["input_ids"]]

        output = BatchEncoding()
        for key, rows in columns.items():
            if not is_batch and return_tensors is None:
                output[key] = rows[0]
            else:
                output[key] = to_tensor(rows, return_tensors)
        return output

    def _assemble(
        self,
        first: EncodedText,
        second: EncodedText | None,
        add_special_tokens: bool,
        special_ids: dict[str, int],
        columns: dict[str, list],
    ) -> None:
        """Append one example's ids, types, masks and offsets to the output columns."""
        if not add_special_tokens:
            ids = first.ids + ([] if second is None else second.ids)
            types = [0] * len(first.ids) + ([] if second is None else [1] * len(second.ids))
            specials = [0] * len(ids)
            offsets = None
            if "offset_mapping" in columns:
                offsets = first.offsets + ([] if second is None else second.offsets)
        else:
            ids = self._fill_template(
                first.ids, None if second is None else second.ids, lambda part, _: special_ids[part]
            )
            types = self.create_token_type_ids_from_sequences(
                first.ids, None if second is None else second.ids
            )
            specials = None
            if "special_tokens_mask" in columns:
                specials = self.get_special_tokens_mask(
                    first.ids, None if second is None else second.ids
                )
            offsets = None
            if "offset_mapping" in columns:
                offsets = self._fill_template(
                    first.offsets,
                    None if second is None else second.offsets,
                    lambda part, _: (0, 0),
                )
        columns["input_ids"].append(ids)
        if "token_type_ids" in columns:
            columns["token_type_ids"].append(types)
        if "attention_mask" in columns:
            columns["attention_mask"].append([1] * len(ids))
        if "special_tokens_mask" in columns:
            columns["special_tokens_mask"].append(specials)
        if "offset_mapping" in columns:
            columns["offset_mapping"].append([tuple(o) for o in offsets])

    def _pad_columns(
        self, columns: dict[str, list], strategy: str, max_length: int | None, multiple: int | None
    ) -> None:
        longest = max((len(row) for row in columns["input_ids"]), default=0)
        target = longest if strategy == "longest" else max_length
        if multiple is not None and target % multiple:
            target += multiple - target % multiple
        if self.pad_token is None:
            raise ValueError(f"{type(self).__name__} has no pad_token, so it cannot pad")
        fill = {
            "input_ids": self.pad_token_id,
            "token_type_ids": 0,
            "attention_mask": 0,
            "special_tokens_mask": 1,
            "offset_mapping": (0, 0),
        }
        for key, rows in columns.items():
            for index, row in enumerate(rows):
                missing = target - len(row)
                if missing <= 0:
                    continue
                padding = [fill[key]] * missing
                rows[index] = row + padding if self.padding_side == "right" else padding + row

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | None = None,
    ) -> Any:
        """The input ids of one text or one pair."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes one string, got {type(text).__name__}: {text!r}")
        encoding = self(
            text,
            text_pair,
            add_special_tokens=add_special_tokens,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            return_tensors=return_tensors,
            return_token_type_ids=False,
            return_attention_mask=False,
        )
        return encoding["input_ids"]

    # ------------------------------------------------------------------------------ decoding

    def _decode_ids(
        self, ids: list[int], skip_special_tokens: bool, clean_up_tokenization_spaces: bool | None
    ) -> str:
        """Ids to text: the tokens joined by the family's `convert_tokens_to_string`, then
        cleaned up (`clean_up_tokenization_spaces`, by default the tokenizer's setting)."""
        text = self.convert_tokens_to_string(
            self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens)
        )
        return self._clean_up(text, clean_up_tokenization_spaces)

    def _clean_up(self, text: str, clean_up_tokenization_spaces: bool | None) -> str:
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        return clean_up_tokenization(text) if clean_up_tokenization_spaces else text

    def decode(
        self,
        token_ids: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> str:
        """Turn ids back into text, optionally without special tokens."""
        return self._decode_ids(
            _as_int_list(token_ids), skip_special_tokens, clean_up_tokenization_spaces
        )

    def batch_decode(
        self,
        sequences: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> list[str]:
        """`decode` for each sequence of a batch (a list of lists, or a 2-D array/tensor)."""
        if hasattr(sequences, "numpy") and not isinstance(sequences, np.ndarray):
            sequences = sequences.numpy()
        return [
            self.decode(sequence, skip_special_tokens, clean_up_tokenization_spaces)
            for sequence in sequences
        ]

    # --------------------------------------------------------------------------- save / load

    def _init_kwargs_for_config(self) -> dict[str, Any]:
        """Constructor arguments (other than files) that `save_pretrained` records; per family."""
        return {}

    def save_vocabulary(
        self, save_directory: str, filename_prefix: str | None = None
    ) -> tuple[str, ...]:
        """Write the vocabulary file(s) into save_directory; returns their paths."""
        raise NotImplementedError

    def save_pretrained(self, save_directory: str | os.PathLike) -> tuple[str, ...]:
        """Write tokenizer_config.json, special_tokens_map.json and the vocabulary files."""
        directory = Path(save_directory)
        if directory.is_file():
            raise ValueError(f"save_pretrained needs a directory, but {directory} is a file")
        directory.mkdir(parents=True, exist_ok=True)
        config = {
            "tokenizer_class": type(self).__name__.removesuffix("Fast"),
            "model_max_length": self.model_max_length,
            "padding_side": self.padding_side,
            "truncation_side": self.truncation_side,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            **self._init_kwargs_for_config(),
            **self.special_tokens_map,
        }
        config_path = directory / TOKENIZER_CONFIG_FILE
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        map_path = directory / SPECIAL_TOKENS_MAP_FILE
        map_path.write_text(
            json.dumps(self.special_tokens_map, indent=2, ensure_ascii=False) + "\n"
        )
        return (str(config_path), str(map_path), *self.save_vocabulary(str(directory)))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any):
        """Load from a local folder with the reference layout (no downloads: aviary is offline)."""
        directory = Path(pretrained_model_name_or_path)
        if not directory.is_dir():
            raise FileNotFoundError(
                f"{directory} is not a local directory; aviary loads tokenizers from folders only "
                "(it never downloads)"
            )
        config: dict[str, Any] = {}
        for name in (TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE):
            path = directory / name
            if path.is_file():
                try:
                    config.update(json.loads(path.read_text(encoding="utf-8")))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path} is not valid JSON: {error}") from error
        accepted = set(inspect.signature(cls.__init__).parameters) | {
            "model_max_length",
            "padding_side",
            "truncation_side",
            "clean_up_tokenization_spaces",
            "additional_special_tokens",
            *SPECIAL_TOKEN_NAMES,
        }
        arguments = {key: value for key, value in config.items() if key in accepted}
        for argument, file_name in cls.vocab_files_names.items():
            path = directory / file_name
            if path.is_file():
                arguments[argument] = str(path)
        arguments.update(kwargs)
        tokenizer = cls(**arguments)
        tokenizer.name_or_path = str(directory)
        return tokenizer

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
            f"model_max_length={self.model_max_length}, special_tokens={self.special_tokens_map})"
        )


def _special_token_properties(name: str) -> tuple[property, property]:
    def token_getter(self: PreTrainedTokenizerBase) -> str | None:
        return self._special_tokens[name]

    def token_setter(self: PreTrainedTokenizerBase, value: Any) -> None:
        self._special_tokens[name] = _token_content(value)
        self._special_token_pattern = None

    def id_getter(self: PreTrainedTokenizerBase) -> int | None:
        token = self._special_tokens[name]
        return None if token is None else self._convert_token_to_id(token)

    return (
        property(token_getter, token_setter, doc=f"The {name.replace('_', ' ')} string."),
        property(id_getter, doc=f"The id of the {name.replace('_', ' ')}."),
    )


for _name in SPECIAL_TOKEN_NAMES:
    _token_property, _id_property = _special_token_properties(_name)
    setattr(PreTrainedTokenizerBase, _name, _token_property)
    setattr(PreTrainedTokenizerBase, f"{_name}_id", _id_property)


def require_file(path: str | os.PathLike | None, what: str, argument: str) -> Path:
    """Check that a vocabulary/model file exists, with an error that names it."""
    if path is None:
        raise ValueError(f"{argument} is required: the path of the {what}")
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{what} not found: {file}")
    return file


class PreTrainedTokenizerFast(PreTrainedTokenizerBase):
    """A tokenizer whose text-to-ids step runs in the `tokenizers` library (Rust), with offsets.

    The backend is used without its own special tokens, truncation and padding: those are the base
    class's job, so that fast and slow tokenizers assemble inputs the same way.
    """

    is_fast = True
    default_clean_up_tokenization_spaces = False

    def __init__(self, backend: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        backend.no_truncation()
        backend.no_padding()
        self._backend = backend
        self._register_special_tokens()

    @property
    def backend_tokenizer(self) -> Any:
        """The underlying `tokenizers.Tokenizer`."""
        return self._backend

    def _register_special_tokens(self) -> None:
        """Make sure every special token is an added token of the backend (split before the model)."""
        from tokenizers import AddedToken

        present = {token.content for token in self._backend.get_added_tokens_decoder().values()}
        missing = [token for token in self.all_special_tokens if token not in present]
        if missing:
            self._backend.add_special_tokens(
                [AddedToken(token, special=True, normalized=False) for token in missing]
            )

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary (without added tokens)."""
        return self._backend.get_vocab_size(with_added_tokens=False)

    def get_vocab(self) -> dict[str, int]:
        """Token to id, added tokens included."""
        return self._backend.get_vocab(with_added_tokens=True)

    def _convert_token_to_id(self, token: str) -> int:
        index = self._backend.token_to_id(token)
        return self.unk_token_id if index is None else index

    def _convert_id_to_token(self, index: int) -> str:
        token = self._backend.id_to_token(index)
        if token is None:
            raise ValueError(f"id {index} is outside the vocabulary of {type(self).__name__}")
        return token

    def tokenize(self, text: str) -> list[str]:
        """Token strings of one text, without special tokens."""
        _check_text(text, "text")
        # Through the ids: the encoding's own token strings keep the whitespace that an lstrip
        # special token swallowed (" [MASK]").
        ids = self._backend.encode(text, add_special_tokens=False).ids
        return [self._convert_id_to_token(i) for i in ids]

    def _encode_texts(self, texts: list[str], with_offsets: bool) -> list[EncodedText]:
        if with_offsets:
            return [
                EncodedText(encoding.ids, encoding.offsets)
                for encoding in self._backend.encode_batch(texts, add_special_tokens=False)
            ]
        return [
            EncodedText(encoding.ids)
            for encoding in self._backend.encode_batch_fast(texts, add_special_tokens=False)
        ]

    def _decoder_without_cleanup(self) -> Any:
        """The backend's decoder with its own clean-up switched off (None: it has no clean-up)."""
        return None

    def _decode_ids(
        self, ids: list[int], skip_special_tokens: bool, clean_up_tokenization_spaces: bool | None
    ) -> str:
        plain_decoder = (
            self._decoder_without_cleanup() if clean_up_tokenization_spaces is False else None
        )
        if plain_decoder is not None:
            tokens = self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens)
            text = plain_decoder.decode(tokens)
        else:
            text = self._backend.decode(ids, skip_special_tokens=skip_special_tokens)
        if clean_up_tokenization_spaces:
            text = clean_up_tokenization(text)
        return text

    def save_pretrained(self, save_directory: str | os.PathLike) -> tuple[str, ...]:
        """Also writes tokenizer.json, the serialized backend."""
        paths = super().save_pretrained(save_directory)
        tokenizer_path = Path(save_directory) / TOKENIZER_FILE
        self._backend.save(str(tokenizer_path))
        return (*paths, str(tokenizer_path))


def load_backend(tokenizer_file: str | os.PathLike) -> Any:
    """Read a tokenizer.json with a clear error for a missing or corrupt file."""
    from tokenizers import Tokenizer

    path = require_file(tokenizer_file, "tokenizer file (tokenizer.json)", "tokenizer_file")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # the Rust side raises a bare Exception
        raise ValueError(f"{path} is not a valid tokenizer.json: {error}") from error
