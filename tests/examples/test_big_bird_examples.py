"""The BigBird examples of the seed documents (BB-1 .. BB-12 in PyTorch, BB-13 .. BB-20 in Flax),
as written there but for the import line and the checkpoint: `big_bird_folder`, a tiny random
`BigBirdForPreTraining` checkpoint with the real BigBird tokenizer. The examples that read a
dataset row read `seed_examples.SQUAD_V2_TRAIN`, a local stand-in for that row (a context of 919
tokens, so block-sparse). Each test checks what its example shows that does not depend on trained weights."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")

from seed_examples import SQUAD_V2_TRAIN, is_finite_scalar  # noqa: E402

from aviary.core.block_sparse import uses_block_sparse  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::aviary.core.block_sparse.BlockSparseWarning")

# "Hello, my dog is cute" in the fixture's 800-piece vocabulary, with [CLS] and [SEP]
HELLO_IDS = 17
HIDDEN = 32


def runs_block_sparse(model, length: int) -> bool:
    """Whether `model` attends block-sparsely over an input of `length` tokens."""
    config = model.config
    return config.attention_type == "block_sparse" and uses_block_sparse(
        length, config.block_size, config.num_random_blocks
    )


# -- PyTorch ---------------------------------------------------------------------------------------


def test_bb1_config() -> None:
    from aviary import BigBirdConfig
    from aviary.pt import BigBirdModel

    # Initializing a BigBird google/bigbird-roberta-base style configuration
    configuration = BigBirdConfig()

    # Initializing a model (with random weights) from the google/bigbird-roberta-base style configuration
    model = BigBirdModel(configuration)

    # Accessing the model configuration
    configuration = model.config

    assert configuration.attention_type == "block_sparse" and configuration.block_size == 64
    assert model.num_parameters() == 127_468_800  # google/bigbird-roberta-base's count


def test_bb2_big_bird_model(big_bird_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BigBirdModel

    tokenizer = AutoTokenizer.from_pretrained(big_bird_folder)
    model = BigBirdModel.from_pretrained(big_bird_folder)

    inputs = tokenizer("Hello, my dog is cute", return_tensors="pt")
    outputs = model(**inputs)

    last_hidden_states = outputs.last_hidden_state

    assert last_hidden_states.shape == (1, HELLO_IDS, HIDDEN)


def test_bb3_for_pre_training(big_bird_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BigBirdForPreTraining

    tokenizer = AutoTokenizer.from_pretrained(big_bird_folder)
    model = BigBirdForPreTraining.from_pretrained(big_bird_folder)

    inputs = tokenizer("Hello, my dog is cute", return_tensors="pt")
    outputs = model(**inputs)

    prediction_logits = outputs.prediction_logits
    seq_relationship_logits = outputs.seq_relationship_logits

    assert prediction_logits.shape == (1, HELLO_IDS, len(tokenizer))
    assert seq_relationship_logits.shape == (1, 2)
    assert not any(model.loading_info.values())  # the checkpoint's own class: every tensor loads


def test_bb4_for_causal_lm(big_bird_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BigBirdForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(big_bird_folder)
    model = BigBirdForCausalLM.from_pretrained(big_bird_folder)

    inputs = tokenizer("Hello, my dog is cute", return_tensors="pt")
    outputs = model(**inputs, labels=inputs["input_ids"])
    loss = outputs.loss
    logits = outputs.logits

    assert is_finite_scalar(loss)
    assert logits.shape == (1, HELLO_IDS, len(tokenizer))


def test_bb5_bb6_for_masked_lm_on_a_long_article(big_bird_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BigBirdForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(big_bird_folder)
    model = BigBirdForMaskedLM.from_pretrained(big_bird_folder)
    squad_ds = SQUAD_V2_TRAIN  # load_dataset("rajpurkar/squad_v2", split="train") in the seed
    # select random long article
    LONG_ARTICLE_TARGET = squad_ds[81514]["context"]
    # select random sentence
    assert (
        LONG_ARTICLE_TARGET[332:398]
        == "the highest values are very close to the theoretical maximum value"
    )

    # add mask_token
    LONG_ARTICLE_TO_MASK = LONG_ARTICLE_TARGET.replace("maximum", "[MASK]")
    inputs = tokenizer(LONG_ARTICLE_TO_MASK, return_tensors="pt")
    # long article input
    assert list(inputs["input_ids"].shape) == [1, 919]

    with torch.no_grad():
        logits = model(**inputs).logits
    # retrieve index of [MASK]
    mask_token_index = (inputs.input_ids == tokenizer.mask_token_id)[0].nonzero(as_tuple=True)[0]
    predicted_token_id = logits[0, mask_token_index].argmax(axis=-1)
    predicted = tokenizer.decode(predicted_token_id)  # 'maximum' with trained weights

    assert runs_block_sparse(model, 919)
    assert logits.shape == (1, 919, len(tokenizer))
    assert len(mask_token_index) == 1
    assert (
        predicted
        == tokenizer.convert_ids_to_tokens(int(predicted_token_id)).replace("▁", " ").strip()
    )

    # BB-6: the loss on the masked token
    labels = tokenizer(LONG_ARTICLE_TARGET, return_tensors="pt")["input_ids"]
    labels = torch.where(inputs.input_ids == tokenizer.mask_token_id, labels, -100)
    outputs = model(**inputs, labels=labels)
    round(outputs.loss.item(), 2)  # 1.99 with trained weights

    assert tokenizer.decode(labels[labels != -100]) == "maximum"
    assert is_finite_scalar(outputs.loss)


def test_bb7_bb8_sequence_classification_on_a_long_article(big_bird_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BigBirdForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(big_bird_folder)
    model = BigBirdForSequenceClassification.from_pretrained(big_bird_folder)
    squad_ds = SQUAD_V2_TRAIN  # load_dataset("rajpurkar/squad_v2", split="train") in the seed
    LONG_ARTICLE = squad_ds[81514]["context"]
    inputs = tokenizer(LONG_ARTICLE, return_tensors="pt")
    # long input article
    assert list(inputs["input_ids"].shape) == [1, 919]

    with torch.no_grad():
        logits = model(**inputs).logits
    predicted_class_id = logits.argmax().item()
    label = model.config.id2label[predicted_class_id]  # 'LABEL_0' with the trained checkpoint

    assert runs_block_sparse(model, 919)
    assert label == f"LABEL_{predicted_class_id}"

    # BB-8
    num_labels = len(model.config.id2label)
    model = BigBirdForSequenceClassification.from_pretrained(big_bird_folder, num_labels=num_labels)
    labels = torch.tensor(1)
    loss = model(**inputs, labels=labels).loss
    round(loss.item(), 2)  # 1.13 with the trained checkpoint

    assert logits.shape == (1, num_labels)
    assert is_finite_scalar(loss)


def test_bb9_multiple_choice(big_bird_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BigBirdForMultipleChoice

    tokenizer = AutoTokenizer.from_pretrained(big_bird_folder)
    model = BigBirdForMultipleChoice.from_pretrained(big_bird_folder)

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


def test_bb10_token_classification(big_bird_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BigBirdForTokenClassification

    tokenizer = AutoTokenizer.from_pretrained(big_bird_folder)
    model = BigBirdForTokenClassification.from_pretrained(big_bird_folder)

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
    round(loss.item(), 2)

    tokens = tokenizer.tokenize("HuggingFace is a company based in Paris and New York")
    assert inputs.input_ids.shape == (1, len(tokens))
    assert len(predicted_tokens_classes) == len(tokens)
    assert set(predicted_tokens_classes) <= {"LABEL_0", "LABEL_1"}
    assert is_finite_scalar(loss)


def test_bb11_bb12_question_answering_on_a_long_article(big_bird_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BigBirdForQuestionAnswering

    tokenizer = AutoTokenizer.from_pretrained(big_bird_folder)
    model = BigBirdForQuestionAnswering.from_pretrained(big_bird_folder)
    squad_ds = SQUAD_V2_TRAIN  # load_dataset("rajpurkar/squad_v2", split="train") in the seed
    # select random article and question
    LONG_ARTICLE = squad_ds[81514]["context"]
    QUESTION = squad_ds[81514]["question"]
    assert QUESTION == "During daytime how high can the temperatures reach?"

    inputs = tokenizer(QUESTION, LONG_ARTICLE, return_tensors="pt")
    # long article and question input: [CLS] question [SEP] article [SEP]; the seed's 929 counts a
    # 9-piece question, which the fixture's 800-piece vocabulary splits further
    question_pieces = len(tokenizer.tokenize(QUESTION))
    assert list(inputs["input_ids"].shape) == [1, 919 + question_pieces + 1]

    with torch.no_grad():
        outputs = model(**inputs)

    answer_start_index = outputs.start_logits.argmax()
    answer_end_index = outputs.end_logits.argmax()
    predict_answer_token_ids = inputs.input_ids[0, answer_start_index : answer_end_index + 1]
    predict_answer_token = tokenizer.decode(predict_answer_token_ids)

    length = inputs.input_ids.shape[1]
    assert runs_block_sparse(model, length)
    assert outputs.start_logits.shape == outputs.end_logits.shape == (1, length)
    assert isinstance(predict_answer_token, str)
    question_ids = tokenizer(QUESTION, add_special_tokens=False)["input_ids"]
    assert inputs.input_ids[0, 1 : question_pieces + 1].tolist() == question_ids
    assert (
        inputs.input_ids[0, question_pieces + 1]
        == inputs.input_ids[0, -1]
        == tokenizer.sep_token_id
    )

    # BB-12
    target_start_index, target_end_index = torch.tensor([130]), torch.tensor([132])
    outputs = model(**inputs, start_positions=target_start_index, end_positions=target_end_index)
    loss = outputs.loss

    assert is_finite_scalar(loss)


# -- Flax ------------------------------------------------------------------------------------------


def test_bb13_flax_big_bird_model(big_bird_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBigBirdModel

    tokenizer = AutoTokenizer.from_pretrained(big_bird_folder)
    model = FlaxBigBirdModel.from_pretrained(big_bird_folder)

    inputs = tokenizer("Hello, my dog is cute", return_tensors="jax")
    outputs = model(**inputs)

    last_hidden_states = outputs.last_hidden_state

    assert last_hidden_states.shape == (1, HELLO_IDS, HIDDEN)


def test_bb14_flax_for_pre_training(big_bird_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBigBirdForPreTraining

    tokenizer = AutoTokenizer.from_pretrained(big_bird_folder)
    model = FlaxBigBirdForPreTraining.from_pretrained(big_bird_folder)

    inputs = tokenizer("Hello, my dog is cute", return_tensors="np")
    outputs = model(**inputs)

    prediction_logits = outputs.prediction_logits
    seq_relationship_logits = outputs.seq_relationship_logits

    assert prediction_logits.shape == (1, HELLO_IDS, len(tokenizer))
    assert seq_relationship_logits.shape == (1, 2)


def test_bb15_flax_for_causal_lm(big_bird_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBigBirdForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(big_bird_folder)
    model = FlaxBigBirdForCausalLM.from_pretrained(big_bird_folder)

    inputs = tokenizer("Hello, my dog is cute", return_tensors="np")
    outputs = model(**inputs)

    # retrieve logts for next token
    next_token_logits = outputs.logits[:, -1]

    assert next_token_logits.shape == (1, len(tokenizer))
    assert np.all(np.isfinite(next_token_logits))


def test_bb16_flax_for_masked_lm(big_bird_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBigBirdForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(big_bird_folder)
    model = FlaxBigBirdForMaskedLM.from_pretrained(big_bird_folder)

    inputs = tokenizer("The capital of France is [MASK].", return_tensors="jax")

    outputs = model(**inputs)
    logits = outputs.logits

    length = inputs["input_ids"].shape[1]
    assert logits.shape == (1, length, len(tokenizer))
    assert int((inputs["input_ids"] == tokenizer.mask_token_id).sum()) == 1


def test_bb17_flax_sequence_classification(big_bird_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBigBirdForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(big_bird_folder)
    model = FlaxBigBirdForSequenceClassification.from_pretrained(big_bird_folder)

    inputs = tokenizer("Hello, my dog is cute", return_tensors="jax")

    outputs = model(**inputs)
    logits = outputs.logits

    assert logits.shape == (1, len(model.config.id2label))


def test_bb18_flax_multiple_choice(big_bird_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBigBirdForMultipleChoice

    tokenizer = AutoTokenizer.from_pretrained(big_bird_folder)
    model = FlaxBigBirdForMultipleChoice.from_pretrained(big_bird_folder)

    prompt = (
        "In Italy, pizza served in formal settings, such as at a restaurant, is presented unsliced."
    )
    choice0 = "It is eaten with a fork and a knife."
    choice1 = "It is eaten while held in the hand."

    encoding = tokenizer([prompt, prompt], [choice0, choice1], return_tensors="jax", padding=True)
    outputs = model(**{k: v[None, :] for k, v in encoding.items()})

    logits = outputs.logits

    assert logits.shape == (1, 2)


def test_bb19_flax_token_classification(big_bird_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBigBirdForTokenClassification

    tokenizer = AutoTokenizer.from_pretrained(big_bird_folder)
    model = FlaxBigBirdForTokenClassification.from_pretrained(big_bird_folder)

    inputs = tokenizer("Hello, my dog is cute", return_tensors="jax")

    outputs = model(**inputs)
    logits = outputs.logits

    assert logits.shape == (1, HELLO_IDS, len(model.config.id2label))


def test_bb20_flax_question_answering(big_bird_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.flax import FlaxBigBirdForQuestionAnswering

    tokenizer = AutoTokenizer.from_pretrained(big_bird_folder)
    model = FlaxBigBirdForQuestionAnswering.from_pretrained(big_bird_folder)

    question, text = "Who was Jim Henson?", "Jim Henson was a nice puppet"
    inputs = tokenizer(question, text, return_tensors="jax")

    outputs = model(**inputs)
    start_scores = outputs.start_logits
    end_scores = outputs.end_logits

    length = inputs["input_ids"].shape[1]
    assert start_scores.shape == end_scores.shape == (1, length)
