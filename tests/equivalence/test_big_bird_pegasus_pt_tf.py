"""PyTorch and TF/Keras BigBirdPegasus give the same numbers from the same canonical weights.

Weights are written once per (class, encoder attention type) by PyTorch (init_std 0.02, plus
noise on biases and LayerNorms so every tensor matters) and loaded by the TF `from_pretrained`.
Encoder inputs have 83 tokens with a masked tail in row 1: block-sparse pads them to 88 (11 blocks
of 8) and unpads every output; original_full masks them. Every output field is compared
(attention maps included), then greedy and beam-search ids.
"""

from __future__ import annotations

import functools
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")

import aviary.pt  # noqa: E402
import aviary.tf  # noqa: E402
from aviary import BigBirdPegasusConfig  # noqa: E402
from aviary.conversion import frameworks  # noqa: E402
from conftest import CROSS_FRAMEWORK_ATOL  # noqa: E402

pytestmark = [
    pytest.mark.cross,
    pytest.mark.filterwarnings("ignore::aviary.core.block_sparse.BlockSparseWarning"),
]

SEQ2SEQ = [
    "BigBirdPegasusModel",
    "BigBirdPegasusForConditionalGeneration",
    "BigBirdPegasusForSequenceClassification",
    "BigBirdPegasusForQuestionAnswering",
]
BATCH, SOURCE, TARGET, HIDDEN, EOS = 2, 83, 6, 32, 1
_WORKDIR = Path(tempfile.mkdtemp(prefix="aviary-pegasus-equivalence-"))


def config_for(attention_type: str) -> BigBirdPegasusConfig:
    return BigBirdPegasusConfig(
        vocab_size=99,
        d_model=HIDDEN,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=37,
        decoder_ffn_dim=37,
        max_position_embeddings=128,
        block_size=8,
        num_random_blocks=2,
        dropout=0.0,
        num_labels=3,
        attention_type=attention_type,
    )


@functools.cache
def checkpoint(head: str, attention_type: str) -> Path:
    """Random weights for this class, written once in the canonical format by PyTorch."""
    torch.manual_seed(zlib.crc32(f"{head}-{attention_type}".encode()))
    model = getattr(aviary.pt, head)(config_for(attention_type))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias") or "layer_norm" in name or "layernorm" in name:
                param.add_(0.1 * torch.randn_like(param))
        for name, buffer in model.named_buffers():
            if name == "final_logits_bias":
                buffer.normal_(0, 0.1)
    folder = _WORKDIR / f"{head}-{attention_type}"
    model.save_pretrained(folder)
    return folder


def load_both(head: str, attention_type: str):
    folder = checkpoint(head, attention_type)
    pt_model = getattr(aviary.pt, head).from_pretrained(folder).eval()
    tf_cls = getattr(aviary.tf, frameworks.class_name(head, "tf"))
    tf_model, info = tf_cls.from_pretrained(folder, output_loading_info=True)
    assert not any(info.values()), info  # every tensor used, every variable loaded
    return pt_model, tf_model


def seq2seq_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    input_ids = rng.integers(3, 99, (BATCH, SOURCE))
    input_ids[:, -1] = EOS  # the classification head reads the last <eos>
    input_ids[1, 60] = EOS
    input_ids[0, 40] = EOS
    mask = np.ones((BATCH, SOURCE), np.int64)
    mask[1, 70:] = 0
    return {
        "input_ids": input_ids,
        "attention_mask": mask,
        "decoder_input_ids": rng.integers(3, 99, (BATCH, TARGET)),
    }


def head_extras(head: str) -> dict[str, np.ndarray]:
    if head == "BigBirdPegasusForConditionalGeneration":
        return {"labels": np.random.default_rng(1).integers(3, 99, (BATCH, TARGET))}
    if head == "BigBirdPegasusForSequenceClassification":
        return {"labels": np.array([0, 2])}
    if head == "BigBirdPegasusForQuestionAnswering":
        return {"start_positions": np.array([1, 4]), "end_positions": np.array([3, 40])}
    return {}


