"""Pegasus's SentencePiece tokenizers (BigBirdPegasus uses them): ids shifted by `offset`, a block of
reserved tokens below it, `</s>` appended, no beginning-of-sequence token."""

from __future__ import annotations

import os
from typing import Any

from aviary.core.tokenizers.base import (
    PreTrainedTokenizerFast,
)
from aviary.core.tokenizers.sentencepiece_base import (
    SPIECE_FILE,
    SentencePieceFastMixin,
    SentencePieceTokenizer,
    unigram_backend,
)

DEFAULT_OFFSET = 103


def reserved_tokens(
    pad_token: str, eos_token: str, mask_token_sent: str | None, mask_token: str | None, offset: int
) -> list[str]:
    """The tokens that own the ids below the SentencePiece pieces: 0 `<pad>`, 1 `</s>`,
    2 `<mask_1>`, 3 `<mask_2>`, then `<unk_2>` ... `<unk_{offset-1}>`."""
    tokens = [pad_token, eos_token]
    if mask_token_sent is not None:
        tokens += [mask_token_sent, mask_token]
    return tokens + [f"<unk_{i}>" for i in range(2, offset)]


class _PegasusFamily:
    """What Pegasus's slow and fast tokenizers share: files, templates, model inputs, the
    reserved tokens and the arguments `save_pretrained` records."""

    vocab_files_names = {"vocab_file": SPIECE_FILE}
    model_input_names = ["input_ids", "attention_mask"]
    single_template = (("A", 0), ("eos_token", 0))
    pair_template = (("A", 0), ("B", 0), ("eos_token", 0))
    default_clean_up_tokenization_spaces = False

    def _reserved_arguments(
        self,
        mask_token_sent: str | None,
        additional_special_tokens: list[str] | None,
        offset: int,
    ) -> list[str]:
        if additional_special_tokens is None:
            additional_special_tokens = [mask_token_sent] if mask_token_sent is not None else []
            additional_special_tokens += [f"<unk_{i}>" for i in range(2, offset)]
        return list(additional_special_tokens)

    def _init_kwargs_for_config(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "mask_token_sent": self.mask_token_sent,
            **super()._init_kwargs_for_config(),
        }


class PegasusTokenizer(_PegasusFamily, SentencePieceTokenizer):
    """Construct a Pegasus tokenizer (SentencePiece with shifted ids); `A </s>` and `A B </s>`."""

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        pad_token: str = "<pad>",
        eos_token: str = "</s>",
        unk_token: str = "<unk>",
        mask_token: str = "<mask_2>",
        mask_token_sent: str | None = "<mask_1>",
        additional_special_tokens: list[str] | None = None,
        offset: int = DEFAULT_OFFSET,
        sp_model_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.offset = offset
        self.mask_token_sent = mask_token_sent
        self._reserved = reserved_tokens(pad_token, eos_token, mask_token_sent, mask_token, offset)
        super().__init__(
            vocab_file,
            sp_model_kwargs=sp_model_kwargs,
            pad_token=pad_token,
            eos_token=eos_token,
            unk_token=unk_token,
            mask_token=mask_token,
            additional_special_tokens=self._reserved_arguments(
                mask_token_sent, additional_special_tokens, offset
            ),
            **kwargs,
        )

    def _reserved_tokens(self) -> list[str]:
        return self._reserved

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Join pieces into text; special tokens are written as they are, with no added spaces."""
        specials = set(self.all_special_tokens)
        text = ""
        run: list[str] = []
        for token in tokens:
            if token in specials:
                text += self._pieces_to_text(run) + token
                run = []
            else:
                run.append(token)
        return (text + self._pieces_to_text(run)).strip()


class PegasusTokenizerFast(_PegasusFamily, SentencePieceFastMixin, PreTrainedTokenizerFast):
    """Construct a fast Pegasus tokenizer: a `tokenizers` Unigram model built from spiece.model."""

    vocab_files_names = {"vocab_file": SPIECE_FILE, "tokenizer_file": "tokenizer.json"}

    def __init__(
        self,
        vocab_file: str | os.PathLike | None = None,
        tokenizer_file: str | os.PathLike | None = None,
        pad_token: str = "<pad>",
        eos_token: str = "</s>",
        unk_token: str = "<unk>",
        mask_token: str = "<mask_2>",
        mask_token_sent: str | None = "<mask_1>",
        additional_special_tokens: list[str] | None = None,
        offset: int = DEFAULT_OFFSET,
        **kwargs: Any,
    ) -> None:
        self.offset = offset
        self.mask_token_sent = mask_token_sent
        additional = self._reserved_arguments(mask_token_sent, additional_special_tokens, offset)
        backend, proto = self._read_files(vocab_file, tokenizer_file)
        if backend is None:
            reserved = reserved_tokens(pad_token, eos_token, mask_token_sent, mask_token, offset)
            # SentencePiece's own <pad> and </s> (ids 0 and 1) are replaced by the reserved block;
            # every other piece moves up by `offset`.
            vocab = [(token, 0.0) for token in reserved[:4]]
            vocab += [(token, -100.0) for token in reserved[4:]]
            vocab += [(piece.piece, piece.score) for piece in proto.pieces[2:]]
            backend = unigram_backend(
                proto,
                vocab,
                proto.trainer_spec.unk_id + offset,
                split_on_whitespace=True,
                raw_special_tokens=[pad_token, eos_token],
                normalized_special_tokens=[unk_token, mask_token, *additional],
            )
        super().__init__(
            backend,
            pad_token=pad_token,
            eos_token=eos_token,
            unk_token=unk_token,
            mask_token=mask_token,
            additional_special_tokens=additional,
            **kwargs,
        )
