"""BigBird (PyTorch) behaviour beyond the goldens: per-call fall-back, padding, decoders,
policies, checkpointing, attention maps and input errors. Tiny configs (block 8, 2 random
blocks: inputs of at most 72 tokens run full attention)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from aviary import BigBirdConfig  # noqa: E402
from aviary.core.block_sparse import BlockSparseWarning, dense_mask  # noqa: E402
from aviary.pt import (  # noqa: E402
    BigBirdForCausalLM,
    BigBirdForMaskedLM,
    BigBirdForQuestionAnswering,
    BigBirdModel,
)

pytestmark = [
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore::aviary.core.block_sparse.BlockSparseWarning"),
]


def tiny_config(**overrides) -> BigBirdConfig:
    values = dict(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=512,
        block_size=8,
        num_random_blocks=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BigBirdConfig(**{**values, **overrides})


def ids(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(3, 99, (batch, length), generator=torch.Generator().manual_seed(seed))


def model_pair(**overrides) -> tuple[BigBirdModel, BigBirdModel]:
    """A block-sparse model and an original_full model with the same weights, in eval."""
    torch.manual_seed(0)
    sparse = BigBirdModel(tiny_config(**overrides)).eval()
    full = BigBirdModel(tiny_config(attention_type="original_full", **overrides)).eval()
    full.load_state_dict(sparse.state_dict())
    return sparse, full


def test_short_input_falls_back_for_that_call_only() -> None:
    sparse, full = model_pair()
    short, long = ids(2, 72), ids(2, 80, seed=1)
    with torch.no_grad():
        short_out = sparse(short).last_hidden_state
        long_after_short = sparse(long).last_hidden_state
        fresh = BigBirdModel(sparse.config).eval()
        fresh.load_state_dict(sparse.state_dict())
        long_fresh = fresh(long).last_hidden_state
        torch.testing.assert_close(short_out, full(short).last_hidden_state)
        # The long call after the short one is block-sparse: as a fresh model, unlike full.
        torch.testing.assert_close(long_after_short, long_fresh, rtol=0, atol=0)
        assert (long_after_short - full(long).last_hidden_state).abs().max() > 1e-3
    assert sparse.block_sparse.attention_type == "block_sparse"


def test_padding_is_added_and_every_per_token_output_removed() -> None:
    """83 tokens run as 88 (11 blocks): the outputs have 83 positions and equal a call on
    explicitly padded input with those positions masked."""
    sparse, _ = model_pair()
    input_ids = ids(2, 83)
    mask = torch.ones(2, 83, dtype=torch.long)
    mask[1, 60:] = 0
    padded_ids = torch.cat([input_ids, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    with torch.no_grad():
        out = sparse(
            input_ids, attention_mask=mask, output_hidden_states=True, output_attentions=True
        )
        explicit = sparse(padded_ids, attention_mask=padded_mask, output_hidden_states=True)
    assert out.last_hidden_state.shape == (2, 83, 32)
    assert all(h.shape == (2, 83, 32) for h in out.hidden_states)
    assert all(a.shape == (2, 4, 83, 83) for a in out.attentions)
    for ours, theirs in zip(out.hidden_states, explicit.hidden_states):
        torch.testing.assert_close(ours, theirs[:, :83])


def test_padding_and_fallback_warn_once() -> None:
    import aviary.core.block_sparse as block_sparse

    sparse, _ = model_pair()
    block_sparse._warned_reasons.clear()
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        sparse(ids(1, 83))
        sparse(ids(1, 91))
        sparse(ids(1, 40))
    messages = [str(w.message) for w in caught if issubclass(w.category, BlockSparseWarning)]
    assert len(messages) == 2
    assert "pads" in messages[0] and "full attention" in messages[1]


def test_block_sparse_attention_maps_follow_the_plan() -> None:
    """output_attentions in block-sparse mode: the dense matrix that was applied, zero outside
    the plan's pattern, rows summing to 1; asking for it does not change the outputs."""
    sparse, _ = model_pair()
    sparse.set_block_sparse_policy("fixed")
    input_ids = ids(2, 96)
    mask = torch.ones(2, 96)
    mask[1, 70:] = 0
    with torch.no_grad():
        plain = sparse(input_ids, attention_mask=mask).last_hidden_state
        out = sparse(input_ids, attention_mask=mask, output_attentions=True)
    torch.testing.assert_close(out.last_hidden_state, plain, atol=1e-5, rtol=1e-5)
    plan = sparse.plan(96)
    for layer, probs in enumerate(out.attentions):
        assert probs.shape == (2, 4, 96, 96)
        np.testing.assert_allclose(probs.sum(-1).numpy(), 1.0, atol=1e-5)
        allowed = dense_mask(plan, layer, attention_mask=mask[1].numpy())
        assert (probs[1].numpy()[~allowed] == 0).all()
        assert (probs[1].numpy()[allowed].min()) >= 0


