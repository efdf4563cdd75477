"""`aviary convert SRC OUT`: move a checkpoint between formats through the canonical one."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

ALL_FORMATS = ("safetensors", "pt", "tf", "flax", "keras")
TOKENIZER_FILES = (
    "vocab.txt",
    "spiece.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
)
FAMILIES = ("bert", "big_bird", "big_bird_trivia_qa", "big_bird_pegasus")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "src", help="a checkpoint folder, a weights file, or an original TF checkpoint prefix"
    )
    parser.add_argument("out", help="the folder to write")
    parser.add_argument(
        "--to",
        default="safetensors",
        help=f"comma-separated formats: {', '.join(ALL_FORMATS)}, or all (default: safetensors)",
    )
    parser.add_argument(
        "--dtype", choices=("float32", "float16", "bfloat16"), help="cast weights on write"
    )
    parser.add_argument("--shard-size", help="largest shard for safetensors / pt, e.g. 2GB")
    parser.add_argument("--config", help="config.json to use (default: the one next to SRC)")
    parser.add_argument(
        "--from-original-tf", action="store_true", help="SRC is an original Google TF checkpoint"
    )
    parser.add_argument(
        "--family", choices=FAMILIES, help="model family of an original TF checkpoint"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def parse_formats(text: str) -> list[str]:
    formats = [f.strip() for f in text.split(",") if f.strip()]
    if formats == ["all"]:
        return list(ALL_FORMATS)
    unknown = [f for f in formats if f not in ALL_FORMATS]
    if unknown or not formats:
        raise ValueError(
            f"unknown format {', '.join(unknown) or text!r}: use {', '.join(ALL_FORMATS)} or all"
        )
    return formats


def run(args: argparse.Namespace) -> int:
    if args.from_original_tf and args.family is None:
        raise ValueError("--from-original-tf needs --family (bert, big_bird or big_bird_pegasus)")
    written = convert(
        Path(args.src),
        Path(args.out),
        parse_formats(args.to),
        dtype=args.dtype,
        shard_size=args.shard_size,
        config_path=args.config,
        original_family=args.family if args.from_original_tf else None,
        quiet=args.quiet,
    )
    if not args.quiet:
        for path in written:
            print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def convert(
    src: Path,
    out: Path,
    formats: list[str],
    *,
    dtype: str | None = None,
    shard_size: str | None = None,
    config_path: str | None = None,
    original_family: str | None = None,
    quiet: bool = False,
) -> list[Path]:
    """Read `src` once, write it to `out` in each format; returns the files written."""
    from tqdm import tqdm

    from aviary.conversion.checkpoint import is_ignored_checkpoint_key
    from aviary.conversion.formats import cast_tensors, read_weights, write_weights
    from aviary.core.configs import load_config

    if original_family is not None:
        from aviary.conversion.original_tf import import_original_tf

        family = {"big_bird_pegasus": "bigbird_pegasus"}.get(original_family, original_family)
        config, tensors = import_original_tf(str(src), family, config=config_path)
        source_folder = src.parent
    else:
        if not src.exists():
            raise FileNotFoundError(f"{src} does not exist")
        source_folder = src if src.is_dir() else src.parent
        config = load_config(config_path or source_folder)
        with tqdm(total=1, desc=f"reading {src.name}", disable=quiet, unit="file") as bar:
            tensors = read_weights(src)
            bar.update()
    # Buffers some old checkpoints carry (`embeddings.position_ids`) are not weights: drop them.
    tensors = {n: v for n, v in tensors.items() if not is_ignored_checkpoint_key(n)}
    tensors = cast_tensors(tensors, dtype)
    _check_fits(config, tensors)

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in tqdm(formats, desc="writing", disable=quiet, unit="format"):
        written += write_weights(tensors, out, fmt, config=config, max_shard_size=shard_size)
    if dtype is not None:
        config = config.copy(torch_dtype=dtype)
    written.append(config.save_pretrained(out))
    for name in TOKENIZER_FILES:
        if (source_folder / name).is_file() and source_folder.resolve() != out.resolve():
            shutil.copyfile(source_folder / name, out / name)
            written.append(out / name)
    return written


def _check_fits(config, tensors) -> None:
    """Refuse a config that plainly does not describe these weights (a mismatched config.json)."""
    for name, value in tensors.items():
        if name.endswith("word_embeddings.weight") or name.endswith("shared.weight"):
            if value.shape[0] != config.vocab_size:
                raise ValueError(
                    f"config.json says vocab_size={config.vocab_size}, but {name} has "
                    f"{value.shape[0]} rows: the config does not match the weights"
                )
            return
