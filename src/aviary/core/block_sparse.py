"""BigBird attention planning: which key blocks each query block attends, decided before any
framework runs.

BigBird-ITC splits a sequence of `L` tokens into `n = L / block_size` blocks. Per head:

* query blocks `0` and `n-1` are **global**: they attend every key;
* every other query block `q` attends **5 + r key blocks**, in the slot order this module uses
  everywhere: `[0 | q-1, q, q+1 | r random blocks | n-1]` (the first global block, a 3-block
  sliding window, `r = num_random_blocks` random blocks, the last global block). For `q = 1` the
  window already holds block 0 and for `q = n-2` it already holds block `n-1`, so that duplicated
  global slot is marked invalid (`AttentionPlan.key_block_valid`): the reference attends those
  rows' globals once, as `[0, 1, 2 | n-1 | random]` and `[0 | n-3, n-2, n-1 | random]`.

`plan_attention` makes every per-call decision as data, never by rewriting a module:

* right-padding to a multiple of the block size (`AttentionPlan.pad_length`);
* block-sparse or full attention: full attention whenever the **unpadded** length is at most
  `(5 + 2 r) * block_size` tokens, the reference's threshold (704 tokens with the defaults; with
  block 8 and r = 2, 72 tokens run full attention and 73 run block-sparse). A later, longer input is
  block-sparse again: nothing is remembered except which warnings were already shown;
* the random key blocks, an `int32` array `[layers, heads, n-2, r]` (rows are query blocks
  `1 .. n-2`), under a policy:

  - ``"reference"`` (default) reproduces the reference library. In training each layer's plan comes
    from a generator seeded with the layer index (the reference's `np.random.seed(layer_idx)` before
    every forward, so the plan is the same at every step); the "paper-era" generator is used at the
    padded lengths 1024, 3072 and 4096 and the segment-plan generator otherwise. In eval every
    random block is block 0 (the all-zero plan), so block 0 is counted `1 + r` times in the
    softmax of query blocks `1 .. n-2` (see `dense_multiplicity`).
  - ``"fixed"``: the reference's seeded training plan in training **and** eval, as the original
    paper code (one pattern per layer, drawn with the layer index as seed).
  - ``"resample"``: a fresh plan at every call, drawn with the same generators from the
    `numpy.random.Generator` the caller passes, layer after layer.

numpy's global random state is never touched: the seeded plans use private
`numpy.random.RandomState(layer)` instances, which draw exactly the stream that
`np.random.seed(layer)` followed by `np.random.permutation(...)` draws.

The plan also carries `key_blocks`, `int32 [layers, heads, n-2, 5 + r]`: for each non-global query
block, the ids of the key blocks it attends, in slot order. A framework gathers its blocked keys and
values with it (one gather, no Python loop over blocks) and masks the invalid slots. Masking is by
key only: gather the blocked attention mask with the same ids and add the reference's -10000 penalty
where a key is padding or a slot is invalid (in float32 such a term contributes exactly 0 as soon as
one key of the row is kept). The reference also masks some slots by query; that only changes rows of
padding queries, whose outputs the model multiplies by 0.

`dense_multiplicity` / `dense_mask` expand a plan to the token-level `[heads, L, L]` pattern it
means (the test oracle and the source of the pictures drawn by `aviary plan`).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from aviary.core.configs import ATTENTION_TYPES

POLICIES = ("reference", "fixed", "resample")
NUM_GLOBAL_BLOCKS = 2  # the first and the last block
WINDOW_BLOCKS = 3  # q-1, q, q+1
# Padded lengths at which the reference uses its "old plan used in paper" generator. The original
# Google code also lists 2048; the reference library does not, so 2048 uses the segment plan.
PAPER_ERA_LENGTHS = frozenset({1024, 3072, 4096})
# The paper-era generator draws random blocks only from the first this-many tokens.
PAPER_ERA_LAST_INDEX = 1024


# The reference's additive penalty for masked keys and invalid slots in block-sparse mode (full
# attention uses the dtype's minimum instead). In float32, exp(score - 10000) is exactly 0 next to
# any kept key.
MASK_PENALTY = -10000.0


class BlockSparseWarning(UserWarning):
    """BigBird attention padded the input or fell back to full attention (shown once per reason)."""


class PermutationSource(Protocol):
    """Anything with numpy's `permutation`: `np.random.RandomState` or `np.random.Generator`."""

    def permutation(self, x: np.ndarray) -> np.ndarray: ...


