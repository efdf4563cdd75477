"""BERT's WordPiece tokenizers: pure-Python `BertTokenizer` and `tokenizers`-backed `BertTokenizerFast`."""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aviary.core.tokenizers.base import (
    EncodedText,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    _check_text,
    load_backend,
    require_file,
)

VOCAB_FILE = "vocab.txt"
BERT_SPECIAL_TOKENS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}
# Word pieces cached per tokenizer; text has a long tail of rare words, so the cache is bounded.
_WORD_CACHE_LIMIT = 200_000


def load_vocab(vocab_file: str | os.PathLike) -> dict[str, int]:
    """Read a WordPiece vocab.txt: one token per line, the id is the line number."""
    path = require_file(vocab_file, "WordPiece vocabulary file (vocab.txt)", "vocab_file")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not a UTF-8 vocab.txt: {error}") from error
    if lines and lines[-1] == "":
        lines.pop()
    vocab: dict[str, int] = {}
    for index, line in enumerate(lines):
        vocab[line.rstrip("\r")] = index
    if not vocab:
        raise ValueError(f"{path} is an empty vocabulary")
    return vocab


def _is_chinese_char(code_point: int) -> bool:
    """The CJK Unified Ideographs blocks (not all of CJK: Japanese kana and Hangul are words)."""
    return (
        0x4E00 <= code_point <= 0x9FFF
        or 0x3400 <= code_point <= 0x4DBF
        or 0x20000 <= code_point <= 0x2A6DF
        or 0x2A700 <= code_point <= 0x2B73F
        or 0x2B740 <= code_point <= 0x2B81F
        or 0x2B820 <= code_point <= 0x2CEAF
        or 0xF900 <= code_point <= 0xFAFF
        or 0x2F800 <= code_point <= 0x2FA1F
    )


def _is_punctuation(char: str) -> bool:
    """BERT treats every non-alphanumeric printable ASCII character as punctuation, plus Unicode P*."""
    code_point = ord(char)
    if (
        33 <= code_point <= 47
        or 58 <= code_point <= 64
        or 91 <= code_point <= 96
        or 123 <= code_point <= 126
    ):
        return True
    return unicodedata.category(char).startswith("P")


class _CleaningTable(dict):
    """A `str.translate` table built lazily: drops control characters, maps whitespace to ' ' and
    (optionally) surrounds CJK ideographs with spaces, in one pass over the text."""

    def __init__(self, space_chinese_chars: bool) -> None:
        super().__init__()
        self.space_chinese_chars = space_chinese_chars

    def __missing__(self, code_point: int) -> str | None:
        char = chr(code_point)
        if char in "\t\n\r":
            value: str | None = " "
        elif code_point == 0 or code_point == 0xFFFD or unicodedata.category(char).startswith("C"):
            value = None
        elif char == " " or unicodedata.category(char) == "Zs":
            value = " "
        elif self.space_chinese_chars and _is_chinese_char(code_point):
            value = f" {char} "
        else:
            value = char
        self[code_point] = value
        return value


class _PunctuationTable(dict):
    """A `str.translate` table that surrounds punctuation with spaces, so `split()` separates it."""

    def __missing__(self, code_point: int) -> str:
        char = chr(code_point)
        value = f" {char} " if _is_punctuation(char) else char
        self[code_point] = value
        return value


_ASCII_WORD = re.compile(r"[A-Za-z0-9]+|[^A-Za-z0-9]")
_ASCII_CONTROLS = {code: None for code in [*range(0, 9), 11, 12, *range(14, 32), 127]}


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(char for char in decomposed if unicodedata.category(char) != "Mn")


class BasicTokenizer:
    """Cleaning, lower-casing, accent stripping, CJK and punctuation splitting before WordPiece."""

    def __init__(
        self,
        do_lower_case: bool = True,
        never_split: Iterable[str] | None = None,
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        do_split_on_punc: bool = True,
    ) -> None:
        self.do_lower_case = do_lower_case
        self.never_split = set(never_split or ())
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents
        self.do_split_on_punc = do_split_on_punc
        # strip_accents=None follows do_lower_case, as in the original BERT.
        self._strip = strip_accents if strip_accents is not None else do_lower_case
        self._cleaning = _CleaningTable(tokenize_chinese_chars)
        self._punctuation = _PunctuationTable()

    def tokenize(self, text: str, never_split: Iterable[str] | None = None) -> list[str]:
        """Split text into words and punctuation marks (the input of WordPiece)."""
        keep = self.never_split.union(never_split) if never_split else self.never_split
        if text.isascii():
            return self._tokenize_ascii(text, keep)
        text = text.translate(self._cleaning)
        text = unicodedata.normalize("NFC", text)
        words: list[str] = []
        for word in text.split():
            if word in keep:
                words.append(word)
                continue
            if self.do_lower_case:
                word = word.lower()
            if self._strip:
                word = _strip_accents(word)
            if self.do_split_on_punc:
                words.extend(word.translate(self._punctuation).split())
            elif word:
                words.append(word)
        return words

    def _tokenize_ascii(self, text: str, keep: set[str]) -> list[str]:
        # ASCII needs no NFC, accent stripping or CJK spacing, and every printable non-alphanumeric
        # character is punctuation, so one regular expression splits a word.
        text = text.translate(_ASCII_CONTROLS)
        if self.do_lower_case and not keep:
            text = text.lower()
            if not self.do_split_on_punc:
                return text.split()
            words: list[str] = []
            for word in text.split():
                if word.isalnum():
                    words.append(word)
                else:
                    words.extend(_ASCII_WORD.findall(word))
            return words
        words = []
        for word in text.split():
            if word in keep:
                words.append(word)
                continue
            if self.do_lower_case:
                word = word.lower()
            if not self.do_split_on_punc or word.isalnum():
                words.append(word)
            else:
                words.extend(_ASCII_WORD.findall(word))
        return words


