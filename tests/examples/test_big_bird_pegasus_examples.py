"""The BigBirdPegasus examples of the seed document (BP-1 .. BP-6, PyTorch), as written there but
for the import line and the checkpoint: `pegasus_folder`, a tiny random
`BigBirdPegasusForConditionalGeneration` checkpoint with the real Pegasus tokenizer. Each test
checks what its example shows that does not depend on trained weights."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from seed_examples import is_finite_scalar  # noqa: E402

from aviary.core.block_sparse import uses_block_sparse  # noqa: E402

pytestmark = [
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore::aviary.core.block_sparse.BlockSparseWarning"),
]

HELLO_IDS = 16  # "Hello, my dog is cute" in the fixture's vocabulary, with </s>


def test_bp1_config() -> None:
    from aviary import BigBirdPegasusConfig
    from aviary.pt import BigBirdPegasusModel

    # Initializing a BigBirdPegasus bigbird-pegasus-base style configuration
    configuration = BigBirdPegasusConfig()

    # Initializing a model (with random weights) from the bigbird-pegasus-base style configuration
    model = BigBirdPegasusModel(configuration)

    # Accessing the model configuration
    configuration = model.config

    assert configuration.d_model == 1024 and configuration.encoder_layers == 16
    assert configuration.attention_type == "block_sparse"
    assert isinstance(model, BigBirdPegasusModel)


def test_bp2_summarization(pegasus_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BigBirdPegasusForConditionalGeneration

    model = BigBirdPegasusForConditionalGeneration.from_pretrained(pegasus_folder)
    tokenizer = AutoTokenizer.from_pretrained(pegasus_folder)

    ARTICLE_TO_SUMMARIZE = (
        "The dominant sequence transduction models are based on complex recurrent or convolutional neural "
        "networks in an encoder-decoder configuration. The best performing models also connect the encoder "
        "and decoder through an attention mechanism. We propose a new simple network architecture, the Transformer, "
        "based solely on attention mechanisms, dispensing with recurrence and convolutions entirely. "
        "Experiments on two machine translation tasks show these models to be superior in quality "
        "while being more parallelizable and requiring significantly less time to train."
    )
    inputs = tokenizer(
        [ARTICLE_TO_SUMMARIZE], max_length=4096, return_tensors="pt", truncation=True
    )

    # Generate Summary
    summary_ids = model.generate(inputs["input_ids"], num_beams=4, max_length=15)
    summary = tokenizer.batch_decode(
        summary_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
    )[0]
    # 'dominant sequence models are based on recurrent or convolutional neural networks .' with trained weights

    config = model.config
    length = inputs["input_ids"].shape[1]
    assert uses_block_sparse(length, config.block_size, config.num_random_blocks)
    assert summary_ids.shape[0] == 1 and 1 < summary_ids.shape[1] <= 15
    assert summary_ids[0, 0] == config.decoder_start_token_id
    assert isinstance(summary, str)
    kept = [i for i in summary_ids[0].tolist() if i not in tokenizer.all_special_ids]
    assert summary == tokenizer.decode(kept, clean_up_tokenization_spaces=False)


def test_bp3_sequence_classification_single_label(pegasus_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BigBirdPegasusForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(pegasus_folder)
    model = BigBirdPegasusForSequenceClassification.from_pretrained(pegasus_folder)

    inputs = tokenizer("Hello, my dog is cute", return_tensors="pt")

    with torch.no_grad():
        logits = model(**inputs).logits

    predicted_class_id = logits.argmax().item()
    label = model.config.id2label[predicted_class_id]

    # To train a model on `num_labels` classes, you can pass `num_labels=num_labels` to `.from_pretrained(...)`
    num_labels = len(model.config.id2label)
    model = BigBirdPegasusForSequenceClassification.from_pretrained(
        pegasus_folder, num_labels=num_labels
    )

    labels = torch.tensor([1])
    loss = model(**inputs, labels=labels).loss
    round(loss.item(), 2)

    assert inputs["input_ids"].shape == (1, HELLO_IDS)
    assert logits.shape == (1, num_labels)
    assert label == f"LABEL_{predicted_class_id}"
    assert is_finite_scalar(loss)


def test_bp4_sequence_classification_multi_label(pegasus_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BigBirdPegasusForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(pegasus_folder)
    model = BigBirdPegasusForSequenceClassification.from_pretrained(
        pegasus_folder, problem_type="multi_label_classification"
    )

    inputs = tokenizer("Hello, my dog is cute", return_tensors="pt")

    with torch.no_grad():
        logits = model(**inputs).logits

    predicted_class_ids = torch.arange(0, logits.shape[-1])[
        torch.sigmoid(logits).squeeze(dim=0) > 0.5
    ]

    # To train a model on `num_labels` classes, you can pass `num_labels=num_labels` to `.from_pretrained(...)`
    num_labels = len(model.config.id2label)
    model = BigBirdPegasusForSequenceClassification.from_pretrained(
        pegasus_folder, num_labels=num_labels, problem_type="multi_label_classification"
    )

    labels = torch.sum(
        torch.nn.functional.one_hot(predicted_class_ids[None, :].clone(), num_classes=num_labels),
        dim=1,
    ).to(torch.float)
    loss = model(**inputs, labels=labels).loss

    assert model.config.problem_type == "multi_label_classification"
    assert labels.shape == (1, num_labels)
    assert is_finite_scalar(loss)


def test_bp5_question_answering(pegasus_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BigBirdPegasusForQuestionAnswering

    tokenizer = AutoTokenizer.from_pretrained(pegasus_folder)
    model = BigBirdPegasusForQuestionAnswering.from_pretrained(pegasus_folder)

    question, text = "Who was Jim Henson?", "Jim Henson was a nice puppet"

    inputs = tokenizer(question, text, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)

    answer_start_index = outputs.start_logits.argmax()
    answer_end_index = outputs.end_logits.argmax()

    predict_answer_tokens = inputs.input_ids[0, answer_start_index : answer_end_index + 1]
    answer = tokenizer.decode(predict_answer_tokens, skip_special_tokens=True)

    # target is "nice puppet"
    target_start_index = torch.tensor([14])
    target_end_index = torch.tensor([15])

    outputs = model(**inputs, start_positions=target_start_index, end_positions=target_end_index)
    loss = outputs.loss
    round(loss.item(), 2)

    length = inputs.input_ids.shape[1]
    assert outputs.start_logits.shape == outputs.end_logits.shape == (1, length)
    assert isinstance(answer, str)
    assert inputs.input_ids[0, -1] == tokenizer.eos_token_id
    assert is_finite_scalar(loss)


def test_bp6_causal_lm_from_a_seq2seq_checkpoint(pegasus_folder) -> None:
    from aviary import AutoTokenizer
    from aviary.pt import BigBirdPegasusForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(pegasus_folder)
    model = BigBirdPegasusForCausalLM.from_pretrained(pegasus_folder, add_cross_attention=False)
    assert model.config.is_decoder, f"{model.__class__} has to be configured as a decoder."
    inputs = tokenizer("Hello, my dog is cute", return_tensors="pt")
    outputs = model(**inputs)

    logits = outputs.logits

    assert logits.shape == (1, HELLO_IDS, len(tokenizer))
    # the decoder and the tied LM head load from the seq2seq checkpoint; its encoder is left out
    info = model.loading_info
    assert not info["missing_keys"] and not info["newly_initialized_keys"]
