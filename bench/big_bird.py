"""BigBird speed and memory: block-sparse against full attention, 1024 to 16384 tokens.

BigBird-base geometry (hidden 768, 12 heads, block 64, 3 random blocks, intermediate 3072), 2
layers, batch 1, eval, fp32, 1 thread. Every configuration runs in its own child process, so each
peak-memory figure (the child's `ru_maxrss`) belongs to that configuration alone. Per row: the best
of `--repeats` forward passes after one warm-up, the child's peak RSS and its rise during the
forwards, the FLOPs actually computed, the achieved GFLOP/s and the fp32 matmul GFLOP/s measured
in the same child (2048 x 2048 x 2048). The machines are shared, so times are noisy: best of N.

Kinds: `block_sparse` (aviary's gather kernel + fused SDPA for the global rows),
`full/sdpa` (`original_full` with the fused SDPA kernel, the default) and `full/eager`
(`original_full` with matmul + softmax, which materialises the [heads, L, L] scores; it is skipped
when its estimated memory exceeds `--max-gib`).

    python bench/big_bird.py [--lengths 1024 2048 4096 8192 16384] [--repeats 3] [--max-gib 8]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time

HIDDEN, HEADS, BLOCK, RANDOM, INTERMEDIATE, LAYERS, VOCAB = 768, 12, 64, 3, 3072, 2, 50358
KINDS = ("block_sparse", "full/sdpa", "full/eager")


def attention_flops(kind: str, length: int) -> float:
    """Multiply-adds x 2 of QK^T and PV in one layer, as computed (not as masked)."""
    if kind == "block_sparse" and length > (5 + 2 * RANDOM) * BLOCK:
        blocks = length // BLOCK
        # 2 global query blocks x all key blocks + (n-2) middle blocks x (5 + r) gathered blocks.
        key_blocks = 2 * blocks + (blocks - 2) * (5 + RANDOM)
        return 4.0 * BLOCK * BLOCK * HIDDEN * key_blocks
    return 4.0 * length * length * HIDDEN


def model_flops(kind: str, length: int) -> float:
    linear = 2.0 * length * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * INTERMEDIATE)
    return LAYERS * (linear + attention_flops(kind, length)) + 2.0 * HIDDEN * HIDDEN


def eager_scores_gib(length: int) -> float:
    """Scores + probabilities of one eager full-attention layer, fp32."""
    return 2 * HEADS * length * length * 4 / 2**30


def max_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(kind: str, length: int, repeats: int) -> dict:
    import numpy as np  # noqa: F401  (imported before the baseline is taken)
    import torch

    from aviary import BigBirdConfig
    from aviary.pt import BigBirdModel

    torch.set_num_threads(1)
    config = BigBirdConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE,
        max_position_embeddings=max(4096, length),
        block_size=BLOCK,
        num_random_blocks=RANDOM,
        attention_type="block_sparse" if kind == "block_sparse" else "original_full",
    )
    torch.manual_seed(0)
    model = BigBirdModel(config, attn_implementation="eager" if kind == "full/eager" else "sdpa")
    model.eval()
    input_ids = torch.randint(5, VOCAB, (1, length), generator=torch.Generator().manual_seed(0))

    def best(fn) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    left, right = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(left, right)
    matmul = 2 * 2048**3 / best(lambda: torch.mm(left, right)) / 1e9
    before = max_rss_mib()
    with torch.inference_mode():
        model(input_ids)  # warm-up
        seconds = best(lambda: model(input_ids))
    peak = max_rss_mib()
    flops = model_flops(kind, length)
    return {
        "seconds": seconds,
        "peak_mib": peak,
        "extra_mib": peak - before,
        "gflop": flops / 1e9,
        "gflops": flops / seconds / 1e9,
        "matmul_gflops": matmul,
    }


def run_child(kind: str, length: int, repeats: int) -> dict | str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--child", kind, str(length), str(repeats)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        return "failed: " + (result.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-gib", type=float, default=8.0, help="skip eager full above this")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, length, repeats = args.child[0], int(args.child[1]), int(args.child[2])
        print(json.dumps(child(kind, length, repeats)))
        return

    print(
        f"BigBirdModel, {LAYERS} layers, hidden {HIDDEN}, {HEADS} heads, block {BLOCK}, "
        f"{RANDOM} random blocks; batch 1, eval, fp32, 1 thread, best of {args.repeats}"
    )
    print()
    print(
        "| tokens | kind | seconds | peak RSS MiB | extra MiB | GFLOP | GFLOP/s | matmul GFLOP/s "
        "| % of matmul |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    results: dict[tuple[str, int], dict | str] = {}
    for length in args.lengths:
        for kind in args.kinds:
            if kind == "full/eager" and eager_scores_gib(length) > args.max_gib:
                results[kind, length] = "OOM/skipped"
            else:
                results[kind, length] = run_child(kind, length, args.repeats)
            row = results[kind, length]
            if isinstance(row, str):
                print(f"| {length} | {kind} | {row} | | | | | | |", flush=True)
                continue
            print(
                f"| {length} | {kind} | {row['seconds']:.3f} | {row['peak_mib']:.0f} | "
                f"{row['extra_mib']:.0f} | {row['gflop']:.1f} | {row['gflops']:.1f} | "
                f"{row['matmul_gflops']:.1f} | {100 * row['gflops'] / row['matmul_gflops']:.0f}% |",
                flush=True,
            )

    print()
    print("| tokens | sparse vs full/sdpa speed-up | sparse vs full/eager | sparse/full peak RSS |")
    print("|---|---|---|---|")
    lengths = sorted(args.lengths)
    for length in lengths:
        sparse = results.get(("block_sparse", length))
        if not isinstance(sparse, dict):
            continue
        cells = []
        for kind in ("full/sdpa", "full/eager"):
            full = results.get((kind, length))
            cells.append(
                f"{full['seconds'] / sparse['seconds']:.2f}x" if isinstance(full, dict) else "-"
            )
        full = results.get(("full/sdpa", length))
        memory = f"{sparse['peak_mib'] / full['peak_mib']:.2f}" if isinstance(full, dict) else "-"
        print(f"| {length} | {cells[0]} | {cells[1]} | {memory} |")
    for short, long in itertools.pairwise(lengths):
        a, b = results.get(("block_sparse", short)), results.get(("block_sparse", long))
        if isinstance(a, dict) and isinstance(b, dict):
            print(f"block_sparse t({long})/t({short}) = {b['seconds'] / a['seconds']:.2f}")


if __name__ == "__main__":
    main()
