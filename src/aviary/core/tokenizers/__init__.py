"""Tokenizers for BERT (WordPiece), BigBird and Pegasus (SentencePiece): slow and fast.

Slow tokenizers are pure Python (`sentencepiece` for the SentencePiece families); fast ones run in
the `tokenizers` library and also return character offsets. Both share one base class, so padding,
truncation, special tokens and tensors behave the same. The in-graph TensorFlow tokenizers live in
`aviary.tf.tokenizers`.
"""

from aviary.core.tokenizers.base import (
    BatchEncoding,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    clean_up_tokenization,
)
from aviary.core.tokenizers.bert import (
    BasicTokenizer,
    BertTokenizer,
    BertTokenizerFast,
    WordpieceTokenizer,
)
from aviary.core.tokenizers.big_bird import BigBirdTokenizer, BigBirdTokenizerFast
from aviary.core.tokenizers.pegasus import PegasusTokenizer, PegasusTokenizerFast

__all__ = [
    "BasicTokenizer",
    "BatchEncoding",
    "BertTokenizer",
    "BertTokenizerFast",
    "BigBirdTokenizer",
    "BigBirdTokenizerFast",
    "PegasusTokenizer",
    "PegasusTokenizerFast",
    "PreTrainedTokenizerBase",
    "PreTrainedTokenizerFast",
    "WordpieceTokenizer",
    "clean_up_tokenization",
]
