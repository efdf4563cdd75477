"""BigBirdPegasus (PyTorch) behaviour beyond the goldens: checkpoint names and tying, the
key/value cache, the block-sparse encoder against a dense oracle, padding, generation, training
and input errors. Tiny configs (block 8, 2 random blocks: encoder inputs of at most 72 tokens run
full attention)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import aviary.pt  # noqa: E402
from aviary import BigBirdPegasusConfig  # noqa: E402
from aviary.conversion.checkpoint import CheckpointError  # noqa: E402
from aviary.core.block_sparse import dense_multiplicity  # noqa: E402
from aviary.core.generation import BeamSearchScorer, GenerationConfig  # noqa: E402
from aviary.pt import (  # noqa: E402
    BigBirdPegasusForCausalLM,
    BigBirdPegasusForConditionalGeneration,
    BigBirdPegasusForQuestionAnswering,
    BigBirdPegasusForSequenceClassification,
    BigBirdPegasusModel,
)
from aviary.pt.big_bird_pegasus import shift_tokens_right  # noqa: E402
from conftest import GOLDENS, GoldenCase  # noqa: E402

pytestmark = [
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore::aviary.core.block_sparse.BlockSparseWarning"),
]

EOS, PAD, START = 1, 0, 2


def tiny_config(**overrides) -> BigBirdPegasusConfig:
    values = dict(
        vocab_size=99,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=37,
        decoder_ffn_dim=37,
        max_position_embeddings=512,
        block_size=8,
        num_random_blocks=2,
        dropout=0.0,
    )
    return BigBirdPegasusConfig(**{**values, **overrides})


def ids(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(3, 99, (batch, length), generator=torch.Generator().manual_seed(seed))


def build(cls, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return cls(tiny_config(**overrides)).eval()


# -- checkpoint names, tying, save / load ---------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        "pegasus-model-block_sparse",
        "pegasus-conditional-generation",
        "pegasus-seqcls",
        "pegasus-qa",
        "pegasus-causal-lm",
    ],
)
def test_checkpoint_names_are_the_references(case: str) -> None:
    """The tensors a model stores are exactly the reference's checkpoint keys (tied weights
    stored once: the shared table, not the encoder/decoder copies or the LM head)."""
    from safetensors.numpy import load_file

    golden = GoldenCase(case)
    model = getattr(aviary.pt, golden.class_name)(
        BigBirdPegasusConfig.from_pretrained(golden.folder)
    )
    reference = load_file(GOLDENS / case / "model.safetensors")
    ours = model.checkpoint_state_dict()
    assert set(ours) == set(reference)
    for name, tensor in ours.items():
        assert tuple(tensor.shape) == reference[name].shape, name


def test_tied_weights_are_one_tensor_and_the_names_are_canonical() -> None:
    model = build(BigBirdPegasusForConditionalGeneration)
    shared = model.model.shared.weight
    assert model.model.encoder.embed_tokens.weight is shared
    assert model.model.decoder.embed_tokens.weight is shared
    assert model.lm_head.weight is shared
    names = set(model.checkpoint_state_dict())
    assert {
        "final_logits_bias",
        "model.shared.weight",
        "model.encoder.layers.0.self_attn.self.query.weight",
        "model.encoder.layers.0.self_attn.output.weight",
        "model.encoder.layernorm_embedding.weight",
        "model.decoder.layers.1.encoder_attn.q_proj.weight",
        "model.decoder.layers.1.encoder_attn_layer_norm.bias",
    } <= names
    assert not names & {"lm_head.weight", "model.encoder.embed_tokens.weight"}
    assert not any(n.endswith(("query.bias", "q_proj.bias", "output.bias")) for n in names)
    assert all(m.eps == 1e-5 for m in model.modules() if isinstance(m, torch.nn.LayerNorm))
    # Without tie_word_embeddings the LM head is its own tensor (the encoder and decoder still
    # share the table, as in the reference).
    untied = build(BigBirdPegasusForConditionalGeneration, tie_word_embeddings=False)
    assert "lm_head.weight" in untied.checkpoint_state_dict()
    assert untied.model.encoder.embed_tokens.weight is untied.model.shared.weight


def test_save_and_load_round_trip(tmp_path) -> None:
    model = build(BigBirdPegasusForConditionalGeneration)
    with torch.no_grad():
        model.final_logits_bias.normal_()  # a buffer: must travel with the checkpoint
    model.generation_config.num_beams = 2
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "generation_config.json").read_text())["num_beams"] == 2
    loaded = BigBirdPegasusForConditionalGeneration.from_pretrained(tmp_path)
    assert loaded.generation_config.num_beams == 2
    assert loaded.lm_head.weight is loaded.model.shared.weight
    input_ids, labels = ids(2, 90), ids(2, 6, seed=1)
    with torch.no_grad():
        a = model(input_ids, labels=labels)
        b = loaded(input_ids, labels=labels)
    torch.testing.assert_close(b.logits, a.logits, rtol=0, atol=0)
    # The bare model loads the head checkpoint (the head tensors are discarded).
    base, info = BigBirdPegasusModel.from_pretrained(tmp_path, output_loading_info=True)
    assert "final_logits_bias" in info["discarded_keys"]
    torch.testing.assert_close(base.shared.weight, model.model.shared.weight)


def test_loading_is_strict(tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    model = build(BigBirdPegasusForConditionalGeneration)
    model.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    # Without final_logits_bias (listed as ignorable by the reference) it loads with zeros.
    save_file({k: v for k, v in tensors.items() if k != "final_logits_bias"}, tmp_path / "m.st")
    (tmp_path / "m.st").replace(tmp_path / "model.safetensors")
    loaded = BigBirdPegasusForConditionalGeneration.from_pretrained(tmp_path)
    assert not loaded.final_logits_bias.any()
    # A missing layer tensor or an unknown tensor is an error naming it.
    broken = {k: v for k, v in tensors.items() if "layers.1.fc2.weight" not in k}
    broken["model.encoder.layers.0.self_attn.self.query.bias"] = torch.zeros(32)
    save_file(broken, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"layers\.1\.fc2\.weight") as err:
        BigBirdPegasusForConditionalGeneration.from_pretrained(tmp_path)
    assert "query.bias" in str(err.value)


# -- the decoder cache ------------------------------------------------------------------------


def test_cached_decoding_equals_the_full_pass() -> None:
    """One token at a time, and then in chunks, from the cache: the full decoder pass's logits
    (block-sparse encoder with a padded row)."""
    model = build(BigBirdPegasusForConditionalGeneration)
    input_ids = ids(2, 96)
    mask = torch.ones(2, 96, dtype=torch.long)
    mask[1, 70:] = 0
    decoder_ids = ids(2, 7, seed=1)
    with torch.no_grad():
        full = model(input_ids, mask, decoder_input_ids=decoder_ids).logits
        encoder_outputs = model.get_encoder()(input_ids, mask)
        past, steps = None, []
        for t in range(7):
            out = model(
                attention_mask=mask,
                encoder_outputs=encoder_outputs,
                decoder_input_ids=decoder_ids[:, t : t + 1],
                past_key_values=past,
            )
            past = out.past_key_values
            steps.append(out.logits)
        torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)
        assert len(past) == 2 and len(past[0]) == 4
        assert past[0][0].shape == (2, 4, 7, 8) and past[0][2].shape == (2, 4, 96, 8)
        first = model(
            attention_mask=mask,
            encoder_outputs=encoder_outputs,
            decoder_input_ids=decoder_ids[:, :4],
        )
        rest = model(
            attention_mask=mask,
            encoder_outputs=encoder_outputs,
            decoder_input_ids=decoder_ids[:, 4:],
            past_key_values=first.past_key_values,
        )
        torch.testing.assert_close(rest.logits, full[:, 4:], atol=1e-5, rtol=0)


def test_causal_lm_is_causal_and_caches() -> None:
    model = build(BigBirdPegasusForCausalLM)
    assert model.config.is_decoder and not model.config.is_encoder_decoder
    input_ids = ids(2, 20)
    changed = input_ids.clone()
    changed[:, 12:] = 5
    memory = torch.randn(2, 9, 32)
    with torch.no_grad():
        a = model(input_ids, encoder_hidden_states=memory).logits
        b = model(changed, encoder_hidden_states=memory).logits
        torch.testing.assert_close(a[:, :12], b[:, :12])
        assert (a[:, 12:] - b[:, 12:]).abs().max() > 1e-3
        first = model(input_ids[:, :-1], encoder_hidden_states=memory)
        step = model(
            input_ids[:, -1:], encoder_hidden_states=memory, past_key_values=first.past_key_values
        )
    torch.testing.assert_close(step.logits[:, -1], a[:, -1], atol=1e-5, rtol=0)


# -- the encoder ------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["reference", "fixed"])
def test_block_sparse_encoder_equals_the_dense_oracle(policy: str) -> None:
    """Each block-sparse layer equals full attention restricted to the plan's pattern (keys a
    plan counts twice get log 2 added, as a duplicate in the softmax), on 83 tokens padded to 88
    with a masked tail; compared on the tokens that are attended."""
    model = build(BigBirdPegasusModel)
    model.set_block_sparse_policy(policy)
    encoder = model.get_encoder()
    input_ids = ids(2, 83)
    mask = torch.ones(2, 83)
    mask[1, 60:] = 0
    plan = model.plan(83)
    assert plan is not None and plan.padded_length == 88
    with torch.no_grad():
        out = encoder(input_ids, mask, output_hidden_states=True)
        hidden = encoder.embed_tokens(input_ids) + encoder.embed_positions(83)
        pad = encoder.embed_tokens(torch.zeros(2, 5, dtype=torch.long))
        hidden = torch.cat([hidden, pad], dim=1)
        keep = torch.cat([mask, torch.zeros(2, 5)], dim=1).numpy()
        real = mask.bool()  # [B, 83]: the tokens other tokens attend
        for i, layer in enumerate(encoder.layers):
            counts = np.stack([dense_multiplicity(plan, i, keep[b]) for b in range(2)])
            additive = torch.log(torch.from_numpy(counts).float())  # [B, N, L, L]; -inf: masked
            hidden, _ = layer(hidden, additive)
            if i + 1 < len(encoder.layers):  # the last entry is after the final LayerNorm
                expected = hidden[:, :83][real]
                torch.testing.assert_close(
                    out.hidden_states[i + 1][real], expected, atol=1e-5, rtol=0
                )
        expected = encoder.layernorm_embedding(hidden)[:, :83]
        torch.testing.assert_close(out.last_hidden_state[real], expected[real], atol=1e-5, rtol=0)
    assert all(h.shape == (2, 83, 32) for h in out.hidden_states)


@pytest.mark.parametrize("attention_type", ["block_sparse", "original_full"])
def test_padding_does_not_change_the_real_tokens(attention_type: str) -> None:
    """A short input (full attention for this call, also under block_sparse) padded with masked
    tokens gives the same encoder and decoder outputs as the input alone. The reference ignores
    the mask after its block_sparse -> full fall-back; aviary does not."""
    model = build(BigBirdPegasusForConditionalGeneration, attention_type=attention_type)
    short = ids(1, 40)
    padded = torch.cat([short, torch.zeros(1, 20, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 40), torch.zeros(1, 20)], dim=1).long()
    decoder_ids = ids(1, 6, seed=1)
    with torch.no_grad():
        alone = model(short, decoder_input_ids=decoder_ids, output_hidden_states=True)
        with_pad = model(padded, mask, decoder_input_ids=decoder_ids, output_hidden_states=True)
        unmasked = model(padded, decoder_input_ids=decoder_ids)
    torch.testing.assert_close(
        with_pad.encoder_last_hidden_state[:, :40], alone.encoder_last_hidden_state
    )
    for a, b in zip(with_pad.encoder_hidden_states, alone.encoder_hidden_states):
        torch.testing.assert_close(a[:, :40], b)
    torch.testing.assert_close(with_pad.logits, alone.logits, atol=1e-5, rtol=1e-5)
    assert (unmasked.logits - alone.logits).abs().max() > 1e-3  # the mask is what matters


def test_block_sparse_is_decided_per_call() -> None:
    model = build(BigBirdPegasusModel)
    full = build(BigBirdPegasusModel, attention_type="original_full")
    full.load_state_dict(model.state_dict())
    decoder_ids = ids(1, 3, seed=1)
    with torch.no_grad():
        short = model(ids(1, 72), decoder_input_ids=decoder_ids).encoder_last_hidden_state
        long = model(ids(1, 80), decoder_input_ids=decoder_ids).encoder_last_hidden_state
        torch.testing.assert_close(
            short, full(ids(1, 72), decoder_input_ids=decoder_ids).encoder_last_hidden_state
        )
        long_full = full(ids(1, 80), decoder_input_ids=decoder_ids).encoder_last_hidden_state
    assert (long - long_full).abs().max() > 1e-3
    assert model.get_encoder().block_sparse.attention_type == "block_sparse"


def test_flex_attention_encoder_gives_the_same_numbers(monkeypatch) -> None:
    """attn_implementation="flex_attention" (BigBird's compiled kernel in the block-sparse
    encoder; SDPA in the decoder) gives the default kernels' logits, padding included."""
    import aviary.pt.big_bird as big_bird_module

    calls = []
    flex = big_bird_module.flex_block_sparse_attention
    monkeypatch.setattr(
        big_bird_module,
        "flex_block_sparse_attention",
        lambda *args, **kwargs: calls.append(1) or flex(*args, **kwargs),
    )
    model = build(BigBirdPegasusForConditionalGeneration)
    torch.manual_seed(0)
    flexible = BigBirdPegasusForConditionalGeneration(
        tiny_config(), attn_implementation="flex_attention"
    ).eval()
    flexible.load_state_dict(model.state_dict())
    source, target = ids(2, 73), ids(2, 5, seed=1)
    mask = torch.ones(2, 73)
    mask[1, 60:] = 0
    with torch.no_grad():
        want = model(source, attention_mask=mask, decoder_input_ids=target).logits
        got = flexible(source, attention_mask=mask, decoder_input_ids=target).logits
    assert len(calls) == 2  # both encoder layers
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_head_masks_and_attention_maps() -> None:
    model = build(BigBirdPegasusModel)
    input_ids, decoder_ids = ids(1, 96), ids(1, 5, seed=1)
    with torch.no_grad():
        plain = model(input_ids, decoder_input_ids=decoder_ids)
        ones = model(
            input_ids,
            decoder_input_ids=decoder_ids,
            head_mask=torch.ones(2, 4),
            decoder_head_mask=torch.ones(2, 4),
            cross_attn_head_mask=torch.ones(2, 4),
        )
        torch.testing.assert_close(ones.last_hidden_state, plain.last_hidden_state)
        for name in ("head_mask", "decoder_head_mask", "cross_attn_head_mask"):
            head_mask = torch.ones(2, 4)
            head_mask[0, 1] = 0
            masked = model(input_ids, decoder_input_ids=decoder_ids, **{name: head_mask})
            assert (masked.last_hidden_state - plain.last_hidden_state).abs().max() > 1e-4, name
        out = model(input_ids, decoder_input_ids=decoder_ids, output_attentions=True)
    assert [a.shape for a in out.encoder_attentions] == [(1, 4, 96, 96)] * 2
    assert [a.shape for a in out.decoder_attentions] == [(1, 4, 5, 5)] * 2
    assert [a.shape for a in out.cross_attentions] == [(1, 4, 5, 96)] * 2
    assert torch.all(torch.triu(out.decoder_attentions[0][0, 0], diagonal=1) == 0)


