"""aviary: BERT, BigBird and BigBirdPegasus in PyTorch, TensorFlow/Keras 3 and Flax.

`import aviary` loads no framework. Models live in `aviary.pt`, `aviary.tf` and `aviary.flax`.
"""

from aviary.core import (
    BertConfig,
    BertTokenizer,
    BertTokenizerFast,
    BigBirdConfig,
    BigBirdPegasusConfig,
    BigBirdTokenizer,
    BigBirdTokenizerFast,
    PegasusTokenizer,
    PegasusTokenizerFast,
    PretrainedConfig,
    load_config,
)

__version__ = "0.1.0"

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
    "__version__",
    "load_config",
]
