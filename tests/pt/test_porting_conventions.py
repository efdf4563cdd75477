"""The reference's input and output conventions that ported PyTorch code relies on (issue 11):
the tokenizer's output passed whole, outputs sliced as tuples, `return_tensors="pt"`,
`config.id2label`, the LM heads on an encoder config, and the decoder-only Pegasus loading a
sequence-to-sequence checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from aviary import BertConfig, BigBirdConfig  # noqa: E402
from aviary.conversion import read_checkpoint  # noqa: E402
from aviary.conversion.checkpoint import match_checkpoint  # noqa: E402
from aviary.core.tokenizers import (  # noqa: E402
    BertTokenizer,
    BertTokenizerFast,
    BigBirdTokenizer,
    BigBirdTokenizerFast,
    PegasusTokenizer,
    PegasusTokenizerFast,
)
from aviary.core.tokenizers.base import BatchEncoding  # noqa: E402
from aviary.pt import (  # noqa: E402
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertLMHeadModel,
    BigBirdForCausalLM,
    BigBirdForMaskedLM,
    BigBirdPegasusForCausalLM,
)
from conftest import GOLDENS  # noqa: E402

pytestmark = [
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore::aviary.core.block_sparse.BlockSparseWarning"),
]

TOKENIZERS = GOLDENS / "tokenizers"
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


@pytest.fixture(scope="module")
def bert_tokenizer():
    return BertTokenizerFast.from_pretrained(TOKENIZERS / "bert")


@pytest.mark.parametrize(
    "cls,config",
    [
        (BertLMHeadModel, BertConfig(vocab_size=99, **SMALL)),
        (BigBirdForCausalLM, BigBirdConfig(vocab_size=99, block_size=8, **SMALL)),
    ],
    ids=["bert", "big_bird"],
)
def test_lm_head_on_an_encoder_config_warns_and_runs_bidirectionally(cls, config) -> None:
    """BE-4, BB-4: as the reference, an LM head on a config without `is_decoder` warns and runs
    the model as configured, an encoder: its logits are the masked-LM head's with the same
    weights (a later token changes earlier logits), and the loss is still next-token."""
    torch.manual_seed(0)
    with pytest.warns(
        UserWarning, match=f"use `{cls.__name__}` as a standalone, add `is_decoder=True`"
    ):
        model = cls(config).eval()
    masked = (BertForMaskedLM if cls is BertLMHeadModel else BigBirdForMaskedLM)(config).eval()
    masked.load_state_dict(model.state_dict())
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        out = model(input_ids=ids, labels=ids)
        changed = model(torch.tensor([[5, 6, 7, 8, 9, 11]])).logits
        torch.testing.assert_close(out.logits, masked(ids).logits)
    assert out.past_key_values is None  # no cache: not a decoder
    assert not torch.allclose(out.logits[:, 0], changed[:, 0])
    shifted = torch.nn.functional.cross_entropy(out.logits[0, :-1], ids[0, 1:])
    torch.testing.assert_close(out.loss, shifted)


def test_tokenizer_output_passed_whole_and_outputs_sliced_as_tuples(bert_tokenizer) -> None:
    """BE-3 / BE-4: `model(**inputs, labels=inputs["input_ids"])`; `outputs[:2]` and
    `outputs[0]` are the reference's tuple view (the loss first when labels are given)."""
    inputs = bert_tokenizer("Hello, my dog is cute", return_tensors="pt")
    assert isinstance(inputs, BatchEncoding) and inputs.input_ids is inputs["input_ids"]
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(vocab_size=bert_tokenizer.vocab_size, **SMALL)).eval()
    with torch.no_grad():
        outputs = model(**inputs)
        with_loss = model(**inputs, labels=inputs["input_ids"])
    prediction_logits, seq_relationship_logits = outputs[:2]
    assert prediction_logits is outputs.prediction_logits
    assert seq_relationship_logits.shape == (1, 2) and outputs[-1] is seq_relationship_logits
    assert with_loss[0] is with_loss.loss and torch.isfinite(with_loss.loss)
    assert with_loss[1:3] == (with_loss.prediction_logits, with_loss.seq_relationship_logits)
    assert model(**inputs, return_dict=False)[0].shape == prediction_logits.shape


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
def test_every_tokenizer_returns_torch_tensors_with_attribute_access(cls, folder) -> None:
    tokenizer = cls.from_pretrained(TOKENIZERS / folder)
    inputs = tokenizer(["Hello, my dog is cute", "Hi"], padding=True, return_tensors="pt")
    assert isinstance(inputs.input_ids, torch.Tensor) and inputs.input_ids.dtype == torch.long
    assert inputs.attention_mask.shape == inputs.input_ids.shape
    assert int(inputs.attention_mask[1].sum()) < inputs.input_ids.shape[1]
    # BE-5's mask lookup reads the attribute form.
    assert (inputs.input_ids == inputs["input_ids"]).all()
    with pytest.raises(AttributeError, match="labels"):
        inputs.labels  # noqa: B018


