"""Conversion cost: seconds and peak memory to convert a BERT-base-sized random checkpoint
(110M parameters, 440 MB in fp32) between formats.

Each conversion runs in a fresh process (`aviary convert`), once to import what it needs and once
measured: its peak memory is the peak RSS of the measured run above the RSS it started from, so the
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
from pathlib import Path


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


# Runs the conversion twice in one process: the first run imports everything it needs; then the
# peak-RSS mark is reset (Linux /proc/self/clear_refs) and the second run's peak is measured above
# the RSS it started from.
WRAPPER = """
import shutil, sys, time
from aviary.cli import main

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

args, out = sys.argv[1:], sys.argv[3]  # convert SRC OUT ...
assert main(args) == 0
shutil.rmtree(out)
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")
start_rss = status("VmRSS:")
start = time.perf_counter()
assert main(args) == 0
print("RESULT", time.perf_counter() - start, status("VmHWM:") - start_rss)
"""


def measure(args: list[str]) -> tuple[float, int]:
    """Seconds and peak extra memory (bytes) of one conversion, in a fresh process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    line = [x for x in result.stdout.splitlines() if x.startswith("RESULT")][-1]
    _, seconds, peak = line.split()
    return float(seconds), int(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", default=None, help="scratch folder (default: a temp dir)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="aviary-bench-"))
    src = work / "safetensors"
    size = make_checkpoint(src)
    print(f"checkpoint size {size / 1e6:.0f} MB")
    print()
    print("| from | to | seconds | peak MB held by the conversion | peak / checkpoint size |")
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
        extra = max(best_peak, 0)
        print(
            f"| {source_format} | {target} | {best_seconds:.2f} | {extra / 1e6:.0f} | "
            f"{extra / size:.2f}x |"
        )
    print()
    print(json.dumps({"checkpoint_bytes": size}))


if __name__ == "__main__":
    main()
