"""BigBird block-sparse attention in TensorFlow: a few large batched tensor operations over a plan.

The plan (`aviary.core.block_sparse.AttentionPlan`) says which key blocks every query block
attends. This module turns it into tensors once per call (`BlockSparseIndices`) and computes
attention from them:

* the two global query blocks (`0` and `n-1`) attend every key: one matmul + softmax;
* the `n-2` other query blocks attend `5 + r` key blocks each, in the plan's slot order
  `[0 | q-1, q, q+1 | r random | n-1]`: one `tf.gather` gathers those key and value blocks for
  every (head, query block) at once, one batched matmul gives the scores, one softmax runs over the
  concatenated band, one batched matmul gives the context. A key block listed twice (the
  reference's eval plan lists block 0 `1 + r` times) is counted twice, as in the reference.

Masking follows the reference: `MASK_PENALTY` (-10000) is added to the scores of padding keys and of
the slots the plan marks invalid (`AttentionPlan.slot_penalty`); the context of padding queries is
multiplied by 0. There is no dropout on the
attention probabilities in block-sparse mode (as the reference and the original code).

The plan depends only on static shapes and the policy, so its index arrays enter a `tf.function`
(and XLA) as constants. The batch dimension may be dynamic; `L` must be known while tracing.
Parallel text of `aviary.pt.big_bird_attention`.

Shapes: B batch · N heads · L padded tokens · D head dim · b block size · n = L / b blocks ·
S = 5 + r key blocks per non-global query block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from aviary.core.block_sparse import MASK_PENALTY, AttentionPlan, BlockSparseController
from aviary.tf.modeling_utils import shape_list


@dataclass(frozen=True, eq=False)
class BlockSparseIndices:
    """One call's plan as tensors, shared by every layer.

    `key_blocks`: int32 `[layers, N, n-2, S]`, the key block of every slot;
    `slot_penalty`: `[n-2, S]`, the plan's `slot_penalty` (`MASK_PENALTY` on invalid slots).
    """

    plan: AttentionPlan
    key_blocks: tf.Tensor
    slot_penalty: tf.Tensor

    @classmethod
    def from_plan(
        cls, plan: AttentionPlan, dtype: tf.DType, key_blocks: tf.Tensor | None = None
    ) -> BlockSparseIndices:
        """The plan's arrays as constants; `key_blocks` replaces the plan's own when the random
        blocks are drawn at run time (the "resample" policy inside a `tf.function`)."""
        if not plan.use_block_sparse:
            raise ValueError("a full-attention plan has no blocks")
        if key_blocks is None:
            key_blocks = tf.constant(plan.key_blocks, dtype=tf.int32)
        return cls(plan, key_blocks, tf.constant(plan.slot_penalty, dtype=dtype))

    @classmethod
    def for_call(
        cls,
        controller: BlockSparseController,
        plan: AttentionPlan,
        training: bool,
        dtype: tf.DType,
    ) -> BlockSparseIndices:
        """The call's plan as tensors: constants eagerly and for the plans that depend only on
        shapes; under the "resample" policy inside a `tf.function`, random blocks drawn afresh
        from `controller` at every run (which XLA cannot compile)."""
        key_blocks = None
        if controller.policy == "resample" and not tf.executing_eagerly():
            if _in_xla_context():
                raise ValueError(
                    "the 'resample' block-sparse policy draws its random blocks with numpy at "
                    "every step, which XLA cannot compile: use jit_compile=False, or the "
                    "'fixed' or 'reference' policy"
                )

            def draw() -> np.ndarray:
                return controller.plan(plan.seq_len, training=training).key_blocks

            key_blocks = tf.numpy_function(draw, [], tf.int32, stateful=True)
            key_blocks.set_shape(plan.key_blocks.shape)
        return cls.from_plan(plan, dtype, key_blocks)

    @property
    def block_size(self) -> int:
        return self.plan.block_size


def plan_call(
    controller: BlockSparseController, length: int | tf.Tensor, what: str = "sequence", **inputs
) -> AttentionPlan | None:
    """`controller.plan(length, **inputs)`, made while tracing: a block-sparse call needs the
    (`what`) length to be static."""
    if controller.attention_type == "block_sparse" and not isinstance(length, int):
        raise ValueError(
            f"block-sparse attention plans from the {what} length, which must be known while "
            "tracing: give the input a static length (for example "
            "tf.TensorSpec([None, 4096], tf.int32)) or use attention_type='original_full'"
        )
    return controller.plan(length, **inputs)


def _in_xla_context() -> bool:
    """Whether the function being traced is compiled with XLA (`jit_compile=True`)."""
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - a TF without the internal module
        return False
    graph = tf.compat.v1.get_default_graph()
    return bool(control_flow_util.GraphOrParentsInXlaContext(graph))


class BlockSparseModelMixin:
    """The attention settings of a model whose (encoder) self-attention may be block-sparse, over
    that stack's `BlockSparseController` (`block_sparse_controller()`). A setting forgets the
    functions Keras traced with the old one."""

    def block_sparse_controller(self) -> BlockSparseController | None:
        """The controller of the block-sparse stack (default: the base model's `block_sparse`),
        or None where the model has none (BigBirdPegasus's decoder-only model)."""
        return self._base_model().block_sparse

    def _settable_controller(self) -> BlockSparseController:
        controller = self.block_sparse_controller()
        if controller is None:
            raise ValueError(f"{type(self).__name__} has no encoder")
        return controller

    def build_with_dummies(self) -> None:
        # The dummy call is short, so it runs full attention anyway: planning it would only warn.
        controller = self.block_sparse_controller()
        if controller is None:
            return super().build_with_dummies()
        attention_type = controller.attention_type
        controller.attention_type = "original_full"
        try:
            super().build_with_dummies()
        finally:
            controller.attention_type = attention_type

    def set_attention_type(self, attention_type: str) -> None:
        """Choose `"block_sparse"` or `"original_full"` (encoder) attention for later calls (the
        config is left as it is). Block-sparse calls still fall back to full attention on short
        inputs."""
        self._settable_controller().set_attention_type(attention_type)
        self._forget_traced_functions()

    def set_block_sparse_policy(
        self, policy: str = "reference", rng: np.random.Generator | None = None
    ) -> None:
        """Choose how block-sparse calls draw their random key blocks.

        `"reference"` (default; the reference library's numbers: layer-seeded plans in training,
        the all-zero plan in eval), `"fixed"` (the seeded plan in training and eval) or
        `"resample"` (a fresh plan per call from `rng`, a `numpy.random.Generator`).
        """
        self._settable_controller().set_policy(policy, rng)
        # "resample" draws with numpy at every step, which XLA cannot compile: Keras's
        # `jit_compile="auto"` then picks plain graph mode.
        self.supports_jit = policy != "resample"
        self._forget_traced_functions()

    def plan(self, seq_len: int, training: bool = False) -> AttentionPlan | None:
        """The block-sparse plan of a call on `seq_len` tokens, or None for full attention.
        Under the "resample" policy each call draws from the policy's generator (so calling it
        yourself advances that generator too)."""
        return self._settable_controller().plan(seq_len, training=training)


def _softmax(scores: tf.Tensor) -> tf.Tensor:
    # At least float32: under mixed precision a float16 softmax loses the small weights.
    if scores.dtype.size >= 4:
        return tf.nn.softmax(scores, axis=-1)
    return tf.cast(tf.nn.softmax(tf.cast(scores, tf.float32), axis=-1), scores.dtype)


def _global_rows(
    global_query: tf.Tensor,
    key: tf.Tensor,
    value: tf.Tensor,
    key_penalty: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Query blocks 0 and n-1 against every key. `global_query` is `[B, N, 2b, D]`, already
    scaled; `key_penalty` is `[B, 1, 1, L]`. Returns the context `[B, N, 2b, D]` and the
    probabilities `[B, N, 2b, L]` (TF has no fused kernel that would skip them; unused
    probabilities are pruned from a graph)."""
    scores = tf.matmul(global_query, key, transpose_b=True) + key_penalty  # [B, N, 2b, L]
    probabilities = _softmax(scores)
    return tf.matmul(probabilities, value), probabilities


def block_sparse_attention(
    query: tf.Tensor,
    key: tf.Tensor,
    value: tf.Tensor,
    key_blocks: tf.Tensor,
    slot_penalty: tf.Tensor,
    key_keep: tf.Tensor,
    block_size: int,
    output_probabilities: bool = False,
) -> tuple[tf.Tensor, tf.Tensor | None]:
    """BigBird-ITC attention of one layer.

    query, key, value: `[B, N, L, D]` with `L` a multiple of `block_size`;
    key_blocks: int32 `[N, n-2, S]` (one layer of `BlockSparseIndices.key_blocks`);
    slot_penalty: `[n-2, S]`; key_keep: `[B, L]`, 1 where a token may be attended.

    Returns the context `[B, N, L, D]` (rows of queries with `key_keep == 0` are 0) and, with
    `output_probabilities`, the dense `[B, N, L, L]` probabilities that were applied (a key block
    counted twice gets the sum of its two probabilities, so every row sums to 1).
    """
    batch, heads, length, head_dim = shape_list(query)
    b = block_size
    if not isinstance(length, int):
        raise ValueError(
            "block-sparse attention needs the sequence length while tracing; give the input a "
            "static length (for example tf.TensorSpec([None, 4096], tf.int32))"
        )
    n = length // b
    if n * b != length or n < 3:
        raise ValueError(f"block-sparse attention needs L = n * {b} with n >= 3, got L = {length}")
    slots = key_blocks.shape[-1]
    dtype = query.dtype
    query = query * (1.0 / math.sqrt(head_dim))
    key_keep = tf.cast(key_keep, dtype)
    key_penalty = (1.0 - key_keep) * MASK_PENALTY  # [B, L]

    # -- global query blocks 0 and n-1: every key ------------------------------------------------
    global_query = tf.concat([query[:, :, :b], query[:, :, -b:]], axis=2)  # [B, N, 2b, D]
    global_context, global_probabilities = _global_rows(
        global_query, key, value, key_penalty[:, None, None, :]
    )

    # -- query blocks 1 .. n-2: their S key blocks, gathered in one go ---------------------------
    # Flat block ids into the [B * N * n, b * D] table of all key blocks: example e, head h,
    # block k is row (e * N + h) * n + k.
    key_blocks = tf.cast(key_blocks, tf.int32)
    head_offsets = tf.range(heads)[:, None, None] * n
    example_offsets = tf.range(batch)[:, None] * (heads * n)
    flat_ids = tf.reshape(tf.reshape(key_blocks + head_offsets, (1, -1)) + example_offsets, (-1,))
    gathered_key = tf.reshape(
        tf.gather(tf.reshape(key, (batch * heads * n, b * head_dim)), flat_ids),
        (batch, heads, n - 2, slots * b, head_dim),
    )  # [B, N, n-2, S*b, D]
    gathered_value = tf.reshape(
        tf.gather(tf.reshape(value, (batch * heads * n, b * head_dim)), flat_ids),
        (batch, heads, n - 2, slots * b, head_dim),
    )  # [B, N, n-2, S*b, D]
    # Penalties by key: padding keys of the gathered blocks, plus the invalid slots.
    gathered_penalty = tf.gather(
        tf.reshape(key_penalty, (batch, n, b)), key_blocks, axis=1
    )  # [B, N, n-2, S, b]
    gathered_penalty = gathered_penalty + tf.cast(slot_penalty, dtype)[:, :, None]
    middle_query = tf.reshape(query, (batch, heads, n, b, head_dim))[
        :, :, 1:-1
    ]  # [B, N, n-2, b, D]
    scores = tf.matmul(middle_query, gathered_key, transpose_b=True)  # [B, N, n-2, b, S*b]
    scores = scores + tf.reshape(gathered_penalty, (batch, heads, n - 2, 1, slots * b))
    middle_probabilities = _softmax(scores)  # one softmax over the whole band
    middle_context = tf.matmul(middle_probabilities, gathered_value)  # [B, N, n-2, b, D]

    context = tf.concat(
        [
            global_context[:, :, :b],
            tf.reshape(middle_context, (batch, heads, (n - 2) * b, head_dim)),
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
    global_probabilities: tf.Tensor,
    middle_probabilities: tf.Tensor,
    key_blocks: tf.Tensor,
    block_size: int,
) -> tf.Tensor:
    """Scatter block-sparse probabilities into the dense `[B, N, L, L]` matrix they mean.

    global_probabilities: `[B, N, 2b, L]` (query blocks 0 and n-1);
    middle_probabilities: `[B, N, n-2, b, S*b]`; key_blocks: int32 `[N, n-2, S]`.
    One `unsorted_segment_sum` places every (head, query block, slot) tile; duplicate key blocks
    add up.
    """
    batch, heads, _, length = shape_list(global_probabilities)
    b = block_size
    n = length // b
    slots = key_blocks.shape[-1]
    # Tile (h, q, k) holds queries of block q (1 .. n-2) against keys of block k.
    query_block = tf.range(n - 2)[None, :, None]  # [1, n-2, 1]: q - 1
    head = tf.range(heads)[:, None, None]  # [N, 1, 1]
    tile_ids = tf.reshape((head * (n - 2) + query_block) * n + key_blocks, (-1,))  # [N*(n-2)*S]
    middle_tiles = tf.transpose(
        tf.reshape(middle_probabilities, (batch, heads, n - 2, b, slots, b)),
        (1, 2, 4, 0, 3, 5),
    )  # [N, n-2, S, B, b(query), b(key)]
    middle_tiles = tf.reshape(middle_tiles, (heads * (n - 2) * slots, batch, b, b))
    tiles = tf.math.unsorted_segment_sum(middle_tiles, tile_ids, heads * (n - 2) * n)
    tiles = tf.reshape(tiles, (heads, n - 2, n, batch, b, b))  # [N, n-2(q), n(k), B, b, b]
    # [N, n-2, n, B, b(q), b(k)] -> [B, N, n-2, b(q), n, b(k)] -> rows of query blocks 1 .. n-2
    middle_rows = tf.reshape(
        tf.transpose(tiles, (3, 0, 1, 4, 2, 5)), (batch, heads, (n - 2) * b, length)
    )
    return tf.concat(
        [global_probabilities[:, :, :b], middle_rows, global_probabilities[:, :, b:]], axis=2
    )  # [B, N, L, L]
