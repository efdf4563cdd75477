"""The reference `flax_model.msgpack` layout: canonical -> msgpack -> `from_pretrained` reproduces
the goldens, and the file has the reference's nested Flax names."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from flax import serialization  # noqa: E402

import aviary.flax  # noqa: E402
from aviary.conversion import CheckpointError, read_checkpoint  # noqa: E402
from aviary.conversion.flax_msgpack import (  # noqa: E402
    canonical_to_flax_tree,
    flax_tree_to_canonical,
    read_flax_msgpack,
    write_flax_msgpack,
)
from conftest import GOLDEN_ATOL, GoldenCase, assert_close  # noqa: E402

pytestmark = pytest.mark.flax


def msgpack_folder(case: GoldenCase, folder):
    """A folder with the case's config and its weights as `flax_model.msgpack` only."""
    shutil.copy(case.folder / "config.json", folder / "config.json")
    write_flax_msgpack(read_checkpoint(case.folder), folder)
    return folder


@pytest.mark.parametrize(
    ("case_name", "class_name"),
    [
        ("bert-masked-lm", "FlaxBertForMaskedLM"),
        ("bert-model-relative_key_query", "FlaxBertModel"),
    ],
)
def test_msgpack_round_trip_reproduces_golden(case_name, class_name, tmp_path) -> None:
    case = GoldenCase(case_name)
    folder = msgpack_folder(case, tmp_path)
    assert not (folder / "model.safetensors").exists()
    model = getattr(aviary.flax, class_name).from_pretrained(folder)
    inputs = {k: v for k, v in case.inputs.items() if k != "labels"}
    out = model(**inputs)
    assert_close(
        out.last_hidden_state if class_name == "FlaxBertModel" else out.logits,
        case.outputs["last_hidden_state" if class_name == "FlaxBertModel" else "logits"],
        GOLDEN_ATOL,
        "output",
    )


def test_file_has_the_reference_layout(tmp_path) -> None:
    case = GoldenCase("bert-masked-lm")
    path = write_flax_msgpack(read_checkpoint(case.folder), tmp_path)
    tree = serialization.msgpack_restore(path.read_bytes())
    assert set(tree) == {"bert", "cls"}  # no outer "params" key
    query = tree["bert"]["encoder"]["layer"]["0"]["attention"]["self"]["query"]
    assert set(query) == {"kernel", "bias"}
    torch_layout = read_checkpoint(case.folder)["bert.encoder.layer.0.attention.self.query.weight"]
    np.testing.assert_array_equal(query["kernel"], torch_layout.T)  # Flax kernels are [in, out]
    embeddings = tree["bert"]["embeddings"]
    assert set(embeddings["word_embeddings"]) == {"embedding"}
    assert set(embeddings["LayerNorm"]) == {"scale", "bias"}
    predictions = tree["cls"]["predictions"]
    assert "decoder" not in predictions and predictions["bias"].shape == (99,)  # tied: no kernel


def test_canonical_round_trip_is_exact() -> None:
    case = GoldenCase("bert-model-relative_key")
    tensors = read_checkpoint(case.folder)
    tree = canonical_to_flax_tree(tensors)
    distance = tree["encoder"]["layer"]["1"]["attention"]["self"]["distance_embedding"]
    assert set(distance) == {"embedding"}
    back = flax_tree_to_canonical(tree)
    assert set(back) == set(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)
    # A linen variables dict ({"params": ...}) reads the same.
    wrapped = flax_tree_to_canonical({"params": tree})
    assert set(wrapped) == set(tensors)


def test_model_params_convert_to_the_canonical_names(tmp_path) -> None:
    """A model's own param tree (list elements `layer_0`) reads as the same canonical tensors."""
    case = GoldenCase("bert-pretraining")
    model = aviary.flax.FlaxBertForPreTraining.from_pretrained(case.folder)
    (tmp_path / "flax_model.msgpack").write_bytes(serialization.msgpack_serialize(model.params))
    from_model = read_flax_msgpack(tmp_path)
    original = read_checkpoint(case.folder)
    assert set(from_model) == set(original)
    for name, value in original.items():
        np.testing.assert_array_equal(from_model[name], value, err_msg=name)


def test_corrupt_msgpack_raises_checkpoint_error(tmp_path) -> None:
    case = GoldenCase("bert-model-absolute")
    folder = msgpack_folder(case, tmp_path)
    data = (folder / "flax_model.msgpack").read_bytes()
    (folder / "flax_model.msgpack").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="not a readable Flax msgpack file"):
        aviary.flax.FlaxBertModel.from_pretrained(folder)
