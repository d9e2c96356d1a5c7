"""The warehouse's SQL: storage tables, base views, metric views and macros.

Every object lives in its own ``.sql`` file named after it. Files are executed in
path order, so the folder prefixes fix the layer order: ``00_tables`` (storage),
``10_base`` (views over storage), ``20_metrics``, ``30_ranking``, ``40_stats``.
Only ``10_base`` reads the storage tables; each layer above reads the ones below.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

SQL_DIR = Path(__file__).resolve().parent


def sql_files() -> list[Path]:
    """All object files in installation order."""
    return sorted(SQL_DIR.glob("[0-9][0-9]_*/*.sql"))


def install(con) -> None:
    """Create (or replace) every table, view and macro in the connected database.

    Tables use ``create table if not exists``, views and macros ``create or replace``,
    so installing again after an upgrade refreshes the logic and keeps the data.
    Files run in path order (the layer order); inside a layer an object may read one whose
    file sorts after it (like dbt's ``ref()``, the graph decides, not the name): a file
    that fails because an object it reads does not exist yet is retried after the others,
    and the first such error is raised when a whole pass makes no progress.
    """
    pending = sql_files()
    while pending:
        deferred: list[tuple[Path, Exception]] = []
        for path in pending:
            try:
                con.execute(path.read_text(encoding="utf-8"))
            except duckdb.CatalogException as error:
                deferred.append((path, error))
        if len(deferred) == len(pending):
            raise deferred[0][1]
        pending = [path for path, _ in deferred]
