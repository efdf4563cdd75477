"""Canonical checkpoint I/O: safetensors (single and sharded), pytorch_model.bin, corrupt files,
and the strict-loading report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aviary.conversion import (
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    CheckpointError,
    match_checkpoint,
    read_checkpoint,
    read_checkpoint_shapes,
    write_checkpoint,
)
from aviary.conversion.checkpoint import parse_size


def tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "bert.embeddings.word_embeddings.weight": rng.normal(size=(50, 8)).astype(np.float32),
        "bert.encoder.layer.0.attention.self.query.weight": rng.normal(size=(8, 8)).astype(
            np.float32
        ),
        "bert.encoder.layer.0.attention.self.query.bias": rng.normal(size=(8,)).astype(np.float32),
        "cls.predictions.bias": np.zeros(50, np.float32),
    }


def test_single_file_round_trip_is_bit_identical(tmp_path) -> None:
    original = tensors()
    written = write_checkpoint(original, tmp_path)
    assert [p.name for p in written] == [SAFE_WEIGHTS_NAME]
    loaded = read_checkpoint(tmp_path)
    assert loaded.keys() == original.keys()
    for name, value in original.items():
        np.testing.assert_array_equal(loaded[name], value)
    from safetensors import safe_open

    with safe_open(str(tmp_path / SAFE_WEIGHTS_NAME), "np") as handle:
        assert handle.metadata()["format"] == "pt"


def test_sharded_round_trip(tmp_path) -> None:
    original = tensors()
    written = write_checkpoint(original, tmp_path, max_shard_size=1000)
    names = sorted(p.name for p in written)
    assert SAFE_WEIGHTS_INDEX_NAME in names and len(names) >= 3
    index = json.loads((tmp_path / SAFE_WEIGHTS_INDEX_NAME).read_text())
    assert set(index["weight_map"]) == set(original)
    assert index["metadata"]["total_size"] == sum(v.nbytes for v in original.values())
    loaded = read_checkpoint(tmp_path)
    for name, value in original.items():
        np.testing.assert_array_equal(loaded[name], value)
    assert read_checkpoint_shapes(tmp_path) == {k: v.shape for k, v in original.items()}
    # Saving again unsharded removes the old shards and index.
    write_checkpoint(original, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [SAFE_WEIGHTS_NAME]


def test_parse_size() -> None:
    assert parse_size("5GB") == 5 * 10**9
    assert parse_size("200MiB") == 200 * 2**20
    assert parse_size(123) == 123
    with pytest.raises(ValueError, match="size"):
        parse_size("lots")


def test_pytorch_bin_is_read_with_weights_only(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    original = {k: torch.from_numpy(v) for k, v in tensors().items()}
    original["bert.embeddings.LayerNorm.gamma"] = torch.ones(8)
    torch.save(original, tmp_path / "pytorch_model.bin")
    loaded = read_checkpoint(tmp_path)
    # Legacy LayerNorm names are renamed.
    assert "bert.embeddings.LayerNorm.weight" in loaded
    np.testing.assert_array_equal(loaded["cls.predictions.bias"], np.zeros(50, np.float32))

    class Payload:
        def __reduce__(self):
            return (print, ("this would run on load",))

    torch.save({"x": Payload()}, tmp_path / "evil.bin")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        read_checkpoint(tmp_path / "evil.bin")


def test_truncated_and_corrupt_files(tmp_path) -> None:
    write_checkpoint(tensors(), tmp_path)
    data = (tmp_path / SAFE_WEIGHTS_NAME).read_bytes()
    truncated = tmp_path / "t" / SAFE_WEIGHTS_NAME
    truncated.parent.mkdir()
    truncated.write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(truncated.parent)
    header_cut = tmp_path / "h" / SAFE_WEIGHTS_NAME
    header_cut.parent.mkdir()
    header_cut.write_bytes(data[:20])
    with pytest.raises(CheckpointError, match="truncated|corrupt"):
        read_checkpoint(header_cut.parent)
    garbage = tmp_path / "g" / SAFE_WEIGHTS_NAME
    garbage.parent.mkdir()
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!" + b"\x00" * 64)
    with pytest.raises(CheckpointError, match="corrupt"):
        read_checkpoint(garbage.parent)
    empty = tmp_path / "e"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no weights"):
        read_checkpoint(empty)


def test_index_naming_a_missing_shard(tmp_path) -> None:
    write_checkpoint(tensors(), tmp_path, max_shard_size=1000)
    next(tmp_path.glob("model-00001-*.safetensors")).unlink()
    with pytest.raises(CheckpointError, match="do not exist"):
        read_checkpoint(tmp_path)


def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch) -> None:
    import safetensors.numpy

    write_checkpoint(tensors(), tmp_path)
    before = (tmp_path / SAFE_WEIGHTS_NAME).read_bytes()

    def failing_save(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.numpy, "save_file", failing_save)
    with pytest.raises(KeyboardInterrupt):
        write_checkpoint({"x": np.ones(3, np.float32)}, tmp_path)
    assert (tmp_path / SAFE_WEIGHTS_NAME).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [SAFE_WEIGHTS_NAME]


MODEL = {
    "bert.embeddings.word_embeddings.weight": (50, 8),
    "bert.encoder.layer.0.attention.self.query.weight": (8, 8),
    "bert.pooler.dense.weight": (8, 8),
    "classifier.weight": (3, 8),
    "classifier.bias": (3,),
}


def test_match_head_model_from_base_checkpoint() -> None:
    base = {k.removeprefix("bert."): v for k, v in MODEL.items() if k.startswith("bert.")}
    base["embeddings.position_ids"] = (1, 64)  # a buffer old checkpoints carry: skipped
    report = match_checkpoint(MODEL, base, base_model_prefix="bert")
    assert report.ok
    assert report.newly_initialized == ["classifier.bias", "classifier.weight"]
    assert report.mapping["bert.pooler.dense.weight"] == "pooler.dense.weight"


def test_match_base_model_from_head_checkpoint() -> None:
    base_model = {k.removeprefix("bert."): v for k, v in MODEL.items() if k.startswith("bert.")}
    ckpt = {**MODEL, "cls.predictions.bias": (50,)}
    report = match_checkpoint(base_model, ckpt, base_model_prefix="bert")
    assert report.ok and not report.newly_initialized
    assert set(report.discarded) == {"classifier.weight", "classifier.bias", "cls.predictions.bias"}


def test_match_reports_missing_unexpected_and_mismatched_by_name() -> None:
    ckpt = dict(MODEL)
    del ckpt["bert.encoder.layer.0.attention.self.query.weight"]
    ckpt["bert.encoder.layer.1.attention.self.query.weight"] = (8, 8)
    ckpt["classifier.weight"] = (2, 8)
    report = match_checkpoint(MODEL, ckpt, base_model_prefix="bert")
    assert report.missing == ["bert.encoder.layer.0.attention.self.query.weight"]
    assert report.unexpected == ["bert.encoder.layer.1.attention.self.query.weight"]
    assert report.mismatched == [("classifier.weight", (3, 8), (2, 8))]
    with pytest.raises(CheckpointError) as err:
        report.raise_if_failed("ckpt")
    for name in ("layer.0.attention", "layer.1.attention", "classifier.weight"):
        assert name in str(err.value)
    relaxed = match_checkpoint(MODEL, ckpt, base_model_prefix="bert", ignore_mismatched_sizes=True)
    assert "classifier.weight" in relaxed.newly_initialized and not relaxed.mismatched


def test_match_base_model_reports_a_component_it_lacks_inside_its_embeddings() -> None:
    """A base model that lacks one embedding table must not silently drop the checkpoint's."""
    base_model = {
        "embeddings.word_embeddings.weight": (50, 8),
        "encoder.layer.0.attention.self.query.weight": (8, 8),
    }
    ckpt = {**base_model, "embeddings.position_embeddings.weight": (64, 8)}
    report = match_checkpoint(base_model, ckpt, base_model_prefix="bert")
    assert report.unexpected == ["embeddings.position_embeddings.weight"]
    # ... while a pooler the model does not have is a component of its own: discarded.
    ckpt = {**base_model, "pooler.dense.weight": (8, 8)}
    report = match_checkpoint(base_model, ckpt, base_model_prefix="bert")
    assert report.ok and report.discarded == ["pooler.dense.weight"]
