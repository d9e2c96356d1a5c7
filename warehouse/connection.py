"""Connections to the DuckDB file and the write lock (the README's "Locking model").

``write.lock`` (an flock, released by the kernel when its holder dies) admits one writing
command at a time. The DuckDB file is opened only for short connections, never across a
model pass. DuckDB itself lets one process open the file read-write, or any number
read-only; whoever finds it taken retries for ``wait_s`` and then raises
WarehouseLockedError naming the holder's PID.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from warehouse import faults
from warehouse.records import DiskFullError, WarehouseError, WarehouseLockedError, utc_now

DB_FILE = "va.duckdb"
LOCK_FILE = "write.lock"
# DuckDB 2.x writes storage the 1.5 shell (duckdb-cli) cannot read unless told to
# stay compatible; the shell is how users query the warehouse without Python.
STORAGE_VERSION = "v1.5.0"
DEFAULT_LOCK_WAIT_S = 30.0


def open_with_retry(db_path: Path, read_only: bool, wait_s: float) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, retrying while another process holds its lock."""
    config = {} if read_only else {"storage_compatibility_version": STORAGE_VERSION}
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(db_path), read_only=read_only, config=config)
        except duckdb.Error as exc:
            if "lock" not in str(exc).lower() or not isinstance(exc, duckdb.IOException):
                raise open_error(db_path, exc) from exc
            if time.monotonic() >= deadline:
                raise WarehouseLockedError(_lock_message(db_path, exc, wait_s)) from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


@contextlib.contextmanager
def write_lock(directory: Path, wait_s: float) -> Iterator[None]:
    """Hold ``write.lock`` of a warehouse directory: one writer at a time touches parquet/."""
    make_dir(directory)
    path = directory / LOCK_FILE
    try:
        handle = open(path, "a+")
    except OSError as exc:
        raise os_error(f"cannot open {path}", exc) from exc
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise WarehouseLockedError(
                        f"warehouse {directory} is being written by {holder}; wait for it "
                        "to finish (or stop it), then run the command again"
                    ) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"`{faults.this_command()}` (PID {os.getpid()}) since "
                     f"{utc_now().isoformat(timespec='seconds')}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the flock


@contextlib.contextmanager
def transaction(con):
    """One DuckDB transaction: committed on success, rolled back on any exception."""
    con.execute("begin transaction")
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def make_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(f"cannot create the warehouse directory {directory}", exc) from exc


def os_error(what: str, exc: OSError) -> WarehouseError:
    """One line for an OSError: a full disk, or what could not be done and why."""
    if faults.is_disk_full(exc):
        return DiskFullError(faults.disk_full_message(Path(exc.filename or what), 1 << 20))
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        reason += " (a part of that path is a regular file, not a directory)"
    return WarehouseError(f"{what}: {reason}")


def is_damage(exc: Exception) -> bool:
    """DuckDB's words for a damaged file (a bad checksum, a bad header)."""
    text = str(exc).lower()
    return "corrupt" in text or "not a valid duckdb" in text or "checksum" in text


def open_error(db_path: Path, exc: Exception) -> WarehouseError:
    """One line for a DuckDB file that cannot be opened (damaged, not DuckDB, disk full)."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if faults.is_disk_full(exc):  # DuckDB's WAL and checkpoint: room for the WAL again
        wal = db_path.with_name(db_path.name + ".wal")
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        return DiskFullError(faults.disk_full_message(db_path, wal_bytes + (1 << 20)))
    if is_damage(exc):
        return WarehouseError(
            f"{db_path} is damaged or is not a DuckDB database ({detail}); nothing was changed"
        )
    return WarehouseError(f"cannot open {db_path}: {detail}")


def _lock_message(db_path: Path, exc: Exception, wait_s: float) -> str:
    holder = re.search(r"held in (.+?) \(PID (\d+)\)", str(exc))
    cli_holder = faults.describe_cli_holder(int(holder.group(2))) if holder else None
    if cli_holder:
        return (
            f"{db_path} is locked by {cli_holder} (PID {holder.group(2)}), still after "
            f"{wait_s:.0f} s: wait for it to finish (or stop it), then run the command again, "
            "or give it longer with --lock-wait."
        )
    who = f"{holder.group(1)} (PID {holder.group(2)})" if holder else "another process"
    return (
        f"{db_path} is locked by {who}, still after {wait_s:.0f} s. DuckDB lets one process "
        "open the file read-write or any number read-only, not both: close that connection "
        "(quit that `duckdb` shell; reopen it with -readonly when this command is done) and "
        "run the command again, or give it longer with --lock-wait."
    )
