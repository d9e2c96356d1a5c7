"""Words for the warehouse's faults: who holds a lock, how full a disk is.

Pure helpers without warehouse state (warehouse.store raises the errors that use them):
the process holding the DuckDB file or ``write.lock`` is described from /proc, so a
lock message names what the user actually has open (a `duckdb` shell, another
`cli.py` command, some other program); a full disk is recognised in every form the
libraries report it (OSError ENOSPC from Python, pyarrow or DuckDB's own text).
"""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import sys
from pathlib import Path

NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"
CLI_NAMES = ("cli.py", "va-warehouse")


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` (from Python, pyarrow or DuckDB) reports a full file system."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return NO_SPACE.lower() in str(exc).lower() or "disk quota exceeded" in str(exc).lower()


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def free_bytes(path: Path) -> int | None:
    """Free space on the file system holding ``path`` (or its nearest existing parent)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def disk_full_message(path: Path, needed_bytes: int | None, *, freed_bytes: int = 0) -> str:
    """One line: what could not be written, what is free, what the next attempt needs.

    ``freed_bytes``: what the caller is about to delete (the failed write's own file).
    """
    free = free_bytes(path)
    free = free + freed_bytes if free is not None else None
    free_text = f"{human_bytes(free)} free there now" if free is not None else "free space unknown"
    need = (f"the next attempt needs about {human_bytes(needed_bytes)}: free that much"
            if needed_bytes is not None else "free some space")
    return (
        f"disk full: no space left on device writing {path} ({free_text}); {need} and run the "
        "command again (committed rollouts are intact; temporary files of the failed write are "
        "removed)"
    )


def process_command(pid: int) -> list[str]:
    """The argv of a running process (empty when /proc does not tell)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def is_cli_command(argv: list[str]) -> bool:
    return any(Path(arg).name in CLI_NAMES for arg in argv[:3])


def command_text(argv: list[str], limit: int = 120) -> str:
    """`cli.py ingest ROOT ...`: the program's name and its arguments, shortened."""
    if not argv:
        return ""
    start = next((k for k, arg in enumerate(argv[:3]) if Path(arg).name in CLI_NAMES), 0)
    text = shlex.join([Path(argv[start]).name, *argv[start + 1:]])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def this_command() -> str:
    """How this process was started, for the holder line of write.lock."""
    return command_text(list(sys.argv)) or "python"


def describe_cli_holder(pid: int) -> str | None:
    """'another va-warehouse command, `cli.py ingest ...`' when pid runs the CLI, else None."""
    argv = process_command(pid)
    if argv and is_cli_command(argv) and pid != os.getpid():
        return f"another va-warehouse command, `{command_text(argv)}`"
    return None
