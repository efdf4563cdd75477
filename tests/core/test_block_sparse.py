"""BigBird attention planning (`aviary.core.block_sparse`).

The reference's random-block generators are checked against loop-by-loop transcriptions of the
algorithms described in reference-behaviour.md §2.4, written independently here, and against the
global-`np.random` stream the reference draws from.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from aviary.core import block_sparse as bs
from aviary.core.configs import BigBirdConfig, BigBirdPegasusConfig

# ------------------------------------------------------------------------------------------------
# Independent transcriptions of the reference's generators (reference-behaviour.md §2.4)


def transcribe_paper_era(num_blocks, block_size, r, heads, max_pos, permutation):
    """The "old plan used in paper": one call per head at max_pos, then truncated rows."""
    big_n = max_pos // block_size
    last = big_n - 1
    if 2 * block_size < 1024:
        last = 1024 // block_size - 1
    highest = big_n - 2  # candidates are blocks 1 .. N-2

    def blocks(low, high):  # low .. high inclusive, clipped to the candidates
        return list(range(low, min(high, highest) + 1))

    per_head = []
    for _ in range(heads):
        rows = []
        for i in range(1, big_n - 1):
            if i == 1:
                candidates = blocks(3, last)
            elif i == 2:
                candidates = blocks(4, last)
            elif i in (big_n - 3, big_n - 2) or i - 2 > last:
                candidates = blocks(1, last)
            elif i + 1 == last:
                candidates = blocks(1, i - 2)
            else:
                candidates = blocks(1, i - 2) + blocks(i + 2, last)
            chosen = permutation(np.array(candidates, dtype=np.int32))[:r]
            row = np.zeros(r, dtype=np.int32)
            row[:] = chosen  # numpy assignment, as the reference writes its rows
            rows.append(row)
        per_head.append(rows[: num_blocks - 2])
    return np.array(per_head, dtype=np.int32).reshape(heads, num_blocks - 2, r)


def transcribe_segment_plan(length, block_size, r, heads, permutation):
    """`_get_rand_attn_plan` + the per-segment, per-row, per-head draws."""
    n = length // block_size
    if 2 * r + 5 < n:
        plan_lengths, plan_counts = [(2 * r + 5) * block_size, length], [r, 0]
    elif r + 5 < n:
        plan_lengths, plan_counts = [(r + 5) * block_size, length], [r // 2, r - r // 2]
    else:
        plan_lengths, plan_counts = [length], [r]
    ends = [x // block_size for x in plan_lengths]
    tables = [np.zeros((n, r), dtype=np.int32) for _ in range(heads)]

    def single_row(q, start, end, count):
        permuted = permutation(np.arange(start, end, dtype=np.int32))
        illegal = [q - 1, q, q + 1, 0, end - 1]
        if q == 1:
            illegal.append(end - 2)
        if q == end - 2:
            illegal.append(1)
        picked = []
        for block in permuted:
            if block not in illegal:
                picked.append(block)
            if len(picked) == count:
                break
        return np.array(picked, dtype=np.int32)

    def fill(rows, segment):
        start = 0 if segment == 0 else ends[segment - 1]
        first = sum(plan_counts[:segment])
        for q in rows:
            for h in range(heads):
                chosen = single_row(q, start, ends[segment], plan_counts[segment])
                tables[h][q, first : first + plan_counts[segment]] = chosen

    for k in range(len(ends)):
        if k > 0:
            if plan_counts[k] > 0:
                fill(range(1, ends[k - 1]), k)  # earlier rows draw from this segment
            for earlier in range(k):
                if plan_counts[earlier] > 0:
                    fill(
                        range(ends[k - 1], ends[k]), earlier
                    )  # this segment's rows, earlier segments
        if plan_counts[k] > 0:
            fill(range(1 if k == 0 else ends[k - 1], ends[k]), k)
    return np.stack([table[1 : n - 1] for table in tables])


def transcribe_reference(length, block_size, r, heads, max_pos, permutation):
    if length in (1024, 3072, 4096):
        return transcribe_paper_era(
            length // block_size, block_size, r, heads, max_pos, permutation
        )
    return transcribe_segment_plan(length, block_size, r, heads, permutation)


def brute_force_multiplicity(random_blocks, n, block_size, seq_len, attention_mask=None):
    """§2.2's five groups of query blocks, one key block at a time; [heads, L, L]."""
    heads = random_blocks.shape[0]
    counts = np.zeros((heads, n, n), dtype=np.int64)
    for h in range(heads):
        counts[h, 0, :] = 1
        counts[h, n - 1, :] = 1
        for k in [0, 1, 2, n - 1, *random_blocks[h, 0]]:
            counts[h, 1, k] += 1
        for q in range(2, n - 2):
            for k in [0, q - 1, q, q + 1, *random_blocks[h, q - 1], n - 1]:
                counts[h, q, k] += 1
        for k in [0, n - 3, n - 2, n - 1, *random_blocks[h, n - 3]]:
            counts[h, n - 2, k] += 1
    tokens = np.stack(
        [
            np.kron(counts[h], np.ones((block_size, block_size), dtype=np.int64))
            for h in range(heads)
        ]
    )
    keep = np.zeros(n * block_size, dtype=bool)
    keep[:seq_len] = True
    if attention_mask is not None:
        keep[: len(attention_mask)] &= np.asarray(attention_mask) != 0
    return tokens * keep


