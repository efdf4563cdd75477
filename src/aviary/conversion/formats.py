"""Every weights format aviary reads and writes, all through the canonical checkpoint.

| format        | files                                                | needs            |
|---------------|------------------------------------------------------|------------------|
| `safetensors` | `model.safetensors` (+ shards, `.index.json`)        | safetensors      |
| `pt`          | `pytorch_model.bin` (+ shards, `.index.json`)        | torch            |
| `tf`          | `tf_model.h5` (the reference's Keras 2 layout)       | h5py             |
| `flax`        | `flax_model.msgpack`                                 | flax             |
| `keras`       | `model.keras` (an aviary TF model saved by Keras 3)  | tensorflow/keras |

Reading returns `{canonical name: numpy array}` in the PyTorch layout; writing takes the same.
Frameworks are imported only when their format is read or written. Conversion imports no aviary
framework package: what a format needs from one (`numpy_to_torch`, the `.keras` loader and saver)
the framework registers here when its module is imported (`register_for_conversion`), and a
format asks for it by name (`framework_function`).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aviary.conversion.checkpoint import (
    PT_WEIGHTS_INDEX_NAME,
    PT_WEIGHTS_NAME,
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    CheckpointError,
    parse_size,
    read_checkpoint,
    write_checkpoint,
    write_sharded,
)
from aviary.conversion.flax_msgpack import FLAX_WEIGHTS_NAME, read_flax_msgpack, write_flax_msgpack
from aviary.conversion.tf_h5 import TF_WEIGHTS_NAME, read_tf_h5, write_tf_h5
from aviary.core.configs import PretrainedConfig
from aviary.core.naming import BASE_MODELS, architecture

KERAS_MODEL_NAME = "model.keras"
DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class WeightsFormat:
    """One weights format: its name, the files that mark it in a folder, its reader and writer."""

    name: str
    files: tuple[str, ...]
    read: Callable[[Path], dict[str, np.ndarray]]
    # write(tensors, folder, max_shard_size, config) -> files written
    write: Callable[[Mapping[str, np.ndarray], Path, int | None, PretrainedConfig], list[Path]]


# -- what the frameworks provide -----------------------------------------------------------------

# Each function a format needs from a framework, and the framework module that defines it and
# registers it here on import. A function asked for before that module is loaded is found by
# importing the module named here.
FRAMEWORK_FUNCTIONS = {
    "numpy_to_torch": "aviary.pt.modeling_utils",
    "load_keras_model": "aviary.tf.modeling_utils",
    "save_keras_model": "aviary.tf.modeling_utils",
}
_registered: dict[str, Callable[..., Any]] = {}


def register_for_conversion(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: a framework registers one of `FRAMEWORK_FUNCTIONS` under its name."""
    if function.__name__ not in FRAMEWORK_FUNCTIONS:
        raise ValueError(f"{function.__name__} is not one of {', '.join(FRAMEWORK_FUNCTIONS)}")
    _registered[function.__name__] = function
    return function


def framework_function(name: str) -> Callable[..., Any]:
    """The framework function registered as `name`, loading the module that provides it once."""
    if name not in _registered:
        importlib.import_module(FRAMEWORK_FUNCTIONS[name])
    return _registered[name]


# -- readers and writers not covered by checkpoint.py --------------------------------------------


def _read_canonical(path: Path) -> dict[str, np.ndarray]:
    return read_checkpoint(path, framework="np")


def _write_safetensors(tensors, folder, max_shard_size, config) -> list[Path]:
    return write_checkpoint(tensors, folder, framework="np", max_shard_size=max_shard_size)


def _write_pytorch_bin(tensors, folder, max_shard_size, config) -> list[Path]:
    """`torch.save` of the state dict, sharded like the reference above `max_shard_size`."""
    import torch

    numpy_to_torch = framework_function("numpy_to_torch")
    return write_sharded(
        {name: numpy_to_torch(value) for name, value in tensors.items()},
        folder,
        single_name=PT_WEIGHTS_NAME,
        shard_pattern="pytorch_model-{i}-of-{n}.bin",
        index_name=PT_WEIGHTS_INDEX_NAME,
        save_shard=torch.save,
        max_shard_size=max_shard_size,
    )


def _write_tf_h5(tensors, folder, max_shard_size, config) -> list[Path]:
    model_class = "TF" + architecture(config)
    prefix = BASE_MODELS[config.model_type].prefix
    path = folder / TF_WEIGHTS_NAME
    return [write_tf_h5(tensors, path, model_class=model_class, base_model_prefix=prefix)]


def _write_flax(tensors, folder, max_shard_size, config) -> list[Path]:
    return [write_flax_msgpack(tensors, folder / FLAX_WEIGHTS_NAME)]


def _read_keras(path: Path) -> dict[str, np.ndarray]:
    return framework_function("load_keras_model")(path).checkpoint_tensors()


