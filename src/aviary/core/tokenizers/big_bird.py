"""BigBird's SentencePiece tokenizers: `BigBirdTokenizer` (sentencepiece) and `BigBirdTokenizerFast`."""

from __future__ import annotations

import os
import re
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


class _BigBirdFamily:
    """What BigBird's slow and fast tokenizers share: files, special tokens, model inputs."""

    vocab_files_names = {"vocab_file": SPIECE_FILE}
    model_input_names = ["input_ids", "attention_mask"]
    lstrip_tokens = ("[MASK]",)
    default_clean_up_tokenization_spaces = False


class BigBirdTokenizer(_BigBirdFamily, SentencePieceTokenizer):
    """Construct a BigBird tokenizer (SentencePiece); `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]`."""

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        unk_token: str = "<unk>",
        bos_token: str = "<s>",
        eos_token: str = "</s>",
        pad_token: str = "<pad>",
        sep_token: str = "[SEP]",
        mask_token: str = "[MASK]",
        cls_token: str = "[CLS]",
        sp_model_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            vocab_file,
            sp_model_kwargs=sp_model_kwargs,
            unk_token=unk_token,
            bos_token=bos_token,
            eos_token=eos_token,
            pad_token=pad_token,
            sep_token=sep_token,
            mask_token=mask_token,
            cls_token=cls_token,
            **kwargs,
        )
        self.lstrip_tokens = (self.mask_token,)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Join pieces into text; special tokens are written as they are, with a space before."""
        specials = set(self.all_special_tokens)
        text = ""
        run: list[str] = []
        previous_was_special = False
        for token in tokens:
            if token in specials:
                if not previous_was_special:
                    text += " "
                text += self._pieces_to_text(run) + token
                run = []
                previous_was_special = True
            else:
                run.append(token)
                previous_was_special = False
        return (text + self._pieces_to_text(run)).strip()

    def _decode_ids(
        self, ids: list[int], skip_special_tokens: bool, clean_up_tokenization_spaces: bool | None
    ) -> str:
        # The reference decodes the runs between special tokens separately and joins everything
        # with spaces, then takes the space away before [MASK] and [SEP] (as its fast tokenizer).
        specials = set(self.all_special_tokens)
        texts: list[str] = []
        run: list[str] = []
        for token in self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens):
            if token in specials:
                if run:
                    texts.append(self.convert_tokens_to_string(run))
                    run = []
                texts.append(token)
            else:
                run.append(token)
        if run:
            texts.append(self.convert_tokens_to_string(run))
        glued = "|".join(re.escape(t) for t in (self.mask_token, self.sep_token) if t)
        text = " ".join(texts)
        if glued:
            text = re.sub(f" ({glued})", r"\1", text)
        return self._clean_up(text, clean_up_tokenization_spaces)


class BigBirdTokenizerFast(_BigBirdFamily, SentencePieceFastMixin, PreTrainedTokenizerFast):
    """Construct a fast BigBird tokenizer: a `tokenizers` Unigram model built from spiece.model."""

    vocab_files_names = {"vocab_file": SPIECE_FILE, "tokenizer_file": "tokenizer.json"}

    def __init__(
        self,
        vocab_file: str | os.PathLike | None = None,
        tokenizer_file: str | os.PathLike | None = None,
        unk_token: str = "<unk>",
        bos_token: str = "<s>",
        eos_token: str = "</s>",
        pad_token: str = "<pad>",
        sep_token: str = "[SEP]",
        mask_token: str = "[MASK]",
        cls_token: str = "[CLS]",
        **kwargs: Any,
    ) -> None:
        special_tokens = {
            "unk_token": unk_token,
            "bos_token": bos_token,
            "eos_token": eos_token,
            "pad_token": pad_token,
            "sep_token": sep_token,
            "mask_token": mask_token,
            "cls_token": cls_token,
        }
        backend, proto = self._read_files(vocab_file, tokenizer_file)
        if backend is None:
            # SentencePiece's own control and user-defined pieces are split off the raw text;
            # the unknown piece is not one of them, so it is matched after normalisation.
            own_specials = [piece.piece for piece in proto.pieces if piece.type in (3, 4)]
            backend = unigram_backend(
                proto,
                [(piece.piece, piece.score) for piece in proto.pieces],
                proto.trainer_spec.unk_id,
                split_on_whitespace=False,
                raw_special_tokens=own_specials,
                normalized_special_tokens=[
                    token for token in special_tokens.values() if token not in own_specials
                ],
                lstrip_tokens=(mask_token,),
            )
        super().__init__(backend, **special_tokens, **kwargs)