# -- heads, labels ----------------------------------------------------------------------------


def test_shift_tokens_right_and_default_decoder_inputs() -> None:
    labels = torch.tensor([[5, 6, -100, 7], [8, -100, -100, -100]])
    expected = torch.tensor([[START, 5, 6, PAD], [START, 8, PAD, PAD]])
    assert torch.equal(shift_tokens_right(labels, PAD, START), expected)
    model = build(BigBirdPegasusForConditionalGeneration)
    input_ids, labels = ids(2, 30), ids(2, 6, seed=1)
    with torch.no_grad():
        from_labels = model(input_ids, labels=labels)
        explicit = model(input_ids, decoder_input_ids=shift_tokens_right(labels, PAD, START))
        base_default = model.model(input_ids)
        base_explicit = model.model(
            input_ids, decoder_input_ids=shift_tokens_right(input_ids, PAD, START)
        )
    torch.testing.assert_close(from_labels.logits, explicit.logits)
    assert from_labels.past_key_values is None  # labels switch the cache off
    expected_loss = torch.nn.functional.cross_entropy(
        explicit.logits.reshape(-1, 99), labels.reshape(-1)
    )
    torch.testing.assert_close(from_labels.loss, expected_loss)
    torch.testing.assert_close(base_default.last_hidden_state, base_explicit.last_hidden_state)


