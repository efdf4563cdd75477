"""Every weights format: canonical -> format -> canonical is bit-identical for every golden case,
and every golden converted to each format loads in each framework and reproduces its outputs."""

from __future__ import annotations

import numpy as np
import pytest

from aviary.conversion.formats import FORMATS, cast_tensors, read_weights, write_weights
from aviary.core.configs import load_config
from conftest import GoldenCase, assert_close, golden_atol, golden_cases

# The formats each family can be written in: `keras` needs the family's TF classes.
FAMILY_FORMATS = {
    "bert": ["safetensors", "pt", "tf", "flax", "keras"],
    "big_bird": ["safetensors", "pt", "tf", "flax", "keras"],
    "bigbird_pegasus": ["safetensors", "pt", "tf", "flax", "keras"],
}
NEEDS = {"pt": "torch", "tf": "h5py", "flax": "flax", "keras": "tensorflow"}


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
    back = read_weights(tmp_path)
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


FRAMEWORK_NEEDS = {"pt": "torch", "tf": "tensorflow", "flax": "flax"}
LABELS = {"labels", "next_sentence_label", "start_positions", "end_positions"}


def model_cases():
    return [name for name in golden_cases("") if name != "tokenizers"]


def framework_call(framework, case, folder):
    """The golden's class from `folder` in `framework`, called on the golden's inputs (labels
    dropped: the loss is each framework's golden test's business), plus the generated ids the
    case records."""
    from aviary.conversion import frameworks

    model = frameworks.load(case.class_name, framework, folder)
    inputs = {k: v for k, v in case.inputs.items() if k not in LABELS}
    config = load_config(folder)
    if case.class_name.endswith("ForConditionalGeneration"):
        # Without labels, the decoder inputs they imply: shifted right after the start token.
        labels = case.inputs["labels"]
        start = np.full_like(labels[:, :1], config.decoder_start_token_id)
        shifted = np.concatenate([start, labels[:, :-1]], axis=1)
        inputs["decoder_input_ids"] = np.where(shifted == -100, config.pad_token_id, shifted)
    flags = {k: v for k, v in case.kwargs.items() if k != "use_cache" or framework != "flax"}
    # generated_greedy: 1 beam; generated_beamK: K beams.
    generated = {
        name: 1 if name == "generated_greedy" else int(name.removeprefix("generated_beam"))
        for name in case.outputs
        if name.startswith("generated_")
    }
    if framework == "pt":
        import torch

        inputs = {k: torch.from_numpy(v) for k, v in inputs.items()}
        with torch.no_grad():
            out = dict(model(**inputs, **flags))
    elif framework == "tf":
        out = dict(model(inputs, **flags, training=False))
    else:
        out = dict(model(**inputs, **flags))
    for name, beams in generated.items():
        out[name] = model.generate(
            inputs["input_ids"], inputs["attention_mask"], max_new_tokens=8, num_beams=beams
        )
    return out


def reproduction_cases():
    """BERT: every framework from every format. BigBird and BigBirdPegasus (slower to build in TF
    and Flax): every framework from safetensors and PyTorch from every format. Every format reads
    back bit-identical tensors (`test_round_trip_is_bit_identical`), so a framework loading another
    format gets the same weights."""
    for case in model_cases():
        for framework in ("pt", "tf", "flax"):
            for fmt in ("safetensors", "pt", "tf", "flax"):
                if case.startswith("bert-") or framework == "pt" or fmt == "safetensors":
                    yield pytest.param(case, framework, fmt, id=f"{case}-{framework}-{fmt}")


@pytest.mark.parametrize(("case", "framework", "fmt"), list(reproduction_cases()))
def test_converted_goldens_reproduce_in_every_framework(case, framework, fmt, tmp_path) -> None:
    pytest.importorskip(FRAMEWORK_NEEDS[framework])
    if fmt in NEEDS:
        pytest.importorskip(NEEDS[fmt])
    golden = GoldenCase(case)
    config = load_config(golden.folder)
    write_weights(read_weights(golden.folder), tmp_path, fmt, config=config)
    config.save_pretrained(tmp_path)
    out = framework_call(framework, golden, tmp_path)
    for name, expected in golden.expected_fields().items():
        if name == "loss":
            continue
        actual = out[name]
        if name.startswith("generated_"):
            np.testing.assert_array_equal(np.asarray(actual), expected, err_msg=name)
        elif isinstance(expected, list):
            assert len(actual) == len(expected), name
            for i, (a, e) in enumerate(zip(actual, expected)):
                assert_close(np.asarray(a), e, golden_atol(case, name, i, e), f"{name}[{i}]")
        else:
            assert_close(np.asarray(actual), expected, golden_atol(case, name, 0, expected), name)


def test_unknown_format_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        write_weights({}, tmp_path, "onnx", config=load_config(GoldenCase("bert-nsp").folder))
    assert set(FORMATS) == {"safetensors", "pt", "tf", "flax", "keras"}
