"""Benchmark the thought-anchors SQL (sentence_scores, field_correlations) on synthetic data.

Builds an in-memory warehouse with bench/sql_ranking.py's generator (random attention for
``rollouts x layers x heads`` and ``sentences`` sentences per rollout), adds sentences, a
random numeric field and random dependency edges, then times, in one run:
``receiver_scores`` (every layer: the receiver heads need all of them), ``sentence_scores``,
and ``field_correlations`` with K permutations on the representative layers, with the ratio
to the plain ``vertical_scores`` view. Example::

    python bench/field_correlations.py --rollouts 5 --sentences 150
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from grid import add_grid_arguments  # noqa: E402
from sql_ranking import build  # noqa: E402

import sql  # noqa: E402


def add_sentence_data(con: duckdb.DuckDBPyConnection, n: int) -> None:
    con.execute("""
        insert into sentences (rollout_id, idx, text, char_start, char_end)
        select r.rollout_id, s.idx, 'sentence ' || s.idx, 0, 0
        from rollouts r cross join range($n) s(idx)""", {"n": n})
    con.execute("""
        insert into sentence_fields (rollout_id, idx, field, value, value_json)
        select rollout_id, idx, 'counterfactual_importance_accuracy', v, v::varchar::json
        from (select rollout_id, idx, random() - 0.5 as v from sentences)""")
    con.execute("""
        insert into sentence_dependencies (rollout_id, idx, depends_on_idx)
        select distinct rollout_id, idx, (random() * idx)::integer // 1
        from sentences cross join range(2) where idx > 0 and (random() * idx)::integer < idx""")


def timed(con, query: str) -> tuple[float, int]:
    started = time.perf_counter()
    rows = con.execute(f"select count(*) from ({query})").fetchone()[0]
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_grid_arguments(parser, rollouts=5, sentences=150)
    parser.add_argument("--permutations", type=int, default=1000)
    args = parser.parse_args()
    con = duckdb.connect()
    sql.install(con)
    started = time.perf_counter()
    cells = build(con, args.rollouts, args.layers, args.heads, args.sentences)
    add_sentence_data(con, args.sentences)
    print(f"built {args.rollouts} rollouts x {args.layers} layers x {args.heads} heads x "
          f"{args.sentences} sentences ({cells / 1e6:.1f} M cells) in "
          f"{time.perf_counter() - started:.1f} s")
    base, n = timed(con, "select * from vertical_scores")
    print(f"vertical_scores (representative layers): {base:.2f} s, {n:,} rows")
    for name, query in [
        ("receiver_scores (every layer, k 20)", "select * from receiver_scores"),
        ("sentence_scores", "select * from sentence_scores"),
        (f"field_correlations (K {args.permutations})",
         f"select * from field_correlations(permutations := {args.permutations})"),
    ]:
        seconds, n = timed(con, query)
        print(f"{name}: {seconds:.2f} s ({seconds / base:.1f}x vertical_scores), {n:,} rows")


if __name__ == "__main__":
    main()
