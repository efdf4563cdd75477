"""The TensorFlow BERT examples of the seed document (BE-12 .. BE-20, and BE-30: the input forms
every TF class's introduction lists), as written there but for the import line and the
checkpoint, the real all-MiniLM-L6-v2 (`bert_folder`; its heads load newly initialised)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from seed_examples import is_finite_scalar  # noqa: E402

pytestmark = pytest.mark.tf

SENTENCE_IDS = 8  # "Hello, my dog is cute": [CLS] hello , my dog is cute [SEP]


def test_be12_tf_bert_model(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.tf import TFBertModel

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = TFBertModel.from_pretrained(bert_folder)
    inputs = tokenizer("Hello, my dog is cute", return_tensors="tf")
    outputs = model(inputs)
    last_hidden_states = outputs.last_hidden_state

    assert tuple(last_hidden_states.shape) == (1, SENTENCE_IDS, 384)
    np.testing.assert_allclose(last_hidden_states, model(**inputs).last_hidden_state, atol=1e-6)


def test_be13_tf_for_pre_training(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.tf import TFBertForPreTraining

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = TFBertForPreTraining.from_pretrained(bert_folder)
    input_ids = tokenizer("Hello, my dog is cute", add_special_tokens=True, return_tensors="tf")
    # Batch size 1
    outputs = model(input_ids)
    prediction_logits, seq_relationship_logits = outputs[:2]

    assert tuple(prediction_logits.shape) == (1, SENTENCE_IDS, tokenizer.vocab_size)
    assert tuple(seq_relationship_logits.shape) == (1, 2)
    assert prediction_logits is outputs.prediction_logits
    assert seq_relationship_logits is outputs.seq_relationship_logits


def test_be14_tf_lm_head_model(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.tf import TFBertLMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = TFBertLMHeadModel.from_pretrained(bert_folder)
    inputs = tokenizer("Hello, my dog is cute", return_tensors="tf")
    outputs = model(inputs)
    logits = outputs.logits

    assert tuple(logits.shape) == (1, SENTENCE_IDS, tokenizer.vocab_size)


def test_be15_tf_for_masked_lm(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.tf import TFBertForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = TFBertForMaskedLM.from_pretrained(bert_folder)
    inputs = tokenizer("The capital of France is [MASK].", return_tensors="tf")
    logits = model(**inputs).logits
    # retrieve index of [MASK]
    mask_token_index = tf.where((inputs.input_ids == tokenizer.mask_token_id)[0])
    selected_logits = tf.gather_nd(logits[0], indices=mask_token_index)
    predicted_token_id = tf.math.argmax(selected_logits, axis=-1)
    predicted = tokenizer.decode(predicted_token_id)  # 'paris' with trained weights

    assert mask_token_index.numpy().tolist() == [[6]]
    assert tuple(selected_logits.shape) == (1, tokenizer.vocab_size)
    assert predicted == tokenizer.convert_ids_to_tokens(int(predicted_token_id[0]))


def test_be16_tf_for_next_sentence_prediction(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.tf import TFBertForNextSentencePrediction

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = TFBertForNextSentencePrediction.from_pretrained(bert_folder)
    prompt = (
        "In Italy, pizza served in formal settings, such as at a restaurant, is presented unsliced."
    )
    next_sentence = "The sky is blue due to the shorter wavelength of blue light."
    encoding = tokenizer(prompt, next_sentence, return_tensors="tf")
    logits = model(encoding["input_ids"], token_type_ids=encoding["token_type_ids"])[0]
    # with trained weights: assert logits[0][0] < logits[0][1]  # the next sentence was random

    assert tuple(logits.shape) == (1, 2)
    np.testing.assert_allclose(logits, model(**encoding).logits, atol=1e-6)


def test_be17_tf_sequence_classification(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.tf import TFBertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = TFBertForSequenceClassification.from_pretrained(bert_folder)
    inputs = tokenizer("Hello, my dog is cute", return_tensors="tf")
    logits = model(**inputs).logits
    predicted_class_id = int(tf.math.argmax(logits, axis=-1)[0])
    label = model.config.id2label[predicted_class_id]  # 'LABEL_1' with trained weights
    # To train a model on `num_labels` classes, you can pass `num_labels=num_labels` to `.from_pretrained(...)`
    num_labels = len(model.config.id2label)
    model = TFBertForSequenceClassification.from_pretrained(bert_folder, num_labels=num_labels)
    labels = tf.constant(1)
    loss = model(**inputs, labels=labels).loss
    round(float(loss), 2)  # 0.01 with trained weights

    assert tuple(logits.shape) == (1, 2)
    assert label == f"LABEL_{predicted_class_id}"
    assert is_finite_scalar(loss)


def test_be18_tf_multiple_choice(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.tf import TFBertForMultipleChoice

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = TFBertForMultipleChoice.from_pretrained(bert_folder)
    prompt = (
        "In Italy, pizza served in formal settings, such as at a restaurant, is presented unsliced."
    )
    choice0 = "It is eaten with a fork and a knife."
    choice1 = "It is eaten while held in the hand."
    encoding = tokenizer([prompt, prompt], [choice0, choice1], return_tensors="tf", padding=True)
    inputs = {k: tf.expand_dims(v, 0) for k, v in encoding.items()}
    outputs = model(inputs)  # batch size is 1
    # the linear classifier still needs to be trained
    logits = outputs.logits

    assert tuple(logits.shape) == (1, 2)
    np.testing.assert_allclose(logits, model(**inputs).logits, atol=1e-6)


def test_be19_tf_token_classification(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.tf import TFBertForTokenClassification

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = TFBertForTokenClassification.from_pretrained(bert_folder)
    inputs = tokenizer(
        "HuggingFace is a company based in Paris and New York",
        add_special_tokens=False,
        return_tensors="tf",
    )
    logits = model(**inputs).logits
    predicted_token_class_ids = tf.math.argmax(logits, axis=-1)
    # Note that tokens are classified rather then input words which means that
    # there might be more predicted token classes than words.
    # Multiple token classes might account for the same word
    predicted_tokens_classes = [
        model.config.id2label[t] for t in predicted_token_class_ids[0].numpy().tolist()
    ]

    tokens = tokenizer.tokenize("HuggingFace is a company based in Paris and New York")
    assert len(predicted_tokens_classes) == len(tokens) == inputs.input_ids.shape[1]
    assert set(predicted_tokens_classes) <= {"LABEL_0", "LABEL_1"}


def test_be20_tf_question_answering(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.tf import TFBertForQuestionAnswering

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = TFBertForQuestionAnswering.from_pretrained(bert_folder)
    question, text = "Who was Jim Henson?", "Jim Henson was a nice puppet"
    inputs = tokenizer(question, text, return_tensors="tf")
    outputs = model(**inputs)
    answer_start_index = int(tf.math.argmax(outputs.start_logits, axis=-1)[0])
    answer_end_index = int(tf.math.argmax(outputs.end_logits, axis=-1)[0])
    predict_answer_tokens = inputs.input_ids[0, answer_start_index : answer_end_index + 1]
    answer = tokenizer.decode(predict_answer_tokens)  # 'a nice puppet' with trained weights

    length = inputs.input_ids.shape[1]
    assert tuple(outputs.start_logits.shape) == tuple(outputs.end_logits.shape) == (1, length)
    assert isinstance(answer, str)
    assert tokenizer.decode(inputs.input_ids[0, 7:13]) == "jim henson was a nice puppet"


def test_be30_tf_input_forms(bert_folder) -> None:
    """The forms every TF class's introduction lists for the first positional argument."""
    from aviary import AutoTokenizer
    from aviary.tf import TFBertModel

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = TFBertModel.from_pretrained(bert_folder)
    encoding = tokenizer(
        ["Hello, my dog is cute", "Hello"], ["It sleeps", "Hi"], return_tensors="tf", padding=True
    )
    input_ids = encoding["input_ids"]
    attention_mask = encoding["attention_mask"]
    token_type_ids = encoding["token_type_ids"]

    expected = model(
        input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
    )
    full = model([input_ids, attention_mask, token_type_ids]).last_hidden_state
    np.testing.assert_allclose(full, expected.last_hidden_state, atol=1e-6)
    without_types = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    np.testing.assert_allclose(
        model([input_ids, attention_mask]).last_hidden_state, without_types, atol=1e-6
    )
    unmasked = model(input_ids=input_ids, token_type_ids=token_type_ids).last_hidden_state
    as_dict = model({"input_ids": input_ids, "token_type_ids": token_type_ids}).last_hidden_state
    np.testing.assert_allclose(as_dict, unmasked, atol=1e-6)
    np.testing.assert_allclose(
        model(input_ids).last_hidden_state, model(input_ids=input_ids).last_hidden_state, atol=1e-6
    )
    # the forms are not interchangeable: each argument reaches the model
    assert not np.allclose(full, as_dict, atol=1e-3)
    assert not np.allclose(full, without_types, atol=1e-3)
