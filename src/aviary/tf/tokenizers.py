"""In-graph tokenizers (tensorflow-text) as Keras 3 layers: strings in, model inputs out.

They run inside a Keras model, in `tf.data` pipelines and in an exported SavedModel (loading one
needs `import tensorflow_text`, which registers the ops). `TFBertTokenizer` follows the reference;
`TFSentencePieceTokenizer` (BigBird, Pegasus) goes beyond it with the same special-token handling as
the core tokenizers.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from aviary.core.tokenizers import (
    BertTokenizer,
    BertTokenizerFast,
    BigBirdTokenizer,
    BigBirdTokenizerFast,
    PegasusTokenizer,
    PegasusTokenizerFast,
)
from aviary.core.tokenizers.sentencepiece_base import read_model_file


def _as_string_batch(text: Any) -> tf.Tensor:
    text = tf.convert_to_tensor(text)
    if text.dtype != tf.string:
        raise TypeError(f"the in-graph tokenizer takes tf.string input, got {text.dtype.name}")
    if text.shape.rank == 0:
        text = text[tf.newaxis]
    return text


class _InGraphTokenizer(keras.layers.Layer):
    """Truncation, special tokens, padding and masks for ragged ids, shared by the in-graph layers.

    Subclasses set `cls_token_id`, `sep_token_id` and `pad_token_id`; the special tokens are laid
    out as `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]` unless a subclass says otherwise.
    """

    def __init__(
        self,
        padding: str = "longest",
        truncation: bool = True,
        max_length: int = 512,
        pad_to_multiple_of: int | None = None,
        return_token_type_ids: bool = True,
        return_attention_mask: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if padding not in ("longest", "max_length"):
            raise ValueError(f"padding must be 'longest' or 'max_length', got {padding!r}")
        self.padding = padding
        self.truncation = truncation
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        self.return_token_type_ids = return_token_type_ids
        self.return_attention_mask = return_attention_mask
        self.supports_jit = False  # tensorflow-text ops do not compile with XLA

    def _special_count(self, pair: bool) -> int:
        return 3 if pair else 2

    def _combine(self, segments: list[tf.RaggedTensor]) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        """`[CLS] A [SEP] (B [SEP])` ids and their token types."""
        return tf_text.combine_segments(
            segments, start_of_sequence_id=self.cls_token_id, end_of_segment_id=self.sep_token_id
        )

    @classmethod
    def _from_arguments(
        cls, tokenizer: Any, arguments: dict[str, Any], kwargs: dict[str, Any]
    ) -> _InGraphTokenizer:
        """`cls(**arguments)` overridden by `kwargs`; `max_length` defaults to the tokenizer's
        `model_max_length` where that is a real limit."""
        if "max_length" not in kwargs and tokenizer.model_max_length < 1_000_000:
            arguments["max_length"] = tokenizer.model_max_length
        return cls(**{**arguments, **kwargs})

    def unpaired_tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Ragged ids [batch, (tokens)] of a batch of strings, without special tokens."""
        raise NotImplementedError

    def call(
        self,
        text: Any,
        text_pair: Any = None,
        padding: str | None = None,
        truncation: bool | None = None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
    ) -> dict[str, tf.Tensor]:
        """Tokenize a batch of strings (and optional pairs) into padded int64 model inputs."""
        padding = self.padding if padding is None else padding
        truncation = self.truncation if truncation is None else truncation
        max_length = self.max_length if max_length is None else max_length
        multiple = self.pad_to_multiple_of if pad_to_multiple_of is None else pad_to_multiple_of
        want_types = (
            self.return_token_type_ids if return_token_type_ids is None else return_token_type_ids
        )
        want_mask = (
            self.return_attention_mask if return_attention_mask is None else return_attention_mask
        )

        text = _as_string_batch(text)
        if text_pair is None and text.shape.rank == 2:
            # A [batch, 2] string tensor is a batch of pairs, as in the reference.
            text, text_pair = text[:, 0], text[:, 1]
        segments = [self.unpaired_tokenize(text)]
        if text_pair is not None:
            segments.append(self.unpaired_tokenize(_as_string_batch(text_pair)))
        if truncation:
            budget = max_length - self._special_count(len(segments) == 2)
            if budget < 0:
                raise ValueError(
                    f"max_length={max_length} is smaller than the special tokens the tokenizer adds"
                )
            if len(segments) == 1:
                segments = [segments[0][:, :budget]]
            else:
                segments = tf_text.ShrinkLongestTrimmer(budget, axis=-1).trim(segments)
        input_ids, token_type_ids = self._combine(segments)

        if padding == "max_length":
            target = tf.constant(max_length, tf.int64)
        else:
            target = tf.reduce_max(input_ids.row_lengths())
            target = tf.maximum(target, 0)
        if multiple:
            target = (target + multiple - 1) // multiple * multiple
        batch = tf.shape(input_ids.row_lengths(), out_type=tf.int64)[0]
        shape = tf.stack([batch, target])
        outputs = {"input_ids": input_ids.to_tensor(default_value=self.pad_token_id, shape=shape)}
        if want_types:
            # Padded with 0 (the reference pads token types with pad_token_id).
            outputs["token_type_ids"] = token_type_ids.to_tensor(default_value=0, shape=shape)
        if want_mask:
            outputs["attention_mask"] = tf.sequence_mask(
                input_ids.row_lengths(), maxlen=target, dtype=tf.int64
            )
        return outputs

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            padding=self.padding,
            truncation=self.truncation,
            max_length=self.max_length,
            pad_to_multiple_of=self.pad_to_multiple_of,
            return_token_type_ids=self.return_token_type_ids,
            return_attention_mask=self.return_attention_mask,
        )
        return config


