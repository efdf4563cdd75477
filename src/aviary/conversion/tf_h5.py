"""The reference library's `tf_model.h5` (Keras 2 `save_weights` layout), read and written with
h5py and numpy only.

Layout (reference-behaviour §1.6): the root attribute `layer_names` lists the model's top-level
Keras layers (`bert`, `mlm___cls`, `nsp___cls`, `classifier`, ...). Each is a group whose attribute
`weight_names` lists full variable names (`tf_bert_for_pre_training/bert/embeddings/LayerNorm/beta:0`),
each stored as a dataset at `<layer>/<variable name>`. The first path element is the model's scope.
The `mlm___cls` group also stores the word embeddings, which its decoder reuses.

Reading goes through the generic rule `aviary.core.naming.tf_to_canonical`, writing through its
inverse `aviary.core.naming.canonical_to_tf`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from aviary.conversion.checkpoint import CheckpointError
from aviary.core.io import atomic_path
from aviary.core.naming import canonical_to_tf, tf_to_canonical

TF_WEIGHTS_NAME = "tf_model.h5"


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_tf_h5(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of a reference `tf_model.h5`, as `{canonical name: array}` in the canonical
    (PyTorch) layout: dense kernels are transposed to `[out, in]`."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} does not exist")
    tensors: dict[str, np.ndarray] = {}
    scopes: set[str] = set()
    try:
        with h5py.File(path, "r") as handle:
            if "layer_names" not in handle.attrs:
                raise CheckpointError(f"{path} has no `layer_names` attribute: not a tf_model.h5")
            layers = [_text(layer) for layer in handle.attrs["layer_names"]]
            for layer in layers:
                group = handle[layer]
                for weight in group.attrs.get("weight_names", []):
                    weight = _text(weight)
                    # Drop the model scope (`tf_bert_model/`); the rest is the variable path.
                    scope, _, variable_path = weight.partition("/")
                    scopes.add(scope)
                    name, transpose = tf_to_canonical(variable_path)
                    if name in tensors:  # the word embeddings, stored again by `mlm___cls`
                        continue
                    value = np.asarray(group[weight])
                    tensors[name] = np.ascontiguousarray(value.T if transpose else value)
    except (OSError, KeyError) as err:
        raise CheckpointError(f"{path} is not a readable tf_model.h5: {err}") from None
    # A base model (`tf_bert_model`, not `tf_bert_for_...` or `tf_bert_lm_head_model`) stores
    # everything under its one main layer (`bert`); its canonical names, like the PyTorch base
    # model's, have no prefix.
    base_model = scopes <= {s for s in scopes if s.endswith("_model") and "_for_" not in s}
    if len(layers) == 1 and base_model and not any("lm_head" in s for s in scopes):
        prefix = layers[0] + "."
        if all(name.startswith(prefix) for name in tensors):
            tensors = {name[len(prefix) :]: value for name, value in tensors.items()}
    return tensors


def snake_case(class_name: str) -> str:
    """Keras' default layer name for a class: `TFBertForPreTraining` -> `tf_bert_for_pre_training`."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def write_tf_h5(
    tensors: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    *,
    model_class: str = "TFBertModel",
    base_model_prefix: str = "bert",
) -> Path:
    """Write canonical tensors as the reference `tf_model.h5` of `model_class`.

    A base-model checkpoint (names without the `bert.` prefix) is written under the `bert` main
    layer, as the reference's `TFBertModel` does. A stored LM decoder (`...predictions.decoder.*`)
    is left out: the reference TF head reuses the word embeddings.
    """
    import h5py

    path = Path(path)
    prefix = base_model_prefix + "."
    if base_model_prefix and not any(n.startswith(prefix) for n in tensors):
        tensors = {prefix + n: v for n, v in tensors.items()}
    scope = snake_case(model_class)
    groups: dict[str, list[tuple[str, np.ndarray]]] = {}
    word_embeddings: tuple[str, np.ndarray] | None = None
    for name, value in tensors.items():
        if ".predictions.decoder." in f".{name}":
            continue
        tf_path, transpose = canonical_to_tf(name)
        value = np.asarray(value)
        entry = (f"{scope}/{tf_path}:0", np.ascontiguousarray(value.T if transpose else value))
        groups.setdefault(tf_path.split("/", 1)[0], []).append(entry)
        if tf_path.endswith("word_embeddings/weight"):
            word_embeddings = entry
    if "mlm___cls" in groups and word_embeddings is not None:
        groups["mlm___cls"].append(word_embeddings)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.attrs["layer_names"] = np.array([g.encode() for g in groups], dtype="S")
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = b"2.15.0"
        for layer, entries in groups.items():
            group = handle.create_group(layer)
            group.attrs["weight_names"] = np.array([n.encode() for n, _ in entries], dtype="S")
            for weight, value in entries:
                group.create_dataset(weight, data=value)
    return path
