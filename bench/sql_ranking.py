"""Benchmark the ranking SQL on a synthetic warehouse (METRICS.md §4-7).

Builds a file-backed DuckDB warehouse in a temporary directory with SQL generation only
(``insert ... select from range()``), then times the full ranking view
(``select * from rollout_ranking``) and one macro call with non-default parameters.

Default size: 500 rollouts x 36 layers x 32 heads x 30 sentences (about 270M stored
lower-triangle cells). Example::

    python bench/sql_ranking.py --small
    python bench/sql_ranking.py --rollouts 100 --layers 36 --heads 32 --sentences 30
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sql  # noqa: E402

MODEL = "bench-model"
TAG = "verbalized_evaluation_awareness"
BATCH = 25  # rollouts per insert statement


def dummy_value(dtype: str) -> str:
    """A SQL literal of type dtype for a required column the benchmark does not use."""
    if dtype.endswith("[]"):
        return "[]"
    if dtype.startswith(("TIMESTAMP", "DATE")):
        return "now()"
    if dtype == "BOOLEAN":
        return "false"
    if dtype == "JSON":
        return "'{}'"
    if dtype in ("VARCHAR",):
        return "'bench'"
    return "0"


def build(con: duckdb.DuckDBPyConnection, rollouts: int, layers: int, heads: int, n: int) -> int:
    """Fill the storage tables with random data; return the number of attention cells."""
    cells = n * (n + 1) // 2
    con.execute("insert into models (model, n_layers, n_heads) values (?, ?, ?)", [MODEL, layers, heads])
    given = {
        "rollout_id": "'problem_' || (k // 10) || '/va_' || lpad(k::varchar, 4, '0')",
        "rollout_name": "'va_' || lpad(k::varchar, 4, '0')",
        "n_sentences": str(n),
    }
    columns = dict(given)
    for name, dtype in con.execute(
        "select column_name, data_type from duckdb_columns() "
        "where table_name = 'rollouts' and not is_nullable"
    ).fetchall():
        columns.setdefault(name, dummy_value(dtype))
    con.execute(
        f"insert into rollouts ({', '.join(columns)}) "
        f"select {', '.join(columns.values())} from range({rollouts}) t(k)"
    )
    con.execute(
        """
        insert into sentence_tags (rollout_id, idx, tag)
        select r.rollout_id, s.idx, $tag
        from rollouts r cross join range($n) s(idx)
        where random() < 0.12
        """,
        {"n": n, "tag": TAG},
    )
    # One counter k enumerates (rollout, layer, head, cell) in storage order; the cell
    # number t inside a head is mapped to the lower-triangle pair (i, j), j <= i.
    per_rollout = layers * heads * cells
    for first in range(0, rollouts, BATCH):
        last = min(rollouts, first + BATCH)
        insert_attention(con, first * per_rollout, last * per_rollout, layers, heads, cells)
    return rollouts * per_rollout


def insert_attention(
    con: duckdb.DuckDBPyConnection, start: int, stop: int, layers: int, heads: int, cells: int
) -> None:
    """Insert the cells numbered start..stop-1 (in storage order) with random values."""
    con.execute(
        """
        insert into attention (model, rollout_id, layer, head, i, j, value)
        with counter as (
            select k,
                   k // ($layers * $heads * $cells) as rollout,
                   (k // ($heads * $cells)) % $layers as layer,
                   (k // $cells) % $heads as head,
                   k % $cells as t
            from range($start, $stop) r(k)
        ),
        pairs as (
            select *, ((sqrt(8 * t + 1) - 1) / 2)::bigint as i0 from counter
        ),
        fixed as (
            select *, case when i0 * (i0 + 1) // 2 > t then i0 - 1
                           when (i0 + 1) * (i0 + 2) // 2 <= t then i0 + 1
                           else i0 end as i
            from pairs
        )
        select $model,
               'problem_' || (rollout // 10) || '/va_' || lpad(rollout::varchar, 4, '0'),
               layer, head, i, t - i * (i + 1) // 2, random()::float
        from fixed
        """,
        {
            "layers": layers,
            "heads": heads,
            "cells": cells,
            "start": start,
            "stop": stop,
            "model": MODEL,
        },
    )


def timed(con: duckdb.DuckDBPyConnection, query: str) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (all threads of this process) and row count of a query."""
    start, cpu = time.perf_counter(), time.process_time()
    rows = con.execute(query).fetchall()
    return time.perf_counter() - start, time.process_time() - cpu, len(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=500)
    parser.add_argument("--layers", type=int, default=36)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--sentences", type=int, default=30)
    parser.add_argument("--small", action="store_true", help="20 rollouts (quick check)")
    parser.add_argument("--keep", type=Path, help="write the warehouse here and keep it")
    args = parser.parse_args(argv)
    if args.small:
        args.rollouts = 20

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.duckdb"
        reuse = path.exists()
        con = duckdb.connect(str(path), config={"storage_compatibility_version": "v1.5.0"})
        sql.install(con)
        if reuse:
            total = con.execute("select count(*) from attention").fetchone()[0]
            print(f"reusing {path}: {total:,} cells")
        else:
            start = time.perf_counter()
            total = build(con, args.rollouts, args.layers, args.heads, args.sentences)
            con.execute("checkpoint")
            print(
                f"built {args.rollouts} rollouts x {args.layers} layers x {args.heads} heads "
                f"x {args.sentences} sentences = {total:,} cells "
                f"in {time.perf_counter() - start:.1f}s"
            )
        full, full_cpu, n_full = timed(con, "select * from rollout_ranking")
        print(f"select * from rollout_ranking: {full:.2f}s wall, {full_cpu:.2f}s cpu ({n_full} rows)")
        macro, macro_cpu, n_macro = timed(
            con,
            f"select * from rollout_ranking(tag := '{TAG}', proximity_ignore := 2, score_type := 'median')",
        )
        print(
            "select * from rollout_ranking(proximity_ignore := 2, score_type := 'median'): "
            f"{macro:.2f}s wall, {macro_cpu:.2f}s cpu ({n_macro} rows)"
        )
        print(f"ratio macro / view: {macro / full:.2f}")
        con.close()


if __name__ == "__main__":
    main()
