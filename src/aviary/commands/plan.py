"""`aviary plan`: print a BigBird block-sparse attention layout and draw its pattern.

Imported at every CLI start (for `add_arguments`), so it imports nothing heavy at module level:
numpy and the planner load in `run`, matplotlib only when `--png` is given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

POLICY_CHOICES = ("reference", "fixed", "resample")
MAX_HEADS_DRAWN = 4

# Block roles in the picture, in drawing priority (a later role wins).
NONE, GLOBAL, WINDOW, RANDOM, REPEATED = range(5)
ROLE_NAMES = ("not attended", "global", "sliding window", "random", "counted twice or more")
ROLE_COLOURS = ("#ffffff", "#1f3b73", "#6baed6", "#f28e2b", "#d62728")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the `aviary plan` options."""
    parser.add_argument(
        "--seq-len", type=int, required=True, help="unpadded input length in tokens"
    )
    parser.add_argument("--block-size", type=int, default=64, help="tokens per block (default 64)")
    parser.add_argument(
        "--random-blocks", type=int, default=3, help="random key blocks per query block (default 3)"
    )
    parser.add_argument("--heads", type=int, default=2, help="attention heads to plan (default 2)")
    parser.add_argument("--layer", type=int, default=0, help="layer to show (default 0)")
    parser.add_argument(
        "--policy",
        choices=POLICY_CHOICES,
        default="reference",
        help="random-block policy (default reference)",
    )
    parser.add_argument(
        "--mode",
        choices=("train", "eval"),
        default="train",
        help="model mode (default train; the reference policy uses the all-zero plan in eval)",
    )
    parser.add_argument("--seed", type=int, default=0, help="Generator seed for --policy resample")
    parser.add_argument(
        "--max-position-embeddings",
        type=int,
        default=4096,
        help="the model's max_position_embeddings (the paper-era plan uses it; default 4096)",
    )
    parser.add_argument("--png", metavar="FILE", help="also draw the pattern into this .png file")


def run(args: argparse.Namespace) -> int:
    """Print the layout (and draw it with --png); user mistakes raise ValueError."""
    import numpy as np

    from aviary.core import block_sparse

    if args.layer < 0:
        raise ValueError(f"--layer must be >= 0, got {args.layer}")
    if args.png is not None and Path(args.png).suffix.lower() != ".png":
        raise ValueError(f"--png needs a file name ending in .png, got {args.png!r}")
    rng = np.random.default_rng(args.seed) if args.policy == "resample" else None
    plan = block_sparse.plan_attention(
        args.seq_len,
        block_size=args.block_size,
        num_random_blocks=args.random_blocks,
        num_heads=args.heads,
        num_layers=args.layer + 1,
        policy=args.policy,
        training=args.mode == "train",
        rng=rng,
        max_position_embeddings=args.max_position_embeddings,
        warn=False,  # the printed layout explains padding and the fall-back
    )
    print(describe(plan, args.layer))
    if args.png is not None:
        draw(plan, args.layer, args.png)
        print(f"picture: {args.png}")
    return 0


def describe(plan, layer: int) -> str:
    """The layout as readable text."""
    import numpy as np

    from aviary.core import block_sparse

    b, r = plan.block_size, plan.num_random_blocks
    threshold = block_sparse.longest_full_attention_length(b, r)
    lines = [
        "BigBird attention plan",
        f"  sequence length   {plan.seq_len} tokens",
        f"  block size        {b} tokens, {r} random block(s) per query block",
        f"  heads, layer      {plan.num_heads} head(s), layer {layer}",
        f"  policy, mode      {plan.policy}, {'train' if plan.training else 'eval'}",
    ]
    if not plan.use_block_sparse:
        lines += [
            f"  attention         full: inputs up to (5 + 2*{r}) * {b} = {threshold} tokens run "
            "full attention (no padding)",
        ]
        return "\n".join(lines)

    n = plan.num_blocks
    multiplicity = block_sparse.block_multiplicity(plan, layer)  # [heads, n, n]
    density = float(np.mean(multiplicity > 0))
    lines += [
        f"  attention         block-sparse (longer than (5 + 2*{r}) * {b} = {threshold} tokens)",
        f"  padding           +{plan.pad_length} token(s) on the right -> "
        f"{plan.padded_length} tokens, {n} blocks",
        f"  random blocks     {plan.generator} generator"
        + {
            "paper-era": f" (padded length {plan.padded_length}; draws from the first "
            f"{block_sparse.PAPER_ERA_LAST_INDEX} tokens)",
            "segment-plan": f" (draws from the first {min(2 * r + 5, n)} blocks)",
            "all-zero": " (the reference's eval plan: every random block is block 0)",
        }[plan.generator],
        f"  keys per query    blocks 0 and {n - 1}: all {n} blocks (global); blocks 1 and {n - 2}: "
        f"{4 + r}; blocks 2..{n - 3}: {5 + r} (first, window of 3, {r} random, last)",
        f"  density           {density:.1%} of the {plan.padded_length}x{plan.padded_length} "
        "query-key pairs per head",
    ]
    repeated = int(np.sum(multiplicity > 1))
    if repeated:
        lines.append(
            f"  repeated keys     {repeated} (head, query block, key block) pairs count a key "
            "block more than once in the softmax"
        )
    lines.append(f"random key blocks of layer {layer} (one column per head):")
    randoms = plan.random_blocks[layer]  # [heads, n-2, r]
    for row in range(n - 2):
        cells = "  ".join(
            " ".join(f"{block:>3d}" for block in randoms[head, row])
            for head in range(plan.num_heads)
        )
        lines.append(f"  query block {row + 1:>4d}:  {cells}")
    return "\n".join(lines)


