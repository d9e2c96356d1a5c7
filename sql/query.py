"""Queries as values: the macro-call text with bound parameters, and a frame from a connection.

Nothing here opens a warehouse: `warehouse.query` opens the connection and calls these,
so the flow stays warehouse -> sql with no call back.
"""

from __future__ import annotations

import duckdb
import polars as pl


class QueryError(Exception):
    """A query against the warehouse failed."""


def fetch_frame(con, query: str, params: list | None = None) -> pl.DataFrame:
    """Run one query on an open connection and return its rows as a Polars frame.

    Errors of a damaged file are re-raised as they are: the file is at fault, not the
    query, and the warehouse's connection names it.
    """
    if not query.strip():
        raise QueryError("empty query: give one SQL statement, e.g. \"select * from rollout_ranking\"")
    try:
        result = con.sql(query, params=params or None)
        if result is None:  # only comments, or a statement without a result (set, pragma)
            raise QueryError(f"query {query.strip()[:60]!r} returns no rows: give a select")
        return pl.from_arrow(result.to_arrow_table())
    except duckdb.Error as exc:
        if "corrupt database file" in str(exc).lower():
            raise
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


def macro_query(name: str, params: dict, model: str | None = None) -> tuple[str, list]:
    """``select * from name(...)``, optionally for one model, with its bound values."""
    call, values = macro_call(name, params)
    query = f"select * from {call}"
    if model is not None:
        query += " where model = ?"
        values.append(model)
    return query, values