def test_decoder_and_cross_attention_need_original_full() -> None:
    with pytest.raises(ValueError, match="original_full"):
        BigBirdForCausalLM(tiny_config(is_decoder=True))
    with pytest.raises(ValueError, match="original_full"):
        BigBirdModel(tiny_config(is_decoder=True, add_cross_attention=True))
    sparse, _ = model_pair()
    with pytest.raises(ValueError, match="original_full"):
        sparse(ids(1, 80), encoder_hidden_states=torch.randn(1, 80, 32))
    decoder = BigBirdModel(tiny_config(is_decoder=True, attention_type="original_full"))
    with pytest.raises(ValueError, match="original_full"):
        decoder.set_attention_type("block_sparse")


def test_original_full_decoder_is_causal_and_caches() -> None:
    torch.manual_seed(0)
    config = tiny_config(is_decoder=True, add_cross_attention=True, attention_type="original_full")
    model = BigBirdForCausalLM(config).eval()
    input_ids = ids(1, 90)
    changed = input_ids.clone()
    changed[:, 60:] = 5
    memory = torch.randn(1, 7, 32)
    with torch.no_grad():
        a = model(input_ids, encoder_hidden_states=memory).logits
        b = model(changed, encoder_hidden_states=memory).logits
        torch.testing.assert_close(a[:, :60], b[:, :60])
        assert (a[:, 60:] - b[:, 60:]).abs().max() > 1e-3
        # Cached decoding of the last token equals the full pass.
        first = model(input_ids[:, :-1], encoder_hidden_states=memory, use_cache=True)
        step = model(
            input_ids[:, -1:], encoder_hidden_states=memory, past_key_values=first.past_key_values
        )
        torch.testing.assert_close(step.logits[:, -1], a[:, -1], atol=1e-5, rtol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    model = BigBirdForMaskedLM(tiny_config()).train()
    input_ids, labels = ids(2, 100), ids(2, 100, seed=1)

    def gradients():
        model.zero_grad()
        model(input_ids, labels=labels).loss.backward()
        # The pooler gets no gradient from the MLM loss.
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain = gradients()
    model.gradient_checkpointing_enable()
    checkpointed = gradients()
    assert model.is_gradient_checkpointing
    assert plain.keys() == checkpointed.keys() and len(plain) > 30
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, msg=name)


def test_resample_policy_training_is_deterministic_per_generator_seed() -> None:
    def train_step(seed: int) -> tuple[float, float]:
        torch.manual_seed(0)
        model = BigBirdForMaskedLM(tiny_config()).train()
        model.set_block_sparse_policy("resample", rng=np.random.default_rng(seed))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        losses = []
        for _ in range(2):
            optimizer.zero_grad()
            loss = model(ids(2, 120), labels=ids(2, 120, seed=1)).loss
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return tuple(losses)

    first = train_step(seed=7)
    assert first == train_step(seed=7)
    assert first != train_step(seed=8)  # different random blocks, different numbers
    assert all(np.isfinite(first))


def test_policy_settings_are_checked() -> None:
    model, _ = model_pair()
    with pytest.raises(ValueError, match="Generator"):
        model.set_block_sparse_policy("resample")
    with pytest.raises(ValueError, match="policy"):
        model.set_block_sparse_policy("random")
    with pytest.raises(ValueError, match="only used"):
        model.set_block_sparse_policy("fixed", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="attention_type"):
        model.set_attention_type("sparse")


def test_fixed_policy_changes_eval_outputs_and_reference_eval_is_deterministic() -> None:
    sparse, _ = model_pair()
    input_ids = ids(1, 120)
    with torch.no_grad():
        reference = sparse(input_ids).last_hidden_state
        torch.testing.assert_close(sparse(input_ids).last_hidden_state, reference, rtol=0, atol=0)
        sparse.set_block_sparse_policy("fixed")
        fixed = sparse(input_ids).last_hidden_state
    assert (fixed - reference).abs().max() > 1e-4


def test_head_mask_applies_in_block_sparse_mode() -> None:
    sparse, _ = model_pair()
    input_ids = ids(1, 96)
    with torch.no_grad():
        plain = sparse(input_ids).last_hidden_state
        ones = sparse(input_ids, head_mask=torch.ones(4)).last_hidden_state
        masked = sparse(input_ids, head_mask=torch.tensor([1.0, 0.0, 1.0, 1.0])).last_hidden_state
    torch.testing.assert_close(ones, plain)
    assert (masked - plain).abs().max() > 1e-3


