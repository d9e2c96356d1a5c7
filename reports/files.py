"""File-safety helpers of the report: safe names, atomic file writes, atomic directory exchange.

Kept in reports/ (the warehouse has its own durable-write helpers for its store; reports
import nothing from there but the Warehouse class). Everything a report writes goes
through here, so a crash or a concurrent reader never sees half a file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def safe_dir_names(ids: list[str]) -> dict[str, str]:
    """A safe, unique directory name per id (rollout ids are paths and may hold anything).

    Every run of characters outside ``A-Za-z0-9._-`` becomes ``--``; a name that collides,
    or that starts with ``index`` or ``assets`` (the report's own files), gets a hash suffix.
    """
    names: dict[str, str] = {}
    used: set[str] = set()
    for rid in ids:
        name = re.sub(r"[^A-Za-z0-9._-]+", "--", rid).strip(".-") or "rollout"
        if name in used or name.startswith(("index", "assets")):
            name = f"{name}-{hashlib.sha256(rid.encode()).hexdigest()[:8]}"
        used.add(name)
        names[rid] = name
    return names


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file whole or not at all: a temporary sibling renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def link_or_copy_tree(source: Path, target: Path) -> int:
    """Copy a directory, hard-linking the files where the filesystem allows; returns the
    number of files. The report's files are never modified in place (every write replaces
    a file), so a hard link shares nothing that can change."""
    count = 0
    for path in sorted(source.rglob("*")):
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)
        count += 1
    return count


def exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the filesystem cannot exchange
        return False
    raise OSError(errno, f"cannot exchange {a} and {b}: {os.strerror(errno)}")


def swap_in(new: Path, target: Path) -> None:
    """Make directory ``new`` the one at ``target``; the previous one is deleted afterwards."""
    if not target.exists():
        os.rename(new, target)
        return
    if exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # now the old directory
        return
    old = target.with_name(f".{target.name}.tmp-old-{uuid.uuid4().hex[:8]}")
    os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)
