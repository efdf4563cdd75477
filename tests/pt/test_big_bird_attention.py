"""Block-sparse attention equals dense attention under the plan's multiplicities.

The oracle is plain numpy (float64): a softmax over all keys in which each key's exp is weighted
by how often the plan counts it (`dense_multiplicity`, 0 for masked and padding keys), followed by
the weighted sum of values; rows of masked queries are 0, as the model makes them. The module under
test gathers blocks, runs one softmax per band and scatters probabilities back; nothing in the
oracle knows about blocks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from aviary.core.block_sparse import (  # noqa: E402
    BlockSparseWarning,
    block_multiplicity,
    dense_multiplicity,
    plan_attention,
)
from aviary.pt.big_bird_attention import BlockSparseIndices, block_sparse_attention  # noqa: E402

pytestmark = pytest.mark.torch


def oracle(q, k, v, counts, query_keep):
    """q, k, v: [N, L, D]; counts: [N, L, L]; query_keep: [L]. Returns context, probabilities."""
    scores = np.einsum("nqd,nkd->nqk", q, k) / np.sqrt(q.shape[-1])
    scores = np.where(counts > 0, scores, -np.inf)
    weights = counts * np.exp(scores - scores.max(-1, keepdims=True))
    probs = weights / weights.sum(-1, keepdims=True)
    context = np.einsum("nqk,nkd->nqd", probs, v) * query_keep[None, :, None]
    return context, probs


CASES = [
    # seq_len, block_size, random blocks, heads, policy, training
    (41, 4, 1, 2, "reference", False),
    (41, 4, 1, 2, "reference", True),
    (73, 8, 2, 3, "reference", False),
    (96, 8, 2, 2, "reference", True),
    (100, 8, 2, 2, "fixed", False),
    (100, 8, 2, 2, "resample", True),
    (130, 8, 3, 2, "resample", False),
    (64, 4, 3, 2, "fixed", True),
    (1024, 64, 1, 2, "reference", True),  # the paper-era generator (can pick the last block)
    (257, 16, 2, 1, "resample", False),
    (33, 2, 4, 2, "fixed", False),
]


@pytest.mark.parametrize("seq_len, block_size, r, heads, policy, training", CASES)
def test_block_sparse_matches_dense_oracle(seq_len, block_size, r, heads, policy, training):
    rng = np.random.default_rng(seq_len * 7 + block_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BlockSparseWarning)
        plan = plan_attention(
            seq_len,
            block_size=block_size,
            num_random_blocks=r,
            num_heads=heads,
            num_layers=2,
            policy=policy,
            training=training,
            rng=np.random.default_rng(3) if policy == "resample" else None,
            max_position_embeddings=max(1024, seq_len + block_size),
        )
    assert plan.use_block_sparse
    batch, head_dim, length = 2, 8, plan.padded_length
    q, k, v = (rng.standard_normal((batch, heads, length, head_dim)) for _ in range(3))
    # Row 0: every real token kept; row 1: a random mask that keeps the first token.
    keep = np.zeros((batch, length))
    keep[:, :seq_len] = 1.0
    keep[1, 1:seq_len] = rng.random(seq_len - 1) < 0.7
    indices = BlockSparseIndices.from_plan(plan, torch.device("cpu"), torch.float32)
    for layer in range(plan.num_layers):
        context, probs = block_sparse_attention(
            *(torch.tensor(x, dtype=torch.float32) for x in (q, k, v)),
            indices.key_blocks[layer],
            indices.slot_penalty,
            torch.tensor(keep, dtype=torch.float32),
            block_size,
            output_probabilities=True,
        )
        fused, _ = block_sparse_attention(
            *(torch.tensor(x, dtype=torch.float32) for x in (q, k, v)),
            indices.key_blocks[layer],
            indices.slot_penalty,
            torch.tensor(keep, dtype=torch.float32),
            block_size,
        )
        for row in range(batch):
            counts = dense_multiplicity(plan, layer, attention_mask=keep[row, :seq_len])
            want_context, want_probs = oracle(q[row], k[row], v[row], counts, keep[row])
            np.testing.assert_allclose(context[row].numpy(), want_context, atol=2e-5)
            np.testing.assert_allclose(fused[row].numpy(), want_context, atol=2e-5)
            np.testing.assert_allclose(probs[row].numpy(), want_probs, atol=2e-6)


def test_eval_plan_counts_block_zero_one_plus_r_times():
    """In the reference's eval plan the probability mass on block 0 of a middle query block is
    (1 + r) x what a single count gives: the oracle with all counts = 1 disagrees."""
    plan = plan_attention(80, block_size=8, num_random_blocks=2, num_heads=1, warn=False)
    assert plan.generator == "all-zero"
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 1, 80, 4)) for _ in range(3))
    indices = BlockSparseIndices.from_plan(plan, torch.device("cpu"), torch.float32)
    _, probs = block_sparse_attention(
        *(torch.tensor(x, dtype=torch.float32) for x in (q, k, v)),
        indices.key_blocks[0],
        indices.slot_penalty,
        torch.ones(1, 80),
        8,
        output_probabilities=True,
    )
    counts = dense_multiplicity(plan)
    assert counts[0, 40, 0] == 3  # query block 5, key block 0: 1 global + 2 random slots
    _, single = oracle(q[0], k[0], v[0], (counts > 0).astype(np.int32), np.ones(80))
    _, tripled = oracle(q[0], k[0], v[0], counts, np.ones(80))
    np.testing.assert_allclose(probs[0].numpy(), tripled, atol=2e-6)
    assert np.abs(probs[0].numpy() - single).max() > 1e-2


def test_gradients_flow_through_gathered_blocks():
    plan = plan_attention(
        32, block_size=4, num_random_blocks=1, num_heads=2, training=True, warn=False
    )
    indices = BlockSparseIndices.from_plan(plan, torch.device("cpu"), torch.float64)
    q, k, v = (torch.randn(1, 2, 32, 2, dtype=torch.float64, requires_grad=True) for _ in range(3))

    def attention(q, k, v):
        return block_sparse_attention(
            q, k, v, indices.key_blocks[0], indices.slot_penalty, torch.ones(1, 32), 4
        )[0]

    assert torch.autograd.gradcheck(attention, (q, k, v), eps=1e-6, atol=1e-5, fast_mode=True)


# -- the FlexAttention kernel (attn_implementation="flex_attention") ---------------------------

FLEX_CASES = [
    # seq_len, block_size, random blocks, heads, policy, training: the eval plan (block 0 counted
    # 1 + r times) and a seeded plan without duplicates, each with padding and a random mask.
    (73, 8, 2, 3, "reference", False),
    (100, 8, 2, 2, "fixed", False),
]


@pytest.mark.parametrize("seq_len, block_size, r, heads, policy, training", FLEX_CASES)
def test_flex_kernel_matches_dense_oracle(seq_len, block_size, r, heads, policy, training):
    from aviary.pt.big_bird_attention import flex_block_sparse_attention

    rng = np.random.default_rng(seq_len)
    plan = plan_attention(
        seq_len,
        block_size=block_size,
        num_random_blocks=r,
        num_heads=heads,
        num_layers=1,
        policy=policy,
        training=training,
        warn=False,
    )
    batch, head_dim, length = 2, 8, plan.padded_length
    q, k, v = (rng.standard_normal((batch, heads, length, head_dim)) for _ in range(3))
    keep = np.zeros((batch, length))
    keep[:, :seq_len] = 1.0
    keep[1, 1:seq_len] = rng.random(seq_len - 1) < 0.7
    key_keep = torch.tensor(keep, dtype=torch.float32)
    indices = BlockSparseIndices.from_plan(plan, torch.device("cpu"), torch.float32)
    layout = indices.flex_layout(0, key_keep)
    assert layout is not None
    assert layout.first_block_bonus == pytest.approx(np.log(1 + r) if policy == "reference" else 0)
    with torch.no_grad():
        context = flex_block_sparse_attention(
            *(torch.tensor(x, dtype=torch.float32) for x in (q, k, v)),
            layout,
            key_keep,
            block_size,
        )
    for row in range(batch):
        counts = dense_multiplicity(plan, 0, attention_mask=keep[row, :seq_len])
        want_context, _ = oracle(q[row], k[row], v[row], counts, keep[row])
        np.testing.assert_allclose(context[row].numpy(), want_context, atol=2e-5)


def test_first_block_extra_count_accepts_only_the_eval_duplicate():
    from aviary.pt.big_bird_attention import first_block_extra_count

    def counts_of(**kwargs):
        plan = plan_attention(num_heads=2, num_layers=1, warn=False, **kwargs)
        return block_multiplicity(plan, 0)

    assert first_block_extra_count(counts_of(seq_len=96, block_size=8, num_random_blocks=3)) == 3
    fixed = counts_of(seq_len=96, block_size=8, num_random_blocks=3, policy="fixed")
    assert first_block_extra_count(fixed) == 0
    # A random block repeating a window block (a paper-era training plan can do that) is a
    # duplicate a block mask cannot express.
    fixed[1, 5, 5] += 1
    assert first_block_extra_count(fixed) is None