@pytest.fixture
def global_numpy_state():
    """Restore numpy's global random state after a test that deliberately uses it."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


@pytest.fixture
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(bs, "_warned_reasons", set())


def _same_state(a, b) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


def _plan(seq_len, block_size=8, r=2, heads=2, layers=2, **kwargs):
    kwargs.setdefault("warn", False)
    return bs.plan_attention(
        seq_len,
        block_size=block_size,
        num_random_blocks=r,
        num_heads=heads,
        num_layers=layers,
        **kwargs,
    )


# ------------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"block_size": 0}, "block_size"),
        ({"block_size": -8}, "block_size"),
        ({"block_size": 8.0}, "block_size"),
        ({"block_size": True}, "block_size"),
        ({"num_random_blocks": 0}, "num_random_blocks"),
        ({"num_random_blocks": -1}, "num_random_blocks"),
        ({"num_heads": 0}, "num_heads"),
        ({"num_layers": 0}, "num_layers"),
        ({"seq_len": 0}, "seq_len"),
        ({"policy": "random"}, "policy"),
        ({"policy": "resample"}, "rng"),
        ({"policy": "resample", "rng": np.random.RandomState(0)}, "rng"),
        ({"policy": "fixed", "rng": np.random.default_rng(0)}, "rng"),
        ({"max_position_embeddings": 0}, "max_position_embeddings"),
    ],
)
def test_invalid_arguments_raise_naming_the_field(kwargs, field):
    arguments = {
        "seq_len": 200,
        "block_size": 8,
        "num_random_blocks": 2,
        "num_heads": 2,
        "num_layers": 1,
        **kwargs,
    }
    seq_len = arguments.pop("seq_len")
    with pytest.raises(ValueError, match=field):
        bs.plan_attention(seq_len, **arguments)


def test_paper_era_plan_needs_enough_positions():
    with pytest.raises(ValueError, match="max_position_embeddings >= 1024"):
        _plan(1024, block_size=64, r=3, training=True, max_position_embeddings=512)


def test_generator_shortfall_raises_instead_of_crashing():
    # 7 blocks, r = 3: query block 1 has only blocks {3, 4} left outside its window and globals.
    with pytest.raises(ValueError, match="legal random blocks"):
        bs.segment_plan_random_blocks(7, 8, 3, 1, source=np.random.RandomState(0))


def test_single_legal_block_fills_every_slot_like_the_reference():
    # 6 blocks, r = 3: each of query blocks 1..4 has exactly one legal block, which numpy's
    # assignment in the reference repeats into all three slots.
    plan = bs.segment_plan_random_blocks(6, 8, 3, 2, source=np.random.RandomState(0))
    assert plan.tolist() == [[[3, 3, 3], [4, 4, 4], [1, 1, 1], [2, 2, 2]]] * 2


# ------------------------------------------------------------------------------------------------
# Padding and the sparse-or-full decision


@pytest.mark.parametrize(
    ("seq_len", "block_size", "r", "sparse", "pad"),
    [
        (72, 8, 2, False, 0),  # (5 + 2*2) * 8 = 72: full attention, as the reference
        (73, 8, 2, True, 7),
        (160, 8, 2, True, 0),
        (704, 64, 3, False, 0),
        (705, 64, 3, True, 63),
        (1000, 64, 3, True, 24),
        (4096, 64, 3, True, 0),
        (10, 1, 1, True, 0),
        (7, 1, 1, False, 0),
    ],
)
def test_padding_and_decision(seq_len, block_size, r, sparse, pad):
    plan = _plan(seq_len, block_size=block_size, r=r)
    assert plan.use_block_sparse is sparse
    assert bs.uses_block_sparse(seq_len, block_size, r) is sparse
    assert plan.pad_length == pad
    assert plan.padded_length == seq_len + pad
    if sparse:
        assert plan.padded_length % block_size == 0
        assert plan.num_blocks == plan.padded_length // block_size
        assert bs.padding_length(seq_len, block_size) == pad
    else:
        assert plan.num_blocks == 0
        assert plan.random_blocks.shape == (2, 2, 0, r)
        assert plan.key_blocks.shape == (2, 2, 0, 5 + r)


def test_decision_is_per_call(fresh_warnings):
    with pytest.warns(bs.BlockSparseWarning):
        assert not bs.plan_attention(
            50, block_size=8, num_random_blocks=2, num_heads=1
        ).use_block_sparse
    assert bs.plan_attention(304, block_size=8, num_random_blocks=2, num_heads=1).use_block_sparse


def test_each_warning_is_shown_once_per_reason(fresh_warnings):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for seq_len in (40, 50, 60):  # too short, three different lengths
            _plan(seq_len, warn=True)
        for seq_len in (75, 90, 200):  # padded: 75 -> 80, 90 -> 96; 200 needs no padding
            _plan(seq_len, warn=True)
        _plan(41, warn=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, bs.BlockSparseWarning)]
    assert len(messages) == 2, messages
    assert "full attention" in messages[0] and "72" in messages[0]
    assert "75 -> 80" in messages[1]


# ------------------------------------------------------------------------------------------------
# Plan properties


GRID = [
    (seq_len, b, r)
    for b in (4, 8, 16)
    for r in (1, 2, 3)
    for seq_len in (b * (2 * r + 6), 333, 1000)
]


@pytest.mark.parametrize("policy", bs.POLICIES)
@pytest.mark.parametrize("training", [False, True])
def test_shapes_and_ranges_over_a_grid(policy, training):
    for seq_len, b, r in GRID:
        rng = np.random.default_rng(1) if policy == "resample" else None
        plan = _plan(
            seq_len, block_size=b, r=r, heads=3, layers=2, policy=policy, training=training, rng=rng
        )
        if not plan.use_block_sparse:
            continue
        n = plan.num_blocks
        assert plan.random_blocks.shape == (2, 3, n - 2, r)
        assert plan.random_blocks.dtype == np.int32
        assert plan.key_blocks.shape == (2, 3, n - 2, 5 + r)
        assert plan.key_blocks.dtype == np.int32
        assert plan.key_block_valid.shape == (n - 2, 5 + r)
        assert plan.random_blocks.min() >= 0
        assert plan.key_blocks.max() <= n - 1
        assert not plan.random_blocks.flags.writeable


@pytest.mark.parametrize("policy", bs.POLICIES)
def test_random_blocks_avoid_window_and_globals(policy):
    # Segment-plan lengths (not 1024/3072/4096): the generator's structural guarantees.
    for seq_len, b, r in [*GRID, (2000, 64, 3), (4000, 64, 3), (2048, 64, 2)]:
        rng = np.random.default_rng(7) if policy == "resample" else None
        plan = _plan(
            seq_len, block_size=b, r=r, heads=3, layers=3, policy=policy, training=True, rng=rng
        )
        if not plan.use_block_sparse:
            continue
        n = plan.num_blocks
        assert plan.generator == "segment-plan"
        query = np.arange(1, n - 1)[None, None, :, None]  # [1, 1, n-2, 1]
        chosen = plan.random_blocks  # [layers, heads, n-2, r]
        assert np.all(chosen >= 1) and np.all(chosen <= n - 2)
        assert not np.any(np.abs(chosen - query) <= 1), "a random block lies inside the window"
        assert np.all(chosen < 2 * r + 5), (
            "the default segment plan draws from the first 2r+5 blocks"
        )
        ordered = np.sort(chosen, axis=-1)
        assert np.all(np.diff(ordered, axis=-1) > 0), "a row repeats a random block"
        assert np.all(bs.block_multiplicity(plan, 0) <= 1)


def test_paper_era_structure_and_its_repeated_last_block():
    plan = _plan(1024, block_size=64, r=3, heads=12, layers=12, training=True)
    assert plan.generator == "paper-era"
    chosen = plan.random_blocks  # [12, 12, 14, 3]
    assert chosen.min() >= 1 and chosen.max() <= 15  # random keys only in the first 1024 tokens
    assert np.all(chosen[:, :, 0] >= 3) and np.all(chosen[:, :, 1] >= 4)
    query = np.arange(1, 15)[None, None, :, None]
    assert not np.any(np.abs(chosen - query) <= 1)  # rows N-3, N-2 lie beyond these 14 rows
    assert np.all(np.diff(np.sort(chosen, axis=-1), axis=-1) > 0)
    # The last global block (15) can be drawn as a random block: it is then counted twice.
    assert np.any(chosen == 15)
    repeated = [bs.block_multiplicity(plan, layer).max() for layer in range(12)]
    assert max(repeated) == 2

    long_plan = _plan(4096, block_size=64, r=3, heads=4, layers=2, training=True)
    assert long_plan.random_blocks.max() <= 15 and long_plan.random_blocks.min() >= 1


def test_same_seed_same_plan_and_resample_is_fresh():
    first = _plan(500, training=True, policy="reference")
    bs._seeded_layer_plan.cache_clear()
    again = _plan(500, training=True, policy="reference")
    assert np.array_equal(first.random_blocks, again.random_blocks)
    assert not np.array_equal(first.random_blocks[0], first.random_blocks[1])  # seeds 0 and 1
    fixed_eval = _plan(500, training=False, policy="fixed")
    assert np.array_equal(fixed_eval.random_blocks, first.random_blocks)

    one = _plan(500, policy="resample", rng=np.random.default_rng(3))
    two = _plan(500, policy="resample", rng=np.random.default_rng(3))
    assert np.array_equal(one.random_blocks, two.random_blocks)
    rng = np.random.default_rng(3)
    step1 = _plan(500, policy="resample", rng=rng)
    step2 = _plan(500, policy="resample", rng=rng)
    assert not np.array_equal(step1.random_blocks, step2.random_blocks)


def test_global_numpy_random_state_is_untouched():
    before = np.random.get_state()
    bs._seeded_layer_plan.cache_clear()
    for seq_len in (300, 1024, 2000):
        for policy in bs.POLICIES:
            rng = np.random.default_rng(0) if policy == "resample" else None
            _plan(
                seq_len,
                block_size=64 if seq_len > 300 else 8,
                r=3,
                policy=policy,
                training=True,
                rng=rng,
            )
    assert _same_state(before, np.random.get_state())


def test_reference_eval_plan_is_all_zero_and_counts_block_zero_one_plus_r_times():
    r = 3
    plan = _plan(300, block_size=8, r=r, heads=2, layers=2, training=False)
    assert plan.generator == "all-zero"
    assert not plan.random_blocks.any()
    counts = bs.block_multiplicity(plan, 1)  # [heads, n, n]
    n = plan.num_blocks
    assert np.all(counts[:, 1 : n - 1, 0] == 1 + r)  # query blocks 1..n-2: 1 global + r "random"
    assert np.all(counts[:, [0, n - 1], :] == 1)
    assert counts[:, 1 : n - 1, 1:].max() == 1


# ------------------------------------------------------------------------------------------------
# The generators against the independent transcriptions


SEGMENT_CASES = [
    (b * n, b, r)
    for b in (8, 16, 64)
    for r in (1, 2, 3, 4)
    for n in sorted({2 * r + 6, 2 * r + 7, 2 * r + 11, 20, 37, 61})
    if b * n not in (1024, 3072, 4096)
]


@pytest.mark.parametrize(("length", "block_size", "r"), SEGMENT_CASES)
def test_segment_plan_generator_matches_transcription(length, block_size, r):
    for layer in (0, 1, 5):
        for heads in (1, 3):
            expected = transcribe_segment_plan(
                length, block_size, r, heads, np.random.RandomState(layer).permutation
            )
            actual = bs.segment_plan_random_blocks(
                length // block_size, block_size, r, heads, source=np.random.RandomState(layer)
            )
            np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize(
    ("n", "r"), [(8, 2), (9, 3), (10, 3), (11, 3), (6, 1), (7, 1), (12, 5), (14, 4)]
)
def test_short_segment_plans_match_transcription_or_both_fail(n, r):
    # The two- and one-segment plans (`r + 5 < n <= 2r + 5` and below) only arise when a
    # generator is called directly: the planner runs full attention at these lengths.
    for layer in range(4):
        try:
            expected = transcribe_segment_plan(
                n * 8, 8, r, 2, np.random.RandomState(layer).permutation
            )
        except ValueError:
            with pytest.raises(ValueError):
                bs.segment_plan_random_blocks(n, 8, r, 2, source=np.random.RandomState(layer))
            continue
        actual = bs.segment_plan_random_blocks(n, 8, r, 2, source=np.random.RandomState(layer))
        np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("length", [1024, 3072, 4096])
@pytest.mark.parametrize(
    ("block_size", "r", "max_pos"),
    [(64, 3, 4096), (64, 2, 4096), (32, 3, 4096), (128, 3, 8192), (16, 1, 4096), (64, 3, 5000)],
)
def test_paper_era_generator_matches_transcription(length, block_size, r, max_pos):
    for layer in (0, 3):
        expected = transcribe_paper_era(
            length // block_size,
            block_size,
            r,
            2,
            max_pos,
            np.random.RandomState(layer).permutation,
        )
        actual = bs.paper_era_random_blocks(
            length // block_size,
            block_size,
            r,
            2,
            max_position_embeddings=max_pos,
            source=np.random.RandomState(layer),
        )
        np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize(
    ("length", "block_size", "r"),
    [(1024, 64, 3), (2048, 64, 3), (4096, 64, 3), (200, 8, 2), (3072, 64, 4)],
)
def test_seeded_plans_equal_the_global_seed_stream(global_numpy_state, length, block_size, r):
    # What the reference does at every training forward of layer `layer`: np.random.seed(layer),
    # then global-state draws.
    plan = _plan(length, block_size=block_size, r=r, heads=3, layers=3, training=True)
    for layer in range(3):
        np.random.seed(layer)
        expected = transcribe_reference(length, block_size, r, 3, 4096, np.random.permutation)
        np.testing.assert_array_equal(plan.random_blocks[layer], expected)


def test_resample_draws_the_reference_generators_from_the_generator():
    rng_for_test, rng_for_library = np.random.default_rng(11), np.random.default_rng(11)
    plan = _plan(
        2000, block_size=64, r=3, heads=2, layers=2, policy="resample", rng=rng_for_library
    )
    for layer in range(2):
        expected = transcribe_segment_plan(2048, 64, 3, 2, rng_for_test.permutation)
        np.testing.assert_array_equal(plan.random_blocks[layer], expected)


def test_segment_plan_cases():
    assert bs.segment_plan(160, 8, 2) == ([72, 160], [2, 0])
    assert bs.segment_plan(64, 8, 2) == ([56, 64], [1, 1])  # r + 5 < 8 <= 2r + 5
    assert bs.segment_plan(56, 8, 2) == ([56], [2])


# ------------------------------------------------------------------------------------------------
# Gather indices and the dense oracle


def test_key_block_ids_slot_order():
    plan = _plan(160, block_size=8, r=2, heads=1, layers=1, training=True)
    n = plan.num_blocks  # 20
    ids, rand = plan.key_blocks[0, 0], plan.random_blocks[0, 0]
    assert ids[0].tolist() == [0, 0, 1, 2, *rand[0], n - 1]
    assert ids[5].tolist() == [0, 5, 6, 7, *rand[5], n - 1]
    assert ids[-1].tolist() == [0, n - 3, n - 2, n - 1, *rand[-1], n - 1]
    valid = plan.key_block_valid
    assert not valid[0, 0] and not valid[-1, -1]
    assert valid.sum() == valid.size - 2


@pytest.mark.parametrize(
    ("seq_len", "block_size", "r", "training", "policy"),
    [
        (160, 8, 2, False, "reference"),
        (160, 8, 2, True, "reference"),
        (83, 8, 2, True, "fixed"),
        (1000, 64, 3, True, "reference"),  # paper-era, with repeated keys
        (1000, 64, 3, False, "reference"),
        (250, 16, 1, True, "resample"),
    ],
)
def test_dense_multiplicity_matches_brute_force(seq_len, block_size, r, training, policy):
    rng = np.random.default_rng(5) if policy == "resample" else None
    plan = _plan(
        seq_len,
        block_size=block_size,
        r=r,
        heads=2,
        layers=2,
        training=training,
        policy=policy,
        rng=rng,
    )
    mask = np.ones(seq_len, dtype=np.int64)
    mask[seq_len - 9 :] = 0  # a padded example
    for layer in range(2):
        for attention_mask in (None, mask):
            expected = brute_force_multiplicity(
                plan.random_blocks[layer], plan.num_blocks, block_size, seq_len, attention_mask
            )
            actual = bs.dense_multiplicity(plan, layer, attention_mask)
            assert actual.shape == (2, plan.padded_length, plan.padded_length)
            np.testing.assert_array_equal(actual, expected)
            np.testing.assert_array_equal(bs.dense_mask(plan, layer, attention_mask), expected > 0)


def test_dense_mask_of_a_full_attention_plan():
    plan = _plan(50, heads=3)
    assert not plan.use_block_sparse
    mask = bs.dense_mask(plan, 0, np.r_[np.ones(45), np.zeros(5)])
    assert mask.shape == (3, 50, 50)
    assert mask[:, :, :45].all() and not mask[:, :, 45:].any()
    with pytest.raises(ValueError, match="full-attention"):
        bs.block_multiplicity(plan)
    with pytest.raises(ValueError, match="attention_mask"):
        bs.dense_mask(plan, 0, np.ones(49))
    with pytest.raises(ValueError, match="layer"):
        bs.dense_mask(plan, 2)


def test_plan_for_config_reads_the_model_sizes():
    config = BigBirdConfig(
        hidden_size=32,
        num_attention_heads=4,
        num_hidden_layers=2,
        block_size=8,
        num_random_blocks=2,
        max_position_embeddings=512,
        intermediate_size=37,
    )
    plan = bs.plan_for_config(config, 160, training=True, warn=False)
    assert plan.random_blocks.shape == (2, 4, 18, 2)
    pegasus = BigBirdPegasusConfig(
        d_model=32,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_layers=3,
        block_size=8,
        num_random_blocks=1,
    )
    assert bs.plan_for_config(pegasus, 200, warn=False).random_blocks.shape == (3, 4, 23, 1)