@keras.saving.register_keras_serializable(package="aviary")
class TFBertTokenizer(_InGraphTokenizer):
    """In-graph BERT tokenizer (a Keras layer) over tensorflow-text's FastBertTokenizer, or its
    BertTokenizer with `use_fast_bert_tokenizer=False`."""

    def __init__(
        self,
        vocab_list: list[str],
        do_lower_case: bool = True,
        cls_token_id: int | None = None,
        sep_token_id: int | None = None,
        pad_token_id: int | None = None,
        padding: str = "longest",
        truncation: bool = True,
        max_length: int = 512,
        pad_to_multiple_of: int | None = None,
        return_token_type_ids: bool = True,
        return_attention_mask: bool = True,
        use_fast_bert_tokenizer: bool = True,
        **tokenizer_kwargs: Any,
    ) -> None:
        layer_kwargs = {
            k: tokenizer_kwargs.pop(k)
            for k in ("name", "dtype", "trainable")
            if k in tokenizer_kwargs
        }
        super().__init__(
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            return_token_type_ids=return_token_type_ids,
            return_attention_mask=return_attention_mask,
            **layer_kwargs,
        )
        self.vocab_list = list(vocab_list)
        self.do_lower_case = do_lower_case
        self.cls_token_id = self.vocab_list.index("[CLS]") if cls_token_id is None else cls_token_id
        self.sep_token_id = self.vocab_list.index("[SEP]") if sep_token_id is None else sep_token_id
        self.pad_token_id = self.vocab_list.index("[PAD]") if pad_token_id is None else pad_token_id
        self.use_fast_bert_tokenizer = use_fast_bert_tokenizer
        self.tokenizer_kwargs = tokenizer_kwargs
        if use_fast_bert_tokenizer:
            self.tf_tokenizer = tf_text.FastBertTokenizer(
                vocab=self.vocab_list,
                token_out_type=tf.int64,
                lower_case_nfd_strip_accents=do_lower_case,
                **tokenizer_kwargs,
            )
        else:
            table = tf.lookup.StaticVocabularyTable(
                tf.lookup.KeyValueTensorInitializer(
                    keys=self.vocab_list,
                    key_dtype=tf.string,
                    values=tf.range(len(self.vocab_list), dtype=tf.int64),
                    value_dtype=tf.int64,
                ),
                num_oov_buckets=1,
            )
            self.tf_tokenizer = tf_text.BertTokenizer(
                table, token_out_type=tf.int64, lower_case=do_lower_case, **tokenizer_kwargs
            )

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, **kwargs: Any) -> TFBertTokenizer:
        """Build from an aviary BertTokenizer / BertTokenizerFast (vocabulary, case, special ids)."""
        if not isinstance(tokenizer, (BertTokenizer, BertTokenizerFast)):
            raise TypeError(
                f"from_tokenizer needs a BERT tokenizer, got {type(tokenizer).__name__}"
            )
        vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
        arguments = {
            "vocab_list": [token for token, _ in vocab],
            "do_lower_case": tokenizer.do_lower_case,
            "cls_token_id": tokenizer.cls_token_id,
            "sep_token_id": tokenizer.sep_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        }
        return cls._from_arguments(tokenizer, arguments, kwargs)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any
    ) -> TFBertTokenizer:
        """Build from a local tokenizer folder (vocab.txt, or tokenizer.json)."""
        try:
            tokenizer = BertTokenizer.from_pretrained(pretrained_model_name_or_path)
        except (TypeError, ValueError):
            tokenizer = BertTokenizerFast.from_pretrained(pretrained_model_name_or_path)
        return cls.from_tokenizer(tokenizer, **kwargs)

    def unpaired_tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Ragged word-piece ids [batch, (tokens)] without special tokens."""
        if self.do_lower_case:
            texts = tf_text.case_fold_utf8(texts)
        tokens = self.tf_tokenizer.tokenize(texts)
        if not self.use_fast_bert_tokenizer:
            tokens = tokens.merge_dims(1, -1)
        return tokens

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            vocab_list=self.vocab_list,
            do_lower_case=self.do_lower_case,
            cls_token_id=self.cls_token_id,
            sep_token_id=self.sep_token_id,
            pad_token_id=self.pad_token_id,
            use_fast_bert_tokenizer=self.use_fast_bert_tokenizer,
            **self.tokenizer_kwargs,
        )
        return config


@keras.saving.register_keras_serializable(package="aviary")
class TFSentencePieceTokenizer(_InGraphTokenizer):
    """In-graph SentencePiece tokenizer (BigBird or Pegasus layout) over tensorflow-text.

    `template="cls_sep"` gives BigBird's `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]`;
    `template="eos"` gives Pegasus's `A </s>` / `A B </s>`. Model ids are SentencePiece ids plus
    `offset` (103 for Pegasus). Literal special tokens inside the text are not recognised in-graph
    (they are split into pieces); use the core tokenizers when the text may contain them.
    """

    def __init__(
        self,
        model_proto: bytes | str,
        template: str = "cls_sep",
        cls_token_id: int | None = None,
        sep_token_id: int | None = None,
        eos_token_id: int | None = None,
        pad_token_id: int = 0,
        offset: int = 0,
        padding: str = "longest",
        truncation: bool = True,
        max_length: int = 4096,
        pad_to_multiple_of: int | None = None,
        return_token_type_ids: bool = False,
        return_attention_mask: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            return_token_type_ids=return_token_type_ids,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        if template not in ("cls_sep", "eos"):
            raise ValueError(f"template must be 'cls_sep' or 'eos', got {template!r}")
        if template == "cls_sep" and (cls_token_id is None or sep_token_id is None):
            raise ValueError("template='cls_sep' needs cls_token_id and sep_token_id")
        if template == "eos" and eos_token_id is None:
            raise ValueError("template='eos' needs eos_token_id")
        # Keras configs are JSON, so the proto travels as latin-1 text; bytes are kept for the op.
        self.model_proto = (
            model_proto.encode("latin-1") if isinstance(model_proto, str) else model_proto
        )
        self.template = template
        self.cls_token_id = cls_token_id
        self.sep_token_id = sep_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.offset = offset
        self.tf_tokenizer = tf_text.SentencepieceTokenizer(
            model=self.model_proto, out_type=tf.int32
        )

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, **kwargs: Any) -> TFSentencePieceTokenizer:
        """Build from an aviary BigBird or Pegasus tokenizer (slow or fast, built from spiece.model)."""
        if tokenizer.vocab_file is None:
            raise ValueError(
                "the tokenizer was not built from a spiece.model, which the layer needs"
            )
        arguments: dict[str, Any] = {
            "model_proto": read_model_file(tokenizer.vocab_file),
            "pad_token_id": tokenizer.pad_token_id,
        }
        if isinstance(tokenizer, (BigBirdTokenizer, BigBirdTokenizerFast)):
            arguments.update(
                template="cls_sep",
                cls_token_id=tokenizer.cls_token_id,
                sep_token_id=tokenizer.sep_token_id,
            )
        elif isinstance(tokenizer, (PegasusTokenizer, PegasusTokenizerFast)):
            arguments.update(
                template="eos", eos_token_id=tokenizer.eos_token_id, offset=tokenizer.offset
            )
        else:
            raise TypeError(
                f"from_tokenizer needs a BigBird or Pegasus tokenizer, got {type(tokenizer).__name__}"
            )
        return cls._from_arguments(tokenizer, arguments, kwargs)

    def unpaired_tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Ragged SentencePiece ids (shifted by `offset`) without special tokens."""
        ids = tf.cast(self.tf_tokenizer.tokenize(texts), tf.int64)
        return ids + self.offset if self.offset else ids

    def _special_count(self, pair: bool) -> int:
        return 1 if self.template == "eos" else super()._special_count(pair)

    def _combine(self, segments: list[tf.RaggedTensor]) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        if self.template == "cls_sep":
            return super()._combine(segments)
        # `A (B) </s>`, all token type 0.
        eos = tf.fill(tf.stack([segments[0].nrows(), 1]), tf.constant(self.eos_token_id, tf.int64))
        ids = tf.concat([*segments, tf.RaggedTensor.from_tensor(eos)], axis=1)
        return ids, tf.zeros_like(ids)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            model_proto=self.model_proto.decode("latin-1"),
            template=self.template,
            cls_token_id=self.cls_token_id,
            sep_token_id=self.sep_token_id,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            offset=self.offset,
        )
        return config