def _write_keras(tensors, folder, max_shard_size, config) -> list[Path]:
    save_keras_model = framework_function("save_keras_model")
    return [save_keras_model(dict(tensors), config, folder / KERAS_MODEL_NAME)]


FORMATS: dict[str, WeightsFormat] = {
    f.name: f
    for f in (
        WeightsFormat(
            "safetensors",
            (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME),
            _read_canonical,
            _write_safetensors,
        ),
        WeightsFormat(
            "pt", (PT_WEIGHTS_NAME, PT_WEIGHTS_INDEX_NAME), _read_canonical, _write_pytorch_bin
        ),
        WeightsFormat("tf", (TF_WEIGHTS_NAME,), read_tf_h5, _write_tf_h5),
        WeightsFormat("flax", (FLAX_WEIGHTS_NAME,), read_flax_msgpack, _write_flax),
        WeightsFormat("keras", (KERAS_MODEL_NAME,), _read_keras, _write_keras),
    )
}


def detect_format(path: str | os.PathLike) -> tuple[str, Path]:
    """The format of a weights file, or of the preferred weights file in a folder."""
    path = Path(path)
    if path.is_dir():
        for fmt in FORMATS.values():
            for name in fmt.files:
                if (path / name).is_file():
                    return fmt.name, path / name
        raise FileNotFoundError(
            f"no weights in {path}: expected one of "
            + ", ".join(n for f in FORMATS.values() for n in f.files)
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    name = path.name
    for fmt in FORMATS.values():
        if name in fmt.files:
            return fmt.name, path
    suffixes = {
        ".safetensors": "safetensors",
        ".bin": "pt",
        ".h5": "tf",
        ".msgpack": "flax",
        ".keras": "keras",
    }
    if path.suffix in suffixes:
        return suffixes[path.suffix], path
    raise ValueError(f"{path}: unknown weights format (expected one of {', '.join(FORMATS)})")


def read_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Canonical tensors from any supported weights file or folder."""
    fmt, file = detect_format(path)
    return FORMATS[fmt].read(file)


def cast_tensors(tensors: Mapping[str, np.ndarray], dtype: str | None) -> dict[str, np.ndarray]:
    """Floating-point tensors cast to `dtype` (`float32`, `float16`, `bfloat16`); others kept."""
    if dtype is None:
        return dict(tensors)
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if dtype == "bfloat16":
        import ml_dtypes

        target = np.dtype(ml_dtypes.bfloat16)
    else:
        target = np.dtype(dtype)
    out = {}
    for name, value in tensors.items():
        floating = np.issubdtype(value.dtype, np.floating) or value.dtype.name == "bfloat16"
        out[name] = value.astype(target) if floating and value.dtype != target else value
    return out


def write_weights(
    tensors: Mapping[str, np.ndarray],
    folder: str | os.PathLike,
    fmt: str,
    *,
    config: PretrainedConfig,
    max_shard_size: int | str | None = None,
) -> list[Path]:
    """Write canonical tensors to `folder` in format `fmt`; returns the files written. The config
    names the class (`architectures`) for the formats that record it (tf, keras)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    limit = parse_size(max_shard_size) if max_shard_size is not None else None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return FORMATS[fmt].write(tensors, folder, limit, config)
    except ImportError as err:
        if (err.name or "").startswith("aviary"):  # a broken aviary module, not a missing package
            raise
        raise CheckpointError(
            f"writing {fmt} weights needs {err.name}: install aviary[all]"
        ) from None


# The order in which each framework's `from_pretrained` looks for weights in a folder: its own
# native file first where it has one (as the reference), then the canonical files, then the others.
_LOAD_ORDER = {
    "pt": ("safetensors", "pt", "tf", "flax"),
    "tf": ("safetensors", "pt", "tf", "flax"),
    "flax": ("flax", "safetensors", "pt", "tf"),
}


def read_model_weights(folder: str | os.PathLike, framework: str) -> tuple[dict[str, Any], Path]:
    """The canonical tensors a framework's `from_pretrained` loads from `folder`, and the file
    they came from. safetensors and `.bin` files give the framework's own tensors (`framework`
    "pt" gives torch tensors); `tf_model.h5` and `flax_model.msgpack` give numpy arrays.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"checkpoint folder {folder} does not exist")
    for fmt in _LOAD_ORDER[framework]:
        for name in FORMATS[fmt].files:
            path = folder / name
            if path.is_file():
                if fmt in ("safetensors", "pt"):
                    return read_checkpoint(
                        path, framework="pt" if framework == "pt" else "np"
                    ), path
                return FORMATS[fmt].read(path), path
    raise FileNotFoundError(
        f"no weights in {folder}: expected one of "
        + ", ".join(n for f in _LOAD_ORDER[framework] for n in FORMATS[f].files)
    )
