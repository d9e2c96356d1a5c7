"""Run queries and call the metric macros from Python, returning Polars frames."""

from __future__ import annotations

import duckdb
import polars as pl


class QueryError(Exception):
    """A query against the warehouse failed."""


def run_query(warehouse, query: str, params: list | None = None, *, wait_s: float = 30.0
              ) -> pl.DataFrame:
    """Run one query on a read-only connection."""
    if not query.strip():
        raise QueryError("empty query: give one SQL statement, e.g. \"select * from rollout_ranking\"")
    with warehouse.connect(read_only=True, wait_s=wait_s) as con:
        try:
            result = con.sql(query, params=params or None)
        except duckdb.Error as exc:
            if "corrupt database file" in str(exc).lower():
                raise  # the file is damaged, not the query: warehouse.connect names it
            raise QueryError(f"query failed: {exc}") from None
        if result is None:  # only comments, or a statement without a result (set, pragma)
            raise QueryError(f"query {query.strip()[:60]!r} returns no rows: give a select")
        try:
            return pl.from_arrow(result.to_arrow_table())
        except duckdb.Error as exc:
            if "corrupt database file" in str(exc).lower():
                raise  # the file is damaged, not the query: warehouse.connect names it
            raise QueryError(f"query failed: {exc}") from None


def macro_call(name: str, params: dict) -> tuple[str, list]:
    """``name(key := ?, ...)`` with values bound as parameters, never spliced into SQL."""
    if not name.isidentifier():
        raise QueryError(f"'{name}' is not a macro name")
    for key in params:
        if not key.isidentifier():
            raise QueryError(f"'{key}' is not a parameter name")
    args = ", ".join(f"{key} := ?" for key in params)
    return f"{name}({args})", list(params.values())


def macro_frame(warehouse, name: str, params: dict, *, model: str | None = None,
                wait_s: float = 30.0) -> pl.DataFrame:
    """All rows of table macro ``name`` with the given parameters (defaults otherwise)."""
    call, values = macro_call(name, params)
    query = f"select * from {call}"
    if model is not None:
        query += " where model = ?"
        values.append(model)
    return run_query(warehouse, query, values, wait_s=wait_s)
