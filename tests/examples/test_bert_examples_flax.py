"""The Flax BERT examples of the seed document (BE-21 .. BE-29), as written there but for the
import line and the checkpoint, the real all-MiniLM-L6-v2 (`bert_folder`; its heads load newly
initialised)."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

pytestmark = pytest.mark.flax

SENTENCE_IDS = 8  # "Hello, my dog is cute": [CLS] hello , my dog is cute [SEP]


def test_be21_flax_bert_model(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBertModel

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = FlaxBertModel.from_pretrained(bert_folder)
    inputs = tokenizer("Hello, my dog is cute", return_tensors="jax")
    outputs = model(**inputs)
    last_hidden_states = outputs.last_hidden_state

    assert isinstance(inputs["input_ids"], jax.Array)
    assert last_hidden_states.shape == (1, SENTENCE_IDS, 384)


def test_be22_flax_for_pre_training(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBertForPreTraining

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = FlaxBertForPreTraining.from_pretrained(bert_folder)
    inputs = tokenizer("Hello, my dog is cute", return_tensors="np")
    outputs = model(**inputs)
    prediction_logits = outputs.prediction_logits
    seq_relationship_logits = outputs.seq_relationship_logits

    assert isinstance(inputs["input_ids"], np.ndarray)
    assert prediction_logits.shape == (1, SENTENCE_IDS, tokenizer.vocab_size)
    assert seq_relationship_logits.shape == (1, 2)


def test_be23_flax_for_causal_lm(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBertForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = FlaxBertForCausalLM.from_pretrained(bert_folder)
    inputs = tokenizer("Hello, my dog is cute", return_tensors="np")
    outputs = model(**inputs)
    # retrieve logts for next token
    next_token_logits = outputs.logits[:, -1]

    assert next_token_logits.shape == (1, tokenizer.vocab_size)
    assert np.all(np.isfinite(next_token_logits))


def test_be24_flax_for_masked_lm(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBertForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = FlaxBertForMaskedLM.from_pretrained(bert_folder)
    inputs = tokenizer("The capital of France is [MASK].", return_tensors="jax")
    outputs = model(**inputs)
    logits = outputs.logits

    assert logits.shape == (1, 9, tokenizer.vocab_size)
    assert int(inputs["input_ids"][0, 6]) == tokenizer.mask_token_id


def test_be25_flax_for_next_sentence_prediction(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBertForNextSentencePrediction

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = FlaxBertForNextSentencePrediction.from_pretrained(bert_folder)
    prompt = (
        "In Italy, pizza served in formal settings, such as at a restaurant, is presented unsliced."
    )
    next_sentence = "The sky is blue due to the shorter wavelength of blue light."
    encoding = tokenizer(prompt, next_sentence, return_tensors="jax")
    outputs = model(**encoding)
    logits = outputs.logits
    # with trained weights: assert logits[0, 0] < logits[0, 1]  # next sentence was random

    assert logits.shape == (1, 2)
    assert set(np.asarray(encoding["token_type_ids"][0]).tolist()) == {0, 1}


def test_be26_flax_sequence_classification(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = FlaxBertForSequenceClassification.from_pretrained(bert_folder)
    inputs = tokenizer("Hello, my dog is cute", return_tensors="jax")
    outputs = model(**inputs)
    logits = outputs.logits

    assert logits.shape == (1, len(model.config.id2label))


def test_be27_flax_multiple_choice(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBertForMultipleChoice

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = FlaxBertForMultipleChoice.from_pretrained(bert_folder)
    prompt = (
        "In Italy, pizza served in formal settings, such as at a restaurant, is presented unsliced."
    )
    choice0 = "It is eaten with a fork and a knife."
    choice1 = "It is eaten while held in the hand."
    encoding = tokenizer([prompt, prompt], [choice0, choice1], return_tensors="jax", padding=True)
    outputs = model(**{k: v[None, :] for k, v in encoding.items()})
    logits = outputs.logits

    assert logits.shape == (1, 2)


def test_be28_flax_token_classification(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBertForTokenClassification

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = FlaxBertForTokenClassification.from_pretrained(bert_folder)
    inputs = tokenizer("Hello, my dog is cute", return_tensors="jax")
    outputs = model(**inputs)
    logits = outputs.logits

    assert logits.shape == (1, SENTENCE_IDS, len(model.config.id2label))


def test_be29_flax_question_answering(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBertForQuestionAnswering

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = FlaxBertForQuestionAnswering.from_pretrained(bert_folder)
    question, text = "Who was Jim Henson?", "Jim Henson was a nice puppet"
    inputs = tokenizer(question, text, return_tensors="jax")
    outputs = model(**inputs)
    start_scores = outputs.start_logits
    end_scores = outputs.end_logits

    length = inputs["input_ids"].shape[1]
    assert start_scores.shape == end_scores.shape == (1, length)
    assert tokenizer.decode(inputs["input_ids"][0, 7:13]) == "jim henson was a nice puppet"
