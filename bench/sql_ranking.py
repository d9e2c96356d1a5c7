"""Benchmark the ranking on a warehouse written through the real write path (METRICS.md §4-7).

Writes ``--rollouts`` synthetic rollouts (row-normalised random attention, 2-5 VA
sentences and about 20% plan_generation sentences each) with the warehouse's own writer
(Parquet cells, kept scores in the write transaction), then times one scan of every cell
against the rankings (bench/store_queries.py), all in one run.

Then 1,000 rollouts of the same shape, measured directly: their kept scores are copies
of the ones written above (the default ranking reads no cell); any cell reads left in
the ranking's time above are extrapolated linearly and added.

    python bench/sql_ranking.py --rollouts 4 --layers 36 --heads 32 --sentences 250
    python bench/sql_ranking.py --small
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from grid import add_grid_arguments  # noqa: E402
from store_queries import best_of, directory_bytes, report  # noqa: E402

from warehouse.store import ModelInfo, RolloutRecord, Warehouse  # noqa: E402

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
    """Fill the storage tables with random inline cells (SQL only, no files, no kept
    scores: every metric computes from cells); return the number of cells. Used by
    bench/permutation_pvalues.py."""
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
        insert into attention_inline (model, rollout_id, layer, head, i, j, value)
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


def record(k: int, n: int, rng) -> RolloutRecord:
    va = set(rng.choice(n, size=min(n, int(rng.integers(2, 6))), replace=False).tolist())
    tags = [[TAG] if idx in va else (["plan_generation"] if rng.random() < 0.2 else
                                     ["active_computation"]) for idx in range(n)]
    sentences = [f"sentence {idx}" for idx in range(n)]
    spans = [(0, len(s)) for s in sentences]
    rid = f"problem_{k // 10}/va_{k:04d}"
    return RolloutRecord(rid, rid.split("/")[1], "/bench", f"/bench/{rid}", sentences, spans,
                         tags, "chunks.json", f"text-{k}", {}, [])


def layers(rng, n_layers: int, n_heads: int, n: int):
    for layer in range(n_layers):
        mats = np.tril(rng.random((n_heads, n, n), dtype=np.float32) ** 4)
        mats /= mats.sum(axis=-1, keepdims=True)
        yield layer, mats


def write_rollouts(warehouse: Warehouse, rollouts: int, n_layers: int, n_heads: int, n: int) -> float:
    """Write the rollouts; return the seconds spent in the commits (kept scores included)."""
    rng = np.random.default_rng(0)
    model = ModelInfo(MODEL, n_layers, n_heads)
    commit = 0.0
    with warehouse.write_lock():
        for k in range(rollouts):
            rollout = record(k, n, rng)
            started = time.perf_counter()
            warehouse.write_attention(rollout, model, layers(rng, n_layers, n_heads, n))
            commit += time.perf_counter() - started
    return commit


def thousand(warehouse: Warehouse, target: Path, copies: int) -> float:
    """Time the default ranking on ``copies`` rollouts made of the kept scores alone."""
    import duckdb

    from warehouse.connection import STORAGE_VERSION

    con = duckdb.connect(str(target), config={"storage_compatibility_version": STORAGE_VERSION})
    import sql

    sql.install(con)
    con.execute(f"attach '{warehouse.db_path}' as src (read_only)")
    con.execute("insert into models select * from src.models")
    con.execute(f"""
        insert into rollouts select s.* replace (s.rollout_id || '#' || t.k as rollout_id)
        from src.rollouts as s, range({copies} // (select count(*) from src.rollouts)) t(k)""")
    con.execute(f"""
        insert into sentence_tags select s.* replace (s.rollout_id || '#' || t.k as rollout_id)
        from src.sentence_tags as s, range({copies} // (select count(*) from src.rollouts)) t(k)""")
    for table in ("kept_scores", "kept_tag_blocks"):
        con.execute(f"""
            insert into {table} select s.* replace (s.rollout_id || '#' || t.k as rollout_id)
            from src.{table} as s, range({copies} // (select count(*) from src.rollouts)) t(k)""")
    con.execute("detach src")
    n = con.execute("select count(*) from rollouts").fetchone()[0]
    seconds = best_of(con, "select * from rollout_ranking", repeat=2)
    other = best_of(con, "select * from rollout_ranking(tag := 'plan_generation')", repeat=2)
    con.close()
    print(f"  {n} rollouts, kept scores only: rollout_ranking {seconds:.2f} s, "
          f"(tag := 'plan_generation') {other:.2f} s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_grid_arguments(parser, rollouts=4, sentences=250)
    parser.add_argument("--thousand", type=int, default=1000, help="rollouts of the kept-only run")
    parser.add_argument("--small", action="store_true", help="2 rollouts x 8 layers x 4 heads x 30")
    args = parser.parse_args()
    if args.small:
        args.rollouts, args.layers, args.heads, args.sentences, args.thousand = 2, 8, 4, 30, 100
    cells = args.rollouts * args.layers * args.heads * args.sentences * (args.sentences + 1) // 2
    tmp = Path(tempfile.mkdtemp(prefix="va-bench-"))
    try:
        warehouse = Warehouse(tmp / "wh")
        started = time.perf_counter()
        commit = write_rollouts(warehouse, args.rollouts, args.layers, args.heads, args.sentences)
        print(f"{args.rollouts} rollouts x {args.layers} layers x {args.heads} heads x "
              f"{args.sentences} sentences = {cells:,} cells; written in "
              f"{time.perf_counter() - started:.1f} s (of which writer + commit {commit:.1f} s); "
              f"{directory_bytes(warehouse.dir) / cells:.2f} bytes per cell "
              "(random values compress worse than real attention)")
        with warehouse.connect(read_only=True) as con:
            times = report(con, args.rollouts)
        scan = times["scan: select sum(value) from attention"]
        print(f"1,000-rollout run ({args.thousand} rollouts of this shape; the default rankings "
              "read kept scores only, no cell, so this is measured, not extrapolated):")
        kept_only = thousand(warehouse, tmp / "thousand.duckdb", args.thousand)
        print(f"  {kept_only / args.thousand * 1000:.1f} ms per rollout; one scan of their cells "
              f"~ {scan / args.rollouts * args.thousand:.0f} s (the scan above, scaled)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
