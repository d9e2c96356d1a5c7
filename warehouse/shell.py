"""Open the duckdb shell (PyPI ``duckdb-cli``) on a warehouse, with what the views need.

How the shell is invoked lives in `shell_invocation` alone (over `Warehouse.shell_args`),
so a change of the store layout is made in one place.
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

    Read-only unless ``write``. The arguments are `Warehouse.shell_args`: the views name
    the Parquet files by absolute path, and a moved directory gets a temporary view.
    """
    if not warehouse.exists():
        raise WarehouseError(f"no warehouse at {warehouse.dir} (no {warehouse.db_path.name}); "
                             "run `cli.py ingest` or `cli.py load` first")
    args = warehouse.shell_args()
    if write:
        args.remove("-readonly")
    return [str(shell_binary()), *args], warehouse.dir


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
