"""Conversion cost: seconds and peak memory to convert a BERT-base-sized random checkpoint
(110M parameters, 440 MB in fp32) between formats.

Each conversion runs in a fresh process (`aviary convert`); its peak memory is the child's peak RSS
(`ru_maxrss`) minus the RSS of a process that only imported what the conversion imports, so the
number is what the conversion itself held. Target: peak ≤ 2.5× the checkpoint size (tensors are
streamed, never held three times).

    python bench/conversion.py [--repeats 2] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = """
import resource, sys
import aviary.commands.convert, aviary.conversion.formats, aviary.conversion.tf_h5
import aviary.conversion.flax_msgpack, safetensors.numpy, h5py, msgpack, torch
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def make_checkpoint(folder: Path) -> int:
    """A random BERT-base BertForPreTraining checkpoint; returns its size in bytes."""
    import numpy as np

    from aviary import BertConfig
    from aviary.conversion.checkpoint import write_checkpoint

    config = BertConfig(architectures=["BertForPreTraining"])
    rng = np.random.default_rng(0)
    h, i, v = config.hidden_size, config.intermediate_size, config.vocab_size

    def rand(*shape):
        return rng.standard_normal(shape, dtype=np.float32) * 0.02

    tensors = {
        "bert.embeddings.word_embeddings.weight": rand(v, h),
        "bert.embeddings.position_embeddings.weight": rand(config.max_position_embeddings, h),
        "bert.embeddings.token_type_embeddings.weight": rand(2, h),
        "bert.embeddings.LayerNorm.weight": rand(h),
        "bert.embeddings.LayerNorm.bias": rand(h),
    }
    for layer in range(config.num_hidden_layers):
        p = f"bert.encoder.layer.{layer}."
        for name in ("query", "key", "value"):
            tensors[p + f"attention.self.{name}.weight"] = rand(h, h)
            tensors[p + f"attention.self.{name}.bias"] = rand(h)
        tensors[p + "attention.output.dense.weight"] = rand(h, h)
        tensors[p + "attention.output.dense.bias"] = rand(h)
        tensors[p + "attention.output.LayerNorm.weight"] = rand(h)
        tensors[p + "attention.output.LayerNorm.bias"] = rand(h)
        tensors[p + "intermediate.dense.weight"] = rand(i, h)
        tensors[p + "intermediate.dense.bias"] = rand(i)
        tensors[p + "output.dense.weight"] = rand(h, i)
        tensors[p + "output.dense.bias"] = rand(h)
        tensors[p + "output.LayerNorm.weight"] = rand(h)
        tensors[p + "output.LayerNorm.bias"] = rand(h)
    tensors["bert.pooler.dense.weight"] = rand(h, h)
    tensors["bert.pooler.dense.bias"] = rand(h)
    tensors["cls.predictions.bias"] = rand(v)
    tensors["cls.predictions.transform.dense.weight"] = rand(h, h)
    tensors["cls.predictions.transform.dense.bias"] = rand(h)
    tensors["cls.predictions.transform.LayerNorm.weight"] = rand(h)
    tensors["cls.predictions.transform.LayerNorm.bias"] = rand(h)
    tensors["cls.seq_relationship.weight"] = rand(2, h)
    tensors["cls.seq_relationship.bias"] = rand(2)
    write_checkpoint(tensors, folder)
    config.save_pretrained(folder)
    print(f"checkpoint: {sum(t.size for t in tensors.values()) / 1e6:.1f}M parameters")
    return (folder / "model.safetensors").stat().st_size


WRAPPER = """
import resource, sys, runpy
sys.argv = ["aviary", *sys.argv[1:]]
try:
    runpy.run_module("aviary", run_name="__main__")
except SystemExit as exit:
    if exit.code:
        raise
print("PEAK", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def measure(args: list[str]) -> tuple[float, int]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True, env=env
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    peak = [line for line in result.stderr.splitlines() if line.startswith("PEAK")][-1]
    return seconds, int(peak.split()[1]) * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", default=None, help="scratch folder (default: a temp dir)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="aviary-bench-"))
    src = work / "safetensors"
    size = make_checkpoint(src)
    baseline = (
        int(
            subprocess.run(
                [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
            ).stdout.split()[-1]
        )
        * 1024
    )
    print(f"checkpoint size {size / 1e6:.0f} MB; baseline process RSS {baseline / 1e6:.0f} MB")
    print()
    print("| from | to | seconds | peak MB above baseline | peak / checkpoint size |")
    print("|---|---|---|---|---|")
    # canonical -> each format, then each format -> canonical
    steps = [("safetensors", src, fmt, work / fmt) for fmt in ("pt", "tf", "flax")]
    steps += [
        (fmt, work / fmt, "safetensors", work / f"{fmt}-back") for fmt in ("pt", "tf", "flax")
    ]
    for source_format, source, target, out in steps:
        best_seconds, best_peak = float("inf"), float("inf")
        for _ in range(args.repeats):
            seconds, peak = measure(["convert", str(source), str(out), "--to", target, "--quiet"])
            best_seconds, best_peak = min(best_seconds, seconds), min(best_peak, peak)
        extra = max(best_peak - baseline, 0)
        print(
            f"| {source_format} | {target} | {best_seconds:.2f} | {extra / 1e6:.0f} | "
            f"{extra / size:.2f}x |"
        )
    print()
    print(json.dumps({"checkpoint_bytes": size}))


if __name__ == "__main__":
    main()