# ------------------------------------------------------------------------------------------------
# Layout, padding and the sparse-or-full decision


def _check_int(name: str, value: object, minimum: int, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}{why}, got {value!r}")


def check_layout(block_size: int, num_random_blocks: int) -> None:
    """Raise a `ValueError` naming the field if the block layout is impossible."""
    _check_int("block_size", block_size, 1)
    _check_int(
        "num_random_blocks",
        num_random_blocks,
        1,
        " (BigBird's block-sparse layout needs at least one random block per query block)",
    )


def padding_length(seq_len: int, block_size: int) -> int:
    """Tokens to append on the right so that `seq_len` becomes a multiple of `block_size`."""
    _check_int("seq_len", seq_len, 1)
    _check_int("block_size", block_size, 1)
    return (block_size - seq_len % block_size) % block_size


def longest_full_attention_length(block_size: int, num_random_blocks: int) -> int:
    """The longest unpadded input that runs full attention: `(5 + 2 r) * block_size` tokens.

    Shorter inputs would attend (almost) everything anyway: 2 global + 3 window blocks plus the
    random blocks of query blocks drawn from both sides. This is the reference's threshold.
    """
    check_layout(block_size, num_random_blocks)
    return (NUM_GLOBAL_BLOCKS + WINDOW_BLOCKS + 2 * num_random_blocks) * block_size


def uses_block_sparse(seq_len: int, block_size: int, num_random_blocks: int) -> bool:
    """Whether an unpadded input of `seq_len` tokens runs block-sparse (else full) attention."""
    _check_int("seq_len", seq_len, 1)
    return seq_len > longest_full_attention_length(block_size, num_random_blocks)


# ------------------------------------------------------------------------------------------------
# The reference's random-block generators. Both draw with `permutation` in a fixed order, so the
# same seeded `RandomState` gives the same arrays as the reference's global-state draws.


def _store_draw(out_row: np.ndarray, chosen: np.ndarray, where: str) -> None:
    """Write a row's drawn blocks with the reference's numpy assignment semantics.

    A single legal candidate fills every column (the same random block repeated); any other
    shortfall makes the reference fail, and we raise a clear error instead.
    """
    if len(chosen) not in (1, out_row.shape[-1]):
        raise ValueError(
            f"{where}: only {len(chosen)} legal random blocks for {out_row.shape[-1]} slots; "
            "use fewer random blocks or a longer sequence"
        )
    out_row[...] = chosen


