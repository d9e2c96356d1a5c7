"""Can a DuckLake catalog hold this project's objects? A trial of the shapes sql/ uses.

DuckLake is the lakehouse format DuckDB reads natively; the warehouse could keep its
tables there instead of in va.duckdb (README, "Why not DuckLake"). Its extension ships on
PyPI for DuckDB 1.5.x only (`duckdb-extension-ducklake`, no build for the duckdb 2.0 this
project uses), so the trial runs in its own environment:

    python3 -m venv /tmp/dl && /tmp/dl/bin/pip install duckdb==1.5.5 duckdb-extension-ducklake==1.5.5
    /tmp/dl/bin/python bench/ducklake_trial.py

It creates, inside a DuckLake catalog, a table of attention cells, a view and one macro of
each shape the metric layer uses, then calls each; prints one line per object: created
and called, or the error.
"""

from __future__ import annotations

import glob
import os
import tempfile

import duckdb
import duckdb_extension_ducklake

CELLS = ("create table attention(model varchar, rollout_id varchar, layer integer, head integer, "
         "i integer, j integer, value float)")
FILL = ("insert into attention select 'm', 'r', l, h, i, j, random() "
        "from range(2) t(l), range(2) u(h), range(5) v(i), range(5) w(j) where j <= i")
SHAPES = [  # name, create, call
    ("view", "create view cells as select * from attention", "select count(*) from cells"),
    ("scalar macro", "create macro p_value(n, k) as (1 + n) / (1 + k)", "select p_value(3, 99)"),
    ("table macro, string default", "create macro by_tag(tag := 'verbalized_evaluation_awareness') "
     "as table select tag", "select * from by_tag()"),
    ("table macro, layers := null (every metric macro)",
     "create macro head_sums(layers := null) as table select layer, head, sum(value) as s from attention "
     "where layers is null or list_contains(layers, layer) group by all", "select * from head_sums()"),
    ("table macro, typed layers integer[] := null",
     "create macro head_sums_typed(layers integer[] := null) as table select layer, sum(value) as s "
     "from attention where layers is null or list_contains(layers, layer) group by all",
     "select * from head_sums_typed()"),
]


def main() -> None:
    extension = glob.glob(os.path.join(os.path.dirname(duckdb_extension_ducklake.__file__),
                                       "extensions", "*", "ducklake.duckdb_extension"))[0]
    root = tempfile.mkdtemp(prefix="ducklake-trial-")
    con = duckdb.connect()
    con.execute(f"load '{extension}'")
    con.execute(f"attach 'ducklake:{root}/meta.ducklake' as lake (data_path '{root}/data')")
    con.execute("use lake")
    con.execute(CELLS)
    con.execute(FILL)
    print(f"# duckdb {duckdb.__version__}, DuckLake catalog in {root}")
    for name, create, call in SHAPES:
        try:
            con.execute(create)
            print(f"{name}: created; {call} -> {con.execute(call).fetchall()[:2]}")
        except duckdb.Error as exc:
            print(f"{name}: FAILED: {' | '.join(str(exc).splitlines())}")


if __name__ == "__main__":
    main()
