"""Faults of the store (issue 14.1-14.3): only its own files are deleted, damage is found
and named, and repair rebuilds what can be rebuilt. Real files, real DuckDB, the real CLI."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_reliability_support import TAG, cli, good_rollout

from warehouse.store import ModelInfo, Warehouse

MODEL = ModelInfo("m", 2, 2)


def rollout_record(rid: str, n: int = 5):
    from warehouse.store import RolloutRecord

    sentences = [f"Sentence {k} of {rid}." for k in range(n)]
    spans, pos = [], 0
    for text in sentences:
        spans.append((pos, pos + len(text)))
        pos += len(text) + 1
    tags = [[TAG] if k == 2 else ["plan_generation"] for k in range(n)]
    return RolloutRecord(rid, rid, "/root", f"/root/{rid}", sentences, spans, tags,
                         "chunks.json", f"text-{rid}", {}, [])


@pytest.fixture
def filled(tmp_path) -> Warehouse:
    """A warehouse with attention for r1 and r2 (2 layers x 2 heads, 5 sentences)."""
    wh = Warehouse(tmp_path / "wh")
    rng = np.random.default_rng(1)
    with wh.write_lock():
        for rid in ("r1", "r2"):
            wh.write_attention(rollout_record(rid), MODEL,
                               np.tril(rng.random((2, 2, 5, 5)).astype(np.float32)))
    return wh


def ranking(wh: Warehouse) -> list[tuple]:
    with wh.connect(read_only=True) as con:
        return con.execute("select rollout_id, round(distinctiveness_score, 9) "
                           "from rollout_ranking(tag := 'plan_generation') order by 1").fetchall()


def listed(wh: Warehouse, table: str, rid: str) -> str:
    with wh.connect(read_only=True, verify=False) as con:
        return con.execute("select path from parquet_files where table_name = ? and rollout_id = ?",
                           [table, rid]).fetchone()[0]


def run(*args: str, wh: Warehouse):
    return cli(*args, "--warehouse", str(wh.dir))


# --- 14.1: only the warehouse's own files, never without a catalog ------------------------


def test_missing_catalog_deletes_nothing_and_repair_rebuilds_it(filled):
    before = ranking(filled)
    files = sorted(p for p in (filled.dir / "parquet").rglob("*") if p.is_file())
    filled.db_path.unlink()
    for args in (["status"], ["sql", "select 1"]):
        result = run(*args, wh=filled)
        assert result.exit_code == 1 and "repair" in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(Exception, match="no catalog"):
        with filled.write_lock():
            pass
    assert sorted(p for p in (filled.dir / "parquet").rglob("*") if p.is_file()) == files
    check = run("check", wh=filled)
    assert check.exit_code == 1 and "catalog missing" in check.stdout
    repaired = run("repair", wh=filled)
    assert repaired.exit_code == 0, repaired.output
    assert "catalog rebuilt from the data files: 2 rollouts" in repaired.stdout
    assert ranking(filled) == before
    assert run("check", wh=filled).stdout == "warehouse ok\n"


def test_users_own_files_under_the_warehouse_are_never_touched(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    mine = [wh.dir / "parquet" / "notes.txt", wh.dir / "parquet" / "mine.parquet",
            wh.dir / "parquet" / "rollouts" / "r1" / "my-table.parquet",
            wh.dir / "parquet" / "attention" / "analysis.csv", wh.dir / "extra" / "x.parquet"]
    for path in mine:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("mine")
    with wh.write_lock():
        wh.write_attention(rollout_record("r1"), MODEL, np.tril(np.ones((2, 2, 5, 5), np.float32)))
        wh.write_attention(rollout_record("r1", 6), MODEL, np.tril(np.ones((2, 2, 6, 6), np.float32)))
    with wh.write_lock():  # the sweep of leftovers
        pass
    assert all(p.read_text() == "mine" for p in mine)


# --- 14.2: damage is detected, named, and reads refuse ------------------------------------


def test_deleted_attention_file_is_named_by_check_and_reads(filled):
    rel = listed(filled, "attention", "r2")
    (filled.dir / rel).unlink()
    check = run("check", wh=filled)
    assert check.exit_code == 1
    assert check.stdout.splitlines()[0] == f"rollout 'r2' (model m): {rel}: file is missing"
    for args in (["status"], ["rank"], ["sql", "select count(*) from rollouts"]):
        result = run(*args, wh=filled)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.count("\n") == 1 and "rollout 'r2'" in result.stderr
        assert "cli.py check" in result.stderr


def test_truncated_sentences_file_is_found_and_rewritten_from_the_table(filled):
    before = ranking(filled)
    rel = listed(filled, "sentences", "r1")
    path = filled.dir / rel
    path.write_bytes(path.read_bytes()[:100])
    check = run("check", wh=filled)
    assert check.exit_code == 1 and f"rollout 'r1': {rel}: file has 100 bytes" in check.stdout
    repaired = run("repair", wh=filled)
    assert repaired.exit_code == 0 and "fixed: rollout 'r1': " in repaired.stdout
    assert run("check", wh=filled).stdout == "warehouse ok\n"
    assert ranking(filled) == before


def test_changed_bytes_and_lost_rows_are_found_and_repaired(filled):
    rel = listed(filled, "sentence_tags", "r2")
    path = filled.dir / rel
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other content
    path.write_bytes(bytes(data))
    import duckdb

    with duckdb.connect(str(filled.db_path)) as con:
        con.execute("delete from sentences where rollout_id = 'r1' and idx = 3")
        con.execute("delete from kept_scores where rollout_id = 'r1' and layer = 1")
    lines = run("check", wh=filled).stdout.splitlines()
    assert any(line.startswith(f"rollout 'r2': {rel}: file") for line in lines)
    assert "rollout 'r1': table sentences: 4 rows, 5 in its file" in lines
    assert "rollout 'r1' (model m): table kept_scores: 10 rows, 20 expected" in lines
    assert run("repair", wh=filled).exit_code == 0
    assert run("check", wh=filled).stdout == "warehouse ok\n"


# --- 14.3: repair --------------------------------------------------------------------------


def test_lost_attention_is_dropped_so_the_next_ingest_recomputes_it(filled):
    (filled.dir / listed(filled, "attention", "r1")).unlink()
    repaired = run("repair", wh=filled)
    assert repaired.exit_code == 0
    assert "not fixed: rollout 'r1' (model m): attention file" in repaired.stdout
    assert run("check", wh=filled).stdout == "warehouse ok\n"
    assert filled.attention_fingerprint("m", "r1") is None  # the next ingest recomputes it
    assert [r for r, _ in ranking(filled)] == ["r2"]


def test_rollout_lost_in_both_copies_is_reloaded_from_its_source(tmp_path):
    root = tmp_path / "root"
    for name in ("a", "b"):
        good_rollout(root, name)
    wh = Warehouse(tmp_path / "wh")
    assert cli("load", str(root), "--warehouse", str(wh.dir)).exit_code == 0
    (wh.dir / listed(wh, "sentences", "a")).unlink()
    import duckdb

    with duckdb.connect(str(wh.db_path)) as con:
        con.execute("delete from sentences where rollout_id = 'a'")
    repaired = run("repair", "--from", str(root), wh=wh)
    assert repaired.exit_code == 0, repaired.output
    assert "rollout dropped from the catalog" in repaired.stdout
    assert "1 ingested, 1 skipped (unchanged)" in repaired.stdout
    assert run("check", wh=wh).stdout == "warehouse ok\n"
    with wh.connect(read_only=True) as con:
        assert con.execute("select count(*) from sentences where rollout_id = 'a'").fetchone() == (5,)


def test_corrupt_catalog_is_kept_aside_and_rebuilt(filled):
    before = ranking(filled)
    filled.db_path.write_bytes(b"not a duckdb file" * 100)
    check = run("check", wh=filled)
    assert check.exit_code == 1 and "catalog unreadable" in check.stdout
    repaired = run("repair", wh=filled)
    assert repaired.exit_code == 0, repaired.output
    assert list(filled.dir.glob("va.duckdb.damaged-*"))
    assert ranking(filled) == before


def test_moved_warehouse_reads_its_own_files(filled, tmp_path):
    before = ranking(filled)
    moved = Warehouse(tmp_path / "moved")
    shutil.move(filled.dir, moved.dir)
    assert ranking(moved) == before  # read-only: a temporary view over the new place
    with moved.write_lock():
        pass
    assert ranking(moved) == before


def test_shell_reads_the_attention_of_a_moved_warehouse(filled, tmp_path):
    from test_sql_shell import run_shell

    with filled.connect(read_only=True) as con:
        expected = con.execute("select count(*), sum(value) from attention").fetchone()
    moved = Warehouse(tmp_path / "moved")
    shutil.move(filled.dir, moved.dir)
    args = moved.shell_args()
    assert "-cmd" in args
    got = run_shell(moved.db_path, "select count(*) as n, sum(value) as s from attention",
                    extra=args[2:])
    assert got[0]["n"] == expected[0] and abs(got[0]["s"] - expected[1]) < 1e-9
