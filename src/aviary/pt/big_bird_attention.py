"""BigBird block-sparse attention in PyTorch: a few large batched tensor operations over a plan.

The plan (`aviary.core.block_sparse.AttentionPlan`) says which key blocks every query block
attends. This module turns it into tensors once per forward (`BlockSparseIndices`) and computes
attention from them:

* the two global query blocks (`0` and `n-1`) attend every key: one fused
  `scaled_dot_product_attention` call (or matmul + softmax when the probabilities are wanted);
* the `n-2` other query blocks attend `5 + r` key blocks each, in the plan's slot order
  `[0 | q-1, q, q+1 | r random | n-1]`: one `index_select` gathers those key and value blocks for
  every (head, query block) at once, one batched matmul gives the scores, one softmax runs over the
  concatenated band, one batched matmul gives the context. A key block listed twice (the
  reference's eval plan lists block 0 `1 + r` times) is counted twice, as in the reference.

Masking follows the reference: `-10000` is added to the scores of padding keys and of the slots the
plan marks invalid; the context of padding queries is multiplied by 0. There is no dropout on the
attention probabilities in block-sparse mode (as the reference and the original code).

`flex_block_sparse_attention` is the fast inference kernel (`attn_implementation="flex_attention"`):
the same attention as one compiled FlexAttention call over a `BlockMask` listing every query
block's key blocks, so no key or value block is copied and no score matrix is kept. A block mask
cannot count a key block twice; the one duplicate the reference's plans make in eval (block 0,
`1 + r` times in every non-global row) becomes `log(1 + r)` added to those scores, which is the same
softmax. Plans with other duplicates (some training plans) use the gather kernel.

Shapes: B batch · N heads · L padded tokens · D head dim · b block size · n = L / b blocks ·
S = 5 + r key blocks per non-global query block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from aviary.core.block_sparse import (
    MASK_PENALTY,
    AttentionPlan,
    BlockSparseController,
    block_multiplicity,
)


class BlockSparseModelMixin:
    """The attention settings of a model whose (encoder) self-attention may be block-sparse, over
    that stack's `BlockSparseController` (`block_sparse_controller()`)."""

    def block_sparse_controller(self) -> BlockSparseController:
        """The controller of the block-sparse stack (default: the base model's `block_sparse`)."""
        return self.base_model.block_sparse

    def set_attention_type(self, attention_type: str) -> None:
        """Choose `"block_sparse"` or `"original_full"` (encoder) attention for later calls (the
        config is left as it is). Block-sparse calls still fall back to full attention on short
        inputs."""
        self.block_sparse_controller().set_attention_type(attention_type)

    def set_block_sparse_policy(
        self, policy: str = "reference", rng: np.random.Generator | None = None
    ) -> None:
        """Choose how block-sparse calls draw their random key blocks.

        `"reference"` (default; the reference library's numbers: layer-seeded plans in training,
        the all-zero plan in eval), `"fixed"` (the seeded plan in training and eval) or
        `"resample"` (a fresh plan per call from `rng`, a `numpy.random.Generator`).
        """
        self.block_sparse_controller().set_policy(policy, rng)

    def plan(self, seq_len: int) -> AttentionPlan | None:
        """The block-sparse plan of a call on `seq_len` tokens in the current train/eval mode, or
        None for full attention. Under the "resample" policy each call draws from the policy's
        generator (so calling this yourself advances that generator too)."""
        return self.block_sparse_controller().plan(seq_len, training=self.training)