class WordpieceTokenizer:
    """Greedy longest-match-first WordPiece, with `##` marking pieces inside a word."""

    def __init__(
        self,
        vocab: dict[str, int],
        unk_token: str,
        max_input_chars_per_word: int = 100,
        continuing_subword_prefix: str = "##",
    ) -> None:
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        self.prefix = continuing_subword_prefix
        self.longest_piece = max((len(token) for token in vocab), default=1)

    def tokenize(self, word: str) -> list[str]:
        """Word pieces of one word; the unknown token when the word cannot be covered."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces: list[str] = []
        start = 0
        vocab = self.vocab
        while start < len(word):
            end = min(len(word), start + self.longest_piece)
            piece = None
            while start < end:
                candidate = word[start:end]
                if start > 0:
                    candidate = self.prefix + candidate
                if candidate in vocab:
                    piece = candidate
                    break
                end -= 1
            if piece is None:
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces


class _BertFamily:
    """What BERT's slow and fast tokenizers share: files, special tokens, model inputs."""

    vocab_files_names = {"vocab_file": VOCAB_FILE}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]


class BertTokenizer(_BertFamily, PreTrainedTokenizerBase):
    """Construct a BERT tokenizer (WordPiece) in pure Python."""

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        do_lower_case: bool = True,
        do_basic_tokenize: bool = True,
        never_split: Iterable[str] | None = None,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        **kwargs: Any,
    ) -> None:
        self.vocab = load_vocab(vocab_file)
        self.vocab_file = str(vocab_file)
        self.ids_to_tokens = {index: token for token, index in self.vocab.items()}
        super().__init__(
            unk_token=unk_token,
            sep_token=sep_token,
            pad_token=pad_token,
            cls_token=cls_token,
            mask_token=mask_token,
            **kwargs,
        )
        if self.unk_token not in self.vocab:
            raise ValueError(f"the unknown token {self.unk_token!r} is not in {vocab_file}")
        self.do_lower_case = do_lower_case
        self.do_basic_tokenize = do_basic_tokenize
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents
        self.never_split = list(never_split or ())
        self.basic_tokenizer = BasicTokenizer(
            do_lower_case=do_lower_case,
            never_split=never_split,
            tokenize_chinese_chars=tokenize_chinese_chars,
            strip_accents=strip_accents,
        )
        self.wordpiece_tokenizer = WordpieceTokenizer(self.vocab, self.unk_token)
        self._word_ids: dict[str, list[int]] = {}

    def clear_cache(self) -> None:
        """Forget the word-piece ids cached per word (benchmarks use it to measure a cold start)."""
        self._word_ids.clear()

    @property
    def vocab_size(self) -> int:
        """Number of tokens in vocab.txt."""
        return len(self.vocab)

    def get_vocab(self) -> dict[str, int]:
        """Token to id."""
        return dict(self.vocab)

    def _convert_token_to_id(self, token: str) -> int:
        index = self.vocab.get(token)
        return self.vocab[self.unk_token] if index is None else index

    def _convert_id_to_token(self, index: int) -> str:
        token = self.ids_to_tokens.get(index)
        if token is None:
            raise ValueError(f"id {index} is outside the vocabulary ({self.vocab_size} tokens)")
        return token

    def _words(self, segment: str) -> list[str]:
        if self.do_basic_tokenize:
            # Special tokens were split off before this point, so only the user's never_split applies.
            return self.basic_tokenizer.tokenize(segment)
        return segment.split()

    def _word_to_ids(self, word: str) -> list[int]:
        ids = self._word_ids.get(word)
        if ids is None:
            ids = [self.vocab[piece] for piece in self.wordpiece_tokenizer.tokenize(word)]
            if len(self._word_ids) >= _WORD_CACHE_LIMIT:
                self._word_ids.clear()
            self._word_ids[word] = ids
        return ids

    def _text_to_ids(self, text: str) -> list[int]:
        parts = self.split_on_special_tokens(text)
        ids: list[int] = []
        for index, part in enumerate(parts):
            if index % 2:
                ids.append(self.vocab.get(part, self.vocab[self.unk_token]))
                continue
            for word in self._words(part):
                ids.extend(self._word_to_ids(word))
        return ids

    def tokenize(self, text: str) -> list[str]:
        """Word pieces of one text, without special tokens around it."""
        _check_text(text, "text")
        return [self.ids_to_tokens[i] for i in self._text_to_ids(text)]

    def _encode_texts(self, texts: list[str], with_offsets: bool) -> list[EncodedText]:
        return [EncodedText(self._text_to_ids(text)) for text in texts]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Join word pieces back into words."""
        return " ".join(tokens).replace(" ##", "").strip()

    def _init_kwargs_for_config(self) -> dict[str, Any]:
        return {
            "do_lower_case": self.do_lower_case,
            "do_basic_tokenize": self.do_basic_tokenize,
            "never_split": self.never_split or None,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "strip_accents": self.strip_accents,
        }

    def save_vocabulary(
        self, save_directory: str, filename_prefix: str | None = None
    ) -> tuple[str]:
        """Write vocab.txt (one token per line, in id order)."""
        return (_write_vocab(self.vocab, save_directory, filename_prefix),)


def _write_vocab(vocab: dict[str, int], save_directory: str, filename_prefix: str | None) -> str:
    ordered = sorted(vocab.items(), key=lambda item: item[1])
    if [index for _, index in ordered] != list(range(len(ordered))):
        raise ValueError(
            "the vocabulary ids are not consecutive, so they cannot be saved as vocab.txt"
        )
    path = Path(save_directory) / ((filename_prefix + "-" if filename_prefix else "") + VOCAB_FILE)
    path.write_text("".join(token + "\n" for token, _ in ordered), encoding="utf-8")
    return str(path)


class BertTokenizerFast(_BertFamily, PreTrainedTokenizerFast):
    """Construct a fast BERT tokenizer (WordPiece in the `tokenizers` library, with offsets)."""

    vocab_files_names = {"vocab_file": VOCAB_FILE, "tokenizer_file": "tokenizer.json"}

    def __init__(
        self,
        vocab_file: str | os.PathLike | None = None,
        tokenizer_file: str | os.PathLike | None = None,
        do_lower_case: bool = True,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        clean_text: bool = True,
        wordpieces_prefix: str = "##",
        **kwargs: Any,
    ) -> None:
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

        if tokenizer_file is not None:
            backend = load_backend(tokenizer_file)
        elif vocab_file is not None:
            vocab = load_vocab(vocab_file)
            if unk_token not in vocab:
                raise ValueError(f"the unknown token {unk_token!r} is not in {vocab_file}")
            backend = Tokenizer(
                models.WordPiece(
                    vocab, unk_token=unk_token, continuing_subword_prefix=wordpieces_prefix
                )
            )
            backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
            backend.decoder = decoders.WordPiece(prefix=wordpieces_prefix, cleanup=True)
        else:
            raise ValueError(
                "BertTokenizerFast needs vocab_file (vocab.txt) or tokenizer_file (tokenizer.json)"
            )
        # The normalizer always follows the constructor arguments, whatever the file said.
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=clean_text,
            handle_chinese_chars=tokenize_chinese_chars,
            strip_accents=strip_accents,
            lowercase=do_lower_case,
        )
        self.vocab_file = None if vocab_file is None else str(vocab_file)
        self.do_lower_case = do_lower_case
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents
        self.clean_text = clean_text
        self.wordpieces_prefix = wordpieces_prefix
        super().__init__(
            backend,
            unk_token=unk_token,
            sep_token=sep_token,
            pad_token=pad_token,
            cls_token=cls_token,
            mask_token=mask_token,
            **kwargs,
        )

    def _decoder_without_cleanup(self) -> Any:
        from tokenizers import decoders

        return decoders.WordPiece(prefix=self.wordpieces_prefix, cleanup=False)

    def _init_kwargs_for_config(self) -> dict[str, Any]:
        return {
            "do_lower_case": self.do_lower_case,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "strip_accents": self.strip_accents,
        }

    def save_vocabulary(
        self, save_directory: str, filename_prefix: str | None = None
    ) -> tuple[str]:
        """Write vocab.txt from the backend's WordPiece vocabulary."""
        return (
            _write_vocab(
                self._backend.get_vocab(with_added_tokens=False), save_directory, filename_prefix
            ),
        )
