"""Framework-neutral core: configs, tokenizers, BigBird attention planning, naming rules.

Imports numpy and the standard library only (a test checks that no framework is loaded).
"""

from aviary.core.configs import (
    BertConfig,
    BigBirdConfig,
    BigBirdPegasusConfig,
    PretrainedConfig,
    load_config,
)
from aviary.core.tokenizers import (
    BertTokenizer,
    BertTokenizerFast,
    BigBirdTokenizer,
    BigBirdTokenizerFast,
    PegasusTokenizer,
    PegasusTokenizerFast,
)

__all__ = [
    "BertConfig",
    "BertTokenizer",
    "BertTokenizerFast",
    "BigBirdConfig",
    "BigBirdPegasusConfig",
    "BigBirdTokenizer",
    "BigBirdTokenizerFast",
    "PegasusTokenizer",
    "PegasusTokenizerFast",
    "PretrainedConfig",
    "load_config",
]
