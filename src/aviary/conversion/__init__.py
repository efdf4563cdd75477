"""Checkpoint I/O and conversion between formats (framework-neutral unless a format needs one)."""

from aviary.conversion.checkpoint import (
    PT_WEIGHTS_INDEX_NAME,
    PT_WEIGHTS_NAME,
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    CheckpointError,
    LoadReport,
    match_checkpoint,
    read_checkpoint,
    read_checkpoint_shapes,
    write_checkpoint,
)

__all__ = [
    "PT_WEIGHTS_INDEX_NAME",
    "PT_WEIGHTS_NAME",
    "SAFE_WEIGHTS_INDEX_NAME",
    "SAFE_WEIGHTS_NAME",
    "CheckpointError",
    "LoadReport",
    "match_checkpoint",
    "read_checkpoint",
    "read_checkpoint_shapes",
    "write_checkpoint",
]
