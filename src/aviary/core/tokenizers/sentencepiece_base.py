"""What the SentencePiece families (BigBird, Pegasus) share: model loading, special-token splitting,
and a `tokenizers` Unigram pipeline built straight from the `.model` file (no conversion tool)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from aviary.core.tokenizers.base import (
    EncodedText,
    PreTrainedTokenizerBase,
    _check_text,
    load_backend,
    require_file,
)

SPIECE_FILE = "spiece.model"
WORD_BOUNDARY = "\u2581"  # "▁", SentencePiece's marker for a preceding space


def read_model_file(vocab_file: str | os.PathLike | None) -> bytes:
    """The bytes of a SentencePiece model, with clear errors for a missing or corrupt file."""
    path = require_file(vocab_file, "SentencePiece model file (spiece.model)", "vocab_file")
    data = path.read_bytes()
    parse_model_proto(data, path)
    return data


def parse_model_proto(data: bytes, path: Any = "the SentencePiece model") -> Any:
    """Parse a serialized SentencePiece ModelProto (raises ValueError when it is not one)."""
    from google.protobuf.message import DecodeError
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    try:
        proto.ParseFromString(data)
    except DecodeError as error:
        raise ValueError(f"{path} is not a valid SentencePiece model: {error}") from error
    if not proto.pieces:
        raise ValueError(f"{path} is not a valid SentencePiece model: it has no pieces")
    return proto


def load_processor(model_bytes: bytes, sp_model_kwargs: dict[str, Any] | None) -> Any:
    """A SentencePieceProcessor; `sp_model_kwargs` (e.g. enable_sampling, nbest_size, alpha) go to
    its constructor."""
    import sentencepiece

    try:
        return sentencepiece.SentencePieceProcessor(
            model_proto=model_bytes, **(sp_model_kwargs or {})
        )
    except (RuntimeError, OSError) as error:
        raise ValueError(f"cannot load the SentencePiece model: {error}") from error


def unigram_backend(
    proto: Any,
    vocab: list[tuple[str, float]],
    unk_id: int,
    split_on_whitespace: bool,
    raw_special_tokens: list[str],
    normalized_special_tokens: list[str],
    lstrip_tokens: tuple[str, ...] = (),
) -> Any:
    """A `tokenizers` Unigram pipeline that segments like the SentencePiece model `proto`.

    SentencePiece strips and collapses whitespace and adds a "▁" before the text; here the
    model's precompiled normalisation map is followed by a right strip and a collapse of runs of
    spaces, then a Metaspace pre-tokenizer adds the "▁". Special tokens that SentencePiece itself
    defines are matched on the raw text; the others (matched after normalisation) are those the
    reference adds later, which is what makes its fast tokenizers put a "▁" before `<unk>`.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
    )

    spec = proto.normalizer_spec
    backend = Tokenizer(models.Unigram(vocab, unk_id, proto.trainer_spec.byte_fallback))
    steps = []
    if spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(spec.precompiled_charsmap))
    if spec.remove_extra_whitespaces:
        steps += [
            normalizers.Strip(left=False, right=True),
            normalizers.Replace(Regex(" {2,}"), WORD_BOUNDARY),
        ]
    backend.normalizer = normalizers.Sequence(steps)
    prepend_scheme = "always" if spec.add_dummy_prefix else "never"
    metaspace = pre_tokenizers.Metaspace(replacement=WORD_BOUNDARY, prepend_scheme=prepend_scheme)
    if split_on_whitespace:
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), metaspace]
        )
    else:
        backend.pre_tokenizer = metaspace
    word_decoder = decoders.Metaspace(replacement=WORD_BOUNDARY, prepend_scheme=prepend_scheme)
    if proto.trainer_spec.byte_fallback:
        backend.decoder = decoders.Sequence([decoders.ByteFallback(), word_decoder])
    else:
        backend.decoder = word_decoder
    backend.add_special_tokens(
        [
            AddedToken(token, special=True, normalized=False, lstrip=token in lstrip_tokens)
            for token in raw_special_tokens
        ]
    )
    backend.add_special_tokens(
        [AddedToken(token, special=True, normalized=True) for token in normalized_special_tokens]
    )
    return backend


