"""File safety for the Parquet store: atomic writes, the warehouse's own file names, facts.

Every data file the warehouse writes is named ``<table>-<version>.parquet`` with a
version from `new_version` (nanosecond time, then 8 hex digits) and first exists as
``<name>.tmp``, in ``parquet/rollouts/`` or ``parquet/attention/``. `is_own_file`
recognises these names there, so a sweep of leftovers never touches a file the warehouse
did not write (a user's own files under its directory included).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

OWN_FILE = re.compile(r"^[a-z_]+-\d[0-9a-f-]*\.parquet(\.tmp)?$")
# The subtrees of parquet/ the warehouse writes into; nothing outside them is its own.
OWN_SUBTREES = ("rollouts", "attention")


def new_version() -> str:
    """Sortable and unique: nanosecond time, then random bits."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


def is_own_file(path: Path) -> bool:
    """A file name the warehouse writes (data file or its temporary form), in a folder
    it writes: ``parquet/rollouts/...`` or ``parquet/attention/...``."""
    parts = path.parts
    inside = any(parts[k] == "parquet" and parts[k + 1] in OWN_SUBTREES
                 for k in range(len(parts) - 2))
    return inside and bool(OWN_FILE.match(path.name))


def fsync_rename(tmp: Path, final: Path) -> None:
    """Make ``tmp`` durable, then atomically give it its final name."""
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_parquet(final: Path, table: pa.Table, before_rename=None) -> None:
    """Write ``table`` to ``final`` atomically (temporary name, fsync, rename)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(final.name + ".tmp")
    try:
        pq.write_table(table, tmp)
    except BaseException:  # a full disk, an interrupt: no partial file stays behind
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    if before_rename is not None:
        before_rename()
    fsync_rename(tmp, final)


@dataclass(frozen=True)
class FileFacts:
    """What the catalog records about a data file when it is written."""

    size_bytes: int
    row_count: int
    sha256: str


def file_facts(path: Path) -> FileFacts:
    """Size, Parquet row count and SHA-256 of a data file (reads it once)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    rows = pq.ParquetFile(path).metadata.num_rows
    return FileFacts(path.stat().st_size, rows, digest.hexdigest())


def delete_files(root: Path, rel_paths) -> None:
    """Delete the named files (relative to root) that are the warehouse's own."""
    for rel in rel_paths:
        path = root / rel
        if is_own_file(path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def remove_empty_dirs(root: Path) -> None:
    """Remove directories left empty under root (deepest first); root stays."""
    if not root.exists():
        return
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