def test_sequence_classification_pools_the_last_eos() -> None:
    model = build(BigBirdPegasusForSequenceClassification, num_labels=3)
    input_ids = ids(2, 20)
    input_ids[0, [5, 19]] = EOS
    input_ids[1, [9, 14]] = EOS
    with torch.no_grad():
        out = model(input_ids, labels=torch.tensor([0, 2]))
        states = model.model(input_ids).last_hidden_state
        expected = model.classification_head(states[[0, 1], [19, 14]])
    torch.testing.assert_close(out.logits, expected)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)


def test_question_answering_loss() -> None:
    model = build(BigBirdPegasusForQuestionAnswering)
    input_ids = ids(2, 30)
    with torch.no_grad():
        out = model(
            input_ids, start_positions=torch.tensor([3, 40]), end_positions=torch.tensor([5, 9])
        )
    start = torch.nn.functional.cross_entropy(
        out.start_logits, torch.tensor([3, 30]), ignore_index=30
    )
    end = torch.nn.functional.cross_entropy(out.end_logits, torch.tensor([5, 9]), ignore_index=30)
    torch.testing.assert_close(out.loss, (start + end) / 2)


def test_training_steps_lower_the_loss_and_checkpointing_keeps_gradients() -> None:
    torch.manual_seed(0)
    model = BigBirdPegasusForConditionalGeneration(tiny_config(dropout=0.1)).train()
    input_ids, labels = ids(2, 80), ids(2, 8, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = model(input_ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5, losses

    model.config.dropout = 0.0
    model = BigBirdPegasusForConditionalGeneration(model.config).train()

    def gradients():
        model.zero_grad()
        model(input_ids, labels=labels).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain = gradients()
    model.gradient_checkpointing_enable()
    checkpointed = gradients()
    assert plain.keys() == checkpointed.keys() and len(plain) > 40
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, msg=name)


def test_bad_inputs_get_clear_errors() -> None:
    model = build(BigBirdPegasusForConditionalGeneration)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(ids(1, 513), decoder_input_ids=ids(1, 3))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(ids(1, 20), decoder_input_ids=ids(1, 513))
    with pytest.raises(ValueError, match="input_ids contains id 99"):
        model(torch.full((1, 20), 99))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(ids(1, 80), attention_mask=torch.ones(1, 79), decoder_input_ids=ids(1, 3))
    with pytest.raises(ValueError, match="decoder attention_mask"):
        model(ids(1, 80), decoder_input_ids=ids(1, 3), decoder_attention_mask=torch.ones(1, 4))
    with pytest.raises(ValueError, match="input_ids"):
        model.model(inputs_embeds=torch.randn(1, 20, 32))
    with pytest.raises(ValueError, match="labels has shape"):
        model(ids(1, 20), decoder_input_ids=ids(1, 4), labels=ids(1, 5))

    classifier = build(BigBirdPegasusForSequenceClassification)
    mismatch = ids(2, 20)
    mismatch[0, 19] = EOS
    mismatch[1, [10, 19]] = EOS
    with pytest.raises(ValueError, match="same number of <eos> tokens"):
        classifier(mismatch)
    with pytest.raises(ValueError, match="no <eos> token"):
        classifier(ids(2, 20))
    with pytest.raises(NotImplementedError, match="input_ids"):
        classifier(inputs_embeds=torch.randn(1, 20, 32))

    encoder_only = build(BigBirdPegasusForCausalLM)
    with pytest.raises(ValueError, match="has no encoder"):
        encoder_only.set_attention_type("original_full")
    with pytest.raises(ValueError, match="attention_type"):
        model.set_attention_type("sparse")


# -- generation -------------------------------------------------------------------------------


def generation_model(**overrides) -> BigBirdPegasusForConditionalGeneration:
    """The reference's generation case (weights with std 1, so the tokens vary)."""
    return BigBirdPegasusForConditionalGeneration.from_pretrained(
        GOLDENS / "pegasus-conditional-generation", **overrides
    )


def oracle_beam_search(model, input_ids, mask, eos, num_beams, max_new_tokens, length_penalty):
    """Beam search written out plainly, one example at a time, recomputing the decoder on whole
    sequences (no cache): the reference's algorithm with early_stopping="never" (search until
    max length; a hypothesis finishes when one of the best `num_beams` candidates is EOS)."""
    k = num_beams
    results = []
    for b in range(input_ids.shape[0]):
        encoder_state = model.get_encoder()(input_ids[b : b + 1], mask[b : b + 1])[0]
        running = [(torch.tensor(0.0), [START])]
        finished = []
        for step in range(1, max_new_tokens + 1):
            n = len(running)
            logits = model(
                attention_mask=mask[b : b + 1].expand(n, -1),
                encoder_outputs=(encoder_state.expand(n, -1, -1),),
                decoder_input_ids=torch.tensor([tokens for _, tokens in running]),
                use_cache=False,
            ).logits[:, -1]
            beam_scores = torch.stack([s for s, _ in running])[:, None]
            scores = torch.log_softmax(logits.float(), -1) + beam_scores
            top_scores, top_ids = torch.topk(scores.reshape(-1), 2 * k)
            new_running = []
            for rank, (score, flat) in enumerate(zip(top_scores, top_ids.tolist())):
                beam, token = divmod(flat, 99)
                tokens = running[beam][1]
                if token == eos:
                    if rank < k:
                        finished.append((score.item() / step**length_penalty, [*tokens, eos]))
                elif len(new_running) < k:
                    new_running.append((score, [*tokens, token]))
            running = new_running
        finished += [(s.item() / max_new_tokens**length_penalty, t) for s, t in running]
        results.append(max(finished, key=lambda x: x[0])[1])
    width = max(len(r) for r in results)
    return [r + [PAD] * (width - len(r)) for r in results]


def test_beam_search_matches_the_plain_oracle() -> None:
    """A model and EOS id (7) for which one example finishes at once and the other runs to the
    end on a path greedy search does not take: the cached, reordered, batched search gives the
    plain oracle's sequences, with and without the cache."""
    model = build(BigBirdPegasusForConditionalGeneration, seed=1, init_std=0.4)
    input_ids = ids(2, 96)
    mask = torch.ones(2, 96, dtype=torch.long)
    mask[1, 70:] = 0
    kwargs = dict(
        max_new_tokens=6, num_beams=3, length_penalty=0.8, early_stopping="never", eos_token_id=7
    )
    out = model.generate(input_ids, mask, **kwargs)
    assert out.tolist() == oracle_beam_search(model, input_ids, mask, 7, 3, 6, 0.8)
    greedy = model.generate(input_ids, mask, max_new_tokens=6, eos_token_id=7)
    assert out[0].tolist() == [START, 7, PAD, PAD, PAD, PAD, PAD]
    assert not torch.equal(out, greedy)
    results = {}
    for early_stopping in (True, False, "never"):
        settings = {**kwargs, "early_stopping": early_stopping}
        results[early_stopping] = model.generate(input_ids, mask, **settings)
        uncached = model.generate(input_ids, mask, **settings, use_cache=False)
        assert torch.equal(results[early_stopping], uncached), early_stopping
    assert not torch.equal(results[True], results["never"])  # stopping at K hypotheses


def test_greedy_generation_with_and_without_cache_and_eos_padding() -> None:
    model = generation_model()
    case = GoldenCase("pegasus-conditional-generation")
    input_ids = torch.from_numpy(case.inputs["input_ids"])
    mask = torch.from_numpy(case.inputs["attention_mask"])
    cached = model.generate(input_ids, mask, max_length=9)
    uncached = model.generate(input_ids, mask, max_length=9, use_cache=False)
    assert torch.equal(cached, uncached)
    np.testing.assert_array_equal(cached.numpy(), case.outputs["generated_greedy"])
    # With 44 as EOS, row 0 stops at its first 44 and is padded; row 1 runs to the end.
    stopped = model.generate(input_ids, mask, max_new_tokens=8, eos_token_id=44)
    assert stopped[0].tolist() == [2, 73, 44, PAD, PAD, PAD, PAD, PAD, PAD]
    assert torch.equal(stopped[1], cached[1])
    # min_length forbids EOS until the sequence is that long.
    longer = model.generate(input_ids, mask, max_new_tokens=8, eos_token_id=44, min_length=5)
    assert 44 not in longer[0, :4].tolist()
    # The model's generation defaults come from its config (e.g. a hub config's num_beams).
    beams = generation_model(num_beams=3).generate(input_ids, mask, max_new_tokens=8)
    np.testing.assert_array_equal(beams.numpy(), case.outputs["generated_beam3"])
    two = model.generate(input_ids, mask, max_new_tokens=4, num_beams=3, num_return_sequences=2)
    assert two.shape[0] == 4


def test_causal_lm_generation_uses_the_cache() -> None:
    model = build(BigBirdPegasusForCausalLM, init_std=1.0)
    prompt = ids(2, 5)
    for num_beams in (1, 2):
        cached = model.generate(prompt, max_new_tokens=6, num_beams=num_beams)
        uncached = model.generate(prompt, max_new_tokens=6, num_beams=num_beams, use_cache=False)
        assert cached.shape[1] <= 11 and torch.equal(cached[:, :5], prompt)
        assert torch.equal(cached, uncached)


def test_generation_settings_are_checked() -> None:
    model = build(BigBirdPegasusForConditionalGeneration)
    input_ids = ids(1, 20)
    with pytest.raises(ValueError, match="num_return_sequences"):
        model.generate(input_ids, num_beams=2, num_return_sequences=3)
    with pytest.raises(ValueError, match="sampling"):
        model.generate(input_ids, do_sample=True)
    with pytest.raises(ValueError, match="max_length=1"):
        model.generate(input_ids, max_length=1)
    with pytest.raises(ValueError, match="early_stopping"):
        model.generate(input_ids, num_beams=2, early_stopping="sometimes")
    with pytest.raises(ValueError, match="decoder_start_token_id"):
        generation = GenerationConfig(decoder_start_token_id=None, bos_token_id=None)
        model.generate(input_ids, generation_config=generation)
    assert model.generate(input_ids).shape == (1, 20)  # default max_length 20


def test_beam_scorer_ranks_finished_hypotheses_by_normalised_score() -> None:
    """The numpy bookkeeping on a hand-made step: an EOS among the best K finishes a
    hypothesis, one ranked below K does not; a longer hypothesis wins when length_penalty
    favours it."""
    scorer = BeamSearchScorer(batch_size=1, num_beams=2, length_penalty=1.0, max_length=5)
    running = np.array([[START, 7], [START, 8]])
    scores, tokens, rows = scorer.process(
        running,
        next_scores=np.array([[-1.0, -2.0, -3.0, -4.0]], dtype=np.float32),
        next_tokens=np.array([[EOS, 5, 6, EOS]]),
        next_indices=np.array([[0, 1, 0, 1]]),
        eos_token_ids=(EOS,),
        pad_token_id=PAD,
        decoder_prompt_len=1,
    )
    assert tokens.tolist() == [5, 6] and rows.tolist() == [1, 0]
    assert scores.tolist() == [-2.0, -3.0]
    assert len(scorer.hypotheses[0]) == 1  # the rank-3 EOS was not filed
    assert scorer.hypotheses[0].beams[0][0] == pytest.approx(-1.0 / 2)
    sequences, best = scorer.finalize(
        np.array([[START, 8, 5], [START, 7, 6]]),
        np.array([-1.2, -3.0], dtype=np.float32),
        max_length=5,
        eos_token_ids=(EOS,),
        pad_token_id=PAD,
        decoder_prompt_len=1,
    )
    # The running beam [2, 8, 5] scores -1.2 / 2 = -0.6, worse than the finished -0.5.
    assert sequences.tolist() == [[START, 7, EOS]]
    assert best.tolist() == [pytest.approx(-0.5)]