@dataclass(frozen=True, eq=False)
class BlockSparseIndices:
    """One forward's plan as tensors, shared by every layer.

    `key_blocks`: long `[layers, N, n-2, S]`, the key block of every slot;
    `slot_penalty`: `[n-2, S]`, `MASK_PENALTY` on the slots the plan marks invalid, else 0.
    """

    plan: AttentionPlan
    key_blocks: torch.Tensor
    slot_penalty: torch.Tensor
    # FlexAttention layouts of this forward, by the layer's plan rows (layers with the same rows,
    # e.g. all of them in eval, share one).
    _flex_layouts: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_plan(
        cls, plan: AttentionPlan, device: torch.device, dtype: torch.dtype
    ) -> BlockSparseIndices:
        if not plan.use_block_sparse:
            raise ValueError("a full-attention plan has no blocks")
        key_blocks = torch.tensor(plan.key_blocks, dtype=torch.long, device=device)  # a copy
        slot_penalty = torch.tensor(plan.slot_penalty, dtype=dtype, device=device)
        return cls(plan, key_blocks, slot_penalty)

    @property
    def block_size(self) -> int:
        return self.plan.block_size

    def flex_layout(self, layer: int, key_keep: torch.Tensor) -> FlexLayout | None:
        """The layer's `FlexLayout` for this forward's `key_keep` `[B, L]`, or None when its plan
        counts a key block twice in a way a block mask plus `log(1 + r)` cannot say."""
        rows = self.plan.key_blocks[layer].tobytes()
        if rows not in self._flex_layouts:
            self._flex_layouts[rows] = FlexLayout.build(self.plan, layer, key_keep)
        return self._flex_layouts[rows]


def first_block_extra_count(counts: np.ndarray) -> int | None:
    """For a plan's block multiplicity `[N, n, n]`: how many extra times every non-global query
    block counts key block 0, when that is the plan's only duplicate (0 when it has none);
    None when the plan has any other duplicate."""
    extra = counts - (counts > 0)  # [N, n, n]
    first_block = extra[:, 1:-1, 0]  # [N, n-2]: the non-global rows' extra counts of block 0
    elsewhere = extra.copy()
    elsewhere[:, 1:-1, 0] = 0
    if elsewhere.any() or first_block.min() != first_block.max():
        return None
    return int(first_block.flat[0])


@dataclass(frozen=True, eq=False)
class FlexLayout:
    """One layer's block-sparse pattern as a FlexAttention `BlockMask` `[B, N, n, n]`.

    Key blocks holding a masked key (padding) are "partial" blocks whose keys go through the mask;
    the others are "full" blocks computed without it. `first_block_bonus` is `log(1 + extra)` for
    scores of non-global queries against block 0 (0.0 when the plan counts it once).
    """

    block_mask: object  # torch.nn.attention.flex_attention.BlockMask
    first_block_bonus: float

    @classmethod
    def build(cls, plan: AttentionPlan, layer: int, key_keep: torch.Tensor) -> FlexLayout | None:
        from torch.nn.attention.flex_attention import BlockMask

        counts = block_multiplicity(plan, layer)  # [N, n, n]
        extra = first_block_extra_count(counts)
        if extra is None:
            return None
        b, n, device = plan.block_size, plan.num_blocks, key_keep.device
        batch = key_keep.shape[0]
        present = torch.from_numpy(counts > 0).to(device)  # [N, n, n]
        keep = key_keep.view(batch, n, b) != 0  # [B, n, b]
        whole = keep.all(dim=-1)[:, None, None, :]  # [B, 1, 1, n]: block without masked keys
        partial, full = present & ~whole, present & whole  # [B, N, n, n]

        def block_lists(member: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            # Count and ids of the member key blocks of each (example, head, query block),
            # members first: a stable sort of "not a member".
            number = member.sum(dim=-1, dtype=torch.int32)  # [B, N, n]
            ids = torch.argsort((~member).to(torch.int8), dim=-1, stable=True)  # [B, N, n, n]
            return number, ids.to(torch.int32)

        key_keep_flags = keep.view(batch, n * b)  # [B, L]

        def keep_keys(example, head, query, key):
            return key_keep_flags[example, key]

        block_mask = BlockMask.from_kv_blocks(
            *block_lists(partial),
            *block_lists(full),
            BLOCK_SIZE=b,
            mask_mod=keep_keys,
            seq_lengths=(n * b, n * b),
        )
        return cls(block_mask, math.log(1 + extra))


_compiled_flex_attention = None


def flex_block_sparse_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    layout: FlexLayout,
    key_keep: torch.Tensor,
    block_size: int,
) -> torch.Tensor:
    """`block_sparse_attention`'s context `[B, N, L, D]` from one compiled FlexAttention call.

    query, key, value: `[B, N, L, D]`; key_keep: `[B, L]`. Inference only on CPU (FlexAttention has
    no CPU backward); the first call at a new shape compiles (seconds).
    """
    global _compiled_flex_attention
    if _compiled_flex_attention is None:
        from torch.nn.attention.flex_attention import flex_attention

        _compiled_flex_attention = torch.compile(flex_attention)
    length = query.shape[2]
    bonus, b = layout.first_block_bonus, block_size

    def count_first_block(score, example, head, query_index, key_index):
        # Non-global queries (not in blocks 0 and n-1) count key block 0 `1 + extra` times.
        repeated = (key_index < b) & (query_index >= b) & (query_index < length - b)
        return torch.where(repeated, score + bonus, score)

    context = _compiled_flex_attention(
        query,
        key,
        value,
        score_mod=count_first_block if bonus else None,
        block_mask=layout.block_mask,
        scale=1.0 / math.sqrt(query.shape[-1]),
    )
    return context * key_keep.to(context.dtype)[:, None, :, None]  # padding queries give 0


