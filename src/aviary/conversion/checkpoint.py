"""The canonical checkpoint: reading and writing `model.safetensors` (single or sharded) and
reading legacy `pytorch_model.bin` files, plus the strict-loading report every framework uses.

Tensors are passed around as `{canonical name: tensor}` dictionaries. Which tensor type they hold is
chosen by `framework` (`"np"`, `"pt"`, `"tf"`, `"flax"`), the same names safetensors uses; nothing
here imports a framework unless that framework's tensors are asked for.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aviary.core.io import atomic_path, atomic_write_text
from aviary.core.naming import module_group

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
PT_WEIGHTS_NAME = "pytorch_model.bin"
PT_WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"

# Keys some checkpoints carry that are not weights (non-persistent buffers in the reference).
IGNORED_CHECKPOINT_KEYS = (re.compile(r"(^|\.)embeddings\.position_ids$"),)


def is_ignored_checkpoint_key(name: str) -> bool:
    """Whether a checkpoint key is a buffer the reference also ignores, not a weight."""
    return any(pattern.search(name) for pattern in IGNORED_CHECKPOINT_KEYS)


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, truncated or does not fit the model."""


# -- reading -------------------------------------------------------------------------------------


def find_weights(folder: str | os.PathLike) -> Path:
    """The weights file to read in `folder`, in the reference's order of preference."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"checkpoint folder {folder} does not exist")
    for name in (
        SAFE_WEIGHTS_NAME,
        SAFE_WEIGHTS_INDEX_NAME,
        PT_WEIGHTS_NAME,
        PT_WEIGHTS_INDEX_NAME,
    ):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"no weights in {folder}: expected {SAFE_WEIGHTS_NAME}, {SAFE_WEIGHTS_INDEX_NAME}, "
        f"{PT_WEIGHTS_NAME} or {PT_WEIGHTS_INDEX_NAME}"
    )


def read_checkpoint(path: str | os.PathLike, framework: str = "np") -> dict[str, Any]:
    """Read every tensor of a checkpoint file, index file or folder.

    Legacy LayerNorm names (`gamma`/`beta`) are renamed to `weight`/`bias`.
    """
    path = Path(path)
    if path.is_dir():
        path = find_weights(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} does not exist")
    if path.name.endswith(".index.json"):
        tensors: dict[str, Any] = {}
        for shard in _read_index(path):
            tensors.update(_read_file(shard, framework))
    else:
        tensors = _read_file(path, framework)
    return {_rename_legacy(name): value for name, value in tensors.items()}


def read_checkpoint_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor in a checkpoint, reading safetensors headers only."""
    path = Path(path)
    if path.is_dir():
        path = find_weights(path)
    files = _read_index(path) if path.name.endswith(".index.json") else [path]
    shapes: dict[str, tuple[int, ...]] = {}
    for file in files:
        if file.suffix == ".safetensors":
            safe_open = _safe_open(file, "np")
            with safe_open as handle:
                for name in handle.keys():
                    shapes[name] = tuple(handle.get_slice(name).get_shape())
        else:
            shapes.update({k: tuple(v.shape) for k, v in _read_file(file, "np").items()})
    return {_rename_legacy(name): shape for name, shape in shapes.items()}


def _rename_legacy(name: str) -> str:
    if name.endswith(".gamma"):
        return name[: -len("gamma")] + "weight"
    if name.endswith(".beta"):
        return name[: -len("beta")] + "bias"
    return name


def _read_index(path: Path) -> list[Path]:
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
        weight_map = index["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not a valid checkpoint index: {err}") from None
    shards = sorted(set(weight_map.values()))
    missing = [s for s in shards if not (path.parent / s).is_file()]
    if missing:
        raise CheckpointError(f"{path} names shard files that do not exist: {', '.join(missing)}")
    return [path.parent / s for s in shards]


def _safe_open(path: Path, framework: str) -> Any:
    from safetensors import safe_open

    try:
        return safe_open(str(path), framework=framework)
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from None


def _read_file(path: Path, framework: str) -> dict[str, Any]:
    if path.suffix == ".safetensors":
        _check_safetensors_size(path)
        tensors = {}
        with _safe_open(path, framework) as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format", "pt") not in ("pt", "tf", "flax", "mlx", "np"):
                raise CheckpointError(f"{path} has unknown format metadata {metadata['format']!r}")
            for name in handle.keys():
                try:
                    tensors[name] = handle.get_tensor(name)
                except Exception as err:
                    raise CheckpointError(f"{path}: cannot read tensor {name!r}: {err}") from None
        return tensors
    if path.suffix == ".bin":
        return _read_pytorch_bin(path, framework)
    raise CheckpointError(f"{path}: unknown checkpoint format (expected .safetensors or .bin)")


