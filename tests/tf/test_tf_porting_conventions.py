"""The reference's input and output conventions that ported TF code relies on (issue 11): the
tokenizer's output passed whole as the first positional argument, the list and dict forms,
outputs sliced as tuples, `return_tensors="tf"`, the LM heads on an encoder config, and the
decoder-only Pegasus loading a sequence-to-sequence checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from aviary import BertConfig, BigBirdConfig, BigBirdPegasusConfig  # noqa: E402
from aviary.conversion import read_checkpoint  # noqa: E402
from aviary.core.tokenizers import (  # noqa: E402
    BertTokenizer,
    BertTokenizerFast,
    BigBirdTokenizer,
    BigBirdTokenizerFast,
    PegasusTokenizer,
    PegasusTokenizerFast,
)
from aviary.core.tokenizers.base import BatchEncoding  # noqa: E402
from aviary.tf import (  # noqa: E402
    TFBertForMaskedLM,
    TFBertForMultipleChoice,
    TFBertForNextSentencePrediction,
    TFBertForPreTraining,
    TFBertForQuestionAnswering,
    TFBertForSequenceClassification,
    TFBertForTokenClassification,
    TFBertLMHeadModel,
    TFBertModel,
    TFBigBirdForCausalLM,
    TFBigBirdForMaskedLM,
    TFBigBirdForMultipleChoice,
    TFBigBirdForPreTraining,
    TFBigBirdForQuestionAnswering,
    TFBigBirdForSequenceClassification,
    TFBigBirdForTokenClassification,
    TFBigBirdModel,
    TFBigBirdPegasusForCausalLM,
    TFBigBirdPegasusForConditionalGeneration,
    TFBigBirdPegasusForQuestionAnswering,
    TFBigBirdPegasusForSequenceClassification,
    TFBigBirdPegasusModel,
)
from conftest import GOLDENS  # noqa: E402

pytestmark = [
    pytest.mark.tf,
    pytest.mark.filterwarnings("ignore::aviary.core.block_sparse.BlockSparseWarning"),
]

TOKENIZERS = GOLDENS / "tokenizers"
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
BERT = BertConfig(vocab_size=99, **SMALL)
BIG_BIRD = BigBirdConfig(vocab_size=99, block_size=8, num_random_blocks=2, **SMALL)
PEGASUS = BigBirdPegasusConfig(
    vocab_size=99,
    d_model=32,
    encoder_layers=2,
    decoder_layers=2,
    encoder_attention_heads=4,
    decoder_attention_heads=4,
    encoder_ffn_dim=37,
    decoder_ffn_dim=37,
    block_size=8,
    num_random_blocks=2,
)
CLASSES = [
    (TFBertModel, BERT),
    (TFBertForPreTraining, BERT),
    (TFBertLMHeadModel, BERT.copy(is_decoder=True)),
    (TFBertForMaskedLM, BERT),
    (TFBertForNextSentencePrediction, BERT),
    (TFBertForSequenceClassification, BERT),
    (TFBertForMultipleChoice, BERT),
    (TFBertForTokenClassification, BERT),
    (TFBertForQuestionAnswering, BERT),
    (TFBigBirdModel, BIG_BIRD),
    (TFBigBirdForPreTraining, BIG_BIRD),
    (TFBigBirdForCausalLM, BIG_BIRD.copy(is_decoder=True, attention_type="original_full")),
    (TFBigBirdForMaskedLM, BIG_BIRD),
    (TFBigBirdForSequenceClassification, BIG_BIRD),
    (TFBigBirdForMultipleChoice, BIG_BIRD),
    (TFBigBirdForTokenClassification, BIG_BIRD),
    (TFBigBirdForQuestionAnswering, BIG_BIRD),
    (TFBigBirdPegasusModel, PEGASUS),
    (TFBigBirdPegasusForConditionalGeneration, PEGASUS),
    (TFBigBirdPegasusForSequenceClassification, PEGASUS),
    (TFBigBirdPegasusForQuestionAnswering, PEGASUS),
    (TFBigBirdPegasusForCausalLM, PEGASUS),
]


def first_array(output) -> np.ndarray:
    return np.asarray(output[0])


@pytest.mark.parametrize("cls,config", CLASSES, ids=[c.__name__ for c, _ in CLASSES])
def test_every_class_takes_the_tokenizer_output_and_the_list_and_dict_forms(cls, config) -> None:
    """`model(inputs)` with the tokenizer's `BatchEncoding`, `model([ids, mask])` and
    `model({...})` as the first positional argument all give the keyword call's output."""
    rng = np.random.default_rng(0)
    shape = (1, 2, 9) if "MultipleChoice" in cls.__name__ else (2, 9)
    ids = rng.integers(3, 99, shape)
    ids[..., -1] = 1  # an eos token ends every row (Pegasus classification reads it)
    mask = np.ones(shape, np.int64)
    mask[-1, -3:-1] = 0  # padding inside the second row (the last row of the choices)
    ids, mask = tf.constant(ids), tf.constant(mask)
    tf.keras.utils.set_random_seed(0)
    model = cls(config)
    expected = first_array(model(input_ids=ids, attention_mask=mask))
    encoding = BatchEncoding(input_ids=ids, attention_mask=mask)
    for given in (encoding, [ids, mask], {"input_ids": ids, "attention_mask": mask}):
        np.testing.assert_array_equal(first_array(model(given)), expected)


