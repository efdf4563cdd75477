"""aviary: BERT, BigBird and BigBirdPegasus in PyTorch, TensorFlow/Keras 3 and Flax.

`import aviary` loads no framework. Models live in `aviary.pt`, `aviary.tf` and `aviary.flax`;
this package holds the version and the core's public names (`aviary.core.__all__`: the configs,
the tokenizers, `AutoConfig`, `AutoTokenizer` and `load_config`).
"""

from aviary.core import *  # noqa: F403
from aviary.core import __all__ as _core_names

__version__ = "0.1.0"

__all__ = [*_core_names, "__version__"]
