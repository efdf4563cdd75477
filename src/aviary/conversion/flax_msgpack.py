"""The reference Flax weights file, `flax_model.msgpack`, to and from canonical tensors.

The file is `flax.serialization` msgpack of the nested parameter dict, with Flax names and no outer
`params` key: `{"bert": {"encoder": {"layer": {"0": {"attention": ...}}}}, "cls": ...}`. Reading
maps every path with `aviary.core.naming.flax_to_canonical`; writing uses its inverse,
`aviary.core.naming.canonical_to_flax`, on the canonical names alone, so no model is needed. The
file is read and written with `msgpack` itself, in flax.serialization's encoding, so no framework
is imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from aviary.conversion.checkpoint import CheckpointError
from aviary.core.io import atomic_path
from aviary.core.naming import canonical_to_flax, flax_to_canonical

FLAX_WEIGHTS_NAME = "flax_model.msgpack"


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
    """`{canonical name: array}` -> the reference's nested Flax parameter dict."""
    tree: dict[str, Any] = {}
    for name, value in tensors.items():
        array = np.asarray(value)
        (*scopes, leaf), transpose = canonical_to_flax(name, array.ndim)
        node = tree
        for part in scopes:
            node = node.setdefault(part, {})
        node[leaf] = np.ascontiguousarray(array.T) if transpose else array
    return tree


# flax.serialization's msgpack extension codes; an array is ext 1 holding msgpack of
# (shape, dtype name, C-order bytes). Arrays above 1 GiB are split into `chunks` the way flax does.
_EXT_NDARRAY = 1
_EXT_NPSCALAR = 3
_MAX_CHUNK_BYTES = 2**30
_CHUNKED = "__msgpack_chunked_array__"


def _dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _decode_ext(code: int, data: bytes) -> Any:
    import msgpack

    if code in (_EXT_NDARRAY, _EXT_NPSCALAR):
        shape, dtype_name, buffer = msgpack.unpackb(data, raw=False)
        array = np.frombuffer(buffer, dtype=_dtype(dtype_name)).reshape(shape)
        return array[()] if code == _EXT_NPSCALAR else array
    raise CheckpointError(f"unsupported msgpack extension type {code}")


def _encode_array(array: np.ndarray) -> Any:
    import msgpack

    payload = (list(array.shape), array.dtype.name, np.ascontiguousarray(array).tobytes())
    return msgpack.ExtType(_EXT_NDARRAY, msgpack.packb(payload, use_bin_type=True))


def _unchunk(tree: Any) -> Any:
    if isinstance(tree, dict):
        if tree.get(_CHUNKED):
            shape = [tree["shape"][str(i)] for i in range(len(tree["shape"]))]
            chunks = [tree["chunks"][str(i)] for i in range(len(tree["chunks"]))]
            return np.concatenate(chunks).reshape(shape)
        return {k: _unchunk(v) for k, v in tree.items()}
    return tree


def read_flax_msgpack(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a `flax_model.msgpack` file (or the folder holding one) as canonical tensors.

    Decoded with `msgpack` directly (no flax needed), streaming from the file.
    """
    import msgpack

    path = Path(path)
    if path.is_dir():
        path = path / FLAX_WEIGHTS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"Flax weights file {path} does not exist")
    try:
        with open(path, "rb") as handle:
            unpacker = msgpack.Unpacker(
                handle, ext_hook=_decode_ext, raw=False, max_buffer_size=2**32 - 1
            )
            tree = _unchunk(unpacker.unpack())
    except CheckpointError:
        raise
    except Exception as err:  # msgpack raises several error types for corrupt data
        raise CheckpointError(f"{path} is not a readable Flax msgpack file: {err}") from None
    if not isinstance(tree, Mapping) or not tree:
        raise CheckpointError(f"{path} does not hold a nested dictionary of parameters")
    try:
        return flax_tree_to_canonical(tree)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None


def _chunked(array: np.ndarray) -> dict[str, Any]:
    """flax's form of an array above 1 GiB: its shape and flat chunks, as nested dicts."""
    per_chunk = max(1, _MAX_CHUNK_BYTES // array.dtype.itemsize)
    flat = array.reshape(-1)
    return {
        _CHUNKED: True,
        "shape": {str(i): n for i, n in enumerate(array.shape)},
        "chunks": {
            str(i): flat[j : j + per_chunk] for i, j in enumerate(range(0, flat.size, per_chunk))
        },
    }


def _pack_tree(packer: Any, handle: Any, tree: Mapping[str, Any]) -> None:
    """Write a nested dict one array at a time, so memory holds one tensor's bytes at most."""
    handle.write(packer.pack_map_header(len(tree)))
    for key, value in tree.items():
        handle.write(packer.pack(str(key)))
        if isinstance(value, np.ndarray) and value.nbytes > _MAX_CHUNK_BYTES:
            value = _chunked(value)
        if isinstance(value, Mapping):
            _pack_tree(packer, handle, value)
        else:
            handle.write(packer.pack(value))


def write_flax_msgpack(tensors: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write canonical tensors as a reference-layout `flax_model.msgpack` (atomically), in the
    encoding `flax.serialization.msgpack_restore` reads.

    `path` is the file, or a folder to write `flax_model.msgpack` into.
    """
    import msgpack

    path = Path(path)
    if path.is_dir():
        path = path / FLAX_WEIGHTS_NAME
    tree = canonical_to_flax_tree(tensors)
    packer = msgpack.Packer(default=_encode_array, use_bin_type=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        _pack_tree(packer, handle, tree)
    return path
