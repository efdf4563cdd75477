"""Framework-neutral core: configs, tokenizers, `AutoConfig` / `AutoTokenizer`, BigBird attention
planning, naming rules.

Imports numpy and the standard library only (a test checks that no framework is loaded).
"""

from aviary.core.auto import AutoConfig, AutoTokenizer
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
    "AutoConfig",
    "AutoTokenizer",
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
