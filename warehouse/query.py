"""Read-only queries against a warehouse, returning Polars frames (cli.py, reports)."""

from __future__ import annotations

import polars as pl

from sql.query import fetch_frame, macro_query
from warehouse.store import Warehouse


def run_query(warehouse: Warehouse, query: str, params: list | None = None, *,
              wait_s: float = 30.0) -> pl.DataFrame:
    """Run one query on a read-only connection."""
    with warehouse.connect(read_only=True, wait_s=wait_s) as con:
        return fetch_frame(con, query, params)


def macro_frame(warehouse: Warehouse, name: str, params: dict, *, model: str | None = None,
                wait_s: float = 30.0) -> pl.DataFrame:
    """All rows of table macro ``name`` with the given parameters (defaults otherwise)."""
    query, values = macro_query(name, params, model)
    return run_query(warehouse, query, values, wait_s=wait_s)
