"""`aviary info DIR`: what a checkpoint folder holds."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a checkpoint folder")


def run(args: argparse.Namespace) -> int:
    from aviary.conversion.formats import read_weights
    from aviary.core.auto import auto_class_for, model_class_name
    from aviary.core.configs import load_config
    from aviary.core.naming import module_group

    folder = Path(args.folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    config = load_config(folder)
    tensors = read_weights(folder)
    print(f"folder        {folder}")
    print(f"family        {config.model_type}")
    print(f"class         {', '.join(config.architectures or ['(not recorded)'])}")
    # The Auto class that loads each recorded class (`AutoModelForMaskedLM.from_pretrained`).
    for architecture in config.architectures or []:
        found = auto_class_for(architecture)
        auto = f"{found[0]} -> {architecture}" if found else f"no Auto class loads {architecture}"
        print(f"auto class    {auto}")
    if not config.architectures:
        base = model_class_name(config.model_type, "base")
        print(f"auto class    AutoModel -> {base} (no class recorded: the backbone)")
    dtypes = Counter(str(v.dtype) for v in tensors.values())
    print(f"dtype         {', '.join(f'{d} ({n} tensors)' for d, n in dtypes.most_common())}")
    total = sum(int(v.size) for v in tensors.values())
    print(f"parameters    {total:,} in {len(tensors)} tensors")
    groups: Counter[str] = Counter()
    for name, value in tensors.items():
        groups[module_group(name)] += int(value.size)
    for group, count in sorted(groups.items()):
        print(f"  {group:<40} {count:>14,}")
    print("files")
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        print(f"  {path.name:<40} {path.stat().st_size / 1e6:>11.2f} MB")
    return 0