def compare_outputs(pt_out, tf_out) -> int:
    """Assert every field PyTorch returns within the cross-framework tolerance; count them."""
    compared = 0
    for name, expected in pt_out.items():
        if name == "past_key_values":
            pairs = [
                (a, e)
                for layer_a, layer_e in zip(tf_out[name], expected)
                for a, e in zip(layer_a, layer_e)
            ]
        elif isinstance(expected, tuple):
            assert len(tf_out[name]) == len(expected), name
            pairs = list(zip(tf_out[name], expected))
        else:
            pairs = [(tf_out[name], expected)]
        for i, (a, e) in enumerate(pairs):
            a, e = np.asarray(a), e.detach().numpy()
            assert a.shape == e.shape, f"{name}[{i}]: {a.shape} != {e.shape}"
            diff = float(np.abs(a - e).max())
            assert diff <= CROSS_FRAMEWORK_ATOL, f"{name}[{i}]: max abs difference {diff:.3g}"
            compared += 1
    return compared


@pytest.mark.parametrize("attention_type", ["block_sparse", "original_full"])
@pytest.mark.parametrize("head", SEQ2SEQ)
def test_seq2seq_classes_agree(head: str, attention_type: str) -> None:
    pt_model, tf_model = load_both(head, attention_type)
    inputs = {**seq2seq_inputs(), **head_extras(head)}
    if head == "BigBirdPegasusForSequenceClassification":
        # The head indexes the decoder output by the <eos> positions of input_ids, so the
        # decoder reads the shifted input_ids (its default).
        del inputs["decoder_input_ids"]
    assert (tf_model.get_encoder().plan(SOURCE) is not None) == (attention_type == "block_sparse")
    kwargs = dict(output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        pt_out = pt_model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, **kwargs)
    tf_out = tf_model({k: tf.constant(v) for k, v in inputs.items()}, **kwargs)
    compared = compare_outputs(pt_out, tf_out)
    assert compared >= 10


def test_causal_lm_agrees_with_cross_attention_and_cache() -> None:
    pt_model, tf_model = load_both("BigBirdPegasusForCausalLM", "original_full")
    rng = np.random.default_rng(2)
    input_ids = rng.integers(3, 99, (BATCH, 9))
    mask = np.ones((BATCH, 9), np.int64)
    mask[1, :2] = 0  # left padding
    memory = rng.normal(size=(BATCH, 7, HIDDEN)).astype(np.float32)
    memory_mask = np.ones((BATCH, 7), np.int64)
    memory_mask[0, 5:] = 0
    inputs = {
        "input_ids": input_ids,
        "attention_mask": mask,
        "encoder_hidden_states": memory,
        "encoder_attention_mask": memory_mask,
        "labels": rng.integers(3, 99, (BATCH, 9)),
    }
    kwargs = dict(output_hidden_states=True, output_attentions=True, use_cache=True)
    with torch.no_grad():
        pt_out = pt_model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, **kwargs)
    tf_out = tf_model(**{k: tf.constant(v) for k, v in inputs.items()}, **kwargs)
    assert compare_outputs(pt_out, tf_out) >= 10


@pytest.mark.parametrize("attention_type", ["block_sparse", "original_full"])
def test_generated_ids_agree(attention_type: str) -> None:
    """Greedy and beam search (with a made-up EOS id so that beams finish early) give PyTorch's
    ids; the weights are scaled up so that the tokens vary."""
    folder = checkpoint("BigBirdPegasusForConditionalGeneration", attention_type)
    pt_model = aviary.pt.BigBirdPegasusForConditionalGeneration.from_pretrained(folder).eval()
    with torch.no_grad():
        for param in pt_model.parameters():
            param.mul_(8.0)
    scaled = _WORKDIR / f"scaled-{attention_type}"
    pt_model.save_pretrained(scaled)
    tf_model = aviary.tf.TFBigBirdPegasusForConditionalGeneration.from_pretrained(scaled)
    inputs = seq2seq_inputs()
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    settings = [
        dict(max_new_tokens=7),
        dict(max_new_tokens=7, num_beams=3),
        dict(max_new_tokens=7, num_beams=3, eos_token_id=7, length_penalty=0.8),
        dict(max_new_tokens=5, num_beams=2, num_return_sequences=2, early_stopping=True),
    ]
    distinct = set()
    for setting in settings:
        expected = pt_model.generate(torch.from_numpy(ids), torch.from_numpy(mask), **setting)
        actual = tf_model.generate(ids, mask, **setting)
        np.testing.assert_array_equal(actual.numpy(), expected.numpy(), err_msg=str(setting))
        distinct.add(tuple(expected[:, 1:].flatten().tolist()))
    assert len(distinct) > 1  # the settings give different sequences
