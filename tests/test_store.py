"""The Parquet + DuckDB store: atomic replacement, manifest, orphans, locks."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from warehouse.store import (
    ROLLOUT_TABLES,
    ModelInfo,
    RolloutRecord,
    WarehouseLockedError,
)


def record(rid="r1", sentences=("a", "b", "c", "d"), tags=None) -> RolloutRecord:
    sentences = list(sentences)
    spans, pos = [], 0
    for s in sentences:
        spans.append((pos, pos + len(s)))
        pos += len(s) + 1
    return RolloutRecord(
        rollout_id=rid, rollout_name=rid.split("/")[-1], root="/data", source_path=f"/data/{rid}",
        sentences=sentences, char_spans=spans,
        tags=tags or [["verbalized_evaluation_awareness"] if k == 1 else [] for k in range(len(sentences))],
        sentence_source="chunks.json", text_hash="h-" + "|".join(sentences), metadata={"x": 1},
        warnings=[],
    )


def matrices(n_layers, n_heads, n, seed=0):
    rng = np.random.default_rng(seed)
    return np.tril(rng.random((n_layers, n_heads, n, n), dtype=np.float32))


def rows(wh, query):
    with wh.connect(read_only=True) as con:
        return con.execute(query).fetchall()


def test_attention_roundtrip_lower_triangle(warehouse):
    A = matrices(2, 3, 4)
    with warehouse.write_lock():
        assert warehouse.write_attention(record(), ModelInfo("m", 2, 3), A) == "new"
    got = rows(warehouse, "select layer, head, i, j, value from attention order by all")
    assert len(got) == 2 * 3 * 10  # 4 * 5 / 2 lower-triangle cells per head
    for layer, head, i, j, value in got:
        assert j <= i
        assert value == pytest.approx(float(A[layer, head, i, j]), abs=0)
    assert rows(warehouse, "select n_layers, n_heads from models") == [(2, 3)]
    assert rows(warehouse, "select count(*) from sentence_tags") == [(1,)]


def test_rewrite_replaces_exactly_one_rollout(warehouse):
    model = ModelInfo("m", 1, 2)
    with warehouse.write_lock():
        warehouse.write_attention(record("r1"), model, matrices(1, 2, 4, seed=1))
        warehouse.write_attention(record("r2"), model, matrices(1, 2, 4, seed=2))
        before_r2 = rows(warehouse, "select sum(value) from attention where rollout_id = 'r2'")
        warehouse.write_attention(record("r1"), model, matrices(1, 2, 4, seed=3))
    assert rows(warehouse, "select rollout_id, count(*) from attention group by 1 order by 1") == [
        ("r1", 20), ("r2", 20)]
    assert rows(warehouse, "select sum(value) from attention where rollout_id = 'r2'") == before_r2
    expected = float(matrices(1, 2, 4, seed=3).sum(dtype=np.float64))
    assert rows(warehouse, "select sum(value) from attention where rollout_id = 'r1'")[0][0] == (
        pytest.approx(expected, rel=1e-6))
    # the manifest names exactly the current files, and they are all that remain on disk
    manifest = {p for (p,) in rows(warehouse, "select path from parquet_files")}
    on_disk = {p.relative_to(warehouse.dir).as_posix()
               for p in (warehouse.dir / "parquet").rglob("*.parquet")}
    assert manifest == on_disk and len(manifest) == 2 * (len(ROLLOUT_TABLES) + 3)


def test_unchanged_rollout_is_not_rewritten_and_changed_text_drops_attention(warehouse):
    with warehouse.write_lock():
        warehouse.write_attention(record(), ModelInfo("m", 1, 1), matrices(1, 1, 4))
        assert warehouse.write_rollout(record()) == "unchanged"
        retagged = dataclasses.replace(record(), tags=[[], [], ["x"], []])
        assert warehouse.write_rollout(retagged) == "replaced"
        assert rows(warehouse, "select count(*) from attention") == [(10,)]  # same text: kept
        changed = record(sentences=("a", "b", "c", "e"))
        assert warehouse.write_rollout(changed) == "replaced"
    assert rows(warehouse, "select count(*) from attention") == [(0,)]
    assert rows(warehouse, "select count(*) from attention_runs") == [(0,)]
    assert rows(warehouse, "select string_agg(text, '') from sentences") == [("abce",)]


def test_orphan_files_from_an_interrupted_write_are_removed(warehouse):
    with warehouse.write_lock():
        warehouse.write_attention(record(), ModelInfo("m", 1, 1), matrices(1, 1, 4))
    orphan = warehouse.dir / "parquet" / "attention" / "m" / "r9" / "attention-1.parquet.tmp"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"half a file")
    with warehouse.write_lock():
        pass
    assert not orphan.exists() and not orphan.parent.exists()
    assert rows(warehouse, "select count(*) from attention") == [(10,)]


def test_shape_mismatch_is_rejected_and_nothing_changes(warehouse):
    from warehouse.store import WarehouseError

    with warehouse.write_lock():
        warehouse.write_attention(record(), ModelInfo("m", 1, 1), matrices(1, 1, 4))
        with pytest.raises(WarehouseError, match="expected \\(heads, 4, 4\\)"):
            warehouse.write_attention(record(), ModelInfo("m", 1, 1), matrices(1, 1, 5))
    assert rows(warehouse, "select count(*) from attention") == [(10,)]


def test_file_opens_in_the_duckdb_1_5_shell(warehouse):
    """The warehouse pins storage v1.5.0; the duckdb-cli 1.5 shell must read it."""
    import shutil
    from pathlib import Path

    shell = shutil.which("duckdb") or str(Path(sys.executable).parent / "duckdb")
    with warehouse.write_lock():
        warehouse.write_rollout(record())
    out = subprocess.run([shell, "-readonly", "-csv", str(warehouse.db_path), "-c",
                          "select count(*) as n from sentences"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["n", "4"]


def test_lock_held_by_another_process_names_it(warehouse):
    with warehouse.write_lock():
        warehouse.write_rollout(record())
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(warehouse.db_path)!r})
            print("ready", flush=True)
            time.sleep(30)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(WarehouseLockedError) as info:
            with warehouse.connect(read_only=True, wait_s=0.5):
                pass
        message = str(info.value)
        assert f"PID {holder.pid}" in message and "still after 0 s" in message
    finally:
        holder.kill()
        holder.wait()
    with warehouse.connect(read_only=True, wait_s=5) as con:  # usable once it is gone
        assert con.execute("select count(*) from rollouts").fetchone() == (1,)