def paper_era_random_blocks(
    num_blocks: int,
    block_size: int,
    num_random_blocks: int,
    num_heads: int,
    *,
    max_position_embeddings: int,
    source: PermutationSource,
) -> np.ndarray:
    """The reference's "old plan used in paper" generator; `int32 [heads, num_blocks-2, r]`.

    Per head it plans as if the input had `max_position_embeddings` tokens (`N` blocks), drawing
    every row of that long plan, then keeps the first `num_blocks - 2` rows. Random blocks come
    only from blocks `1 .. last`, `last = 1024 // block_size - 1` (when `1024 > 2 * block_size`),
    i.e. the first 1024 tokens. Rows `N-3` and `N-2` do not exclude their window (a known quirk of
    the original code, kept by the reference), and the last global block can be drawn when it lies
    within the first 1024 tokens (length 1024): those keys are then counted twice.
    """
    check_layout(block_size, num_random_blocks)
    plan_blocks = max_position_embeddings // block_size
    if plan_blocks < num_blocks:
        raise ValueError(
            f"the paper-era plan for {num_blocks * block_size} tokens needs "
            f"max_position_embeddings >= {num_blocks * block_size}, got {max_position_embeddings}"
        )
    last = plan_blocks - 1
    if 2 * block_size < PAPER_ERA_LAST_INDEX:
        last = PAPER_ERA_LAST_INDEX // block_size - 1
    # middle[k] is key block k + 1: the candidates 1 .. N-2 (the slices clip like the reference's).
    middle = np.arange(1, plan_blocks - 1, dtype=np.int32)

    def candidates(row: int) -> np.ndarray:
        if row == 1:
            return middle[2:last]  # blocks 3 .. last
        if row == 2:
            return middle[3:last]  # blocks 4 .. last
        if row in (plan_blocks - 3, plan_blocks - 2):
            return middle[:last]  # blocks 1 .. last, window included (the original's quirk)
        if row - 2 > last:
            return middle[:last]
        if row + 1 == last:
            return middle[: row - 2]  # blocks 1 .. row-2
        return np.concatenate((middle[: row - 2], middle[row + 1 : last]))  # skip row-1 .. row+1

    out = np.zeros((num_heads, plan_blocks - 2, num_random_blocks), dtype=np.int32)
    for head in range(num_heads):
        for row in range(1, plan_blocks - 1):
            chosen = source.permutation(candidates(row))[:num_random_blocks]
            _store_draw(out[head, row - 1], chosen, f"paper-era plan, query block {row}")
    return out[:, : num_blocks - 2]


