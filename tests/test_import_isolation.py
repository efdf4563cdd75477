"""`import aviary` and `import aviary.core` load no framework (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

import pytest

FRAMEWORKS = ("torch", "tensorflow", "jax", "flax", "keras")


@pytest.mark.parametrize(
    "statement",
    [
        "import aviary",
        "import aviary.core",
        "import aviary.conversion",
        "import aviary.tf, aviary.flax",
        "from aviary import BertConfig; BertConfig().to_json_string()",
        "import aviary.cli",
    ],
)
def test_no_framework_is_imported(statement: str) -> None:
    code = (
        f"{statement}\nimport sys\n"
        f"loaded = [m for m in {FRAMEWORKS!r} if m in sys.modules]\n"
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"{statement!r} imported {result.stdout.strip()}"
