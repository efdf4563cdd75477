"""The machinery every cross-framework equivalence test shares, through public API only.

Random weights are written once per case by PyTorch (`save_pretrained`, canonical names) and read
by each framework's `from_pretrained`, strictly: every tensor of the checkpoint is used and every
parameter is loaded. Each framework runs a case once (`run` returns its output fields as numpy
arrays, so the test caches them), and `assert_same` compares any two frameworks' fields.

Flax heads compute no loss and a Flax cache is passed in explicitly, so Flax gets no labels and no
`use_cache`, and its results have no `loss` and no `past_key_values`.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from aviary.conversion import frameworks
from conftest import CROSS_FRAMEWORK_ATOL

FRAMEWORKS = ("pt", "tf", "flax")
PAIRS = [("pt", "tf"), ("pt", "flax"), ("tf", "flax")]
LABEL_INPUTS = frozenset({"labels", "next_sentence_label", "start_positions", "end_positions"})
NOT_IN_FLAX = frozenset({"loss", "past_key_values"})
# The reference TF next-sentence head names its labels `next_sentence_label`.
TF_RENAMES = {"BertForNextSentencePrediction": {"labels": "next_sentence_label"}}


def seed_of(*parts: object) -> int:
    """A seed per case that is the same in every process (str hashes are salted per process)."""
    return zlib.crc32("-".join(map(str, parts)).encode())


def save_random_weights(head: str, config, folder: Path, seed: int, *, noise: bool = True) -> Path:
    """PyTorch weights of `head` from the config's initialiser; with `noise`, every bias and
    LayerNorm gets N(0, 0.1) added (so every tensor matters) and a `final_logits_bias` buffer is
    drawn from N(0, 0.1). Written in the canonical format to `folder`."""
    import torch

    import aviary.pt

    torch.manual_seed(seed)
    model = getattr(aviary.pt, head)(config)
    if noise:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.endswith("bias") or "layernorm" in name.lower().replace("_", ""):
                    param.add_(0.1 * torch.randn_like(param))
            for name, buffer in model.named_buffers():
                if name == "final_logits_bias":
                    buffer.normal_(0, 0.1)
    model.save_pretrained(folder)
    return folder


def load(framework: str, head: str, folder: Path, **config_overrides):
    """`from_pretrained` of the framework's class for `head`, strict and complete."""
    cls = frameworks.model_class(head, framework)
    model, info = cls.from_pretrained(folder, output_loading_info=True, **config_overrides)
    assert not any(info.values()), f"{framework} {head}: {info}"
    return model


def run(
    framework: str,
    model,
    inputs: dict[str, np.ndarray],
    *,
    train: bool,
    flags: dict,
    policy: str | None = None,
    seed: int | None = None,
) -> dict[str, np.ndarray | list[np.ndarray]]:
    """One call in eval or train mode (dropout is 0 in every test config: train mode differs by
    its block-sparse plans). `policy` (with a generator seeded by `seed`) is the block-sparse
    policy of this call; the model is set back to the "reference" policy afterwards."""
    if policy is not None:
        rng = np.random.default_rng(seed) if seed is not None else None
        model.set_block_sparse_policy(policy, rng)
    try:
        return _call(framework, model, inputs, train, flags)
    finally:
        if policy is not None:
            model.set_block_sparse_policy("reference")


def _call(framework: str, model, inputs: dict, train: bool, flags: dict) -> dict:
    if framework == "pt":
        import torch

        model.train(train)
        with torch.no_grad():
            out = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, **flags)
        model.eval()
        return fields_of(out)
    if framework == "tf":
        import tensorflow as tf

        renames = TF_RENAMES.get(type(model).__name__.removeprefix("TF"), {})
        tensors = {renames.get(k, k): tf.constant(v) for k, v in inputs.items()}
        return fields_of(model(**tensors, **flags, training=train))
    import jax

    out = model(
        **{k: v for k, v in inputs.items() if k not in LABEL_INPUTS},
        **{k: v for k, v in flags.items() if k != "use_cache"},
        train=train,
        dropout_rng=jax.random.PRNGKey(0) if train else None,
    )
    return fields_of(out)


def to_numpy(value):
    """An output field as numpy: a tuple of arrays (per layer, or a cache's nested tuples) as
    one flat list of arrays."""
    if isinstance(value, (tuple, list)):
        return [array for item in value for array in _as_list(to_numpy(item))]
    if hasattr(value, "detach"):
        value = value.detach()
    return np.asarray(value)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def fields_of(output) -> dict:
    """Every field the output holds (an output iterates over its fields that are not None)."""
    return {name: to_numpy(output[name]) for name in output}


def assert_same(a: dict, b: dict, pair: tuple[str, str]) -> int:
    """Every field of `a` and `b` (the results of the frameworks in `pair`) within
    CROSS_FRAMEWORK_ATOL; the same fields in both, loss and cache aside when one side is Flax.
    Returns the number of arrays compared. Span logits of question tokens (near -1e6) are
    compared absolutely too: the frameworks compute the same float32 values there.
    """
    label = " vs ".join(pair)
    exempt = NOT_IN_FLAX if "flax" in pair else frozenset()
    assert set(a) - exempt == set(b) - exempt, f"{label}: fields {sorted(a)} vs {sorted(b)}"
    compared = 0
    for name in sorted(set(a) - exempt):
        xs, ys = _as_list(a[name]), _as_list(b[name])
        assert len(xs) == len(ys), f"{label} {name}: {len(xs)} vs {len(ys)} arrays"
        for i, (u, v) in enumerate(zip(xs, ys)):
            assert u.shape == v.shape, f"{label} {name}[{i}]: {u.shape} vs {v.shape}"
            u, v = u.astype(np.float64), v.astype(np.float64)
            diff = float(np.max(np.abs(u - v))) if u.size else 0.0
            assert diff <= CROSS_FRAMEWORK_ATOL, f"{label} {name}[{i}]: max abs diff {diff:.2e}"
            compared += 1
    return compared