def test_use_bias_and_rescale_embeddings() -> None:
    model = BigBirdModel(
        tiny_config(use_bias=False, rescale_embeddings=True, hidden_act="gelu_fast")
    )
    names = set(model.state_dict())
    assert "encoder.layer.0.attention.self.query.weight" in names
    assert not any(n.endswith(("query.bias", "key.bias", "value.bias")) for n in names)
    assert {"pooler.weight", "pooler.bias"} <= names
    model.eval()
    input_ids = ids(1, 10)
    embeddings = model.embeddings
    with torch.no_grad():
        expected = embeddings.LayerNorm(
            embeddings.word_embeddings(input_ids) * 32**0.5
            + embeddings.token_type_embeddings.weight[0]
            + embeddings.position_embeddings.weight[:10]
        )
        out = model(input_ids, output_hidden_states=True).hidden_states[0]
    torch.testing.assert_close(out, expected)


def test_bad_inputs_get_clear_errors() -> None:
    model, _ = model_pair()
    with pytest.raises(ValueError, match="input_ids contains id 99"):
        model(torch.full((1, 80), 99))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(ids(1, 513))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(ids(1, 80), attention_mask=torch.ones(1, 79))
    with pytest.raises(ValueError, match=r"\[batch, sequence\] attention_mask"):
        model(ids(1, 80), attention_mask=torch.ones(1, 80, 80))
    with pytest.raises(ValueError, match="token_type_ids contains id 2"):
        model(ids(1, 80), token_type_ids=torch.full((1, 80), 2))
    with pytest.raises(ValueError, match="either input_ids or inputs_embeds"):
        model(ids(1, 80), inputs_embeds=torch.randn(1, 80, 32))


def test_question_answering_loss_and_token_types_from_question_lengths() -> None:
    torch.manual_seed(0)
    model = BigBirdForQuestionAnswering(tiny_config()).eval()
    input_ids = ids(2, 90)
    lengths = torch.tensor([[5], [12]])
    with torch.no_grad():
        out = model(
            input_ids,
            question_lengths=lengths,
            start_positions=torch.tensor([20, 30]),
            end_positions=torch.tensor([25, 95]),
        )
        explicit_types = (torch.arange(90)[None] >= lengths).long()
        typed = model(input_ids, question_lengths=lengths, token_type_ids=explicit_types)
    torch.testing.assert_close(out.start_logits, typed.start_logits)
    assert out.pooler_output is None and torch.isfinite(out.loss)
    assert out.start_logits.shape == (2, 90)


def test_flex_attention_kernel_gives_the_gather_kernels_numbers(monkeypatch) -> None:
    """attn_implementation="flex_attention" runs the compiled FlexAttention kernel for
    block-sparse inference (same outputs as the gather kernel, padding and a mask included) and
    leaves training with gradients to the gather kernel (FlexAttention has no CPU backward)."""
    import aviary.pt.big_bird as big_bird_module

    calls = []
    flex = big_bird_module.flex_block_sparse_attention
    monkeypatch.setattr(
        big_bird_module,
        "flex_block_sparse_attention",
        lambda *args, **kwargs: calls.append(1) or flex(*args, **kwargs),
    )
    torch.manual_seed(0)
    gather = BigBirdForMaskedLM(tiny_config()).eval()
    flexible = BigBirdForMaskedLM(tiny_config(), attn_implementation="flex_attention").eval()
    flexible.load_state_dict(gather.state_dict())
    input_ids = ids(2, 73)
    mask = torch.ones(2, 73)
    mask[1, 60:] = 0
    with torch.no_grad():
        want = gather(input_ids, attention_mask=mask).logits
        got = flexible(input_ids, attention_mask=mask).logits
    assert len(calls) == 2  # both layers
    torch.testing.assert_close(got[mask.bool()], want[mask.bool()], rtol=0, atol=1e-5)

    calls.clear()
    gather.train()
    flexible.train()
    labels = input_ids.masked_fill(mask == 0, -100)
    want_loss = gather(input_ids, attention_mask=mask, labels=labels).loss
    got_loss = flexible(input_ids, attention_mask=mask, labels=labels).loss
    got_loss.backward()
    assert calls == []
    torch.testing.assert_close(got_loss, want_loss, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="flex_attention"):
        BigBirdModel(tiny_config(), attn_implementation="flash")
