"""TensorFlow / Keras 3 implementations: `from aviary.tf import TFBertModel`.

Names are imported from their modules on first use, so `import aviary.tf` stays cheap and the
tokenizer layers (which need tensorflow-text) load only when asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # framework-neutral, exported here too so that a reference import line ports as one line
    "AutoConfig": "aviary.core.auto",
    "AutoTokenizer": "aviary.core.auto",
    "TFAutoModel": "aviary.tf.auto",
    "TFAutoModelForCausalLM": "aviary.tf.auto",
    "TFAutoModelForMaskedLM": "aviary.tf.auto",
    "TFAutoModelForMultipleChoice": "aviary.tf.auto",
    "TFAutoModelForNextSentencePrediction": "aviary.tf.auto",
    "TFAutoModelForPreTraining": "aviary.tf.auto",
    "TFAutoModelForQuestionAnswering": "aviary.tf.auto",
    "TFAutoModelForSeq2SeqLM": "aviary.tf.auto",
    "TFAutoModelForSequenceClassification": "aviary.tf.auto",
    "TFAutoModelForTokenClassification": "aviary.tf.auto",
    "TFBertTokenizer": "aviary.tf.tokenizers",
    "TFSentencePieceTokenizer": "aviary.tf.tokenizers",
    "TFBertModel": "aviary.tf.bert",
    "TFBertForPreTraining": "aviary.tf.bert",
    "TFBertLMHeadModel": "aviary.tf.bert",
    "TFBertForMaskedLM": "aviary.tf.bert",
    "TFBertForNextSentencePrediction": "aviary.tf.bert",
    "TFBertForSequenceClassification": "aviary.tf.bert",
    "TFBertForMultipleChoice": "aviary.tf.bert",
    "TFBertForTokenClassification": "aviary.tf.bert",
    "TFBertForQuestionAnswering": "aviary.tf.bert",
    "TFBertPreTrainedModel": "aviary.tf.bert",
    "TFBertForPreTrainingOutput": "aviary.tf.bert",
    "TFBigBirdModel": "aviary.tf.big_bird",
    "TFBigBirdForPreTraining": "aviary.tf.big_bird",
    "TFBigBirdForCausalLM": "aviary.tf.big_bird",
    "TFBigBirdForMaskedLM": "aviary.tf.big_bird",
    "TFBigBirdForSequenceClassification": "aviary.tf.big_bird",
    "TFBigBirdForMultipleChoice": "aviary.tf.big_bird",
    "TFBigBirdForTokenClassification": "aviary.tf.big_bird",
    "TFBigBirdForQuestionAnswering": "aviary.tf.big_bird",
    "TFBigBirdPreTrainedModel": "aviary.tf.big_bird",
    "TFBigBirdForPreTrainingOutput": "aviary.tf.big_bird",
    "TFBigBirdForQuestionAnsweringModelOutput": "aviary.tf.big_bird",
    "TFBigBirdPegasusModel": "aviary.tf.big_bird_pegasus",
    "TFBigBirdPegasusForConditionalGeneration": "aviary.tf.big_bird_pegasus",
    "TFBigBirdPegasusForSequenceClassification": "aviary.tf.big_bird_pegasus",
    "TFBigBirdPegasusForQuestionAnswering": "aviary.tf.big_bird_pegasus",
    "TFBigBirdPegasusForCausalLM": "aviary.tf.big_bird_pegasus",
    "TFBigBirdPegasusPreTrainedModel": "aviary.tf.big_bird_pegasus",
    "TFGenerationMixin": "aviary.tf.generation",
    "TFPreTrainedModel": "aviary.tf.modeling_utils",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aviary.tf' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(_EXPORTS)


__all__ = sorted(_EXPORTS)
