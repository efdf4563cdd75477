"""Running one checkpoint in each installed framework: class names, loading, a probe call.

Used by `aviary verify` and `aviary demo`. Each framework is imported only when it is used; a
framework that is not installed is reported as unavailable, not as an error.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aviary.core.block_sparse import longest_full_attention_length

FRAMEWORKS = ("pt", "tf", "flax")
_PACKAGES = {"pt": "torch", "tf": "tensorflow", "flax": "flax"}
# Reference names that differ by more than the framework prefix.
_RENAMES = {("flax", "BertLMHeadModel"): "FlaxBertForCausalLM"}
# Output fields compared by `verify`, in order of preference; all present ones are compared.
PROBE_FIELDS = (
    "logits",
    "prediction_logits",
    "seq_relationship_logits",
    "start_logits",
    "end_logits",
    "last_hidden_state",
    "pooler_output",
    "encoder_last_hidden_state",
)


def installed(framework: str) -> bool:
    """Whether the framework's package can be imported."""
    return importlib.util.find_spec(_PACKAGES[framework]) is not None


def class_name(architecture: str, framework: str) -> str:
    """`BertForMaskedLM` -> `TFBertForMaskedLM` / `FlaxBertForMaskedLM` (and the reference's
    renamings, e.g. PyTorch `BertLMHeadModel` is Flax `FlaxBertForCausalLM`)."""
    if (framework, architecture) in _RENAMES:
        return _RENAMES[framework, architecture]
    return {"pt": "", "tf": "TF", "flax": "Flax"}[framework] + architecture


def model_class(architecture: str, framework: str) -> type:
    package = importlib.import_module(f"aviary.{framework}")
    name = class_name(architecture, framework)
    try:
        return getattr(package, name)
    except AttributeError:
        raise ValueError(f"aviary.{framework} has no class {name}") from None


def load(architecture: str, framework: str, folder: str | Path) -> Any:
    """`from_pretrained(folder)` of the framework's class for `architecture`."""
    return model_class(architecture, framework).from_pretrained(folder)


def probe_inputs(
    config: Any, batch: int = 2, length: int = 16, seed: int = 0
) -> dict[str, np.ndarray]:
    """A small deterministic batch within the config's vocabulary, with a padded row.

    A block-sparse config gets an input just long enough to run block-sparse attention (one
    block past the full-attention threshold), so that path is compared too. An encoder-decoder
    config gets an end-of-sequence token at the last position of every row (what its
    sequence-classification head pools); its decoder inputs are the models' default, the input
    shifted right.
    """
    rng = np.random.default_rng(seed)
    if getattr(config, "attention_type", None) == "block_sparse":
        block_size = config.block_size
        length = longest_full_attention_length(block_size, config.num_random_blocks) + block_size
    length = min(length, config.max_position_embeddings)
    ids = rng.integers(3, config.vocab_size, size=(batch, length))
    mask = np.ones((batch, length), np.int64)
    mask[-1, length // 2 :] = 0
    inputs = {"input_ids": ids.astype(np.int64), "attention_mask": mask}
    if getattr(config, "is_encoder_decoder", False):
        inputs["input_ids"][:, -1] = config.eos_token_id
    return inputs


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().float() if value.dtype.is_floating_point else value.detach()
        return value.numpy()
    return np.asarray(value, dtype=np.float32)


def call(model: Any, framework: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run `model` in eval mode on numpy inputs; returns the probe fields as numpy arrays."""
    if framework == "pt":
        import torch

        with torch.no_grad():
            output = model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    elif framework == "tf":
        output = model(dict(inputs), training=False)
    else:
        output = model(**inputs)
    return {
        name: _to_numpy(getattr(output, name))
        for name in PROBE_FIELDS
        if getattr(output, name, None) is not None
    }


@dataclass
class ProbeResult:
    framework: str
    outputs: dict[str, np.ndarray]
    seconds: float


def probe(
    architecture: str,
    framework: str,
    folder: Path,
    inputs: Mapping[str, np.ndarray],
    repeats: int = 3,
) -> ProbeResult:
    """Load the checkpoint in one framework and time the probe call (best of `repeats`)."""
    model = load(architecture, framework, folder)
    outputs = call(model, framework, inputs)  # the first call also builds / compiles
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call(model, framework, inputs)
        best = min(best, time.perf_counter() - start)
    return ProbeResult(framework, outputs, best)


def max_difference(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> tuple[float, str]:
    """Largest absolute difference over the fields both outputs have, and that field's name."""
    worst, where = 0.0, ""
    shared = [name for name in PROBE_FIELDS if name in a and name in b]
    if not shared:
        raise ValueError("the two outputs have no field in common")
    for name in shared:
        if a[name].shape != b[name].shape:
            return float("inf"), f"{name} (shapes {a[name].shape} vs {b[name].shape})"
        diff = float(np.max(np.abs(a[name].astype(np.float64) - b[name].astype(np.float64))))
        if diff >= worst:
            worst, where = diff, name
    return worst, where
