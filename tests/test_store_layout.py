"""The one-copy layout: attention only in Parquet, compact, read in place by every view,
the duckdb 1.5 shell included."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
from sql_fixtures import close
from test_sql_shell import run_shell
from test_store_faults import MODEL, filled, rollout_record  # noqa: F401 - fixture

from warehouse.store import ModelInfo


def test_attention_is_stored_once_in_a_compact_sorted_file(warehouse):
    rng = np.random.default_rng(0)
    n, model = 40, ModelInfo("m", 4, 8)
    mats = np.tril(rng.random((4, 8, n, n), dtype=np.float32) ** 4)
    mats /= mats.sum(-1, keepdims=True)
    with warehouse.write_lock():
        warehouse.write_attention(rollout_record("r", n), model, mats)
    with warehouse.connect(read_only=True) as con:
        kinds = dict(con.execute("select table_name, table_type from information_schema.tables "
                                 "where table_name like 'attention%'").fetchall())
        assert kinds == {"attention": "VIEW", "attention_parquet": "VIEW",
                         "attention_inline": "BASE TABLE", "attention_cells": "VIEW",
                         "attention_runs": "BASE TABLE"}
        assert con.execute("select count(*) from attention_inline").fetchone() == (0,)
        (rel,) = con.execute("select path from parquet_files where table_name = 'attention'").fetchone()
        cells = con.execute("select layer, head, i, j, value from attention").fetchall()
    meta = pq.ParquetFile(warehouse.dir / rel).metadata
    assert meta.num_rows == len(cells) == 4 * 8 * n * (n + 1) // 2
    column = {meta.row_group(0).column(k).path_in_schema: meta.row_group(0).column(k)
              for k in range(meta.num_columns)}
    assert "BYTE_STREAM_SPLIT" in column["value"].encodings
    assert column["value"].compression == "ZSTD"
    assert [c[:4] for c in cells] == sorted(c[:4] for c in cells)  # (layer, head, i, j)
    # a Polars user reads the file as it is
    import polars as pl

    frame = pl.read_parquet(warehouse.dir / rel)
    assert frame.columns == ["model", "rollout_id", "layer", "head", "i", "j", "value"]
    assert close(frame["value"].sum(), float(np.tril(mats).sum()), 1e-3)


def test_shell_reads_views_and_macros_on_the_parquet_layout(filled):  # noqa: F811
    with filled.connect(read_only=True) as con:
        view = con.execute("select rollout_id, distinctiveness_score from rollout_ranking "
                           "order by rollout_id").fetchall()
        macro = con.execute("select rollout_id, distinctiveness_score from rollout_ranking("
                            "tag := 'plan_generation', proximity_ignore := 2) "
                            "order by rollout_id").fetchall()
        cells = con.execute("select count(*) from attention").fetchone()[0]
    for query, expected in (
        ("select rollout_id, distinctiveness_score from rollout_ranking order by rollout_id", view),
        ("select rollout_id, distinctiveness_score from rollout_ranking(tag := 'plan_generation', "
         "proximity_ignore := 2) order by rollout_id", macro),
    ):
        got = run_shell(filled.db_path, query, extra=filled.shell_args()[2:])
        assert [r["rollout_id"] for r in got] == [rid for rid, _ in expected]
        assert all(close(r["distinctiveness_score"], s) for r, (_, s) in zip(got, expected, strict=True))
    assert run_shell(filled.db_path, "select count(*) as n from attention")[0]["n"] == cells
