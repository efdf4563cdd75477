"""Flax (linen) implementations: `from aviary.flax import FlaxBertModel`.

Names are imported from their modules on first use, so `import aviary.flax` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # framework-neutral, exported here too so that a reference import line ports as one line
    "AutoConfig": "aviary.core.auto",
    "AutoTokenizer": "aviary.core.auto",
    "FlaxAutoModel": "aviary.flax.auto",
    "FlaxAutoModelForCausalLM": "aviary.flax.auto",
    "FlaxAutoModelForMaskedLM": "aviary.flax.auto",
    "FlaxAutoModelForMultipleChoice": "aviary.flax.auto",
    "FlaxAutoModelForNextSentencePrediction": "aviary.flax.auto",
    "FlaxAutoModelForPreTraining": "aviary.flax.auto",
    "FlaxAutoModelForQuestionAnswering": "aviary.flax.auto",
    "FlaxAutoModelForSeq2SeqLM": "aviary.flax.auto",
    "FlaxAutoModelForSequenceClassification": "aviary.flax.auto",
    "FlaxAutoModelForTokenClassification": "aviary.flax.auto",
    "FlaxBertPreTrainedModel": "aviary.flax.bert",
    "FlaxBertModel": "aviary.flax.bert",
    "FlaxBertForPreTraining": "aviary.flax.bert",
    "FlaxBertForCausalLM": "aviary.flax.bert",
    "FlaxBertForMaskedLM": "aviary.flax.bert",
    "FlaxBertForNextSentencePrediction": "aviary.flax.bert",
    "FlaxBertForSequenceClassification": "aviary.flax.bert",
    "FlaxBertForMultipleChoice": "aviary.flax.bert",
    "FlaxBertForTokenClassification": "aviary.flax.bert",
    "FlaxBertForQuestionAnswering": "aviary.flax.bert",
    "FlaxBertForPreTrainingOutput": "aviary.flax.modeling_utils",
    "FlaxBigBirdPreTrainedModel": "aviary.flax.big_bird",
    "FlaxBigBirdModel": "aviary.flax.big_bird",
    "FlaxBigBirdForPreTraining": "aviary.flax.big_bird",
    "FlaxBigBirdForCausalLM": "aviary.flax.big_bird",
    "FlaxBigBirdForMaskedLM": "aviary.flax.big_bird",
    "FlaxBigBirdForSequenceClassification": "aviary.flax.big_bird",
    "FlaxBigBirdForMultipleChoice": "aviary.flax.big_bird",
    "FlaxBigBirdForTokenClassification": "aviary.flax.big_bird",
    "FlaxBigBirdForQuestionAnswering": "aviary.flax.big_bird",
    "FlaxBigBirdForPreTrainingOutput": "aviary.flax.modeling_utils",
    "FlaxBigBirdForQuestionAnsweringModelOutput": "aviary.flax.modeling_utils",
    "FlaxBigBirdPegasusPreTrainedModel": "aviary.flax.big_bird_pegasus",
    "FlaxBigBirdPegasusModel": "aviary.flax.big_bird_pegasus",
    "FlaxBigBirdPegasusForConditionalGeneration": "aviary.flax.big_bird_pegasus",
    "FlaxBigBirdPegasusForSequenceClassification": "aviary.flax.big_bird_pegasus",
    "FlaxBigBirdPegasusForQuestionAnswering": "aviary.flax.big_bird_pegasus",
    "FlaxBigBirdPegasusForCausalLM": "aviary.flax.big_bird_pegasus",
    "FlaxPreTrainedModel": "aviary.flax.modeling_utils",
    "classification_loss": "aviary.flax.modeling_utils",
    "cross_entropy_loss": "aviary.flax.modeling_utils",
    "masked_lm_loss": "aviary.flax.modeling_utils",
    "causal_lm_loss": "aviary.flax.modeling_utils",
    "sequence_classification_loss": "aviary.flax.modeling_utils",
    "token_classification_loss": "aviary.flax.modeling_utils",
    "span_loss": "aviary.flax.modeling_utils",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aviary.flax' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(_EXPORTS)


__all__ = sorted(_EXPORTS)