def block_roles(plan, layer: int):
    """`int [heads, n, n]`: the role (global/window/random/repeated) of every (query, key) block."""
    import numpy as np

    from aviary.core import block_sparse

    n, heads = plan.num_blocks, plan.num_heads
    roles = np.full((heads, n, n), NONE, dtype=np.int8)
    roles[:, [0, n - 1], :] = GLOBAL
    roles[:, :, [0, n - 1]] = GLOBAL
    query = np.arange(1, n - 1)
    for offset in (-1, 0, 1):
        window = roles[:, query, query + offset]  # [heads, n-2]
        roles[:, query, query + offset] = np.where(window == NONE, WINDOW, window)
    # Random blocks: rows are query blocks 1..n-2. [heads, n-2, r] -> fancy-indexed assignment.
    head_ids = np.arange(heads)[:, None, None]
    roles[head_ids, query[None, :, None], plan.random_blocks[layer]] = RANDOM
    roles[block_sparse.block_multiplicity(plan, layer) > 1] = REPEATED
    return roles


def draw(plan, layer: int, path: str) -> None:
    """Draw the pattern of the first heads into a PNG file (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    heads = min(plan.num_heads, MAX_HEADS_DRAWN)
    figure, axes = plt.subplots(1, heads, figsize=(max(4.4 * heads, 7.0), 5.6), squeeze=False)
    length = plan.padded_length
    if plan.use_block_sparse:
        roles = block_roles(plan, layer)
    else:
        roles = np.full((heads, 1, 1), GLOBAL, dtype=np.int8)  # full attention: everything
    colours = ListedColormap(ROLE_COLOURS)
    for head, axis in enumerate(axes[0]):
        axis.imshow(
            roles[head],
            cmap=colours,
            vmin=0,
            vmax=len(ROLE_COLOURS) - 1,
            extent=(0, length, length, 0),
            interpolation="nearest",
        )
        if plan.pad_length:
            axis.axvspan(plan.seq_len, length, facecolor="#999999", alpha=0.45, hatch="//")
        axis.set_title(f"head {head}")
        axis.set_xlabel("key position")
        if head == 0:
            axis.set_ylabel("query position")
    mode = "train" if plan.training else "eval"
    kind = "block-sparse" if plan.use_block_sparse else "full attention"
    figure.suptitle(
        f"BigBird {kind}, layer {layer}, policy {plan.policy} ({mode})\n"
        f"{plan.seq_len} tokens (padded to {length}), block {plan.block_size}, "
        f"{plan.num_random_blocks} random block(s)"
    )
    used = sorted(set(np.unique(roles).tolist()))
    handles = [
        Patch(facecolor=ROLE_COLOURS[i], edgecolor="#888888", label=ROLE_NAMES[i]) for i in used
    ]
    if plan.pad_length:
        handles.append(
            Patch(facecolor="#999999", alpha=0.45, hatch="//", label="padding keys (masked)")
        )
    figure.legend(handles=handles, loc="lower center", ncol=min(len(handles), 3), frameon=False)
    figure.tight_layout(rect=(0, 0.15, 1, 0.93))
    figure.savefig(path, dpi=110)
    plt.close(figure)
