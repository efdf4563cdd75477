"""Every `bert-*` reference case reproduced by the PyTorch classes (fp32, ≤ 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import aviary.pt  # noqa: E402
from conftest import GoldenCase, compare, golden_cases  # noqa: E402

pytestmark = pytest.mark.torch


def run_case(case: GoldenCase, attn_implementation: str | None = None) -> dict:
    cls = getattr(aviary.pt, case.class_name)
    model = cls.from_pretrained(case.folder, attn_implementation=attn_implementation)
    inputs = {k: torch.from_numpy(v) for k, v in case.inputs.items()}
    with torch.no_grad():
        out = model(**inputs, **case.kwargs)
    return out


@pytest.mark.parametrize("golden", golden_cases("bert-"), indirect=True)
def test_golden(golden: GoldenCase) -> None:
    compare(run_case(golden), golden)


@pytest.mark.parametrize("golden", golden_cases("bert-"), indirect=True)
def test_golden_without_attentions_uses_sdpa(golden: GoldenCase) -> None:
    """Without attention outputs the absolute-position cases take the SDPA path; same numbers."""
    golden.kwargs = {**golden.kwargs, "output_attentions": False}
    out = run_case(golden, attn_implementation="sdpa")
    assert out.attentions is None
    compare(out, golden, skip=("attentions",))


def test_tuple_output_matches_fields() -> None:
    case = GoldenCase("bert-model-absolute")
    model = aviary.pt.BertModel.from_pretrained(case.folder)
    inputs = {k: torch.from_numpy(v) for k, v in case.inputs.items()}
    with torch.no_grad():
        as_dict = model(**inputs)
        as_tuple = model(**inputs, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 2
    np.testing.assert_array_equal(as_tuple[0].numpy(), as_dict["last_hidden_state"].numpy())
    np.testing.assert_array_equal(as_tuple[1].numpy(), as_dict.pooler_output.numpy())
    assert list(as_dict.keys()) == ["last_hidden_state", "pooler_output"]
