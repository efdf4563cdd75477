"""PyTorch implementations: `from aviary.pt import BertModel`.

`AutoConfig` and `AutoTokenizer` (framework-neutral, from `aviary.core`) are exported here too, so
that a reference import line `from transformers import AutoTokenizer, BertModel` ports as
`from aviary.pt import AutoTokenizer, BertModel`.
"""

from aviary.core.auto import AutoConfig, AutoTokenizer
from aviary.pt.auto import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForMultipleChoice,
    AutoModelForNextSentencePrediction,
    AutoModelForPreTraining,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)
from aviary.pt.bert import (
    BertForMaskedLM,
    BertForMultipleChoice,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForPreTrainingOutput,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertLMHeadModel,
    BertModel,
    BertPreTrainedModel,
)
from aviary.pt.big_bird import (
    BigBirdForCausalLM,
    BigBirdForMaskedLM,
    BigBirdForMultipleChoice,
    BigBirdForPreTraining,
    BigBirdForPreTrainingOutput,
    BigBirdForQuestionAnswering,
    BigBirdForQuestionAnsweringModelOutput,
    BigBirdForSequenceClassification,
    BigBirdForTokenClassification,
    BigBirdModel,
    BigBirdPreTrainedModel,
)
from aviary.pt.big_bird_pegasus import (
    BigBirdPegasusForCausalLM,
    BigBirdPegasusForConditionalGeneration,
    BigBirdPegasusForQuestionAnswering,
    BigBirdPegasusForSequenceClassification,
    BigBirdPegasusModel,
    BigBirdPegasusPreTrainedModel,
)
from aviary.pt.generation import GenerationMixin
from aviary.pt.modeling_utils import PreTrainedModel

__all__ = [
    "AutoConfig",
    "AutoModel",
    "AutoModelForCausalLM",
    "AutoModelForMaskedLM",
    "AutoModelForMultipleChoice",
    "AutoModelForNextSentencePrediction",
    "AutoModelForPreTraining",
    "AutoModelForQuestionAnswering",
    "AutoModelForSeq2SeqLM",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoTokenizer",
    "BertForMaskedLM",
    "BertForMultipleChoice",
    "BertForNextSentencePrediction",
    "BertForPreTraining",
    "BertForPreTrainingOutput",
    "BertForQuestionAnswering",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertLMHeadModel",
    "BertModel",
    "BertPreTrainedModel",
    "BigBirdForCausalLM",
    "BigBirdForMaskedLM",
    "BigBirdForMultipleChoice",
    "BigBirdForPreTraining",
    "BigBirdForPreTrainingOutput",
    "BigBirdForQuestionAnswering",
    "BigBirdForQuestionAnsweringModelOutput",
    "BigBirdForSequenceClassification",
    "BigBirdForTokenClassification",
    "BigBirdModel",
    "BigBirdPegasusForCausalLM",
    "BigBirdPegasusForConditionalGeneration",
    "BigBirdPegasusForQuestionAnswering",
    "BigBirdPegasusForSequenceClassification",
    "BigBirdPegasusModel",
    "BigBirdPegasusPreTrainedModel",
    "BigBirdPreTrainedModel",
    "GenerationMixin",
    "PreTrainedModel",
]
