"""BigBird speed and memory: block-sparse against full attention, 1024 to 16384 tokens.

BigBird-base geometry (hidden 768, 12 heads, block 64, 3 random blocks, intermediate 3072), 2
layers, batch 1, eval, fp32, 1 thread. Every configuration runs in its own child process, so each
peak-memory figure (the child's `ru_maxrss`) belongs to that configuration alone. Per row: the best
of `--repeats` forward passes after one warm-up, the child's peak RSS and its rise during the
forwards, the FLOPs actually computed, the achieved GFLOP/s and the fp32 matmul GFLOP/s measured
in the same child (2048 x 2048 x 2048). The machines are shared, so times are noisy: best of N.
Peak memory is the child's peak RSS (VmHWM) during the timed forwards: the high-water mark is reset
after the warm-up, so compiling a kernel does not count; "extra" is its rise over the RSS held
before them (weights, libraries).

Kinds: `sparse/flex` (`attn_implementation="flex_attention"`: one compiled FlexAttention call per
layer; the warm-up compiles it), `sparse/gather` (the default block-sparse kernel: gathered key
blocks + fused SDPA for the global rows), `full/sdpa` (`original_full` with the fused SDPA kernel,
the default) and `full/eager` (`original_full` with matmul + softmax, as the reference computes it:
it materialises the [heads, L, L] scores and is skipped when they would exceed `--max-gib`).

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
KINDS = ("sparse/flex", "sparse/gather", "full/sdpa", "full/eager")
IMPLEMENTATION = {
    "sparse/flex": "flex_attention",
    "sparse/gather": "sdpa",
    "full/sdpa": "sdpa",
    "full/eager": "eager",
}


def attention_flops(kind: str, length: int) -> float:
    """Multiply-adds x 2 of QK^T and PV in one layer, as computed (not as masked)."""
    if kind.startswith("sparse") and length > (5 + 2 * RANDOM) * BLOCK:
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


def rss_mib(field: str) -> float:
    """`VmRSS` (now) or `VmHWM` (peak since the last reset) of this process, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current RSS (Linux)


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
        attention_type="block_sparse" if kind.startswith("sparse") else "original_full",
    )
    torch.manual_seed(0)
    model = BigBirdModel(config, attn_implementation=IMPLEMENTATION[kind])
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
    with torch.inference_mode():
        model(input_ids)  # warm-up (and compilation for sparse/flex)
        reset_peak_rss()
        before = rss_mib("VmRSS")
        seconds = best(lambda: model(input_ids))
    peak = rss_mib("VmHWM")
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
    print(
        "| tokens | sparse kind | speed-up vs full/sdpa | vs full/eager "
        "| peak RSS / full/sdpa's | / full/eager's |"
    )
    print("|---|---|---|---|---|---|")
    lengths = sorted(args.lengths)
    for length in lengths:
        for sparse_kind in ("sparse/flex", "sparse/gather"):
            sparse = results.get((sparse_kind, length))
            if not isinstance(sparse, dict):
                continue
            speed, memory = [], []
            for kind in ("full/sdpa", "full/eager"):
                full = results.get((kind, length))
                ok = isinstance(full, dict)
                speed.append(f"{full['seconds'] / sparse['seconds']:.2f}x" if ok else "-")
                memory.append(f"{sparse['peak_mib'] / full['peak_mib']:.2f}" if ok else "-")
            print(f"| {length} | {sparse_kind} | {' | '.join(speed)} | {' | '.join(memory)} |")
    for sparse_kind in ("sparse/flex", "sparse/gather"):
        for short, long in itertools.pairwise(lengths):
            a, b = results.get((sparse_kind, short)), results.get((sparse_kind, long))
            if isinstance(a, dict) and isinstance(b, dict):
                ratio = b["seconds"] / a["seconds"]
                print(f"{sparse_kind} t({long})/t({short}) = {ratio:.2f}")


if __name__ == "__main__":
    main()
