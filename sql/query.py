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
    """Run one query on an open connection and return its rows as a Polars frame."""
    try:
        return pl.from_arrow(con.sql(query, params=params or None).to_arrow_table())
    except duckdb.Error as exc:
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