def segment_plan(
    padded_length: int, block_size: int, num_random_blocks: int
) -> tuple[list[int], list[int]]:
    """The reference's random-attention plan: (segment end in tokens, random blocks from it) pairs.

    With `n` blocks: `([(2r+5) b, L], [r, 0])` if `2r+5 < n`; else
    `([(r+5) b, L], [r//2, r - r//2])` if `r+5 < n`; else `([L], [r])`. With the first plan (the
    only one the planner reaches) every random block lies in the first `2r+5` blocks (deliberate,
    per the paper's first author).
    """
    check_layout(block_size, num_random_blocks)
    r, num_blocks = num_random_blocks, padded_length // block_size
    if 2 * r + 5 < num_blocks:
        return [(2 * r + 5) * block_size, padded_length], [r, 0]
    if r + 5 < num_blocks:
        return [(r + 5) * block_size, padded_length], [r // 2, r - r // 2]
    return [padded_length], [r]


def _segment_draw_order(
    segment_ends: list[int], segment_counts: list[int]
) -> list[tuple[int, int]]:
    """(query block, segment) pairs in the order the reference draws them (heads vary fastest).

    For each segment k in turn: rows of earlier segments draw their share from segment k, then the
    rows of segment k draw from each earlier segment, then from segment k itself. The last global
    row is drawn too (and later discarded): it consumes random numbers.
    """
    starts = [0, *segment_ends[:-1]]
    order: list[tuple[int, int]] = []
    for k in range(len(segment_ends)):
        if k > 0:
            if segment_counts[k] > 0:
                order += [(row, k) for row in range(1, segment_ends[k - 1])]
            for earlier in range(k):
                if segment_counts[earlier] > 0:
                    order += [(row, earlier) for row in range(starts[k], segment_ends[k])]
        if segment_counts[k] > 0:
            order += [(row, k) for row in range(max(starts[k], 1), segment_ends[k])]
    return order


def _draw_outside_window(
    source: PermutationSource, query_block: int, start: int, end: int, count: int
) -> np.ndarray:
    """Up to `count` random key blocks from `start .. end-1`, outside the window and the globals.

    Illegal: `q-1, q, q+1`, block 0 and the segment's last block `end-1`; also `end-2` for q = 1 and
    block 1 for `q = end-2`. The first legal blocks of one permutation are kept, in order.
    """
    permuted = source.permutation(np.arange(start, end, dtype=np.int32))
    illegal = {query_block - 1, query_block, query_block + 1, 0, end - 1}
    if query_block == 1:
        illegal.add(end - 2)
    if query_block == end - 2:
        illegal.add(1)
    # Segments are a few blocks long: a Python scan is faster than np.isin here.
    legal = [block for block in permuted.tolist() if block not in illegal]
    return np.array(legal[:count], dtype=np.int32)


def segment_plan_random_blocks(
    num_blocks: int,
    block_size: int,
    num_random_blocks: int,
    num_heads: int,
    *,
    source: PermutationSource,
) -> np.ndarray:
    """The reference's segment-plan generator (`segment_plan`, row draws); `int32 [heads, n-2, r]`.

    Heads draw independently (the head loop is innermost). Every random block lies outside its
    query block's window and outside the global blocks.
    """
    ends_tokens, counts = segment_plan(num_blocks * block_size, block_size, num_random_blocks)
    ends = [length // block_size for length in ends_tokens]
    starts = [0, *ends[:-1]]
    first_column = np.cumsum([0, *counts])  # segment k fills columns first_column[k] : [k+1]
    out = np.zeros((num_heads, num_blocks, num_random_blocks), dtype=np.int32)
    for row, k in _segment_draw_order(ends, counts):
        columns = slice(first_column[k], first_column[k + 1])
        for head in range(num_heads):
            chosen = _draw_outside_window(source, row, starts[k], ends[k], counts[k])
            _store_draw(out[head, row, columns], chosen, f"segment plan, query block {row}")
    return out[:, 1 : num_blocks - 1]  # drop the global rows 0 and n-1


def reference_random_blocks(
    padded_length: int,
    block_size: int,
    num_random_blocks: int,
    num_heads: int,
    *,
    max_position_embeddings: int,
    source: PermutationSource,
) -> np.ndarray:
    """One layer's plan with the generator the reference picks for this padded length."""
    num_blocks = padded_length // block_size
    if padded_length in PAPER_ERA_LENGTHS:
        return paper_era_random_blocks(
            num_blocks,
            block_size,
            num_random_blocks,
            num_heads,
            max_position_embeddings=max_position_embeddings,
            source=source,
        )
    return segment_plan_random_blocks(
        num_blocks, block_size, num_random_blocks, num_heads, source=source
    )


@functools.lru_cache(maxsize=256)
def _seeded_layer_plan(
    padded_length: int,
    block_size: int,
    num_random_blocks: int,
    num_heads: int,
    layer: int,
    max_pos: int,
) -> np.ndarray:
    # What the reference draws after `np.random.seed(layer)`, from a private RandomState.
    plan = reference_random_blocks(
        padded_length,
        block_size,
        num_random_blocks,
        num_heads,
        max_position_embeddings=max_pos,
        source=np.random.RandomState(layer),
    )
    plan.setflags(write=False)
    return plan


def layer_random_blocks(
    padded_length: int,
    block_size: int,
    num_random_blocks: int,
    num_heads: int,
    *,
    layer: int,
    policy: str = "reference",
    training: bool = False,
    rng: np.random.Generator | None = None,
    max_position_embeddings: int = 4096,
) -> np.ndarray:
    """One layer's random key blocks under `policy`: `int32 [heads, n-2, r]`, rows 1..n-2."""
    check_policy(policy, rng)
    check_layout(block_size, num_random_blocks)
    _check_int("num_heads", num_heads, 1)
    _check_int("layer", layer, 0)
    if padded_length % block_size:
        raise ValueError(
            f"padded_length {padded_length} is not a multiple of block_size {block_size}"
        )
    num_blocks = padded_length // block_size
    if policy == "resample":
        return reference_random_blocks(
            padded_length,
            block_size,
            num_random_blocks,
            num_heads,
            max_position_embeddings=max_position_embeddings,
            source=rng,
        )
    if policy == "reference" and not training:
        return np.zeros((num_heads, max(num_blocks - 2, 0), num_random_blocks), dtype=np.int32)
    return _seeded_layer_plan(
        padded_length, block_size, num_random_blocks, num_heads, layer, max_position_embeddings
    )


def check_policy(policy: str, rng: np.random.Generator | None) -> None:
    """Raise a clear `ValueError` for an unknown policy or an `rng` that does not fit it."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}; got {policy!r}")
    if policy == "resample" and not isinstance(rng, np.random.Generator):
        raise ValueError(
            "policy 'resample' needs rng=numpy.random.Generator (e.g. np.random.default_rng(0))"
        )
    if policy != "resample" and rng is not None:
        raise ValueError(f"rng is only used by policy 'resample', not {policy!r}")


# ------------------------------------------------------------------------------------------------
# Which key blocks each query block attends (what the frameworks gather with)


def key_block_ids(random_blocks: np.ndarray, num_blocks: int) -> np.ndarray:
    """Key-block ids for query blocks `1 .. n-2`, in slot order `[0 | q-1, q, q+1 | random | n-1]`.

    `random_blocks` is `[..., n-2, r]`; the result is `int32 [..., n-2, 5 + r]`.
    """
    *leading, rows, _ = random_blocks.shape
    if rows != num_blocks - 2:
        raise ValueError(
            f"random_blocks has {rows} rows, expected num_blocks - 2 = {num_blocks - 2}"
        )
    query = np.arange(1, num_blocks - 1, dtype=np.int32)
    before = np.stack([np.zeros_like(query), query - 1, query, query + 1], axis=-1)  # [n-2, 4]
    after = np.full((rows, 1), num_blocks - 1, dtype=np.int32)  # [n-2, 1]
    return np.concatenate(
        [
            np.broadcast_to(before, (*leading, rows, 4)),
            random_blocks.astype(np.int32, copy=False),
            np.broadcast_to(after, (*leading, rows, 1)),
        ],
        axis=-1,
    )  # [..., n-2, 5 + r]


def key_block_valid(num_blocks: int, num_random_blocks: int) -> np.ndarray:
    """`bool [n-2, 5 + r]`: False for the global slot that query blocks 1 and n-2 hold twice.

    Query block 1's window already contains block 0 and query block n-2's window already contains
    block n-1; the reference attends those once, so a framework must mask these two slots out.
    """
    valid = np.ones(
        (num_blocks - 2, WINDOW_BLOCKS + NUM_GLOBAL_BLOCKS + num_random_blocks), dtype=bool
    )
    valid[0, 0] = False
    valid[-1, -1] = False
    return valid


# ------------------------------------------------------------------------------------------------
# The per-call plan


@dataclass(frozen=True, eq=False)
class AttentionPlan:
    """Everything a framework needs for one BigBird attention call (all layers of one forward).

    Under full attention (`use_block_sparse` False) there is no padding, `num_blocks` is 0 and the
    index arrays have zero rows.
    """

    seq_len: int  # unpadded tokens in this call
    block_size: int
    num_random_blocks: int
    num_heads: int
    num_layers: int
    policy: str
    training: bool
    use_block_sparse: bool
    pad_length: int  # tokens appended on the right (0 under full attention)
    padded_length: int  # seq_len + pad_length
    num_blocks: int  # padded_length // block_size (0 under full attention)
    random_blocks: np.ndarray  # int32 [layers, heads, num_blocks-2, r]; rows: query blocks 1..n-2
    key_blocks: np.ndarray  # int32 [layers, heads, num_blocks-2, 5+r]; see key_block_ids
    key_block_valid: np.ndarray  # bool [num_blocks-2, 5+r]; see key_block_valid

    @property
    def keys_per_query_block(self) -> int:
        """Key blocks gathered for each non-global query block: 2 global + 3 window + r random."""
        return NUM_GLOBAL_BLOCKS + WINDOW_BLOCKS + self.num_random_blocks

    @property
    def slot_penalty(self) -> np.ndarray:
        """float32 `[n-2, 5+r]`: `MASK_PENALTY` on the slots the plan marks invalid, else 0.
        Frameworks add it to the gathered scores (and the key penalty of padding keys)."""
        return _read_only((~self.key_block_valid).astype(np.float32) * np.float32(MASK_PENALTY))

    @property
    def generator(self) -> str:
        """The generator of the random blocks: 'paper-era', 'segment-plan', 'all-zero' or 'none'."""
        if not self.use_block_sparse:
            return "none"
        if self.policy == "reference" and not self.training:
            return "all-zero"
        return "paper-era" if self.padded_length in PAPER_ERA_LENGTHS else "segment-plan"


_warned_reasons: set[str] = set()


def _warn_once(reason: str, message: str) -> None:
    # Once per process per reason, whatever the lengths in the message.
    if reason not in _warned_reasons:
        _warned_reasons.add(reason)
        warnings.warn(message, BlockSparseWarning, stacklevel=3)


def plan_attention(
    seq_len: int,
    *,
    block_size: int,
    num_random_blocks: int,
    num_heads: int,
    num_layers: int = 1,
    policy: str = "reference",
    training: bool = False,
    rng: np.random.Generator | None = None,
    max_position_embeddings: int = 4096,
    warn: bool = True,
) -> AttentionPlan:
    """Plan BigBird attention for one call on an unpadded input of `seq_len` tokens.

    Layer `i` of the plan is layer `i` of the model (the reference seeds layer `i` with `i`).
    `training` only matters for policy "reference"; "resample" draws layer after layer from `rng`.
    With `warn`, padding and the fall-back to full attention each give a `BlockSparseWarning` once
    per process.
    """
    _check_int("seq_len", seq_len, 1)
    check_layout(block_size, num_random_blocks)
    _check_int("num_heads", num_heads, 1)
    _check_int("num_layers", num_layers, 1)
    _check_int("max_position_embeddings", max_position_embeddings, 1)
    check_policy(policy, rng)

    r = num_random_blocks
    block_sparse = uses_block_sparse(seq_len, block_size, r)
    if block_sparse:
        pad = padding_length(seq_len, block_size)
        if pad and warn:
            _warn_once(
                "padding",
                "BigBird block-sparse attention pads inputs on the right to a multiple of "
                f"block_size ({seq_len} -> {seq_len + pad} tokens); outputs are unpadded again.",
            )
        num_blocks = (seq_len + pad) // block_size
        random_blocks = np.stack(
            [
                layer_random_blocks(
                    seq_len + pad,
                    block_size,
                    r,
                    num_heads,
                    layer=layer,
                    policy=policy,
                    training=training,
                    rng=rng,
                    max_position_embeddings=max_position_embeddings,
                )
                for layer in range(num_layers)
            ]
        )  # [layers, heads, n-2, r]
        key_blocks = np.ascontiguousarray(key_block_ids(random_blocks, num_blocks))
        key_valid = key_block_valid(num_blocks, r)
    else:
        if warn:
            _warn_once(
                "full_attention",
                "BigBird block-sparse attention needs more than (5 + 2 * num_random_blocks) * "
                f"block_size = {longest_full_attention_length(block_size, r)} tokens; {seq_len} "
                "tokens use full attention for this call (longer inputs are block-sparse again).",
            )
        pad = num_blocks = 0
        random_blocks = np.zeros((num_layers, num_heads, 0, r), dtype=np.int32)
        key_blocks = np.zeros((num_layers, num_heads, 0, 5 + r), dtype=np.int32)
        key_valid = np.zeros((0, 5 + r), dtype=bool)
    return AttentionPlan(
        seq_len=seq_len,
        block_size=block_size,
        num_random_blocks=r,
        num_heads=num_heads,
        num_layers=num_layers,
        policy=policy,
        training=training,
        use_block_sparse=block_sparse,
        pad_length=pad,
        padded_length=seq_len + pad,
        num_blocks=num_blocks,
        random_blocks=_read_only(random_blocks),
        key_blocks=_read_only(key_blocks),
        key_block_valid=_read_only(key_valid),
    )


def plan_for_config(
    config: object,
    seq_len: int,
    *,
    training: bool = False,
    policy: str = "reference",
    rng: np.random.Generator | None = None,
    warn: bool = True,
) -> AttentionPlan:
    """`plan_attention` with the sizes of a `BigBirdConfig` or `BigBirdPegasusConfig` (encoder)."""
    return plan_attention(
        seq_len,
        block_size=config.block_size,
        num_random_blocks=config.num_random_blocks,
        num_heads=config.num_attention_heads,
        num_layers=config.num_hidden_layers,
        policy=policy,
        training=training,
        rng=rng,
        max_position_embeddings=config.max_position_embeddings,
        warn=warn,
    )


# ------------------------------------------------------------------------------------------------
# The per-call controller: one per model with a block-sparse encoder, in every framework


def check_attention_type(attention_type: str, *, decoder: bool = False) -> None:
    """Raise `ValueError` for an unknown attention type, or for block-sparse attention in a
    `decoder` (a causal or cross-attending stack), which block-sparse attention cannot be."""
    if attention_type not in ATTENTION_TYPES:
        raise ValueError(
            f"attention_type={attention_type!r} is not one of {', '.join(ATTENTION_TYPES)}"
        )
    if attention_type == "block_sparse" and decoder:
        raise ValueError(
            "BigBird as a decoder (is_decoder or add_cross_attention) needs "
            "attention_type='original_full': block-sparse attention is neither causal nor "
            "cross-attention. Build the config with attention_type='original_full' (or pass "
            "attention_type='original_full' to from_pretrained)."
        )


class BlockSparseController:
    """What a BigBird encoder decides per call, outside its layers: the attention type, the
    random-block policy and its generator, and the plan of each call.

    `decoder` (default: the config's `is_decoder or add_cross_attention`) forbids block-sparse
    attention. Every framework's model holds one and asks it for the plan of each forward.
    """

    def __init__(self, config: object, *, decoder: bool | None = None) -> None:
        self.config = config
        if decoder is None:
            decoder = bool(
                getattr(config, "is_decoder", False)
                or getattr(config, "add_cross_attention", False)
            )
        self.decoder = decoder
        self.attention_type = "original_full"
        self.set_attention_type(config.attention_type)
        self.policy = "reference"
        self.rng: np.random.Generator | None = None

    def set_attention_type(self, attention_type: str) -> None:
        """`"block_sparse"` or `"original_full"` for later calls (the config is left as it is)."""
        check_attention_type(attention_type, decoder=self.decoder)
        self.attention_type = attention_type

    def set_policy(self, policy: str = "reference", rng: np.random.Generator | None = None) -> None:
        """How block-sparse calls draw their random key blocks (see `POLICIES`)."""
        check_policy(policy, rng)
        self.policy = policy
        self.rng = rng

    def plan(
        self,
        seq_len: int,
        *,
        training: bool,
        past_length: int = 0,
        attention_mask_rank: int | None = None,
        has_encoder_hidden_states: bool = False,
        warn: bool = True,
    ) -> AttentionPlan | None:
        """The block-sparse plan of a call on `seq_len` new tokens, or None for full attention.

        Under the "resample" policy each call draws from the generator (so calling this yourself
        advances it too). A call with a cache (`past_length > 0`) is a decoder step: full attention.
        `warn=False` silences the padding and fall-back warnings (e.g. for a model's dummy build).
        """
        if self.attention_type != "block_sparse":
            return None
        if has_encoder_hidden_states:
            raise ValueError(
                "encoder_hidden_states need cross-attention, which BigBird only has with "
                "attention_type='original_full'"
            )
        if past_length:
            return None
        plan = plan_for_config(
            self.config, seq_len, training=training, policy=self.policy, rng=self.rng, warn=warn
        )
        if not plan.use_block_sparse:
            return None
        if attention_mask_rank is not None and attention_mask_rank != 2:
            raise ValueError(
                "block-sparse attention takes a [batch, sequence] attention_mask, got a mask of "
                f"rank {attention_mask_rank}"
            )
        return plan


def unpad_outputs(
    plan: AttentionPlan | None, last_hidden_state: Any, hidden_states: Any, attentions: Any
) -> tuple[Any, Any, Any]:
    """Cut every per-token output of a padded block-sparse call back to the input length:
    `last_hidden_state` `[B, L, H]`, each of `hidden_states` `[B, L, H]` and each of `attentions`
    `[B, N, L, L]`. Plain slicing, so any framework's arrays work; None passes through."""
    if plan is None or not plan.pad_length:
        return last_hidden_state, hidden_states, attentions
    length = plan.seq_len
    last_hidden_state = last_hidden_state[:, :length]
    if hidden_states is not None:
        hidden_states = tuple(h[:, :length] for h in hidden_states)
    if attentions is not None:
        # A layer skipped by layerdrop has no attention map (None).
        attentions = tuple(None if a is None else a[:, :, :length, :length] for a in attentions)
    return last_hidden_state, hidden_states, attentions


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


# ------------------------------------------------------------------------------------------------
# The dense pattern a plan means (test oracle, pictures)


def block_multiplicity(plan: AttentionPlan, layer: int = 0) -> np.ndarray:
    """`int32 [heads, n, n]`: how often query block q counts key block k in its softmax.

    Global rows count every block once. A count above 1 happens when a random block repeats a
    window or global block: always in the reference's eval plan (block 0, `1 + r` times) and, in
    training, with the paper-era plan (e.g. the last block at length 1024).
    Full-attention plans have no blocks: use `dense_multiplicity`.
    """
    if not plan.use_block_sparse:
        raise ValueError("a full-attention plan has no blocks; use dense_multiplicity")
    _check_int("layer", layer, 0)
    if layer >= plan.num_layers:
        raise ValueError(f"layer must be < num_layers = {plan.num_layers}, got {layer}")
    n = plan.num_blocks
    ids = plan.key_blocks[layer]  # [heads, n-2, 5+r]
    one_hot = ids[..., None] == np.arange(n)  # [heads, n-2, 5+r, n]
    counts = np.sum(
        one_hot & plan.key_block_valid[..., None], axis=-2, dtype=np.int32
    )  # [heads, n-2, n]
    global_row = np.ones((plan.num_heads, 1, n), dtype=np.int32)
    return np.concatenate([global_row, counts, global_row], axis=1)  # [heads, n, n]


def dense_multiplicity(
    plan: AttentionPlan, layer: int = 0, attention_mask: np.ndarray | None = None
) -> np.ndarray:
    """`int32 [heads, L, L]` (L = `plan.padded_length`): how often each query counts each key.

    This is exactly the reference's softmax support, duplicates included (a boolean mask cannot say
    that the eval plan counts block 0 `1 + r` times). Keys are masked (count 0) where
    `attention_mask` (`[seq_len]` or `[padded_length]`, 1 = keep) is 0 and at the padding the plan
    adds. Query rows of padding keep their pattern: the model zeroes their outputs.
    """
    if layer >= plan.num_layers or layer < 0:
        raise ValueError(f"layer must be in 0 .. {plan.num_layers - 1}, got {layer}")
    length = plan.padded_length
    if plan.use_block_sparse:
        counts = block_multiplicity(plan, layer)
        # Each block entry covers block_size x block_size tokens: [heads, L, L].
        counts = np.repeat(np.repeat(counts, plan.block_size, axis=1), plan.block_size, axis=2)
    else:
        counts = np.ones((plan.num_heads, length, length), dtype=np.int32)
    keep = np.zeros(length, dtype=bool)
    keep[: plan.seq_len] = True
    if attention_mask is not None:
        mask = np.asarray(attention_mask)
        if mask.ndim != 1 or mask.shape[0] not in (plan.seq_len, length):
            raise ValueError(
                f"attention_mask must have shape [{plan.seq_len}] or [{length}], got {mask.shape}"
            )
        keep[: mask.shape[0]] &= mask != 0
    return counts * keep  # [heads, L, L]; masked keys count 0


def dense_mask(
    plan: AttentionPlan, layer: int = 0, attention_mask: np.ndarray | None = None
) -> np.ndarray:
    """`bool [heads, L, L]`: which keys each query attends (`dense_multiplicity(...) > 0`)."""
    return dense_multiplicity(plan, layer, attention_mask) > 0