def _check_safetensors_size(path: Path) -> None:
    """Check that the header is complete and the file is as long as the header says.

    safetensors memory-maps the file, so a truncated file could otherwise fail late or not at all.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise CheckpointError(f"{path} is truncated: {size} bytes, no safetensors header")
        header_len = int.from_bytes(prefix, "little")
        if header_len > size - 8:
            raise CheckpointError(
                f"{path} is truncated or corrupt: header of {header_len} bytes in a "
                f"{size}-byte file"
            )
        try:
            header = json.loads(handle.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CheckpointError(f"{path} has a corrupt safetensors header: {err}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} has a corrupt safetensors header")
    end = max(
        (int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0
    )
    if 8 + header_len + end > size:
        raise CheckpointError(
            f"{path} is truncated: the header describes {8 + header_len + end} bytes, "
            f"the file has {size}"
        )


def _read_pytorch_bin(path: Path, framework: str) -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        raise CheckpointError(f"reading {path} needs PyTorch (pip install aviary[torch])") from None
    try:
        # weights_only: a pickle may run code; only plain tensors and containers are accepted.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {err}") from None
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a flat dictionary of tensors")
    if framework == "pt":
        return dict(state)
    return {name: _torch_to_numpy(t) for name, t in state.items()}


def _torch_to_numpy(tensor: Any) -> Any:
    import torch

    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype == torch.bfloat16:
        import ml_dtypes

        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


# -- writing -------------------------------------------------------------------------------------


def parse_size(size: int | str) -> int:
    """`"5GB"`, `"200MB"`, `"10KiB"` or a number of bytes, as bytes."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B)?\s*", size, re.IGNORECASE)
    if not match:
        raise ValueError(f"cannot read {size!r} as a size (examples: 5GB, 200MB, 1000000)")
    number, unit = float(match[1]), (match[2] or "B").upper()
    scale = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
    scale |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
    return int(number * scale[unit])


def _nbytes(tensor: Any) -> int:
    if hasattr(tensor, "nbytes"):
        return int(tensor.nbytes)
    return int(tensor.numel() * tensor.element_size())  # torch


def write_sharded(
    tensors: Mapping[str, Any],
    folder: Path,
    *,
    single_name: str,
    shard_pattern: str,
    index_name: str,
    save_shard: Callable[[dict[str, Any], Path], None],
    max_shard_size: int | str | None = None,
) -> list[Path]:
    """Write `tensors` as one file `single_name`, or, above `max_shard_size`, as shards named by
    `shard_pattern` (`{i}`, `{n}`) plus an `index_name` weight map, the reference's layout. Every
    file is written atomically by `save_shard(shard, path)`; files an earlier save left that this
    one would make inconsistent are removed. Returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    limit = parse_size(max_shard_size) if max_shard_size is not None else None
    shards: list[dict[str, Any]] = [{}]
    size = 0
    for name, tensor in tensors.items():
        nbytes = _nbytes(tensor)
        if limit is not None and shards[-1] and size + nbytes > limit:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes

    stale = [folder / single_name, folder / index_name]
    stale += list(folder.glob(shard_pattern.format(i="*", n="*")))
    if len(shards) == 1:
        names = [single_name]
    else:
        names = [
            shard_pattern.format(i=f"{i + 1:05d}", n=f"{len(shards):05d}")
            for i in range(len(shards))
        ]
    written = []
    for name, shard in zip(names, shards):
        with atomic_path(folder / name) as tmp:
            save_shard(shard, tmp)
        written.append(folder / name)
    if len(shards) > 1:
        index = {
            "metadata": {"total_size": sum(_nbytes(t) for t in tensors.values())},
            "weight_map": {t: n for n, shard in zip(names, shards) for t in shard},
        }
        atomic_write_text(folder / index_name, json.dumps(index, indent=2) + "\n")
        written.append(folder / index_name)
    for path in stale:
        if path not in written and path.exists():
            path.unlink()
    return written


def write_checkpoint(
    tensors: Mapping[str, Any],
    folder: str | os.PathLike,
    *,
    framework: str = "np",
    max_shard_size: int | str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write `tensors` as `model.safetensors`, or as shards plus `model.safetensors.index.json`
    when they exceed `max_shard_size`. Every file is written atomically. Returns the files written.
    """
    serializer = importlib.import_module(
        "safetensors.torch" if framework == "pt" else f"safetensors.{_SAFE_MODULES[framework]}"
    )
    metadata = {"format": "pt", **(metadata or {})}

    def save_shard(shard: dict[str, Any], path: Path) -> None:
        serializer.save_file(shard, str(path), metadata=dict(metadata))

    return write_sharded(
        tensors,
        Path(folder),
        single_name=SAFE_WEIGHTS_NAME,
        shard_pattern="model-{i}-of-{n}.safetensors",
        index_name=SAFE_WEIGHTS_INDEX_NAME,
        save_shard=save_shard,
        max_shard_size=max_shard_size,
    )


_SAFE_MODULES = {"np": "numpy", "tf": "tensorflow", "flax": "flax"}


