"""The PyTorch BERT examples of the seed document (BE-0 .. BE-11), as written there but for the
import line and the checkpoint, the real all-MiniLM-L6-v2 (`bert_folder`). That checkpoint holds
the encoder only, so every head loads newly initialised: each test checks what the example shows
that does not depend on trained weights (shapes, fields, decoding, finite losses, `id2label`)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from seed_examples import is_finite_scalar  # noqa: E402

pytestmark = pytest.mark.torch

SENTENCE_IDS = 8  # "Hello, my dog is cute": [CLS] hello , my dog is cute [SEP]


def test_be0_sdpa_in_half_precision(bert_folder) -> None:
    from aviary.pt import BertModel

    model = BertModel.from_pretrained(
        bert_folder, torch_dtype=torch.float16, attn_implementation="sdpa"
    )

    assert model.attn_implementation == "sdpa"
    assert {p.dtype for p in model.parameters()} == {torch.float16}


def test_be1_config() -> None:
    from aviary import BertConfig
    from aviary.pt import BertModel

    # Initializing a BERT google-bert/bert-base-uncased style configuration
    configuration = BertConfig()
    # Initializing a model (with random weights) from the google-bert/bert-base-uncased style configuration
    model = BertModel(configuration)
    # Accessing the model configuration
    configuration = model.config

    assert configuration.hidden_size == 768 and configuration.num_hidden_layers == 12
    assert model.num_parameters() == 109_482_240  # bert-base-uncased's count


def test_be2_bert_model(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BertModel

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = BertModel.from_pretrained(bert_folder)
    inputs = tokenizer("Hello, my dog is cute", return_tensors="pt")
    outputs = model(**inputs)
    last_hidden_states = outputs.last_hidden_state

    assert last_hidden_states.shape == (1, SENTENCE_IDS, 384)


def test_be3_for_pre_training(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BertForPreTraining

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = BertForPreTraining.from_pretrained(bert_folder)
    inputs = tokenizer("Hello, my dog is cute", return_tensors="pt")
    outputs = model(**inputs)
    prediction_logits = outputs.prediction_logits
    seq_relationship_logits = outputs.seq_relationship_logits

    assert prediction_logits.shape == (1, SENTENCE_IDS, tokenizer.vocab_size)
    assert seq_relationship_logits.shape == (1, 2)


def test_be4_lm_head_model(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BertLMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = BertLMHeadModel.from_pretrained(bert_folder)
    inputs = tokenizer("Hello, my dog is cute", return_tensors="pt")
    outputs = model(**inputs, labels=inputs["input_ids"])
    loss = outputs.loss
    logits = outputs.logits

    assert is_finite_scalar(loss)
    assert logits.shape == (1, SENTENCE_IDS, tokenizer.vocab_size)


def test_be5_for_masked_lm(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BertForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = BertForMaskedLM.from_pretrained(bert_folder)
    inputs = tokenizer("The capital of France is [MASK].", return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    # retrieve index of [MASK]
    mask_token_index = (inputs.input_ids == tokenizer.mask_token_id)[0].nonzero(as_tuple=True)[0]
    predicted_token_id = logits[0, mask_token_index].argmax(axis=-1)
    predicted = tokenizer.decode(predicted_token_id)  # 'paris' with trained weights
    labels = tokenizer("The capital of France is Paris.", return_tensors="pt")["input_ids"]
    # mask labels of non-[MASK] tokens
    labels = torch.where(inputs.input_ids == tokenizer.mask_token_id, labels, -100)
    outputs = model(**inputs, labels=labels)
    round(outputs.loss.item(), 2)  # 0.88 with trained weights

    assert mask_token_index.tolist() == [6]
    assert predicted == tokenizer.convert_ids_to_tokens(int(predicted_token_id))
    assert tokenizer.decode(labels[labels != -100]) == "paris"
    assert is_finite_scalar(outputs.loss)


def test_be6_for_next_sentence_prediction(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BertForNextSentencePrediction

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = BertForNextSentencePrediction.from_pretrained(bert_folder)
    prompt = (
        "In Italy, pizza served in formal settings, such as at a restaurant, is presented unsliced."
    )
    next_sentence = "The sky is blue due to the shorter wavelength of blue light."
    encoding = tokenizer(prompt, next_sentence, return_tensors="pt")
    outputs = model(**encoding, labels=torch.LongTensor([1]))
    logits = outputs.logits
    # with trained weights: assert logits[0, 0] < logits[0, 1]  # next sentence was random

    assert logits.shape == (1, 2)
    assert is_finite_scalar(outputs.loss)
    assert set(encoding.token_type_ids[0].tolist()) == {0, 1}


def test_be7_sequence_classification_single_label(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = BertForSequenceClassification.from_pretrained(bert_folder)
    inputs = tokenizer("Hello, my dog is cute", return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    predicted_class_id = logits.argmax().item()
    label = model.config.id2label[predicted_class_id]  # 'LABEL_1' with trained weights
    # To train a model on `num_labels` classes, you can pass `num_labels=num_labels` to `.from_pretrained(...)`
    num_labels = len(model.config.id2label)
    model = BertForSequenceClassification.from_pretrained(bert_folder, num_labels=num_labels)
    labels = torch.tensor([1])
    loss = model(**inputs, labels=labels).loss
    round(loss.item(), 2)  # 0.01 with trained weights

    assert logits.shape == (1, 2)
    assert label == f"LABEL_{predicted_class_id}"
    # MiniLM holds the encoder only: the classifier is new, the rest loaded
    info = model.loading_info
    assert info["newly_initialized_keys"] == ["classifier.bias", "classifier.weight"]
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert num_labels == 2
    assert is_finite_scalar(loss)


def test_be8_sequence_classification_multi_label(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = BertForSequenceClassification.from_pretrained(
        bert_folder, problem_type="multi_label_classification"
    )
    inputs = tokenizer("Hello, my dog is cute", return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    predicted_class_ids = torch.arange(0, logits.shape[-1])[
        torch.sigmoid(logits).squeeze(dim=0) > 0.5
    ]
    # To train a model on `num_labels` classes, you can pass `num_labels=num_labels` to `.from_pretrained(...)`
    num_labels = len(model.config.id2label)
    model = BertForSequenceClassification.from_pretrained(
        bert_folder, num_labels=num_labels, problem_type="multi_label_classification"
    )
    labels = torch.sum(
        torch.nn.functional.one_hot(predicted_class_ids[None, :].clone(), num_classes=num_labels),
        dim=1,
    ).to(torch.float)
    loss = model(**inputs, labels=labels).loss

    assert model.config.problem_type == "multi_label_classification"
    assert labels.shape == (1, num_labels)
    assert is_finite_scalar(loss)


def test_be9_multiple_choice(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BertForMultipleChoice

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = BertForMultipleChoice.from_pretrained(bert_folder)
    prompt = (
        "In Italy, pizza served in formal settings, such as at a restaurant, is presented unsliced."
    )
    choice0 = "It is eaten with a fork and a knife."
    choice1 = "It is eaten while held in the hand."
    # choice0 is correct (according to Wikipedia ;)), batch size 1
    labels = torch.tensor(0).unsqueeze(0)
    encoding = tokenizer([prompt, prompt], [choice0, choice1], return_tensors="pt", padding=True)
    # batch size is 1
    outputs = model(**{k: v.unsqueeze(0) for k, v in encoding.items()}, labels=labels)
    # the linear classifier still needs to be trained
    loss = outputs.loss
    logits = outputs.logits

    assert is_finite_scalar(loss)
    assert logits.shape == (1, 2)


def test_be10_token_classification(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BertForTokenClassification

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = BertForTokenClassification.from_pretrained(bert_folder)
    inputs = tokenizer(
        "HuggingFace is a company based in Paris and New York",
        add_special_tokens=False,
        return_tensors="pt",
    )
    with torch.no_grad():
        logits = model(**inputs).logits
    predicted_token_class_ids = logits.argmax(-1)
    # Note that tokens are classified rather then input words which means that
    # there might be more predicted token classes than words.
    # Multiple token classes might account for the same word
    predicted_tokens_classes = [
        model.config.id2label[t.item()] for t in predicted_token_class_ids[0]
    ]
    labels = predicted_token_class_ids
    loss = model(**inputs, labels=labels).loss
    round(loss.item(), 2)  # 0.01 with the trained checkpoint

    tokens = tokenizer.tokenize("HuggingFace is a company based in Paris and New York")
    assert inputs.input_ids.shape == (1, len(tokens))
    assert len(predicted_tokens_classes) == len(tokens)
    assert set(predicted_tokens_classes) <= {"LABEL_0", "LABEL_1"}
    assert is_finite_scalar(loss)


def test_be11_question_answering(bert_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BertForQuestionAnswering

    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = BertForQuestionAnswering.from_pretrained(bert_folder)
    question, text = "Who was Jim Henson?", "Jim Henson was a nice puppet"
    inputs = tokenizer(question, text, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    answer_start_index = outputs.start_logits.argmax()
    answer_end_index = outputs.end_logits.argmax()
    predict_answer_tokens = inputs.input_ids[0, answer_start_index : answer_end_index + 1]
    answer = tokenizer.decode(predict_answer_tokens, skip_special_tokens=True)  # 'a nice puppet'
    # target is "nice puppet"
    target_start_index = torch.tensor([14])
    target_end_index = torch.tensor([15])
    outputs = model(**inputs, start_positions=target_start_index, end_positions=target_end_index)
    loss = outputs.loss
    round(loss.item(), 2)  # 7.41 with the trained checkpoint

    length = inputs.input_ids.shape[1]
    assert outputs.start_logits.shape == outputs.end_logits.shape == (1, length)
    assert isinstance(answer, str)
    context_ids = inputs.input_ids[0][inputs.token_type_ids[0] == 1]
    assert tokenizer.decode(context_ids, skip_special_tokens=True) == "jim henson was a nice puppet"
    # The seed's targets 14 and 15 index the cased checkpoint's 16 tokens ("Hen ##son"); MiniLM's
    # uncased vocabulary gives 14, so both targets are clamped to the ignored index and each
    # cross-entropy averages over nothing: NaN, as in the reference.
    assert length == 14
    assert loss.shape == () and torch.isnan(loss)