def test_bert_tokenizer_output_passed_whole_with_token_type_ids() -> None:
    """BE-12 / BE-30: the tokenizer's output (with `token_type_ids`) positionally, and the dict
    form with only some inputs."""
    tokenizer = BertTokenizerFast.from_pretrained(TOKENIZERS / "bert")
    inputs = tokenizer("Hello, my dog is cute", "and so is mine", return_tensors="tf")
    assert isinstance(inputs, BatchEncoding) and isinstance(inputs.input_ids, tf.Tensor)
    tf.keras.utils.set_random_seed(0)
    model = TFBertModel(BertConfig(vocab_size=tokenizer.vocab_size, **SMALL))
    out = model(inputs)
    np.testing.assert_array_equal(out.last_hidden_state, model(**inputs).last_hidden_state)
    partial = model({"input_ids": inputs["input_ids"], "token_type_ids": inputs["token_type_ids"]})
    keywords = model(inputs["input_ids"], token_type_ids=inputs["token_type_ids"])
    np.testing.assert_array_equal(partial.last_hidden_state, keywords.last_hidden_state)
    with pytest.raises(ValueError, match="unknown inputs: colour"):
        model(BatchEncoding(input_ids=inputs["input_ids"], colour=inputs["input_ids"]))


def test_outputs_slice_as_tuples() -> None:
    """BE-13: `prediction_logits, seq_relationship_logits = outputs[:2]`; `outputs[0]` is the
    first field that is set (the loss when labels are given)."""
    ids = tf.constant([[5, 6, 7, 8]])
    tf.keras.utils.set_random_seed(0)
    model = TFBertForPreTraining(BERT)
    outputs = model(ids)
    prediction_logits, seq_relationship_logits = outputs[:2]
    assert prediction_logits.shape == (1, 4, 99) and seq_relationship_logits.shape == (1, 2)
    assert outputs[0] is outputs.prediction_logits and outputs[-1] is seq_relationship_logits
    with_loss = model(ids, labels=ids, next_sentence_label=tf.constant([1]))
    assert with_loss[0] is with_loss.loss and len(with_loss[:3]) == 3


@pytest.mark.parametrize(
    "cls,folder",
    [
        (BertTokenizer, "bert"),
        (BertTokenizerFast, "bert"),
        (BigBirdTokenizer, "big_bird"),
        (BigBirdTokenizerFast, "big_bird"),
        (PegasusTokenizer, "pegasus"),
        (PegasusTokenizerFast, "pegasus"),
    ],
)
def test_every_tokenizer_returns_tf_tensors_with_attribute_access(cls, folder) -> None:
    tokenizer = cls.from_pretrained(TOKENIZERS / folder)
    inputs = tokenizer(["Hello, my dog is cute", "Hi"], padding=True, return_tensors="tf")
    assert isinstance(inputs.input_ids, tf.Tensor) and inputs.input_ids is inputs["input_ids"]
    assert inputs.attention_mask.shape == inputs.input_ids.shape
    assert int(tf.reduce_sum(inputs.attention_mask[1])) < inputs.input_ids.shape[1]
    with pytest.raises(AttributeError, match="labels"):
        inputs.labels  # noqa: B018


@pytest.mark.parametrize(
    "cls,config",
    [(TFBertLMHeadModel, BERT), (TFBigBirdForCausalLM, BIG_BIRD)],
    ids=["bert", "big_bird"],
)
def test_lm_head_on_an_encoder_config_warns_and_runs_bidirectionally(cls, config, tmp_path):
    """BE-14: as the reference, an LM head on a config without `is_decoder` warns and runs the
    model as configured, an encoder: its logits are the masked-LM head's with the same weights
    (a later token changes earlier logits), and the loss is still next-token."""
    name = cls.__name__
    tf.keras.utils.set_random_seed(0)
    with pytest.warns(UserWarning, match=f"use `{name}` as a standalone, add `is_decoder=True`"):
        model = cls(config)
    ids = tf.constant([[5, 6, 7, 8, 9, 10]])
    out = model(ids, labels=ids)
    model.save_pretrained(tmp_path)
    masked = (TFBertForMaskedLM if "Bert" in name else TFBigBirdForMaskedLM).from_pretrained(
        tmp_path
    )
    np.testing.assert_allclose(out.logits, masked(ids).logits, atol=1e-5, rtol=0)
    changed = model(tf.constant([[5, 6, 7, 8, 9, 11]])).logits
    assert not np.allclose(out.logits[:, 0], changed[:, 0])
    shifted = tf.keras.losses.sparse_categorical_crossentropy(
        ids[:, 1:], out.logits[:, :-1], from_logits=True
    )
    np.testing.assert_allclose(float(out.loss), float(tf.reduce_mean(shifted)), rtol=1e-5)


def test_causal_lm_loads_a_seq2seq_checkpoint() -> None:
    """BP-6: the decoder-only model takes its tied token embeddings from the sequence-to-sequence
    checkpoint's `model.shared.weight`; the encoder is discarded."""
    folder = GOLDENS / "pegasus-conditional-generation"
    model, info = TFBigBirdPegasusForCausalLM.from_pretrained(
        folder, add_cross_attention=False, output_loading_info=True
    )
    assert model.config.is_decoder, f"{model.__class__} has to be configured as a decoder."
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "newly_initialized_keys"))
    assert "model.shared.weight" not in info["discarded_keys"]
    assert "model.encoder.embed_positions.weight" in info["discarded_keys"]
    shared = read_checkpoint(folder)["model.shared.weight"]
    embed = model.canonical_variables()["model.decoder.embed_tokens.weight"][0]
    np.testing.assert_array_equal(embed.numpy(), shared)
    logits = model(tf.constant([[5, 6, 7, 1]])).logits
    assert logits.shape == (1, 4, 99) and np.isfinite(logits.numpy()).all()
