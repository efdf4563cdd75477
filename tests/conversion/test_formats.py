"""Every weights format: canonical -> format -> canonical is bit-identical for every golden case,
also as each framework's `from_pretrained` reads it, and every golden converted to each format
loads in each framework and reproduces its outputs."""

from __future__ import annotations

import numpy as np
import pytest

from aviary.conversion.formats import (
    FORMATS,
    cast_tensors,
    read_model_weights,
    read_weights,
    write_weights,
)
from aviary.core.configs import load_config
from conftest import LABEL_INPUTS, GoldenCase, as_numpy, compare, golden_cases

# The formats each family can be written in: `keras` needs the family's TF classes.
FAMILY_FORMATS = {
    "bert": ["safetensors", "pt", "tf", "flax", "keras"],
    "big_bird": ["safetensors", "pt", "tf", "flax", "keras"],
    "bigbird_pegasus": ["safetensors", "pt", "tf", "flax", "keras"],
}
NEEDS = {"pt": "torch", "tf": "h5py", "flax": "flax", "keras": "tensorflow"}
FRAMEWORK_NEEDS = {"pt": "torch", "tf": "tensorflow", "flax": "flax"}
# The formats `from_pretrained` reads (each framework reads all four; `.keras` is Keras's own).
FRAMEWORK_FORMATS = ("safetensors", "pt", "tf", "flax")


def round_trip_cases():
    for name in golden_cases(""):
        if name == "tokenizers":
            continue
        family = load_config(GoldenCase(name).folder).model_type
        for fmt in FAMILY_FORMATS[family]:
            yield pytest.param(name, fmt, id=f"{name}-{fmt}")


@pytest.mark.parametrize(("case", "fmt"), list(round_trip_cases()))
def test_round_trip_is_bit_identical(case, fmt, tmp_path) -> None:
    if fmt in NEEDS:
        pytest.importorskip(NEEDS[fmt])
    folder = GoldenCase(case).folder
    config = load_config(folder)
    original = read_weights(folder)
    written = write_weights(original, tmp_path, fmt, config=config, max_shard_size="50KB")
    assert written and all(p.exists() for p in written)
    assert_same_tensors(read_weights(tmp_path), original)
    if fmt in FRAMEWORK_FORMATS:
        # What each framework's `from_pretrained` loads from the folder (PyTorch: torch tensors).
        pytest.importorskip("torch")
        for framework in FRAMEWORK_NEEDS:
            tensors, path = read_model_weights(tmp_path, framework)
            assert path.name in FORMATS[fmt].files, (framework, path)
            assert_same_tensors({k: as_numpy(v) for k, v in tensors.items()}, original)


def assert_same_tensors(back: dict, original: dict) -> None:
    assert set(back) == set(original)
    for name, value in original.items():
        assert back[name].dtype == value.dtype, name
        np.testing.assert_array_equal(back[name], value, err_msg=name)


def test_sharded_pytorch_bin(tmp_path) -> None:
    pytest.importorskip("torch")
    folder = GoldenCase("bert-pretraining").folder
    original = read_weights(folder)
    written = write_weights(
        original, tmp_path, "pt", config=load_config(folder), max_shard_size="20KB"
    )
    assert (tmp_path / "pytorch_model.bin.index.json") in written and len(written) > 3
    back = read_weights(tmp_path)
    assert all(np.array_equal(back[k], v) for k, v in original.items())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_dtype_conversion(dtype, tmp_path) -> None:
    pytest.importorskip("torch")
    folder = GoldenCase("bert-masked-lm").folder
    original = read_weights(folder)
    cast = cast_tensors(original, dtype)
    assert {str(v.dtype) for v in cast.values()} == {dtype}
    for fmt in ("safetensors", "pt"):
        write_weights(cast, tmp_path / fmt, fmt, config=load_config(folder))
        back = read_weights(tmp_path / fmt)
        for name, value in cast.items():
            assert str(back[name].dtype) == dtype
            np.testing.assert_array_equal(back[name].astype(np.float32), value.astype(np.float32))
    with pytest.raises(ValueError, match="dtype"):
        cast_tensors(original, "int8")


def model_cases() -> list[str]:
    return [name for name in golden_cases("") if name != "tokenizers"]


def framework_call(framework: str, case: GoldenCase, folder):
    """The golden's class from `folder` in `framework`, called on the golden's inputs without
    labels (the loss is each framework's golden test's business): the conditional-generation
    head gets the decoder inputs its labels imply."""
    from aviary.conversion import frameworks

    model = frameworks.load(case.class_name, framework, folder)
    inputs = {k: v for k, v in case.inputs.items() if k not in LABEL_INPUTS}
    if case.class_name.endswith("ForConditionalGeneration"):
        # Shifted right after the start token, -100 (ignored) as padding.
        config = load_config(folder)
        labels = case.inputs["labels"]
        start = np.full_like(labels[:, :1], config.decoder_start_token_id)
        shifted = np.concatenate([start, labels[:, :-1]], axis=1)
        inputs["decoder_input_ids"] = np.where(shifted == -100, config.pad_token_id, shifted)
    flags = {k: v for k, v in case.kwargs.items() if k != "use_cache" or framework != "flax"}
    if framework == "pt":
        import torch

        with torch.no_grad():
            return model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, **flags)
    if framework == "tf":
        return model(inputs, **flags, training=False)
    return model(**inputs, **flags)


def reproduction_cases():
    """Every framework from every format but the canonical safetensors, which is what the golden
    tests load (so they check that case, generated ids included). BERT: every case; BigBird and
    BigBirdPegasus (slower to build in TF and Flax): PyTorch. `test_round_trip_is_bit_identical`
    checks that every framework reads every case from every format as the canonical tensors."""
    for case in model_cases():
        for framework in ("pt", "tf", "flax"):
            for fmt in ("pt", "tf", "flax"):
                if case.startswith("bert-") or framework == "pt":
                    yield pytest.param(case, framework, fmt, id=f"{case}-{framework}-{fmt}")


@pytest.mark.parametrize(("case", "framework", "fmt"), list(reproduction_cases()))
def test_converted_goldens_reproduce_in_every_framework(case, framework, fmt, tmp_path) -> None:
    pytest.importorskip(FRAMEWORK_NEEDS[framework])
    pytest.importorskip(NEEDS[fmt])
    golden = GoldenCase(case)
    config = load_config(golden.folder)
    write_weights(read_weights(golden.folder), tmp_path, fmt, config=config)
    config.save_pretrained(tmp_path)
    compare(framework_call(framework, golden, tmp_path), golden, loss=False)


def test_unknown_format_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        write_weights({}, tmp_path, "onnx", config=load_config(GoldenCase("bert-nsp").folder))
    assert set(FORMATS) == {"safetensors", "pt", "tf", "flax", "keras"}
