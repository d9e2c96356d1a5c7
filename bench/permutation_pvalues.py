"""Benchmark the permutation statistics SQL (docs/STATISTICS.md) on a synthetic warehouse.

Builds an in-memory DuckDB warehouse with bench/sql_ranking.py's generator (random
attention, about 12% target sentences), then times, with every stored layer
(``all_layers := true``), under the default null (``'position'``) and the earlier one
(``'uniform'``), and prints the ratio of the two measured in the same run:

- ``head_pvalues``: per-head permutation p-values (the acceptance size: 1,000
  permutations x 10 rollouts x 36 layers x 32 heads x 30 sentences, target < 60 s);
- ``selected_head_pvalues``: the family-wise p-value of each layer's best head;
- ``rollout_ranking_pvalues``: the ranking with p-values (representative layers);
- ``head_consistency``: the across-rollout summary with its sign-flip p-values.

Example::

    python bench/permutation_pvalues.py
    python bench/permutation_pvalues.py --rollouts 10 --permutations 1000 --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from grid import add_grid_arguments  # noqa: E402
from sql_ranking import build  # noqa: E402

import sql  # noqa: E402


def timed(con: duckdb.DuckDBPyConnection, query: str) -> tuple[float, int]:
    """Seconds to run the query and fetch every row, and the number of rows."""
    start = time.perf_counter()
    rows = con.execute(query).fetchall()
    return time.perf_counter() - start, len(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_grid_arguments(parser, rollouts=10, sentences=30)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    parser.add_argument("--only", help="time only this macro (e.g. head_pvalues)")
    parser.add_argument("--nulls", default="position,uniform", help="null models to time, comma-separated")
    args = parser.parse_args(argv)

    con = duckdb.connect()
    if args.threads:
        con.execute(f"set threads = {args.threads}")
    sql.install(con)
    con.execute("select setseed(0.5)").fetchall()
    start = time.perf_counter()
    total = build(con, args.rollouts, args.layers, args.heads, args.sentences)
    n_targets = con.execute("select count(*) from sentence_tags").fetchone()[0]
    print(
        f"built {args.rollouts} rollouts x {args.layers} layers x {args.heads} heads "
        f"x {args.sentences} sentences = {total:,} cells, {n_targets} target sentences, "
        f"in {time.perf_counter() - start:.1f}s"
    )
    threads = con.execute("select current_setting('threads')").fetchone()[0]
    for name in ("head_pvalues", "selected_head_pvalues", "rollout_ranking_pvalues", "head_consistency"):
        if args.only and name != args.only:
            continue
        layers = "" if name == "rollout_ranking_pvalues" else ", all_layers := true"
        seconds = {}
        for null_model in args.nulls.split(","):
            params = f"permutations := {args.permutations}, seed := {args.seed}, null_model := '{null_model}'"
            seconds[null_model], n_rows = timed(con, f"select * from {name}({params}{layers})")
            print(
                f"{name} [{null_model}]: {seconds[null_model]:.2f}s "
                f"({n_rows} rows; {args.permutations} permutations, {threads} threads)"
            )
        if len(seconds) == 2:
            first, second = seconds
            print(f"{name}: {first} / {second} = {seconds[first] / seconds[second]:.2f}")
    con.close()


if __name__ == "__main__":
    main()