def _global_rows(
    global_query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_penalty: torch.Tensor,
    want_probabilities: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Query blocks 0 and n-1 against every key. `global_query` is `[B, N, 2b, D]`, already
    scaled; `key_penalty` is `[B, 1, 1, L]`. Returns the context `[B, N, 2b, D]` (and the
    probabilities `[B, N, 2b, L]` when wanted)."""
    if not want_probabilities:
        # The fused CPU/GPU kernel: no [2b, L] score matrix is kept. scale=1: q is pre-scaled.
        context = F.scaled_dot_product_attention(
            global_query, key, value, attn_mask=key_penalty.to(global_query.dtype), scale=1.0
        )
        return context, None
    scores = torch.matmul(global_query, key.transpose(-1, -2)) + key_penalty  # [B, N, 2b, L]
    probabilities = torch.softmax(scores, dim=-1)
    return torch.matmul(probabilities, value), probabilities


def block_sparse_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_blocks: torch.Tensor,
    slot_penalty: torch.Tensor,
    key_keep: torch.Tensor,
    block_size: int,
    output_probabilities: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """BigBird-ITC attention of one layer.

    query, key, value: `[B, N, L, D]` with `L` a multiple of `block_size`;
    key_blocks: long `[N, n-2, S]` (one layer of `BlockSparseIndices.key_blocks`);
    slot_penalty: `[n-2, S]`; key_keep: `[B, L]`, 1 where a token may be attended.

    Returns the context `[B, N, L, D]` (rows of queries with `key_keep == 0` are 0) and, with
    `output_probabilities`, the dense `[B, N, L, L]` probabilities that were applied (a key block
    counted twice gets the sum of its two probabilities, so every row sums to 1).
    """
    batch, heads, length, head_dim = query.shape
    b = block_size
    n = length // b
    if n * b != length or n < 3:
        raise ValueError(f"block-sparse attention needs L = n * {b} with n >= 3, got L = {length}")
    slots = key_blocks.shape[-1]
    dtype = query.dtype
    query = query * (1.0 / math.sqrt(head_dim))
    key_keep = key_keep.to(dtype)
    key_penalty = (1.0 - key_keep) * MASK_PENALTY  # [B, L]

    # -- global query blocks 0 and n-1: every key ------------------------------------------------
    global_query = torch.cat([query[:, :, :b], query[:, :, -b:]], dim=2)  # [B, N, 2b, D]
    global_context, global_probabilities = _global_rows(
        global_query, key, value, key_penalty[:, None, None, :], output_probabilities
    )

    # -- query blocks 1 .. n-2: their S key blocks, gathered in one go ---------------------------
    # Flat block ids into the [B * N * n, b * D] table of all key blocks: example e, head h,
    # block k is row (e * N + h) * n + k. `embedding` is the fastest row gather on CPU.
    head_offsets = torch.arange(heads, device=query.device)[:, None, None] * n
    example_offsets = torch.arange(batch, device=query.device)[:, None] * (heads * n)
    flat_ids = ((key_blocks + head_offsets).reshape(1, -1) + example_offsets).reshape(-1)
    gathered_key = F.embedding(flat_ids, key.reshape(batch * heads * n, b * head_dim)).view(
        batch, heads, n - 2, slots * b, head_dim
    )  # [B, N, n-2, S*b, D]
    gathered_value = F.embedding(flat_ids, value.reshape(batch * heads * n, b * head_dim)).view(
        batch, heads, n - 2, slots * b, head_dim
    )  # [B, N, n-2, S*b, D]
    # Penalties by key: padding keys of the gathered blocks, plus the invalid slots.
    gathered_penalty = key_penalty.view(batch, n, b)[:, key_blocks]  # [B, N, n-2, S, b]
    gathered_penalty = gathered_penalty + slot_penalty.to(dtype)[:, :, None]
    middle_query = query.view(batch, heads, n, b, head_dim)[:, :, 1:-1]  # [B, N, n-2, b, D]
    scores = torch.matmul(middle_query, gathered_key.transpose(-1, -2))  # [B, N, n-2, b, S*b]
    scores.add_(gathered_penalty.view(batch, heads, n - 2, 1, slots * b))  # in place: one pass
    middle_probabilities = torch.softmax(scores, dim=-1)  # one softmax over the whole band
    middle_context = torch.matmul(middle_probabilities, gathered_value)  # [B, N, n-2, b, D]

    context = torch.cat(
        [
            global_context[:, :, :b],
            middle_context.reshape(batch, heads, (n - 2) * b, head_dim),
            global_context[:, :, b:],
        ],
        dim=2,
    )  # [B, N, L, D]
    context = context * key_keep[:, None, :, None]  # padding queries give 0, as the reference

    probabilities = None
    if output_probabilities:
        probabilities = dense_probabilities(
            global_probabilities, middle_probabilities, key_blocks, block_size
        )
    return context, probabilities


def dense_probabilities(
    global_probabilities: torch.Tensor,
    middle_probabilities: torch.Tensor,
    key_blocks: torch.Tensor,
    block_size: int,
) -> torch.Tensor:
    """Scatter block-sparse probabilities into the dense `[B, N, L, L]` matrix they mean.

    global_probabilities: `[B, N, 2b, L]` (query blocks 0 and n-1);
    middle_probabilities: `[B, N, n-2, b, S*b]`; key_blocks: long `[N, n-2, S]`.
    One `index_add_` places every (head, query block, slot) tile; duplicate key blocks add up.
    """
    batch, heads, _, length = global_probabilities.shape
    b = block_size
    n = length // b
    slots = key_blocks.shape[-1]
    dtype = middle_probabilities.dtype
    # Tiles [B, N * n * n, b, b]: tile (h, q, k) holds queries of block q against keys of block k.
    tiles = torch.zeros(batch, heads * n * n, b, b, dtype=dtype, device=key_blocks.device)
    query_block = torch.arange(1, n - 1, device=key_blocks.device)[None, :, None]  # [1, n-2, 1]
    head = torch.arange(heads, device=key_blocks.device)[:, None, None]  # [N, 1, 1]
    tile_ids = ((head * n + query_block) * n + key_blocks).reshape(-1)  # [N * (n-2) * S]
    middle_tiles = (
        middle_probabilities.view(batch, heads, n - 2, b, slots, b)
        .permute(0, 1, 2, 4, 3, 5)  # [B, N, n-2, S, b(query), b(key)]
        .reshape(batch, heads * (n - 2) * slots, b, b)
    )
    tiles.index_add_(1, tile_ids, middle_tiles)
    tiles = tiles.view(batch, heads, n, n, b, b)
    # Global rows: [B, N, 2, b, n, b] -> tiles of query blocks 0 and n-1.
    global_tiles = global_probabilities.view(batch, heads, 2, b, n, b).permute(0, 1, 2, 4, 3, 5)
    tiles[:, :, 0] = global_tiles[:, :, 0]
    tiles[:, :, n - 1] = global_tiles[:, :, 1]
    # [B, N, n(q), n(k), b(q), b(k)] -> [B, N, L, L]
    return tiles.permute(0, 1, 2, 4, 3, 5).reshape(batch, heads, length, length)
