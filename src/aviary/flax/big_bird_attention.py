"""BigBird block-sparse attention in JAX: a few large batched array operations over a plan.

The plan (`aviary.core.block_sparse.AttentionPlan`) says which key blocks every query block
attends. This module turns it into arrays once per forward (`BlockSparseIndices`, a JAX pytree
whose arrays are leaves and whose layout is static) and computes attention from them:

* the two global query blocks (`0` and `n-1`) attend every key: one matmul, one softmax, one
  matmul;
* the `n-2` other query blocks attend `5 + r` key blocks each, in the plan's slot order
  `[0 | q-1, q, q+1 | r random | n-1]`: one gather collects those key and value blocks for every
  (head, query block) at once, one batched matmul gives the scores, one softmax runs over the
  concatenated band, one batched matmul gives the context. A key block listed twice (the
  reference's eval plan lists block 0 `1 + r` times) is counted twice, as in the reference.

Masking follows the reference: `-10000` is added to the scores of padding keys and of the slots the
plan marks invalid; the context of padding queries is multiplied by 0. There is no dropout on the
attention probabilities in block-sparse mode (as the reference and the original code).

Under `jax.jit` the indices are either constants (a plan computed while tracing, from static
shapes) or arguments (a plan drawn outside, e.g. under the "resample" policy); the layout
(`block_size`, `seq_len`, `pad_length`) is static either way, so a new plan of the same layout
does not retrace. `BlockSparseIndices.for_call` is the one place a Flax model plans a call.

Shapes: B batch · N heads · L padded tokens · D head dim · b block size · n = L / b blocks ·
S = 5 + r key blocks per non-global query block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# MASK_PENALTY: the reference's additive penalty for masked keys in block-sparse mode (full
# attention uses the dtype's minimum instead). In float32, exp(score - 10000) is exactly 0 next to
# any kept key.
from aviary.core.block_sparse import MASK_PENALTY, AttentionPlan, BlockSparseController
from aviary.flax.modeling_utils import is_concrete


@dataclass(frozen=True, eq=False)
class BlockSparseIndices:
    """One forward's plan as arrays, shared by every layer.

    `key_blocks`: int32 `[layers, N, n-2, S]`, the key block of every slot;
    `slot_penalty`: `[n-2, S]`, the plan's `MASK_PENALTY` on the slots it marks invalid, else 0;
    `block_size`, `seq_len` (unpadded tokens) and `pad_length`: the static layout.
    """

    key_blocks: jax.Array
    slot_penalty: jax.Array
    block_size: int
    seq_len: int
    pad_length: int

    @classmethod
    def from_plan(cls, plan: AttentionPlan, dtype: Any = jnp.float32) -> BlockSparseIndices:
        if not plan.use_block_sparse:
            raise ValueError("a full-attention plan has no blocks")
        return cls(
            jnp.asarray(plan.key_blocks, dtype=jnp.int32),  # a copy
            jnp.asarray(plan.slot_penalty, dtype=dtype),
            plan.block_size,
            plan.seq_len,
            plan.pad_length,
        )

    @classmethod
    def for_call(
        cls,
        controller: BlockSparseController,
        seq_len: int,
        *,
        training: bool,
        dtype: Any,
        given: BlockSparseIndices | None = None,
        traced: bool = False,
        attention_mask_rank: int | None = None,
        has_encoder_hidden_states: bool = False,
    ) -> BlockSparseIndices | None:
        """The plan of a call on `seq_len` tokens as arrays (None: full attention), made once,
        outside the module: `given` (drawn by the caller, checked against the call), else the
        controller's plan. `traced`: the call runs under `jax.jit`, where a "resample" plan
        drawn while tracing would be frozen into the compiled function."""
        config = controller.config
        if given is not None:
            if controller.attention_type != "block_sparse":
                raise ValueError(
                    "block_sparse_indices were given, but the model runs attention_type="
                    f"{controller.attention_type!r}"
                )
            layout = (config.num_hidden_layers, config.num_attention_heads)
            if given.seq_len != seq_len or given.key_blocks.shape[:2] != layout:
                raise ValueError(
                    f"block_sparse_indices were planned for {given.seq_len} tokens and key "
                    f"blocks {tuple(given.key_blocks.shape)}; this call has {seq_len} tokens, "
                    f"{layout[0]} layers and {layout[1]} heads"
                )
            return given
        if traced and controller.policy == "resample":
            raise ValueError(
                "policy 'resample' under jax.jit: a plan drawn while tracing would be frozen "
                "into the compiled function. Draw it outside with "
                "model.block_sparse_indices(length, train=...) and pass it to the jitted "
                "function and on as block_sparse_indices="
            )
        plan = controller.plan(
            seq_len,
            training=training,
            attention_mask_rank=attention_mask_rank,
            has_encoder_hidden_states=has_encoder_hidden_states,
        )
        return None if plan is None else cls.from_plan(plan, dtype)

    @property
    def padded_length(self) -> int:
        return self.seq_len + self.pad_length


jax.tree_util.register_dataclass(
    BlockSparseIndices,
    data_fields=["key_blocks", "slot_penalty"],
    meta_fields=["block_size", "seq_len", "pad_length"],
)


class BlockSparseModelMixin:
    """The attention settings of a Flax wrapper whose (encoder) self-attention may be
    block-sparse, over `self.block_sparse` (the model's `BlockSparseController`), and the one
    planning step of its calls (`apply_module`, over the model's `call_indices` and `call_plan`)."""

    block_sparse: BlockSparseController
    dtype: Any

    def check_block_sparse(self) -> None:
        """Raise when this model has no block-sparse attention to set (default: it has)."""

    @property
    def attention_type(self) -> str:
        return self.block_sparse.attention_type

    @property
    def block_sparse_policy(self) -> str:
        return self.block_sparse.policy

    def set_attention_type(self, attention_type: str) -> None:
        """Choose `"block_sparse"` or `"original_full"` attention for later calls (the config
        and the parameters are left as they are). Block-sparse calls still fall back to full
        attention on short inputs."""
        self.check_block_sparse()
        self.block_sparse.set_attention_type(attention_type)

    def set_block_sparse_policy(
        self, policy: str = "reference", rng: np.random.Generator | None = None
    ) -> None:
        """Choose how block-sparse calls draw their random key blocks.

        `"reference"` (default; the reference library's numbers: layer-seeded plans in training,
        the all-zero plan in eval), `"fixed"` (the seeded plan in training and eval) or
        `"resample"` (a fresh plan per call from `rng`, a `numpy.random.Generator`).
        """
        self.check_block_sparse()
        self.block_sparse.set_policy(policy, rng)

    def plan(self, seq_len: int, train: bool = False) -> AttentionPlan | None:
        """The block-sparse plan of a call on `seq_len` tokens, or None for full attention.
        Under the "resample" policy each call draws from the policy's generator (so calling it
        yourself advances that generator too)."""
        return self.block_sparse.plan(seq_len, training=train)

    def block_sparse_indices(self, seq_len: int, train: bool = False) -> BlockSparseIndices | None:
        """`plan(seq_len, train)` as the arrays the modules take (None for full attention): pass
        it through `jax.jit` as an argument and on as `block_sparse_indices=`."""
        plan = self.plan(seq_len, train)
        return None if plan is None else BlockSparseIndices.from_plan(plan, self.dtype)

    def apply_module(
        self,
        inputs: dict[str, Any],
        *,
        params: dict | None,
        train: bool,
        past_key_values: dict | None = None,
        indices_rng: jax.Array | None = None,
        block_sparse_indices: BlockSparseIndices | None = None,
        **apply_kwargs: Any,
    ):
        """`FlaxPreTrainedModel.apply_module`, planned: this call's plan (the model's
        `call_indices`, made once, here, outside the module) joins the inputs as
        `block_sparse_indices` (None, full attention, is the modules' default)."""
        if indices_rng is not None:  # the reference's argument, kept in BigBird's signatures
            raise ValueError(
                "indices_rng is not used: aviary draws BigBird's random blocks on the host; "
                "choose them with model.set_block_sparse_policy('resample', "
                "rng=np.random.default_rng(seed)) or pass block_sparse_indices="
            )
        plan = self.call_indices(inputs, params, train, past_key_values, block_sparse_indices)
        if plan is not None:
            inputs = {**inputs, "block_sparse_indices": plan}
        return super().apply_module(
            inputs, params=params, train=train, past_key_values=past_key_values, **apply_kwargs
        )

    def call_plan(
        self,
        seq_len: int,
        inputs: dict[str, Any],
        params: dict | None,
        train: bool,
        given: BlockSparseIndices | None,
        **call_facts: Any,
    ) -> BlockSparseIndices | None:
        """The plan of a call on `seq_len` tokens (`BlockSparseIndices.for_call`), made once, in
        the wrapper; the call is traced when any of its `inputs` or `params` is. `call_facts`:
        `attention_mask_rank`, `has_encoder_hidden_states`."""
        return BlockSparseIndices.for_call(
            self.block_sparse,
            seq_len,
            training=train,
            dtype=self.dtype,
            given=given,
            traced=not all(is_concrete(x) for x in jax.tree_util.tree_leaves((inputs, params))),
            **call_facts,
        )


def _global_rows(
    global_query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    key_penalty: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Query blocks 0 and n-1 against every key. `global_query` is `[B, N, 2b, D]`, already
    scaled; `key_penalty` is `[B, 1, 1, L]`. Returns the context `[B, N, 2b, D]` and the
    probabilities `[B, N, 2b, L]` (XLA drops them when they are not used)."""
    scores = jnp.einsum("bnqd,bnkd->bnqk", global_query, key) + key_penalty  # [B, N, 2b, L]
    probabilities = jax.nn.softmax(scores, axis=-1)
    return jnp.einsum("bnqk,bnkd->bnqd", probabilities, value), probabilities


def block_sparse_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    key_blocks: jax.Array,
    slot_penalty: jax.Array,
    key_keep: jax.Array,
    block_size: int,
    output_probabilities: bool = False,
) -> tuple[jax.Array, jax.Array | None]:
    """BigBird-ITC attention of one layer.

    query, key, value: `[B, N, L, D]` with `L` a multiple of `block_size`;
    key_blocks: int `[N, n-2, S]` (one layer of `BlockSparseIndices.key_blocks`);
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
    key_keep = key_keep.astype(dtype)
    key_penalty = (1.0 - key_keep) * MASK_PENALTY  # [B, L]

    # -- global query blocks 0 and n-1: every key ------------------------------------------------
    global_query = jnp.concatenate([query[:, :, :b], query[:, :, -b:]], axis=2)  # [B, N, 2b, D]
    global_context, global_probabilities = _global_rows(
        global_query, key, value, key_penalty[:, None, None, :]
    )

    # -- query blocks 1 .. n-2: their S key blocks, gathered in one go ---------------------------
    # Head h of every example takes the blocks key_blocks[h]: one advanced-index gather.
    head = jnp.arange(heads)[:, None, None]  # [N, 1, 1]
    gathered_key = key.reshape(batch, heads, n, b, head_dim)[:, head, key_blocks].reshape(
        batch, heads, n - 2, slots * b, head_dim
    )  # [B, N, n-2, S*b, D]
    gathered_value = value.reshape(batch, heads, n, b, head_dim)[:, head, key_blocks].reshape(
        batch, heads, n - 2, slots * b, head_dim
    )  # [B, N, n-2, S*b, D]
    # Penalties by key: padding keys of the gathered blocks, plus the invalid slots.
    gathered_penalty = key_penalty.reshape(batch, n, b)[:, key_blocks]  # [B, N, n-2, S, b]
    gathered_penalty = gathered_penalty + slot_penalty.astype(dtype)[:, :, None]
    middle_query = query.reshape(batch, heads, n, b, head_dim)[:, :, 1:-1]  # [B, N, n-2, b, D]
    scores = jnp.einsum("bnqid,bnqkd->bnqik", middle_query, gathered_key)  # [B, N, n-2, b, S*b]
    scores = scores + gathered_penalty.reshape(batch, heads, n - 2, 1, slots * b)
    middle_probabilities = jax.nn.softmax(scores, axis=-1)  # one softmax over the whole band
    middle_context = jnp.einsum(
        "bnqik,bnqkd->bnqid", middle_probabilities, gathered_value
    )  # [B, N, n-2, b, D]

    context = jnp.concatenate(
        [
            global_context[:, :, :b],
            middle_context.reshape(batch, heads, (n - 2) * b, head_dim),
            global_context[:, :, b:],
        ],
        axis=2,
    )  # [B, N, L, D]
    context = context * key_keep[:, None, :, None]  # padding queries give 0, as the reference

    probabilities = None
    if output_probabilities:
        probabilities = dense_probabilities(
            global_probabilities, middle_probabilities, key_blocks, block_size
        )
    return context, probabilities


def dense_probabilities(
    global_probabilities: jax.Array,
    middle_probabilities: jax.Array,
    key_blocks: jax.Array,
    block_size: int,
) -> jax.Array:
    """Scatter block-sparse probabilities into the dense `[B, N, L, L]` matrix they mean.

    global_probabilities: `[B, N, 2b, L]` (query blocks 0 and n-1);
    middle_probabilities: `[B, N, n-2, b, S*b]`; key_blocks: int `[N, n-2, S]`.
    One scatter-add places every (head, query block, slot) tile; duplicate key blocks add up.
    """
    batch, heads, _, length = global_probabilities.shape
    b = block_size
    n = length // b
    slots = key_blocks.shape[-1]
    dtype = middle_probabilities.dtype
    # Tiles [B, N * n * n, b, b]: tile (h, q, k) holds queries of block q against keys of block k.
    tiles = jnp.zeros((batch, heads * n * n, b, b), dtype=dtype)
    query_block = jnp.arange(1, n - 1)[None, :, None]  # [1, n-2, 1]
    head = jnp.arange(heads)[:, None, None]  # [N, 1, 1]
    tile_ids = ((head * n + query_block) * n + key_blocks).reshape(-1)  # [N * (n-2) * S]
    middle_tiles = (
        middle_probabilities.reshape(batch, heads, n - 2, b, slots, b)
        .transpose(0, 1, 2, 4, 3, 5)  # [B, N, n-2, S, b(query), b(key)]
        .reshape(batch, heads * (n - 2) * slots, b, b)
    )
    tiles = tiles.at[:, tile_ids].add(middle_tiles)
    tiles = tiles.reshape(batch, heads, n, n, b, b)
    # Global rows: [B, N, 2, b, n, b] -> tiles of query blocks 0 and n-1.
    global_tiles = global_probabilities.reshape(batch, heads, 2, b, n, b).transpose(
        0, 1, 2, 4, 3, 5
    )
    tiles = tiles.at[:, :, 0].set(global_tiles[:, :, 0])
    tiles = tiles.at[:, :, n - 1].set(global_tiles[:, :, 1])
    # [B, N, n(q), n(k), b(q), b(k)] -> [B, N, L, L]
    return tiles.transpose(0, 1, 2, 4, 3, 5).reshape(batch, heads, length, length)
