"""TF BERT checkpoints: canonical save/load round trips, base <-> head loading, strict errors,
and the clear errors for bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import aviary.tf  # noqa: E402
from aviary.conversion import CheckpointError, read_checkpoint  # noqa: E402
from conftest import GOLDEN_ATOL, GoldenCase, assert_close  # noqa: E402

pytestmark = pytest.mark.tf


def test_save_pretrained_round_trip_stores_tied_decoder_once(tmp_path) -> None:
    case = GoldenCase("bert-masked-lm")
    model = aviary.tf.TFBertForMaskedLM.from_pretrained(case.folder)
    model.save_pretrained(tmp_path)
    saved = read_checkpoint(tmp_path)
    original = read_checkpoint(case.folder)
    original.pop("cls.predictions.decoder.weight", None)
    # Same canonical names, layouts and values as the PyTorch checkpoint it came from.
    assert set(saved) == set(original)
    assert "cls.predictions.decoder.weight" not in saved
    for name, value in original.items():
        np.testing.assert_array_equal(saved[name], value, err_msg=name)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["BertForMaskedLM"]
    reloaded = aviary.tf.TFBertForMaskedLM.from_pretrained(tmp_path)
    inputs = {k: v for k, v in case.inputs.items() if k != "labels"}
    np.testing.assert_array_equal(reloaded(**inputs).logits.numpy(), model(**inputs).logits)


def test_base_model_from_head_checkpoint() -> None:
    case = GoldenCase("bert-masked-lm")
    model, info = aviary.tf.TFBertModel.from_pretrained(case.folder, output_loading_info=True)
    # The MLM checkpoint has no pooler: it is new; the head tensors are discarded.
    assert info["newly_initialized_keys"] == ["pooler.dense.bias", "pooler.dense.weight"]
    assert all(k.startswith("cls.") for k in info["discarded_keys"]) and info["discarded_keys"]
    inputs = {k: v for k, v in case.inputs.items() if k != "labels"}
    out = model(**inputs)
    expected = case.expected_fields()["hidden_states"][-1]
    assert_close(out.last_hidden_state.numpy(), expected, GOLDEN_ATOL, "last_hidden_state")


def test_head_model_from_base_checkpoint() -> None:
    case = GoldenCase("bert-model-absolute")
    model, info = aviary.tf.TFBertForSequenceClassification.from_pretrained(
        case.folder, output_loading_info=True
    )
    assert info["newly_initialized_keys"] == ["classifier.bias", "classifier.weight"]
    assert not info["missing_keys"] and not info["unexpected_keys"]
    out = model(**case.inputs, output_hidden_states=True)
    expected = case.expected_fields()["last_hidden_state"]
    assert_close(out.hidden_states[-1].numpy(), expected, GOLDEN_ATOL, "hidden_states[-1]")
    assert out.logits.shape == (3, 2)


def copy_case(name: str, tmp_path):
    target = tmp_path / name
    shutil.copytree(GoldenCase(name).folder, target)
    return target


def test_config_weight_shape_mismatch_is_named(tmp_path) -> None:
    folder = copy_case("bert-model-absolute", tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] += 1
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        CheckpointError, match=r"shape mismatch for encoder\.layer\.0\.intermediate"
    ):
        aviary.tf.TFBertModel.from_pretrained(folder)


def test_missing_tensor_is_named(tmp_path) -> None:
    folder = copy_case("bert-model-absolute", tmp_path)
    from aviary.conversion import write_checkpoint

    tensors = read_checkpoint(folder)
    del tensors["encoder.layer.1.output.dense.bias"]
    write_checkpoint(tensors, folder)
    with pytest.raises(
        CheckpointError, match=r"missing tensors: encoder\.layer\.1\.output\.dense\.bias"
    ):
        aviary.tf.TFBertModel.from_pretrained(folder)


def test_corrupt_safetensors(tmp_path) -> None:
    folder = copy_case("bert-model-absolute", tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated"):
        aviary.tf.TFBertModel.from_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_model():
    return aviary.tf.TFBertModel.from_pretrained(GoldenCase("bert-model-absolute").folder)


def test_bad_inputs_give_clear_errors(tiny_model) -> None:
    config = tiny_model.config
    ids = np.ones((2, 5), dtype=np.int64)
    with pytest.raises(ValueError, match=rf"input_ids contains id {config.vocab_size}, outside"):
        tiny_model(np.full((2, 5), config.vocab_size))
    with pytest.raises(ValueError, match="token_type_ids contains id 2"):
        tiny_model(ids, token_type_ids=np.full((2, 5), 2))
    too_long = np.ones((1, config.max_position_embeddings + 1), dtype=np.int64)
    with pytest.raises(ValueError, match="longer than max_position_embeddings=64"):
        tiny_model(too_long)
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 4\)"):
        tiny_model(ids, attention_mask=np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"token_type_ids has shape \(2, 4\)"):
        tiny_model(ids, token_type_ids=np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="input_ids must have rank 2"):
        tiny_model(np.ones((5,), dtype=np.int64))
    with pytest.raises(ValueError, match="give either input_ids or inputs_embeds"):
        tiny_model(ids, inputs_embeds=np.zeros((2, 5, config.hidden_size), np.float32))
    with pytest.raises(ValueError, match=r"head_mask has shape \(3,\)"):
        tiny_model(ids, head_mask=np.ones((3,), np.float32))


def test_head_mask_zeroes_heads(tiny_model) -> None:
    """A zero in `head_mask` silences that head's attention probabilities in every layer."""
    config = tiny_model.config
    ids = GoldenCase("bert-model-absolute").inputs["input_ids"]
    head_mask = np.ones((config.num_hidden_layers, config.num_attention_heads), np.float32)
    head_mask[:, 1] = 0.0
    out = tiny_model(ids, head_mask=head_mask, output_attentions=True)
    full = tiny_model(ids, output_attentions=True)
    for masked in out.attentions:
        assert np.all(masked.numpy()[:, 1] == 0.0)
    # Layer 0 sees the same input, so its other heads are unchanged.
    np.testing.assert_allclose(out.attentions[0].numpy()[:, 0], full.attentions[0].numpy()[:, 0])
