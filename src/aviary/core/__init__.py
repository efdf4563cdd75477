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

__all__ = ["BertConfig", "BigBirdConfig", "BigBirdPegasusConfig", "PretrainedConfig", "load_config"]
