"""The reference's input and output conventions that ported Flax code relies on (issue 11): the
tokenizer's output passed whole (`return_tensors="jax"` and `"np"`), outputs sliced as tuples,
the LM heads on an encoder config, and the decoder-only Pegasus loading a sequence-to-sequence
checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from flax import traverse_util  # noqa: E402

from aviary import BertConfig, BigBirdConfig  # noqa: E402
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
from aviary.flax import (  # noqa: E402
    FlaxBertForCausalLM,
    FlaxBertForMaskedLM,
    FlaxBertForPreTraining,
    FlaxBigBirdForCausalLM,
    FlaxBigBirdForMaskedLM,
    FlaxBigBirdPegasusForCausalLM,
)
from aviary.flax.modeling_utils import canonical_names  # noqa: E402
from conftest import GOLDENS  # noqa: E402

pytestmark = [
    pytest.mark.flax,
    pytest.mark.filterwarnings("ignore::aviary.core.block_sparse.BlockSparseWarning"),
]

TOKENIZERS = GOLDENS / "tokenizers"
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
TOKENIZER_CLASSES = [
    (BertTokenizer, "bert"),
    (BertTokenizerFast, "bert"),
    (BigBirdTokenizer, "big_bird"),
    (BigBirdTokenizerFast, "big_bird"),
    (PegasusTokenizer, "pegasus"),
    (PegasusTokenizerFast, "pegasus"),
]


@pytest.mark.parametrize(
    "cls,masked_cls,config",
    [
        (FlaxBertForCausalLM, FlaxBertForMaskedLM, BertConfig(vocab_size=99, **SMALL)),
        (
            FlaxBigBirdForCausalLM,
            FlaxBigBirdForMaskedLM,
            BigBirdConfig(vocab_size=99, block_size=8, **SMALL),
        ),
    ],
    ids=["bert", "big_bird"],
)
def test_lm_head_on_an_encoder_config_warns_and_runs_bidirectionally(cls, masked_cls, config):
    """BE-23, BB-15: as the reference, an LM head on a config without `is_decoder` runs the
    model as configured, an encoder (with a warning here too): its logits are the masked-LM
    head's with the same parameters, and a later token changes earlier logits."""
    name = cls.__name__
    with pytest.warns(UserWarning, match=f"use `{name}` as a standalone, add `is_decoder=True`"):
        model = cls(config, seed=0)
    masked = masked_cls(config, _do_init=False)
    masked.params = model.params
    ids = np.array([[5, 6, 7, 8, 9, 10]])
    logits = model(ids).logits
    np.testing.assert_allclose(logits, masked(ids).logits, atol=1e-5, rtol=0)
    changed = model(np.array([[5, 6, 7, 8, 9, 11]])).logits
    assert not np.allclose(logits[:, 0], changed[:, 0])
    assert logits[:, -1].shape == (1, 99)  # the examples' "logits for the next token"


@pytest.mark.parametrize("return_tensors", ["jax", "np"])
def test_tokenizer_output_passed_whole_and_outputs_sliced_as_tuples(return_tensors) -> None:
    """BE-21 / BE-22: `model(**tokenizer(..., return_tensors=...))`; `outputs[:2]` is the
    reference's tuple view."""
    tokenizer = BertTokenizerFast.from_pretrained(TOKENIZERS / "bert")
    inputs = tokenizer("Hello, my dog is cute", return_tensors=return_tensors)
    assert isinstance(inputs, BatchEncoding) and inputs.input_ids is inputs["input_ids"]
    model = FlaxBertForPreTraining(BertConfig(vocab_size=tokenizer.vocab_size, **SMALL), seed=0)
    outputs = model(**inputs)
    prediction_logits, seq_relationship_logits = outputs[:2]
    assert prediction_logits is outputs.prediction_logits and outputs[0] is prediction_logits
    assert prediction_logits.shape == (1, 8, tokenizer.vocab_size)
    assert seq_relationship_logits.shape == (1, 2) and outputs[-1] is seq_relationship_logits
    as_tuple = model(**inputs, return_dict=False)
    assert isinstance(as_tuple, tuple) and as_tuple[0].shape == prediction_logits.shape


@pytest.mark.parametrize("cls,folder", TOKENIZER_CLASSES)
def test_every_tokenizer_returns_jax_and_numpy_arrays_with_attribute_access(cls, folder) -> None:
    tokenizer = cls.from_pretrained(TOKENIZERS / folder)
    texts = ["Hello, my dog is cute", "Hi"]
    as_jax = tokenizer(texts, padding=True, return_tensors="jax")
    as_np = tokenizer(texts, padding=True, return_tensors="np")
    assert isinstance(as_jax.input_ids, jax.Array) and isinstance(as_np.input_ids, np.ndarray)
    np.testing.assert_array_equal(as_jax.input_ids, as_np.input_ids)
    assert int(as_np.attention_mask[1].sum()) < as_np.input_ids.shape[1]
    with pytest.raises(AttributeError, match="labels"):
        as_np.labels  # noqa: B018


def test_causal_lm_loads_a_seq2seq_checkpoint() -> None:
    """BP-6: the decoder-only model takes its tied token embeddings from the sequence-to-sequence
    checkpoint's `model.shared.weight`; the encoder is discarded."""
    folder = GOLDENS / "pegasus-conditional-generation"
    model, info = FlaxBigBirdPegasusForCausalLM.from_pretrained(
        folder, add_cross_attention=False, output_loading_info=True
    )
    assert model.config.is_decoder, f"{model.__class__} has to be configured as a decoder."
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "newly_initialized_keys"))
    assert "model.shared.weight" not in info["discarded_keys"]
    assert "model.encoder.embed_positions.weight" in info["discarded_keys"]
    path, transpose = canonical_names(model.param_shapes())["model.decoder.embed_tokens.weight"]
    embed = np.asarray(traverse_util.flatten_dict(model.params)[path])
    shared = read_checkpoint(folder)["model.shared.weight"]
    np.testing.assert_array_equal(embed.T if transpose else embed, shared)
    logits = model(np.array([[5, 6, 7, 1]])).logits
    assert logits.shape == (1, 4, 99) and np.isfinite(np.asarray(logits)).all()
