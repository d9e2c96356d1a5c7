"""Helpers for the SQL metric tests: an in-memory warehouse filled from dense matrices."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sql  # noqa: E402

TAG = "verbalized_evaluation_awareness"
MODEL = "test-model"


@dataclass
class Rollout:
    """One rollout: per (layer, head) a dense N x N matrix (only j <= i is stored)."""

    rollout_id: str
    matrices: Mapping[tuple[int, int], np.ndarray]
    mask: Sequence[bool]
    tags: Sequence[Sequence[str]] = field(default_factory=list)  # extra tags per sentence
    rollout_name: str | None = None

    @property
    def n(self) -> int:
        return len(self.mask)


def dummy_literal(dtype: str):
    """A Python value for a required column the metrics do not read."""
    if dtype.endswith("[]"):
        return []
    if dtype.startswith(("TIMESTAMP", "DATE")):
        return "2020-01-01 00:00:00"
    if dtype == "BOOLEAN":
        return False
    if dtype == "JSON":
        return "{}"
    if dtype == "VARCHAR":
        return "x"
    return 0


def connect(path: str | Path | None = None) -> duckdb.DuckDBPyConnection:
    """A warehouse connection with every SQL object installed."""
    if path is None:
        con = duckdb.connect()
    else:
        con = duckdb.connect(str(path), config={"storage_compatibility_version": "v1.5.0"})
    sql.install(con)
    return con


def insert_row(con: duckdb.DuckDBPyConnection, table: str, values: Mapping[str, object]) -> None:
    """Insert one row, filling the other NOT NULL columns with dummy values."""
    row = dict(values)
    for name, dtype in con.execute(
        "select column_name, data_type from duckdb_columns() where table_name = ? and not is_nullable",
        [table],
    ).fetchall():
        if name not in row:
            row[name] = dummy_literal(dtype)
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    con.execute(f"insert into {table} ({names}) values ({marks})", list(row.values()))


def load(
    con: duckdb.DuckDBPyConnection,
    rollouts: Sequence[Rollout],
    n_layers: int,
    n_heads: int,
    model: str = MODEL,
    tag: str = TAG,
) -> None:
    """Replace the warehouse content by these rollouts (values stored as FLOAT)."""
    for table in ("attention_inline", "sentence_tags", "rollouts", "models"):
        con.execute(f"delete from {table}")
    insert_row(con, "models", {"model": model, "n_layers": n_layers, "n_heads": n_heads})
    cells = []
    for rollout in rollouts:
        insert_row(
            con,
            "rollouts",
            {
                "rollout_id": rollout.rollout_id,
                "rollout_name": rollout.rollout_name or rollout.rollout_id.split("/")[-1],
                "n_sentences": rollout.n,
            },
        )
        for idx, is_target in enumerate(rollout.mask):
            extra = list(rollout.tags[idx]) if idx < len(rollout.tags) else []
            for t in ([tag] if is_target else []) + extra:
                con.execute("insert into sentence_tags values (?, ?, ?)", [rollout.rollout_id, idx, t])
        for (layer, head), matrix in rollout.matrices.items():
            ii, jj = np.tril_indices(rollout.n)
            for i, j in zip(ii.tolist(), jj.tolist(), strict=True):
                cells.append((model, rollout.rollout_id, layer, head, i, j, float(matrix[i, j])))
    if cells:
        columns = list(zip(*cells, strict=True))
        con.execute(
            "insert into attention_inline (model, rollout_id, layer, head, i, j, value) "
            "select unnest($model), unnest($rollout), unnest($layer), unnest($head), "
            "unnest($i), unnest($j), unnest($value)",
            {
                "model": list(columns[0]),
                "rollout": list(columns[1]),
                "layer": list(columns[2]),
                "head": list(columns[3]),
                "i": list(columns[4]),
                "j": list(columns[5]),
                "value": list(columns[6]),
            },
        )


def as_float32(matrix: np.ndarray) -> np.ndarray:
    """The matrix as stored (FLOAT), back in float64, lower triangle kept."""
    return np.tril(np.asarray(matrix, dtype=np.float32).astype(np.float64))


def close(a, b, tol: float = 1e-6) -> bool:
    """Equal to tol absolute, or both undefined (None or NaN)."""
    a_nan = a is None or (isinstance(a, float) and np.isnan(a))
    b_nan = b is None or (isinstance(b, float) and np.isnan(b))
    if a_nan or b_nan:
        return a_nan and b_nan
    return abs(float(a) - float(b)) <= tol


def same_rows(got: list[dict], expected: list[dict]) -> bool:
    """Equal rows; floats to 1e-12 (sums over rows in another order differ in the last bits)."""
    def close_values(a, b) -> bool:
        if isinstance(a, float) and isinstance(b, float):
            return a == pytest.approx(b, abs=1e-12, nan_ok=True)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(map(close_values, a, b))
        return a == b

    return len(got) == len(expected) and all(
        g.keys() == e.keys() and all(close_values(g[k], e[k]) for k in g)
        for g, e in zip(got, expected, strict=True))


def records(con: duckdb.DuckDBPyConnection, query: str, params=None) -> list[dict]:
    """The rows of a query as dicts."""
    cursor = con.execute(query, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture
def warehouse() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory warehouse with the SQL installed."""
    con = connect()
    yield con
    con.close()
