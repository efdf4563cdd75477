"""PyTorch BERT behaviour beyond the goldens: loading variants, saving, input errors, SDPA vs
eager, masks, cache decoding, gradient checkpointing."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from aviary import BertConfig  # noqa: E402
from aviary.conversion import SAFE_WEIGHTS_NAME, CheckpointError, read_checkpoint  # noqa: E402
from aviary.pt import (  # noqa: E402
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertLMHeadModel,
    BertModel,
)
from conftest import GOLDENS  # noqa: E402

pytestmark = pytest.mark.torch


def tiny_config(**overrides) -> BertConfig:
    values = dict(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BertConfig(**{**values, **overrides})


def batch(seed: int = 0, size: int = 3, length: int = 11):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 99, (size, length), generator=g)
    mask = torch.ones(size, length, dtype=torch.long)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    return ids, mask


def test_save_then_load_gives_identical_outputs(tmp_path) -> None:
    torch.manual_seed(0)
    model = BertForPreTraining(tiny_config()).eval()
    ids, mask = batch()
    with torch.no_grad():
        before = model(ids, attention_mask=mask)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["BertForPreTraining"]
    stored = read_checkpoint(tmp_path)
    # The tied LM decoder is stored once, as the word embeddings (the reference's layout).
    assert "cls.predictions.decoder.weight" not in stored
    assert "cls.predictions.decoder.bias" not in stored
    assert "cls.predictions.bias" in stored
    loaded = BertForPreTraining.from_pretrained(tmp_path)
    assert loaded.cls.predictions.decoder.weight is loaded.bert.embeddings.word_embeddings.weight
    with torch.no_grad():
        after = loaded(ids, attention_mask=mask)
    assert torch.equal(before.prediction_logits, after.prediction_logits)
    assert torch.equal(before.seq_relationship_logits, after.seq_relationship_logits)


def test_sharded_save_loads(tmp_path) -> None:
    model = BertModel(tiny_config()).eval()
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    loaded = BertModel.from_pretrained(tmp_path)
    ids, _ = batch()
    with torch.no_grad():
        assert torch.equal(model(ids).last_hidden_state, loaded(ids).last_hidden_state)


def test_base_from_head_and_head_from_base(tmp_path) -> None:
    torch.manual_seed(0)
    pretraining = BertForPreTraining(tiny_config()).eval()
    pretraining.save_pretrained(tmp_path / "head")
    base, info = BertModel.from_pretrained(tmp_path / "head", output_loading_info=True)
    assert info["newly_initialized_keys"] == [] and not info["missing_keys"]
    assert "cls.seq_relationship.weight" in info["discarded_keys"]
    ids, mask = batch()
    with torch.no_grad():
        expected = pretraining.bert(ids, attention_mask=mask).last_hidden_state
        assert torch.equal(base(ids, attention_mask=mask).last_hidden_state, expected)

    base.save_pretrained(tmp_path / "base")
    classifier, info = BertForSequenceClassification.from_pretrained(
        tmp_path / "base", num_labels=3, output_loading_info=True
    )
    assert info["newly_initialized_keys"] == ["classifier.bias", "classifier.weight"]
    assert classifier.classifier.weight.shape == (3, 32)
    with torch.no_grad():
        got = classifier.bert(ids, attention_mask=mask).last_hidden_state
    assert torch.equal(got, expected)


def test_strict_loading_names_the_problem(tmp_path) -> None:
    BertModel(tiny_config()).save_pretrained(tmp_path)
    # A config that does not match the weights: a clear error naming the tensors.
    with pytest.raises(
        CheckpointError, match="shape mismatch for embeddings.word_embeddings.weight"
    ):
        BertModel.from_pretrained(tmp_path, vocab_size=120)
    with pytest.raises(CheckpointError, match="unexpected tensors: encoder.layer.1"):
        BertModel.from_pretrained(tmp_path, num_hidden_layers=1)
    with pytest.raises(CheckpointError, match="missing tensors: encoder.layer.2"):
        BertModel.from_pretrained(tmp_path, num_hidden_layers=3)
    data = (tmp_path / SAFE_WEIGHTS_NAME).read_bytes()
    (tmp_path / SAFE_WEIGHTS_NAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        BertModel.from_pretrained(tmp_path)


def test_dtype_on_load(tmp_path) -> None:
    BertModel(tiny_config()).save_pretrained(tmp_path)
    model = BertModel.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert model.embeddings.word_embeddings.weight.dtype == torch.bfloat16
    ids, mask = batch()
    with torch.no_grad():
        assert model(ids, attention_mask=mask).last_hidden_state.dtype == torch.bfloat16
    model.save_pretrained(tmp_path / "bf16")
    assert BertModel.from_pretrained(tmp_path / "bf16", dtype="auto").pooler.dense.weight.dtype == (
        torch.bfloat16
    )


def test_initialisation_follows_initializer_range() -> None:
    torch.manual_seed(0)
    model = BertModel(tiny_config(initializer_range=0.5, hidden_size=64, intermediate_size=128))
    weight = model.encoder.layer[0].intermediate.dense.weight
    assert abs(float(weight.detach().std()) - 0.5) < 0.05
    assert torch.all(model.encoder.layer[0].intermediate.dense.bias == 0)
    assert torch.all(model.embeddings.LayerNorm.weight == 1)
    assert torch.all(model.embeddings.word_embeddings.weight[0] == 0)  # padding row


@pytest.mark.parametrize(
    "position_embedding_type", ["absolute", "relative_key", "relative_key_query"]
)
def test_bad_input_gets_clear_errors(position_embedding_type) -> None:
    model = BertModel(tiny_config(position_embedding_type=position_embedding_type)).eval()
    ids, mask = batch()
    with pytest.raises(ValueError, match="input_ids contains id 99"):
        model(torch.full((1, 4), 99))
    with pytest.raises(ValueError, match="id -1"):
        model(torch.tensor([[1, -1]]))
    with pytest.raises(ValueError, match="longer than max_position_embeddings=64"):
        model(torch.ones(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(ids, attention_mask=mask[:, :5])
    with pytest.raises(ValueError, match="token_type_ids contains id 2"):
        model(ids, token_type_ids=torch.full_like(ids, 2))
    with pytest.raises(ValueError, match="either input_ids or inputs_embeds"):
        model(ids, inputs_embeds=torch.zeros(3, 11, 32))
    with pytest.raises(ValueError, match="rank 2"):
        model(ids[0])
    with pytest.raises(ValueError, match="head_mask"):
        model(ids, head_mask=torch.ones(3))


def test_sdpa_equals_eager_with_padding_and_3d_masks() -> None:
    torch.manual_seed(0)
    model = BertModel(tiny_config()).eval()
    ids, mask = batch()
    with torch.no_grad():
        model.set_attn_implementation("sdpa")
        sdpa = model(ids, attention_mask=mask).last_hidden_state
        model.set_attn_implementation("eager")
        eager = model(ids, attention_mask=mask).last_hidden_state
        torch.testing.assert_close(sdpa, eager, atol=1e-5, rtol=0)
        # A 3-D mask [B, Q, K] with each row equal to the 2-D mask means the same thing.
        mask3d = mask[:, None, :].expand(-1, ids.shape[1], -1)
        torch.testing.assert_close(model(ids, attention_mask=mask3d).last_hidden_state, eager)
    with pytest.raises(ValueError, match="attn_implementation"):
        model.set_attn_implementation("flash")


def test_head_mask_and_inputs_embeds() -> None:
    torch.manual_seed(0)
    model = BertModel(tiny_config()).eval()
    ids, mask = batch()
    with torch.no_grad():
        reference = model(ids, attention_mask=mask, output_attentions=True)
        ones = model(ids, attention_mask=mask, head_mask=torch.ones(4))
        torch.testing.assert_close(ones.last_hidden_state, reference.last_hidden_state)
        head_mask = torch.ones(2, 4)
        head_mask[0, 1] = 0
        masked = model(ids, attention_mask=mask, head_mask=head_mask, output_attentions=True)
        assert torch.all(masked.attentions[0][:, 1] == 0)
        assert not torch.allclose(masked.last_hidden_state, reference.last_hidden_state)
        embeds = model.embeddings.word_embeddings(ids)
        via_embeds = model(inputs_embeds=embeds, attention_mask=mask)
        torch.testing.assert_close(via_embeds.last_hidden_state, reference.last_hidden_state)


@pytest.mark.parametrize(
    "position_embedding_type", ["absolute", "relative_key", "relative_key_query"]
)
def test_cached_decoding_matches_full_sequence(position_embedding_type) -> None:
    torch.manual_seed(0)
    config = tiny_config(
        is_decoder=True, add_cross_attention=True, position_embedding_type=position_embedding_type
    )
    model = BertLMHeadModel(config).eval()
    ids, _ = batch(length=9)
    encoder_states = torch.randn(3, 5, 32)
    encoder_mask = torch.ones(3, 5, dtype=torch.long)
    encoder_mask[0, 3:] = 0
    with torch.no_grad():
        full = model(ids, encoder_hidden_states=encoder_states, encoder_attention_mask=encoder_mask)
        step = model(
            ids[:, :4],
            encoder_hidden_states=encoder_states,
            encoder_attention_mask=encoder_mask,
            use_cache=True,
        )
        logits, past = [step.logits], step.past_key_values
        assert len(past) == 2 and len(past[0]) == 4  # self k/v + cross k/v per layer
        for t in range(4, 9):
            step = model(
                ids[:, t : t + 1],
                encoder_hidden_states=encoder_states,
                encoder_attention_mask=encoder_mask,
                past_key_values=past,
                use_cache=True,
            )
            logits.append(step.logits)
            past = step.past_key_values
    torch.testing.assert_close(torch.cat(logits, dim=1), full.logits, atol=1e-5, rtol=0)


def test_decoder_is_causal() -> None:
    torch.manual_seed(0)
    model = BertLMHeadModel(tiny_config(is_decoder=True)).eval()
    ids, _ = batch()
    changed = ids.clone()
    changed[:, 6:] = 5
    with torch.no_grad():
        a, b = model(ids).logits, model(changed).logits
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])
    with pytest.warns(UserWarning, match="add `is_decoder=True`"):  # the reference warns
        BertLMHeadModel(tiny_config())


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_config())
    ids, mask = batch()
    labels = ids.clone()
    labels[:, ::2] = -100

    def gradients():
        model.zero_grad()
        model(ids, attention_mask=mask, labels=labels).loss.backward()
        return [p.grad.clone() for p in model.parameters()]

    model.train()
    plain = gradients()
    model.gradient_checkpointing_enable()
    assert model.is_gradient_checkpointing
    checkpointed = gradients()
    for a, b in zip(plain, checkpointed):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_sequence_classification_problem_types() -> None:
    torch.manual_seed(0)
    ids, mask = batch()
    model = BertForSequenceClassification(tiny_config(num_labels=3)).eval()
    single = model(ids, attention_mask=mask, labels=torch.tensor([0, 2, 1]))
    expected = torch.nn.functional.cross_entropy(single.logits, torch.tensor([0, 2, 1]))
    torch.testing.assert_close(single.loss, expected)
    multi_labels = torch.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 0]])
    multi = model(ids, attention_mask=mask, labels=multi_labels)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(multi.logits, multi_labels)
    torch.testing.assert_close(multi.loss, expected)
    assert model.config.problem_type is None  # the call does not rewrite the config
    regression = BertForSequenceClassification(tiny_config(num_labels=1)).eval()
    out = regression(ids, labels=torch.tensor([0.5, -1.0, 2.0]))
    expected = torch.nn.functional.mse_loss(out.logits.squeeze(-1), torch.tensor([0.5, -1.0, 2.0]))
    torch.testing.assert_close(out.loss, expected)


def test_golden_weights_load_into_every_head() -> None:
    """A checkpoint of one head loads into the others (shared encoder, new heads listed)."""
    folder = GOLDENS / "bert-masked-lm"
    model, info = BertForSequenceClassification.from_pretrained(folder, output_loading_info=True)
    assert set(info["newly_initialized_keys"]) == {
        "bert.pooler.dense.weight",
        "bert.pooler.dense.bias",
        "classifier.weight",
        "classifier.bias",
    }
    assert np.isfinite(model(torch.tensor([[2, 3, 4]])).logits.detach().numpy()).all()
