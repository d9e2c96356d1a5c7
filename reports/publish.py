"""Publishing a report: one build per output directory (a lock), a directory that is safe to
replace, and the finished report swapped in whole.

A build writes into a temporary sibling of ``out_dir`` (:func:`staging`) and, on success,
exchanges it with ``out_dir`` atomically (:func:`reports.files.swap_in`): a reader sees the
old report or the new one, never a mix. On any failure the temporary directory is removed
and the previous report stays as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import uuid
from pathlib import Path

from reports.data import ReportError
from reports.files import swap_in

STATE_FILE = ".report-state.json"


def check_out_dir(out_dir: Path) -> None:
    """Refuse to replace a directory that is not a report (the swap deletes the old one)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"--out {out_dir} is a file; give a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / STATE_FILE).exists():
        raise ReportError(
            f"refusing to write the report into {out_dir}: it holds files that are not a report "
            f"built by this command (no {STATE_FILE}); choose another --out or empty it"
        )


@contextlib.contextmanager
def report_lock(out_dir: Path):
    """One report build per output directory at a time; removes what killed builds left."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = out_dir.with_name(f".{out_dir.name}.lock")
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReportError(f"another report build is writing {out_dir} (lock {lock_path}); "
                              "wait for it to finish") from None
        # Temporary directories of builds that were killed (we hold the lock: none is live).
        for path in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):
            shutil.rmtree(path, ignore_errors=True)
        yield


@contextlib.contextmanager
def staging(out_dir: Path):
    """A fresh temporary sibling of ``out_dir`` to write the report into, swapped in when the
    block ends normally and removed when it raises (the previous report stays)."""
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        yield tmp
        swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