# -- matching a checkpoint to a model ------------------------------------------------------------


@dataclass
class LoadReport:
    """How a checkpoint's tensors matched a model's.

    `missing` / `unexpected` / `mismatched` are errors under strict loading: tensors of a component
    that both the model and the checkpoint have, but that do not line up. `newly_initialized` are
    the model's tensors for components the checkpoint does not have at all (a new head);
    `discarded` are checkpoint tensors for components the model does not have (another head).
    """

    mapping: dict[str, str] = field(default_factory=dict)  # model name -> checkpoint name
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    newly_initialized: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self) -> str:
        lines = []
        if self.missing:
            lines.append(f"missing tensors: {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"unexpected tensors: {', '.join(self.unexpected)}")
        for name, want, got in self.mismatched:
            lines.append(f"shape mismatch for {name}: model {want}, checkpoint {got}")
        return "\n".join(lines)

    def raise_if_failed(self, source: str) -> None:
        if not self.ok:
            raise CheckpointError(f"{source} does not fit the model:\n{self.describe()}")


def match_checkpoint(
    model_shapes: Mapping[str, tuple[int, ...]],
    checkpoint_shapes: Mapping[str, tuple[int, ...]],
    *,
    base_model_prefix: str,
    tied: Iterable[str] = (),
    ignore_mismatched_sizes: bool = False,
) -> LoadReport:
    """Line up checkpoint names with model names (canonical names on both sides).

    Handles a base model loading a head checkpoint (the prefix is stripped, the heads discarded)
    and a head model loading a base checkpoint (the prefix is added, the heads newly initialised).
    `tied` lists model names filled by weight tying, which a checkpoint may omit.
    """
    model_names = set(model_shapes)
    ckpt_names = {n for n in checkpoint_shapes if not is_ignored_checkpoint_key(n)}
    model_has_prefix = any(n.startswith(base_model_prefix + ".") for n in model_names)
    ckpt_has_prefix = any(n.startswith(base_model_prefix + ".") for n in ckpt_names)

    def to_model_name(ckpt_name: str) -> str | None:
        if model_has_prefix and not ckpt_has_prefix:
            return f"{base_model_prefix}.{ckpt_name}"
        if ckpt_has_prefix and not model_has_prefix:
            head = base_model_prefix + "."
            return ckpt_name[len(head) :] if ckpt_name.startswith(head) else None
        return ckpt_name

    report = LoadReport()
    renamed: dict[str, str] = {}
    for ckpt_name in sorted(ckpt_names):
        model_name = to_model_name(ckpt_name)
        if model_name is None:  # a head of the checkpoint, on a base model
            report.discarded.append(ckpt_name)
        else:
            renamed[model_name] = ckpt_name

    def group(name: str) -> str:
        # Group base-model names as if they had the prefix, so that a base model and a head model
        # split their encoder into the same components (`bert.embeddings`, `bert.encoder`, ...).
        return module_group(name if model_has_prefix else f"{base_model_prefix}.{name}")

    tied = set(tied)
    model_groups = {group(n) for n in model_names}
    ckpt_groups = {group(n) for n in renamed}
    used_aliases = set()
    for name in sorted(model_names):
        alias = _shared_embedding_alias(name)
        if name not in renamed and alias in renamed and alias not in model_names:
            # A decoder-only model reading a sequence-to-sequence checkpoint, which stores its
            # tied token embeddings once, as `shared`.
            renamed[name] = renamed[alias]
            used_aliases.add(alias)
        if name in renamed:
            want, got = tuple(model_shapes[name]), tuple(checkpoint_shapes[renamed[name]])
            if want == got:
                report.mapping[name] = renamed[name]
            elif ignore_mismatched_sizes:
                report.newly_initialized.append(name)
            else:
                report.mismatched.append((name, want, got))
        elif name in tied:
            continue
        elif group(name) in ckpt_groups:
            report.missing.append(name)
        else:
            report.newly_initialized.append(name)
    for name in sorted(set(renamed) - model_names):
        if name in tied or name in used_aliases or _is_tied_duplicate(name):
            continue
        if group(name) in model_groups:
            report.unexpected.append(renamed[name])
        else:
            report.discarded.append(renamed[name])
    return report


_EMBED_TOKENS = re.compile(r"^(.*?)(?:encoder|decoder)\.embed_tokens\.weight$")


def _shared_embedding_alias(name: str) -> str | None:
    # `model.decoder.embed_tokens.weight` -> `model.shared.weight`: an encoder-decoder
    # checkpoint saves the token embeddings its encoder, decoder and LM head share under `shared`.
    match = _EMBED_TOKENS.match(name)
    return f"{match.group(1)}shared.weight" if match else None


def _is_tied_duplicate(name: str) -> bool:
    # Older checkpoints store the LM decoder that the model ties to the word embeddings.
    return name.endswith("predictions.decoder.weight") or name.endswith("predictions.decoder.bias")
