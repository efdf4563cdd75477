"""The reference `tf_model.h5` layout: a file built here with h5py from the layout rules of
reference-behaviour §1.6 loads and reproduces the golden; `write_tf_h5` writes that layout."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from aviary.conversion import read_checkpoint
from aviary.conversion.tf_h5 import read_tf_h5, write_tf_h5
from conftest import GoldenCase, compare


# Canonical -> reference TF names, spelled out from the layout rules (the oracle).
def reference_name(name: str) -> tuple[str, str, bool]:
    """(top-level layer, variable path, transpose) as the reference TF BERT names them."""
    parts = name.split(".")
    path = []
    for part in parts[:-1]:
        if part.isdigit():
            path[-1] += f"_._{part}"
        else:
            path.append(part)
    leaf, transpose = parts[-1], False
    if path[0] == "cls":
        path[0] = "nsp___cls" if path[1] == "seq_relationship" else "mlm___cls"
    if path[-1] == "LayerNorm":
        leaf = {"weight": "gamma", "bias": "beta"}[leaf]
    elif path[-1] == "word_embeddings":
        leaf = "weight"
    elif path[-1] in ("position_embeddings", "token_type_embeddings"):
        leaf = "embeddings"
    elif leaf == "weight":
        leaf, transpose = "kernel", True
    return path[0], "/".join([*path, leaf]), transpose


def write_reference_h5(tensors: dict, path, scope: str) -> None:
    groups: dict[str, list] = {}
    for name, value in tensors.items():
        if name == "cls.predictions.decoder.weight":
            continue  # the TF head has no decoder variable
        layer, var, transpose = reference_name(name)
        groups.setdefault(layer, []).append((f"{scope}/{var}:0", value.T if transpose else value))
    word = next(e for e in groups["bert"] if "word_embeddings" in e[0])
    groups["mlm___cls"].append(word)  # the MLM group stores the word embeddings again
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [g.encode() for g in groups]
        for layer, entries in groups.items():
            group = f.create_group(layer)
            group.attrs["weight_names"] = [n.encode() for n, _ in entries]
            for n, v in entries:
                group.create_dataset(n, data=v)


def test_reader_maps_reference_layout(tmp_path) -> None:
    case = GoldenCase("bert-pretraining")
    tensors = read_checkpoint(case.folder)
    write_reference_h5(tensors, tmp_path / "tf_model.h5", "tf_bert_for_pre_training")
    loaded = read_tf_h5(tmp_path / "tf_model.h5")
    tensors.pop("cls.predictions.decoder.weight", None)
    assert set(loaded) == set(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)


def texts(values) -> list[str]:
    return sorted(v.decode() if isinstance(v, bytes) else str(v) for v in values)


def test_writer_produces_reference_layout(tmp_path) -> None:
    case = GoldenCase("bert-pretraining")
    tensors = read_checkpoint(case.folder)
    write_reference_h5(tensors, tmp_path / "oracle.h5", "tf_bert_for_pre_training")
    write_tf_h5(tensors, tmp_path / "ours.h5", model_class="TFBertForPreTraining")
    with h5py.File(tmp_path / "oracle.h5") as a, h5py.File(tmp_path / "ours.h5") as b:
        assert texts(a.attrs["layer_names"]) == texts(b.attrs["layer_names"])
        for layer in texts(a.attrs["layer_names"]):
            names_a = texts(a[layer].attrs["weight_names"])
            assert names_a == texts(b[layer].attrs["weight_names"])
            for n in names_a:
                np.testing.assert_array_equal(a[layer][n][()], b[layer][n][()])


@pytest.mark.tf
def test_tf_model_h5_reproduces_golden(tmp_path) -> None:
    tf = pytest.importorskip("tensorflow")

    import aviary.tf

    case = GoldenCase("bert-pretraining")
    folder = tmp_path / "h5-only"
    folder.mkdir()
    (folder / "config.json").write_text((case.folder / "config.json").read_text())
    write_reference_h5(
        read_checkpoint(case.folder), folder / "tf_model.h5", "tf_bert_for_pre_training"
    )
    model = aviary.tf.TFBertForPreTraining.from_pretrained(folder)
    inputs = {k: tf.constant(v) for k, v in case.inputs.items()}
    compare(model(**inputs, **case.kwargs), case)
