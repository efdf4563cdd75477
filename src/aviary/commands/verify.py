"""`aviary verify DIR`: load a checkpoint in every installed framework, run a probe batch through
the class `config.json` names, and compare each framework with PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a checkpoint folder")
    parser.add_argument(
        "--atol", type=float, default=1e-4, help="largest allowed difference (default 1e-4)"
    )
    parser.add_argument(
        "--frameworks", default="pt,tf,flax", help="which frameworks (default: pt,tf,flax)"
    )
    parser.add_argument("--quiet", action="store_true", help="print the table only")


def verify(folder: Path, frameworks: list[str], atol: float, quiet: bool = False) -> bool:
    """Print the comparison table; True when every framework is within `atol` of the first."""
    from aviary.conversion import frameworks as fw
    from aviary.core import naming
    from aviary.core.configs import load_config

    config = load_config(folder)
    architecture = naming.architecture(config)
    inputs = fw.probe_inputs(config)
    available = [f for f in frameworks if fw.installed(f)]
    if not available:
        raise ValueError(f"none of {', '.join(frameworks)} is installed")
    results = []
    for framework in available:
        if not quiet:
            print(f"running {fw.class_name(architecture, framework)} ...", flush=True)
        results.append(fw.probe(architecture, framework, folder, inputs))
    reference = results[0]
    print(f"{architecture} from {folder}, probe batch {tuple(inputs['input_ids'].shape)}")
    print(f"| framework | class | max abs diff vs {reference.framework} | field | s/call |")
    print("|---|---|---|---|---|")
    ok = True
    for result in results:
        diff, field = fw.max_difference(reference.outputs, result.outputs)
        ok &= diff <= atol
        print(
            f"| {result.framework} | {fw.class_name(architecture, result.framework)} | {diff:.2e} | "
            f"{field} | {result.seconds:.4f} |"
        )
    for missing in sorted(set(frameworks) - set(available)):
        print(f"| {missing} | (not installed) | - | - | - |")
    print("OK" if ok else f"FAILED: a difference is above {atol}")
    return ok


def run(args: argparse.Namespace) -> int:
    from aviary.conversion.frameworks import FRAMEWORKS

    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    unknown = [f for f in frameworks if f not in FRAMEWORKS]
    if unknown:
        raise ValueError(f"unknown framework {', '.join(unknown)}: use {', '.join(FRAMEWORKS)}")
    folder = Path(args.folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    return 0 if verify(folder, frameworks, args.atol, args.quiet) else 1
