"""Canonical parameter names and the rules that map each framework's names onto them.

The canonical name of a tensor is its reference PyTorch state-dict name
(`bert.encoder.layer.0.attention.self.query.weight`) with the PyTorch layout (`nn.Linear.weight`
is `[out, in]`). The TF and Flax modules use the same attribute paths as the PyTorch modules, so one
rule per framework turns any of their variable paths into a canonical name; there are no per-model
tables. A framework loads a checkpoint by enumerating its own variables and looking each one up
under its canonical name (`tf_to_canonical`, `flax_to_canonical`); the reference's `tf_model.h5`
and `flax_model.msgpack` files are written from canonical names alone through the inverse rules
(`canonical_to_tf`, `canonical_to_flax`), which know the BERT-family layer kinds (dense,
layer norm, embedding table).

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
from typing import Any, NamedTuple


class CanonicalName(NamedTuple):
    """A framework variable's canonical name, and whether its value must be transposed."""

    name: str
    transpose: bool


class BaseModel(NamedTuple):
    """A family's base model: its class, and the attribute its head models keep it under (the
    `base_model_prefix` that starts every canonical name of a head model)."""

    class_name: str
    prefix: str


# model_type -> its base model
BASE_MODELS: dict[str, BaseModel] = {
    "bert": BaseModel("BertModel", "bert"),
    "big_bird": BaseModel("BigBirdModel", "bert"),
    "bigbird_pegasus": BaseModel("BigBirdPegasusModel", "model"),
}


def architecture(config: Any) -> str:
    """The class a checkpoint was saved from: `config.architectures[0]`, or the family's base
    model when the config does not record it."""
    if config.architectures:
        return config.architectures[0]
    return BASE_MODELS[config.model_type].class_name


# Leaf (last path element) rules: framework leaf -> (canonical leaf, transpose). Dense layers
# (a transposed `kernel`, `bias`) and bare `weight`s are named alike in TF and Flax; LayerNorm and
# embedding leaves differ.
_DENSE_LEAVES: dict[str, tuple[str, bool]] = {
    "kernel": ("weight", True),
    "bias": ("bias", False),
    "weight": ("weight", False),
}
TF_LEAVES: dict[str, tuple[str, bool]] = {
    **_DENSE_LEAVES,
    "gamma": ("weight", False),
    "beta": ("bias", False),
    "embeddings": ("weight", False),
}
FLAX_LEAVES: dict[str, tuple[str, bool]] = {
    **_DENSE_LEAVES,
    "scale": ("weight", False),
    "embedding": ("weight", False),
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


# -- canonical -> framework, for writing the reference's TF and Flax files ----------------------


def canonical_to_tf(name: str) -> CanonicalName:
    """The reference TF variable path of a canonical BERT-family name, and whether the value is
    transposed: the inverse of `tf_to_canonical` for dense, LayerNorm and embedding variables."""
    *scopes, leaf = name.split(".")
    out: list[str] = []
    for part in scopes:
        if part.isdigit() and out:
            out[-1] = f"{out[-1]}_._{part}"
        else:
            out.append(part)
    if out and out[0] == "cls":  # the reference splits `cls` into its two heads
        out[0] = "nsp___cls" if len(out) > 1 and out[1] == "seq_relationship" else "mlm___cls"
    owner = out[-1] if out else ""
    transpose = False
    if is_norm_module(owner):
        leaf = {"weight": "gamma", "bias": "beta"}[leaf]
    elif owner == "word_embeddings" and leaf == "weight":
        leaf = "weight"  # the reference's word table is a bare `weight`
    elif is_embedding_module(owner):
        leaf = "embeddings" if leaf == "weight" else leaf
    elif leaf == "weight":
        leaf, transpose = "kernel", True
    return CanonicalName("/".join([*out, leaf]), transpose)


def canonical_to_flax(name: str, ndim: int) -> tuple[tuple[str, ...], bool]:
    """The reference Flax parameter path of a canonical name whose value has `ndim` dimensions,
    and whether the value is transposed: the inverse of `flax_to_canonical` (LayerNorm weights
    become `scale`, embedding tables `embedding`, other 2-D weights transposed `kernel`s; list
    elements keep their own level, `layer.0` -> `layer/0`, as the reference writes them)."""
    *scopes, leaf = name.split(".")
    module = scopes[-1] if scopes else ""
    transpose = False
    if leaf == "weight":
        if is_norm_module(module):
            leaf = "scale"
        elif is_embedding_module(module):
            leaf = "embedding"
        elif ndim == 2:
            leaf, transpose = "kernel", True
        else:
            raise ValueError(f"{name}: cannot tell which Flax parameter a {ndim}-D weight is")
    return (*scopes, leaf), transpose
