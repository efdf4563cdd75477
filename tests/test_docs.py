"""Every ```python block in docs/*.md runs: the blocks of one page in order, in one namespace, in a
fresh interpreter with the repository root as working directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def page_source(page: Path) -> str:
    blocks = BLOCK.findall(page.read_text(encoding="utf-8"))
    return "\n\n".join(blocks)


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_docs_page_runs(page: Path) -> None:
    source = page_source(page)
    if not source.strip():
        pytest.skip(f"{page.name} has no Python blocks")
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "KERAS_BACKEND": "tensorflow",
        "MPLBACKEND": "Agg",
    }
    result = subprocess.run(
        [sys.executable, "-c", source],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (
        f"{page.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    )
