"""The warehouse's SQL: storage tables, base views, metric views and macros.

Every object lives in its own ``.sql`` file named after it. Files are executed in
path order, so the folder prefixes fix the layer order: ``00_tables`` (storage),
``10_base`` (views over storage), ``20_metrics``, ``30_ranking``, ``40_stats``.
Only ``10_base`` reads the storage tables; each layer above reads the ones below.
Macro headers and pass-through argument lists are placeholders rendered from
``sql/defaults.py`` (``sql/placeholders.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

from sql.placeholders import render

SQL_DIR = Path(__file__).resolve().parent


def sql_files() -> list[Path]:
    """All object files in installation order."""
    return sorted(SQL_DIR.glob("[0-9][0-9]_*/*.sql"))


def install_order() -> list[Path]:
    """The object files in an order that creates every object after the ones it reads.

    Folders keep their layer order; inside the tree a file that calls another object's
    macro (``name(``) or reads its view (``from name``, ``join name``), outside comments,
    comes after that object's file, as dbt orders models by ``ref()``, so file names need
    not sort in dependency order.
    """
    files = sql_files()
    by_name = {path.stem: path for path in files}
    names = "|".join(map(re.escape, by_name))
    calls = re.compile(rf"\b({names})\(|\b(?:from|join)\s+({names})\b", re.IGNORECASE)
    ordered: list[Path] = []
    visiting: set[Path] = set()

    def place(path: Path) -> None:
        if path in ordered or path in visiting:
            return
        visiting.add(path)
        code = re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))
        used = {call or view for call, view in calls.findall(code)}
        for name in sorted(used - {path.stem}):
            place(by_name[name])
        visiting.discard(path)
        ordered.append(path)

    for path in files:
        place(path)
    return ordered


def install(con) -> None:
    """Create (or replace) every table, view and macro in the connected database.

    Tables use ``create table if not exists``, views and macros ``create or replace``,
    so installing again after an upgrade refreshes the logic and keeps the data. Each file
    is executed as ``render`` writes it: parameter lists filled in from sql/defaults.py.
    """
    for path in install_order():
        con.execute(render(path))


def table_files() -> list[Path]:
    """The storage definitions (sql/00_tables), in installation order."""
    return [path for path in sql_files() if path.parent.name == "00_tables"]
