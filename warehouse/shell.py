"""Open the duckdb shell (PyPI ``duckdb-cli``) on a warehouse, with what the views need.

How the shell is invoked lives in `shell_invocation` alone, so a change of the store
layout (relative Parquet paths, settings the views read) is made in one place.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from warehouse.store import Warehouse, WarehouseError


def shell_binary() -> Path:
    """The duckdb shell installed beside this Python (the venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "duckdb"
    if beside.is_file():
        return beside
    found = shutil.which("duckdb")
    if found:
        return Path(found)
    raise WarehouseError("the duckdb shell is not installed: run `pip install duckdb-cli` "
                         "in this environment (make setup does)")


def shell_invocation(warehouse: Warehouse, *, write: bool = False) -> tuple[list[str], Path]:
    """(argv, working directory) of a shell on the warehouse's DuckDB file.

    Read-only unless ``write``. The shell runs in the warehouse directory, and relative
    file paths (the Parquet store) resolve against it wherever it is started from.
    """
    if not warehouse.exists():
        raise WarehouseError(f"no warehouse at {warehouse.dir} (no {warehouse.db_path.name}); "
                             "run `cli.py ingest` or `cli.py load` first")
    directory = str(warehouse.dir).replace("'", "''")
    argv = [str(shell_binary())]
    if not write:
        argv.append("-readonly")
    argv += ["-cmd", f"set file_search_path = '{directory}'", str(warehouse.db_path)]
    return argv, warehouse.dir


def run_shell(warehouse: Warehouse, *, write: bool = False) -> int:
    """Run the shell on this terminal (or on piped stdin) until it exits; its exit code.

    With ``write`` the warehouse's write lock is held meanwhile, so no ingest or load
    interleaves with the session's changes.
    """
    argv, cwd = shell_invocation(warehouse, write=write)
    if not write:
        return subprocess.run(argv, cwd=cwd, check=False).returncode
    with warehouse.write_lock():
        return subprocess.run(argv, cwd=cwd, check=False).returncode
