"""PyTorch Auto classes: `AutoModelForMaskedLM.from_pretrained(folder)` loads the class of the
folder's `model_type`. The dispatch table, the docstrings and the error texts are
`aviary.core.auto`'s; this file only says where the classes live."""

from __future__ import annotations

from typing import Any

from aviary.core.auto import AutoModelBase


class _AutoModel(AutoModelBase):
    """The PyTorch Auto classes' base: classes come from `aviary.pt`."""

    framework = "pt"

    @classmethod
    def _lookup(cls, name: str) -> Any:
        import aviary.pt

        return getattr(aviary.pt, name, None)


class AutoModel(_AutoModel): ...


class AutoModelForPreTraining(_AutoModel): ...


class AutoModelForMaskedLM(_AutoModel): ...


class AutoModelForCausalLM(_AutoModel): ...


class AutoModelForSeq2SeqLM(_AutoModel): ...


class AutoModelForSequenceClassification(_AutoModel): ...


class AutoModelForMultipleChoice(_AutoModel): ...


class AutoModelForTokenClassification(_AutoModel): ...


class AutoModelForQuestionAnswering(_AutoModel): ...


class AutoModelForNextSentencePrediction(_AutoModel): ...
