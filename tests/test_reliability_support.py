"""Helpers shared by the reliability tests (no tests here).

- `write_rollout` / `good_rollout`: hand-made rollout directories;
- `table_checksums`: one md5 per stored table, optionally without some rollouts or
  without columns that differ between two equal runs (timestamps, durations, file names);
- `assert_consistent`: nothing half-present, nothing twice, every manifest file on disk
  and holding exactly the rows of its table.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import duckdb
from click.testing import CliRunner

from warehouse.store import ROLLOUT_TABLES

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("rollouts", "sentences", "sentence_tags", "models", "attention", "sentence_spans",
          "attention_runs", "parquet_files")
# Columns that legitimately differ between two runs that store the same data.
VOLATILE = {
    "rollouts": ("loaded_at",),
    "attention_runs": ("ingested_at", "duration_s", "parameters", "device", "code_version"),
    "parquet_files": ("path", "size_bytes", "sha256"),  # files hold write times
}
TAG = "verbalized_evaluation_awareness"


def write_rollout(directory: Path, chunks=None, labels=None, **files) -> Path:
    """A rollout directory; values are JSON-dumped, bytes are written as they are."""
    directory.mkdir(parents=True, exist_ok=True)
    if chunks is not None and not isinstance(chunks, bytes):
        chunks = {"chunks": chunks}
    contents = {"chunks.json": chunks,
                "chunks_labeled.json": labels}
    contents.update({f"{name}.json": value for name, value in files.items()})
    for name, value in contents.items():
        if value is None:
            continue
        data = value if isinstance(value, bytes) else json.dumps(value).encode("utf-8")
        (directory / name).write_bytes(data)
    return directory


def labels_for(chunks, va=(1,)):
    return [{"chunk": c, "chunk_idx": k, "function_tags": [TAG] if k in va else ["plan_generation"]}
            for k, c in enumerate(chunks)]


def sentences(name: str, n: int = 5) -> list[str]:
    return [f"Sentence {k} of {name} says something about the task." for k in range(n)]


def good_rollout(root: Path, name: str, n: int = 5) -> Path:
    chunks = sentences(name, n)
    return write_rollout(root / name, chunks, labels_for(chunks),
                         base_solution={"full_cot": "\n".join(chunks), "is_correct": True})


def cli(*args: str, env: dict | None = None):
    """Run `cli.py` in this process (click's CliRunner), returning the Result."""
    import cli as cli_module

    return CliRunner().invoke(cli_module.main, list(args), env=env, catch_exceptions=False)


def connect(wh_dir: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(Path(wh_dir) / "va.duckdb"), read_only=True)


def table_checksums(wh_dir: Path, *, without: tuple[str, ...] = (), content_only: bool = False) -> dict:
    """md5 of each table's sorted rows; `without` leaves those rollout ids out."""
    if not (Path(wh_dir) / "va.duckdb").exists():
        return {}
    out = {}
    with connect(wh_dir) as con:
        for table in TABLES:
            exclude = VOLATILE.get(table, ()) if content_only else ()
            cols = f"* exclude ({', '.join(exclude)})" if exclude else "*"
            where = ""
            if without and table != "models":
                where = "where rollout_id not in (" + ", ".join("?" for _ in without) + ")"
            query = (f"select count(*), md5(coalesce(string_agg(r, chr(10) order by r), '')) from "
                     f"(select cast(t as varchar) as r from (select {cols} from {table} {where}) t)")
            out[table] = con.execute(query, list(without) if where else []).fetchone()
    return out


def rollout_ids(wh_dir: Path) -> set[str]:
    with connect(wh_dir) as con:
        return {r[0] for r in con.execute("select rollout_id from rollouts").fetchall()}


def assert_consistent(wh_dir: Path, *, no_orphans: bool = False) -> dict:
    """No rollout half-present or twice; the manifest names existing files holding the tables.

    Returns {rollout_id: n_sentences} and {(model, rollout_id)} with attention.
    """
    wh_dir = Path(wh_dir)
    with connect(wh_dir) as con:
        def q(query, args=()):
            return con.execute(query, list(args)).fetchall()

        n_sentences = dict(q("select rollout_id, n_sentences from rollouts"))
        assert q("select count(*) - count(distinct rollout_id) from rollouts") == [(0,)]
        # every rollout has exactly its sentences 0..N-1, and tags only on them
        assert q("""select count(*) from rollouts r full join (
                      select rollout_id, count(*) n, count(distinct idx) d, min(idx) lo, max(idx) hi
                      from sentences group by all) s using (rollout_id)
                    where r.n_sentences is distinct from s.n or s.n <> s.d or s.lo <> 0
                       or s.hi <> r.n_sentences - 1""") == [(0,)]
        assert q("""select count(*) from sentence_tags t anti join sentences s
                    using (rollout_id, idx)""") == [(0,)]
        assert q("select count(*) - count(distinct (rollout_id, idx, tag)) from sentence_tags") == [(0,)]
        # attention: one run row per (model, rollout) and every lower-triangle cell once
        runs = q("select model, rollout_id from attention_runs")
        assert len(runs) == len(set(runs))
        assert q("select count(*) from attention_runs anti join rollouts using (rollout_id)") == [(0,)]
        bad = q("""
            with cells as (select model, rollout_id, count(*) n,
                                  count(distinct (layer, head, i, j)) d from attention group by all)
            select a.model, a.rollout_id, c.n, c.d, m.n_layers * m.n_heads * r.n_sentences
                   * (r.n_sentences + 1) // 2 as expected
            from attention_runs a join rollouts r using (rollout_id) join models m using (model)
            full join cells c using (model, rollout_id)
            where c.n is distinct from expected or c.n <> c.d""")
        assert bad == [], f"attention half-present or duplicated: {bad}"
        assert q("""select count(*) from (select model, rollout_id, count(*) n from sentence_spans
                    group by all) s full join attention_runs a using (model, rollout_id)
                    left join rollouts r using (rollout_id)
                    where s.n is distinct from r.n_sentences""") == [(0,)]
        # the manifest names existing files whose rows are exactly the table's rows
        manifest = q("select table_name, rollout_id, model, path from parquet_files")
        for *_, path in manifest:
            assert (wh_dir / path).is_file(), f"manifest names a missing file {path}"
        for table in (*ROLLOUT_TABLES, "attention", "sentence_spans", "attention_runs"):
            paths = [str(wh_dir / p) for t, _, _, p in manifest if t == table]
            stored = q(f"select count(*) from {table}")[0][0]
            in_files = q("select count(*) from read_parquet(?)", [paths])[0][0] if paths else 0
            assert stored == in_files, f"{table}: {stored} rows, {in_files} in its manifest files"
        per_rollout = q("""select rollout_id, count(*) from parquet_files where model is null
                           group by all""")
        assert all(n == len(ROLLOUT_TABLES) for _, n in per_rollout)
        assert len(per_rollout) == len(n_sentences)
        attention_files = q("""select model, rollout_id, count(*) from parquet_files
                               where model is not null group by all""")
        assert sorted((m, r) for m, r, _ in attention_files) == sorted(runs)
        assert all(n == 3 for _, _, n in attention_files)
    if no_orphans:
        listed = {p for *_, p in manifest}
        on_disk = {p.relative_to(wh_dir).as_posix() for p in (wh_dir / "parquet").rglob("*")
                   if p.is_file()}
        assert on_disk == listed, f"orphans: {sorted(on_disk - listed)[:5]}"
    return {"rollouts": n_sentences, "attention": set(runs)}


def subprocess_env(**extra: str) -> dict:
    """Environment for a `cli.py` subprocess: one torch thread, offline, this checkout first."""
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)})
    env.update(extra)
    return env


CLI = [sys.executable, str(ROOT / "cli.py")]
