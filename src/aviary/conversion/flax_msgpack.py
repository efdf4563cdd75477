"""The reference Flax weights file, `flax_model.msgpack`, to and from canonical tensors.

The file is `flax.serialization` msgpack of the nested parameter dict, with Flax names and no outer
`params` key: `{"bert": {"encoder": {"layer": {"0": {"attention": ...}}}}, "cls": ...}`. Reading
maps every path with `aviary.core.naming.flax_to_canonical`; writing inverts that rule from the
canonical names alone (LayerNorm weights become `scale`, embedding tables `embedding`, other weights
transposed `kernel`s), so no model is needed. flax is imported only when a file is read or written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from aviary.conversion.checkpoint import CheckpointError
from aviary.core.io import atomic_write_bytes
from aviary.core.naming import flax_to_canonical

FLAX_WEIGHTS_NAME = "flax_model.msgpack"

# Modules whose `weight` is a Flax LayerNorm `scale` or an `nn.Embed` table (not transposed).
_NORM_MODULE = re.compile(r"(^|_)(LayerNorm|layernorm|layer_norm|norm)$", re.IGNORECASE)
_EMBEDDING_MODULE = re.compile(r"(embeddings?|embed_tokens|embed_positions|shared)$")


def _flatten(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    flat = {}
    for key, value in tree.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping):
            flat.update(_flatten(value, path))
        else:
            flat[path] = value
    return flat


def flax_tree_to_canonical(tree: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Nested Flax parameter dict -> `{canonical name: array}` (kernels transposed)."""
    if set(tree) == {"params"}:  # a linen variables dict rather than the reference's file layout
        tree = tree["params"]
    tensors = {}
    for path, value in _flatten(tree).items():
        name, transpose = flax_to_canonical(path)
        array = np.asarray(value)
        tensors[name] = np.ascontiguousarray(array.T) if transpose else array
    return tensors


def canonical_to_flax_tree(tensors: Mapping[str, Any]) -> dict[str, Any]:
    """`{canonical name: array}` -> the reference's nested Flax parameter dict.

    List elements become their own level (`layer.0` -> `layer/0`), as the reference writes them.
    """
    tree: dict[str, Any] = {}
    for name, value in tensors.items():
        parts = name.split(".")
        module, leaf = (parts[-2] if len(parts) > 1 else ""), parts[-1]
        array = np.asarray(value)
        if leaf == "weight":
            if _NORM_MODULE.search(module):
                leaf = "scale"
            elif _EMBEDDING_MODULE.search(module):
                leaf = "embedding"
            elif array.ndim == 2:
                leaf, array = "kernel", np.ascontiguousarray(array.T)
            else:
                raise ValueError(
                    f"{name}: cannot tell which Flax parameter a {array.ndim}-D weight is"
                )
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[leaf] = array
    return tree


def read_flax_msgpack(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a `flax_model.msgpack` file (or the folder holding one) as canonical tensors."""
    from flax import serialization

    path = Path(path)
    if path.is_dir():
        path = path / FLAX_WEIGHTS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"Flax weights file {path} does not exist")
    try:
        tree = serialization.msgpack_restore(path.read_bytes())
    except Exception as err:  # msgpack raises several error types for corrupt data
        raise CheckpointError(f"{path} is not a readable Flax msgpack file: {err}") from None
    if not isinstance(tree, Mapping) or not tree:
        raise CheckpointError(f"{path} does not hold a nested dictionary of parameters")
    try:
        return flax_tree_to_canonical(tree)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None


def write_flax_msgpack(tensors: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write canonical tensors as a reference-layout `flax_model.msgpack` (atomically).

    `path` is the file, or a folder to write `flax_model.msgpack` into.
    """
    from flax import serialization

    path = Path(path)
    if path.is_dir():
        path = path / FLAX_WEIGHTS_NAME
    tree = canonical_to_flax_tree(tensors)
    atomic_write_bytes(path, serialization.msgpack_serialize(tree))
    return path
