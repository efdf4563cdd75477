"""Canonical parameter names and the rules that map each framework's names onto them.

The canonical name of a tensor is its reference PyTorch state-dict name
(`bert.encoder.layer.0.attention.self.query.weight`) with the PyTorch layout (`nn.Linear.weight`
is `[out, in]`). The TF and Flax modules use the same attribute paths as the PyTorch modules, so one
rule per framework turns any of their variable paths into a canonical name; there are no per-model
tables. Only the framework -> canonical direction is needed: a framework loads a checkpoint by
enumerating its own variables and looking each one up under its canonical name.

| concept        | canonical (PyTorch)      | TensorFlow / Keras           | Flax                  |
|----------------|--------------------------|------------------------------|-----------------------|
| dense weight   | `x.weight` `[out, in]`   | `x/kernel` `[in, out]`       | `x/kernel` `[in, out]`|
| dense bias     | `x.bias`                 | `x/bias`                     | `x/bias`              |
| layer norm     | `x.weight`, `x.bias`     | `x/gamma`, `x/beta`          | `x/scale`, `x/bias`   |
| embedding      | `x.weight` `[n, d]`      | `x/embeddings` (or `weight`) | `x/embedding`         |
| list element   | `layer.3`                | `layer_._3`                  | `layer/3` or `layer_3`|
| dropped scope  | `cls`                    | `mlm___cls` (drop `mlm___`)  | `cls`                 |
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple


class CanonicalName(NamedTuple):
    """A framework variable's canonical name, and whether its value must be transposed."""

    name: str
    transpose: bool


# Leaf (last path element) rules: framework leaf -> (canonical leaf, transpose).
TF_LEAVES: dict[str, tuple[str, bool]] = {
    "kernel": ("weight", True),
    "bias": ("bias", False),
    "gamma": ("weight", False),
    "beta": ("bias", False),
    "embeddings": ("weight", False),
    "weight": ("weight", False),
}
FLAX_LEAVES: dict[str, tuple[str, bool]] = {
    "kernel": ("weight", True),
    "bias": ("bias", False),
    "scale": ("weight", False),
    "embedding": ("weight", False),
    "weight": ("weight", False),
}

_TF_LIST_ITEM = re.compile(r"^(?P<name>.+)_\._(?P<index>\d+)$")
_FLAX_LIST_ITEM = re.compile(r"^(?P<name>.+)_(?P<index>\d+)$")
# Parameters stored without a module (`cls.predictions.bias`, `final_logits_bias`) keep their name.
_BARE_PARAMETERS = ("final_logits_bias",)


def _map_leaf(leaf: str, rules: dict[str, tuple[str, bool]], path: str) -> tuple[str, bool]:
    if leaf in rules:
        return rules[leaf]
    if leaf in _BARE_PARAMETERS:
        return leaf, False
    raise ValueError(f"{path}: no canonical name for a variable called {leaf!r}")


def tf_to_canonical(path: str) -> CanonicalName:
    """Map a Keras variable path (`bert/encoder/layer_._0/attention/self/query/kernel:0`).

    The caller strips the model's own scope first; a trailing `:0` is ignored.
    """
    parts = [p for p in path.split(":")[0].split("/") if p]
    if not parts:
        raise ValueError("empty variable path")
    out: list[str] = []
    for part in parts[:-1]:
        if "___" in part:  # `mlm___cls` means "drop `mlm`": the reference's TF head scopes
            part = part.split("___", 1)[1]
        match = _TF_LIST_ITEM.match(part)
        out.extend([match["name"], match["index"]] if match else [part])
    leaf, transpose = _map_leaf(parts[-1], TF_LEAVES, path)
    return CanonicalName(".".join([*out, leaf]), transpose)


def flax_to_canonical(path: Sequence[str]) -> CanonicalName:
    """Map a Flax parameter path (`("bert", "encoder", "layer", "0", ..., "kernel")`).

    Accepts list elements written `layer/0` (a dict of modules) or `layer_0` (linen's automatic
    names for a list attribute).
    """
    parts = [str(p) for p in path]
    if not parts:
        raise ValueError("empty parameter path")
    out: list[str] = []
    for part in parts[:-1]:
        match = _FLAX_LIST_ITEM.match(part)
        out.extend([match["name"], match["index"]] if match else [part])
    leaf, transpose = _map_leaf(parts[-1], FLAX_LEAVES, "/".join(parts))
    # Parameters owned directly by a module (`cls.predictions.bias`) are written as leaves named
    # after themselves, which the rule above already keeps.
    return CanonicalName(".".join([*out, leaf]), transpose)


def module_group(name: str) -> str:
    """The part of the model a canonical name belongs to, for load reports.

    Two names are in the same group when they belong to the same top-level component
    (`bert.encoder`, `bert.pooler`, `cls.predictions`, `classifier`): a checkpoint that has a
    component must have all of its tensors, while a component it lacks entirely is simply new.
    """
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]


_NORM_MODULE = re.compile(r"(LayerNorm|layer_norm|layernorm)", re.IGNORECASE)
_EMBEDDING_MODULE = re.compile(r"(embeddings?|embed_tokens|embed_positions|shared)$")


def is_norm_module(module: str) -> bool:
    """Whether a canonical module name (`attention.output.LayerNorm`, `final_layer_norm`,
    `layernorm_embedding`) is a layer normalisation; used when writing other layouts."""
    return bool(_NORM_MODULE.search(module.rsplit(".", 1)[-1]))


def is_embedding_module(module: str) -> bool:
    """Whether a canonical module name is an embedding table (`word_embeddings`, `shared`, ...)."""
    last = module.rsplit(".", 1)[-1]
    return not is_norm_module(last) and bool(_EMBEDDING_MODULE.search(last))
