"""Tokenizer throughput: slow, fast and in-graph, on 5,000 texts of 60-200 characters.

    python bench/tokenizers.py            # runs itself with 1 and with 2 threads, prints one table
    python bench/tokenizers.py --threads 1 --no-tf

Texts/s, best of several repeats; "single" calls the tokenizer once per text, "batch" once per
list of 5,000 texts (the in-graph layer takes batches of 500). Thread counts are fixed per process
(RAYON_NUM_THREADS for `tokenizers`, TF's thread pools, OMP_NUM_THREADS), hence the subprocesses.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path and its name would shadow the
# `tokenizers` library; take the folder off.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
GOLDENS = ROOT / "tests" / "fixtures" / "goldens" / "tokenizers"
TEXTS = 5000
REPEATS = 5


def make_texts(count: int = TEXTS, seed: int = 0) -> list[str]:
    """Sentences of 60-200 characters from the BERT vocabulary's words, with punctuation/accents."""
    import random

    rng = random.Random(seed)
    vocab = (GOLDENS / "bert" / "vocab.txt").read_text(encoding="utf-8").split("\n")
    words = [w for w in vocab[1996:] if w.isalpha() and w.isascii()]
    extras = ["café", "naïve", "Zürich", "résumé", "2026", "3.14", "U.S.", "don't", "e-mail"]
    texts = []
    for _ in range(count):
        target = rng.randint(60, 200)
        sentence = ""
        while len(sentence) < target:
            word = rng.choice(extras) if rng.random() < 0.05 else rng.choice(words)
            if rng.random() < 0.1:
                word = word.capitalize()
            sentence += word + (rng.choice([",", ".", "!"]) if rng.random() < 0.08 else "") + " "
        texts.append(sentence[:target].strip())
    return texts


def best_rate(work, count: int, reset=None) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        if reset is not None:
            reset()
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return count / best


def measure(include_tf: bool) -> dict[str, float]:
    from aviary.core.tokenizers import (
        BertTokenizer,
        BertTokenizerFast,
        BigBirdTokenizer,
        BigBirdTokenizerFast,
    )

    texts = make_texts()
    results: dict[str, float] = {}
    candidates = {
        "BERT slow (pure Python)": BertTokenizer(GOLDENS / "bert" / "vocab.txt"),
        "BERT fast (tokenizers)": BertTokenizerFast(GOLDENS / "bert" / "vocab.txt"),
        "BigBird slow (sentencepiece)": BigBirdTokenizer(GOLDENS / "big_bird" / "spiece.model"),
        "BigBird fast (tokenizers)": BigBirdTokenizerFast(GOLDENS / "big_bird" / "spiece.model"),
    }
    for name, tok in candidates.items():
        tok(texts[:100])  # lazy imports
        # The slow BERT tokenizer caches word pieces per word; each repeat starts cold, so the
        # cache only helps with words repeated inside the 5,000 texts, as in real use.
        reset = getattr(tok, "clear_cache", None)
        results[f"{name} | single"] = best_rate(
            lambda tok=tok: [tok(t) for t in texts], len(texts), reset
        )
        results[f"{name} | batch"] = best_rate(lambda tok=tok: tok(texts), len(texts), reset)
    if include_tf:
        import tensorflow as tf

        from aviary.tf.tokenizers import TFBertTokenizer, TFSentencePieceTokenizer

        layers = {
            "BERT in-graph (FastBertTokenizer)": TFBertTokenizer.from_tokenizer(
                candidates["BERT slow (pure Python)"]
            ),
            "BigBird in-graph (SentencepieceTokenizer)": TFSentencePieceTokenizer.from_tokenizer(
                candidates["BigBird slow (sentencepiece)"]
            ),
        }
        chunks = [tf.constant(texts[i : i + 500]) for i in range(0, len(texts), 500)]
        for name, layer in layers.items():
            run = tf.function(layer, input_signature=[tf.TensorSpec([None], tf.string)])
            run(chunks[0])
            results[f"{name} | batch"] = best_rate(
                lambda run=run: [run(c) for c in chunks], len(texts)
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, help="measure in this process with N threads")
    parser.add_argument("--no-tf", action="store_true", help="skip the in-graph tokenizers")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        print(json.dumps(measure(not args.no_tf), indent=None if args.json else 1))
        return
    columns = {}
    for threads in (1, 2):
        env = dict(
            os.environ,
            RAYON_NUM_THREADS=str(threads),
            OMP_NUM_THREADS=str(threads),
            TF_NUM_INTRAOP_THREADS=str(threads),
            TF_NUM_INTEROP_THREADS=str(threads),
            TF_CPP_MIN_LOG_LEVEL="3",
            TOKENIZERS_PARALLELISM="true",
        )
        command = [sys.executable, __file__, "--threads", str(threads), "--json"]
        if args.no_tf:
            command.append("--no-tf")
        output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
        columns[threads] = json.loads(output.strip().splitlines()[-1])
    print(f"{TEXTS} texts of 60-200 characters; texts/s, best of {REPEATS}\n")
    print(f"| {'tokenizer':45} | {'call':6} | {'1 thread':>10} | {'2 threads':>10} |")
    print(f"|{'-' * 47}|{'-' * 8}|{'-' * 12}|{'-' * 12}|")
    for key in columns[1]:
        name, call = key.split(" | ")
        print(f"| {name:45} | {call:6} | {columns[1][key]:10,.0f} | {columns[2][key]:10,.0f} |")


if __name__ == "__main__":
    main()