def test_id2label_defaults_and_follows_num_labels(tmp_path) -> None:
    """BE-7 / BB-7 / BB-8: `model.config.id2label[predicted]`, and `num_labels=len(id2label)`
    on reload."""
    config = BertConfig(vocab_size=99, **SMALL)
    assert config.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():
        predicted = model(torch.tensor([[5, 6, 7]])).logits.argmax().item()
    assert model.config.id2label[predicted] == f"LABEL_{predicted}"
    model.save_pretrained(tmp_path)
    num_labels = len(model.config.id2label)
    reloaded = BertForSequenceClassification.from_pretrained(tmp_path, num_labels=num_labels)
    assert reloaded.config.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    three = BertForSequenceClassification.from_pretrained(
        tmp_path, num_labels=3, ignore_mismatched_sizes=True
    )
    assert three.config.id2label[2] == "LABEL_2" and three.config.label2id["LABEL_2"] == 2


def test_causal_lm_loads_a_seq2seq_checkpoint() -> None:
    """BP-6: `from_pretrained(seq2seq, add_cross_attention=False)`; the tied
    `model.decoder.embed_tokens.weight` (and so the LM head) comes from `model.shared.weight`."""
    folder = GOLDENS / "pegasus-conditional-generation"
    model, info = BigBirdPegasusForCausalLM.from_pretrained(
        folder, add_cross_attention=False, output_loading_info=True
    )
    assert model.config.is_decoder, f"{model.__class__} has to be configured as a decoder."
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "newly_initialized_keys"))
    assert "model.shared.weight" not in info["discarded_keys"]
    assert "model.encoder.embed_positions.weight" in info["discarded_keys"]
    shared = read_checkpoint(folder)["model.shared.weight"]
    np.testing.assert_array_equal(model.model.decoder.embed_tokens.weight.detach().numpy(), shared)
    np.testing.assert_array_equal(model.lm_head.weight.detach().numpy(), shared)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[5, 6, 7, 1]])).logits
    assert logits.shape == (1, 4, 99) and torch.isfinite(logits).all()


def test_shared_embedding_alias_fills_only_what_the_checkpoint_lacks() -> None:
    """The `shared` alias is used only for a missing `embed_tokens`, and only when the model has
    no `shared` of its own; a checkpoint with its own decoder embeddings keeps them."""
    model = {"model.decoder.embed_tokens.weight": (9, 4), "lm_head.weight": (9, 4)}
    seq2seq = {"model.shared.weight": (9, 4), "model.encoder.embed_tokens.weight": (9, 4)}
    report = match_checkpoint(model, seq2seq, base_model_prefix="model", tied={"lm_head.weight"})
    assert report.ok and report.mapping == {
        "model.decoder.embed_tokens.weight": "model.shared.weight"
    }
    both = {**seq2seq, "model.decoder.embed_tokens.weight": (9, 4)}
    report = match_checkpoint(model, both, base_model_prefix="model", tied={"lm_head.weight"})
    assert (
        report.mapping["model.decoder.embed_tokens.weight"] == "model.decoder.embed_tokens.weight"
    )
    assert "model.shared.weight" in report.discarded
    wrong = match_checkpoint(model, {"model.shared.weight": (8, 4)}, base_model_prefix="model")
    assert wrong.mismatched == [("model.decoder.embed_tokens.weight", (9, 4), (8, 4))]
