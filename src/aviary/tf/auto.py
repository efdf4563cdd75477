"""TensorFlow Auto classes: `TFAutoModelForMaskedLM.from_pretrained(folder)` loads the class of the
folder's `model_type`. The dispatch table, the docstrings and the error texts are
`aviary.core.auto`'s; this file only says where the classes live."""

from __future__ import annotations

from typing import Any

from aviary.core.auto import AutoModelBase


class _TFAutoModel(AutoModelBase):
    """The TensorFlow Auto classes' base: classes come from `aviary.tf`."""

    framework = "tf"

    @classmethod
    def _lookup(cls, name: str) -> Any:
        import aviary.tf

        return getattr(aviary.tf, name, None)


class TFAutoModel(_TFAutoModel): ...


class TFAutoModelForPreTraining(_TFAutoModel): ...


class TFAutoModelForMaskedLM(_TFAutoModel): ...


class TFAutoModelForCausalLM(_TFAutoModel): ...


class TFAutoModelForSeq2SeqLM(_TFAutoModel): ...


class TFAutoModelForSequenceClassification(_TFAutoModel): ...


class TFAutoModelForMultipleChoice(_TFAutoModel): ...


class TFAutoModelForTokenClassification(_TFAutoModel): ...


class TFAutoModelForQuestionAnswering(_TFAutoModel): ...


class TFAutoModelForNextSentencePrediction(_TFAutoModel): ...