class SentencePieceTokenizer(PreTrainedTokenizerBase):
    """A slow tokenizer over a `sentencepiece` model; model ids are SentencePiece ids + `offset`."""

    vocab_files_names = {"vocab_file": SPIECE_FILE}
    default_clean_up_tokenization_spaces = False
    offset = 0

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        sp_model_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.vocab_file = str(vocab_file)
        self.sp_model_kwargs = dict(sp_model_kwargs or {})
        self._model_bytes = read_model_file(vocab_file)
        self.sp_model = load_processor(self._model_bytes, self.sp_model_kwargs)
        super().__init__(**kwargs)

    @property
    def vocab_size(self) -> int:
        """SentencePiece pieces plus the ids reserved below them."""
        return self.sp_model.get_piece_size() + self.offset

    def get_vocab(self) -> dict[str, int]:
        """Token to id, for every id."""
        vocab = {self._convert_id_to_token(i): i for i in range(self.vocab_size)}
        vocab.update({token: self._convert_token_to_id(token) for token in self.all_special_tokens})
        return vocab

    def _reserved_tokens(self) -> list[str]:
        """Tokens that own the ids below `offset` and beyond (Pegasus); none by default."""
        return []

    def _convert_token_to_id(self, token: str) -> int:
        reserved = self._reserved_index.get(token)
        if reserved is not None:
            return reserved
        return self.sp_model.piece_to_id(token) + self.offset

    def _convert_id_to_token(self, index: int) -> str:
        reserved = self._reserved_tokens_list
        if index < len(reserved):
            return reserved[index]
        if not 0 <= index - self.offset < self.sp_model.get_piece_size():
            raise ValueError(f"id {index} is outside the vocabulary ({self.vocab_size} ids)")
        return self.sp_model.id_to_piece(index - self.offset)

    @property
    def _reserved_tokens_list(self) -> list[str]:
        cached = self.__dict__.get("_reserved_cache")
        if cached is None:
            cached = self._reserved_tokens()
            self.__dict__["_reserved_cache"] = cached
        return cached

    @property
    def _reserved_index(self) -> dict[str, int]:
        cached = self.__dict__.get("_reserved_index_cache")
        if cached is None:
            cached = {token: index for index, token in enumerate(self._reserved_tokens_list)}
            self.__dict__["_reserved_index_cache"] = cached
        return cached

    def _pieces_of(self, texts: list[str], out_type: type) -> list[list]:
        """Segment each text; literal special tokens are kept whole, the rest goes to SentencePiece."""
        split_texts = [self.split_on_special_tokens(text) for text in texts]
        plain = [part for parts in split_texts for part in parts[0::2]]
        encoded = iter(self.sp_model.encode(plain, out_type=out_type))
        results = []
        for parts in split_texts:
            row: list = []
            for index, part in enumerate(parts):
                if index % 2:
                    row.append(self._convert_token_to_id(part) if out_type is int else part)
                else:
                    pieces = next(encoded)
                    if out_type is int and self.offset:
                        pieces = [piece + self.offset for piece in pieces]
                    row.extend(pieces)
            results.append(row)
        return results

    def tokenize(self, text: str) -> list[str]:
        """SentencePiece pieces of one text (special tokens in the text stay whole)."""
        _check_text(text, "text")
        return self._pieces_of([text], str)[0]

    def _encode_texts(self, texts: list[str], with_offsets: bool) -> list[EncodedText]:
        return [EncodedText(ids) for ids in self._pieces_of(texts, int)]

    def _pieces_to_text(self, pieces: list[str]) -> str:
        return self.sp_model.decode(pieces) if pieces else ""

    def _init_kwargs_for_config(self) -> dict[str, Any]:
        return {"sp_model_kwargs": self.sp_model_kwargs}

    def save_vocabulary(
        self, save_directory: str, filename_prefix: str | None = None
    ) -> tuple[str]:
        """Copy the SentencePiece model (spiece.model) into save_directory."""
        return (_write_model(self._model_bytes, self.vocab_file, save_directory, filename_prefix),)


def _write_model(
    model_bytes: bytes, source: str | None, save_directory: str, prefix: str | None
) -> str:
    path = Path(save_directory) / ((prefix + "-" if prefix else "") + SPIECE_FILE)
    if source and Path(source).is_file() and Path(source).resolve() != path.resolve():
        shutil.copyfile(source, path)
    elif not path.is_file():
        path.write_bytes(model_bytes)
    return str(path)


class SentencePieceFastMixin:
    """Reading the files, saving and the original model bytes for the fast SentencePiece
    tokenizers."""

    _model_bytes: bytes | None = None
    vocab_file: str | None = None

    def _read_files(
        self, vocab_file: str | os.PathLike | None, tokenizer_file: str | os.PathLike | None
    ) -> tuple[Any, Any]:
        """`(backend, None)` from tokenizer.json when `tokenizer_file` is given, else
        `(None, proto)`: the SentencePiece model of `vocab_file`, to build the backend from.
        The model's bytes are kept for `save_vocabulary` whenever `vocab_file` is given."""
        self.vocab_file = None if vocab_file is None else str(vocab_file)
        if tokenizer_file is not None:
            backend = load_backend(tokenizer_file)
            if vocab_file is not None:
                self._model_bytes = read_model_file(vocab_file)
            return backend, None
        if vocab_file is None:
            raise ValueError(
                f"{type(self).__name__} needs vocab_file (spiece.model) or tokenizer_file"
            )
        self._model_bytes = read_model_file(vocab_file)
        return None, parse_model_proto(self._model_bytes, vocab_file)

    def save_vocabulary(
        self, save_directory: str, filename_prefix: str | None = None
    ) -> tuple[str, ...]:
        """Copy spiece.model when the tokenizer was built from one (tokenizer.json is saved anyway)."""
        if self._model_bytes is None:
            return ()
        return (_write_model(self._model_bytes, self.vocab_file, save_directory, filename_prefix),)
