"""Flax Auto classes: `FlaxAutoModelForMaskedLM.from_pretrained(folder)` loads the class of the
folder's `model_type`. The dispatch table, the docstrings and the error texts are
`aviary.core.auto`'s; this file only says where the classes live."""

from __future__ import annotations

from typing import Any

from aviary.core.auto import AutoModelBase


class _FlaxAutoModel(AutoModelBase):
    """The Flax Auto classes' base: classes come from `aviary.flax`."""

    framework = "flax"

    @classmethod
    def _lookup(cls, name: str) -> Any:
        import aviary.flax

        return getattr(aviary.flax, name, None)


class FlaxAutoModel(_FlaxAutoModel): ...


class FlaxAutoModelForPreTraining(_FlaxAutoModel): ...


class FlaxAutoModelForMaskedLM(_FlaxAutoModel): ...


class FlaxAutoModelForCausalLM(_FlaxAutoModel): ...


class FlaxAutoModelForSeq2SeqLM(_FlaxAutoModel): ...


class FlaxAutoModelForSequenceClassification(_FlaxAutoModel): ...


class FlaxAutoModelForMultipleChoice(_FlaxAutoModel): ...


class FlaxAutoModelForTokenClassification(_FlaxAutoModel): ...


class FlaxAutoModelForQuestionAnswering(_FlaxAutoModel): ...


class FlaxAutoModelForNextSentencePrediction(_FlaxAutoModel): ...
