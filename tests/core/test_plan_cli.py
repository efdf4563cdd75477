"""`aviary plan`: the printed layout, the picture, user errors, and its docs page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_plan(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "aviary", "plan", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_plan_prints_the_layout_and_writes_a_png(tmp_path):
    picture = tmp_path / "pattern.png"
    result = run_plan(
        "--seq-len", "1000", "--block-size", "64", "--random-blocks", "3", "--heads", "2",
        "--png", str(picture), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "block-sparse" in result.stdout
    assert "+24 token(s) on the right -> 1024 tokens, 16 blocks" in result.stdout
    assert "paper-era" in result.stdout
    assert len(re.findall(r"query block +\d+:", result.stdout)) == 14
    assert picture.read_bytes().startswith(PNG_SIGNATURE)
    assert picture.stat().st_size > 5_000


def test_plan_reports_full_attention_for_short_inputs(tmp_path):
    result = run_plan("--seq-len", "72", "--block-size", "8", "--random-blocks", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "full: inputs up to (5 + 2*2) * 8 = 72 tokens" in result.stdout
    assert not re.search(r"query block +\d+:", result.stdout)  # no random-block table


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--seq-len", "1000", "--block-size", "0"], "block_size"),
        (["--seq-len", "1000", "--random-blocks", "0"], "num_random_blocks"),
        (["--seq-len", "1000", "--heads", "0"], "num_heads"),
        (["--seq-len", "1000", "--layer", "-1"], "--layer"),
        (["--seq-len", "1000", "--png", "picture.jpg"], ".png"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, needle):
    result = run_plan(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("aviary plan: error:") and needle in lines[0]


def test_importing_the_command_loads_nothing_heavy():
    code = (
        "import sys, aviary.commands.plan\n"
        "heavy = {'matplotlib', 'torch', 'tensorflow', 'jax', 'aviary.core.block_sparse'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_docs_page_images_exist():
    # tests/test_docs.py runs the page's code; this checks the pictures it shows are real PNGs.
    page = (REPO / "docs" / "big_bird_attention.md").read_text()
    images = re.findall(r"\]\((images/[^)]+\.png)\)", page)
    assert images
    for image in images:
        assert (REPO / "docs" / image).read_bytes().startswith(PNG_SIGNATURE)
