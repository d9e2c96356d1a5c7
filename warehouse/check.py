"""`cli.py check` and `cli.py repair`: find damage against the catalog, fix what can be fixed.

The catalog (``parquet_files``) records every data file's size, row count and SHA-256 when
it is written. `check` compares the files and the DuckDB tables with it and reports one
`Problem` per finding. `repair`:

- rebuilds a missing or unreadable catalog from the intact data files (the unreadable file
  is kept beside it as ``va.duckdb.damaged-<time>``; nothing is deleted);
- upgrades a warehouse written by older code;
- restores a small table's rows (rollouts, sentences, tags, spans, runs) from its file, or
  its file from the rows, whichever copy is intact, and recomputes missing kept scores;
- drops from the catalog an attention whose file is lost (the next `ingest` recomputes it)
  and a rollout whose both copies are lost (`load` or `repair --from ROOT` reloads it);
  their files are left where they are.

Every change to the catalog happens in one transaction per rollout, as a write does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

import sql
from warehouse import catalog, upgrade
from warehouse.attention_writer import model_of_file
from warehouse.catalog import Problem
from warehouse.connection import (
    DB_FILE,
    STORAGE_VERSION,
    open_with_retry,
    transaction,
    write_lock,
)
from warehouse.files import new_version, write_parquet
from warehouse.records import WarehouseError, utc_now
from warehouse.tables import ROLLOUT_TABLES, arrow_schema

# Tables whose rows exist in both a Parquet file and a DuckDB table.
_COPIED_TABLES = (*ROLLOUT_TABLES, "sentence_spans", "attention_runs")


@dataclass
class RepairReport:
    """What repair did and what it could not do (one line each)."""

    fixed: list[str] = field(default_factory=list)
    not_fixed: list[str] = field(default_factory=list)
    dropped_rollouts: list[str] = field(default_factory=list)


def _catalog_state(warehouse) -> str | None:
    """None when the catalog opens; otherwise why not."""
    if not warehouse.exists():
        return "missing"
    try:
        con = open_with_retry(warehouse.db_path, True, warehouse.lock_wait_s)
    except WarehouseError as exc:
        if "locked" in str(exc):
            raise
        return f"unreadable ({exc})"
    try:
        con.execute("select count(*) from parquet_files").fetchone()
    except duckdb.Error as exc:
        return f"unreadable ({str(exc).splitlines()[0]})"
    finally:
        con.close()
    return None


def check(warehouse) -> list[Problem]:
    """Every problem found, one per damaged file, table or missing catalog."""
    state = _catalog_state(warehouse)
    if state is not None:
        files = catalog.own_data_files(warehouse.dir)
        if state == "missing" and not files:
            raise WarehouseError(f"no warehouse at {warehouse.dir} (no {DB_FILE})")
        return [Problem("*", None, DB_FILE, f"catalog {state}; {len(files)} data files remain: "
                        "`cli.py repair` rebuilds the catalog from them")]
    with warehouse.connect(read_only=True, verify=False) as con:
        if upgrade.needs_upgrade(con):
            return []  # no facts recorded yet; the upgrade (next write or repair) records them
        problems = catalog.damaged_files(con, warehouse.dir, deep=True)
        problems += _table_problems(con)
    return problems


def _table_problems(con) -> list[Problem]:
    """DuckDB tables whose rows differ in number from their files', and missing kept scores."""
    problems = []
    for table in _COPIED_TABLES:
        keyed = "model" if table in ("sentence_spans", "attention_runs") else None
        rows = con.execute(f"""
            with stored as (
                select rollout_id, {'model' if keyed else "''"} as model, count(*) as n
                from {table} group by all
            ), listed as (
                select rollout_id, coalesce(model, '') as model, row_count as n, path
                from parquet_files as m where table_name = ? and row_count is not null
            )
            select listed.rollout_id, listed.model, listed.path, listed.n,
                   coalesce(stored.n, 0)
            from listed left join stored
                on stored.rollout_id = listed.rollout_id and stored.model = listed.model
            where listed.n <> coalesce(stored.n, 0)
            order by all""", [table]).fetchall()
        for rid, model, _path, expected, found in rows:
            problems.append(Problem(rid, model or None, f"table {table}",
                                    f"{found:,} rows, {expected:,} in its file"))
    missing = con.execute("""
        select m.rollout_id, m.model, m.row_count * 2 // (r.n_sentences + 1) as expected,
               (select count(*) from kept_scores k
                where k.model = m.model and k.rollout_id = m.rollout_id) as found
        from parquet_files m join rollouts r using (rollout_id)
        where m.table_name = 'attention' and m.row_count is not null
        order by all""").fetchall()
    for rid, model, expected, found in missing:
        if expected != found:
            problems.append(Problem(rid, model, "table kept_scores",
                                    f"{found:,} rows, {expected:,} expected"))
    return problems


def repair(warehouse) -> RepairReport:
    """Fix what can be fixed (see the module docstring); never deletes a data file."""
    report = RepairReport()
    state = _catalog_state(warehouse)
    with write_lock(warehouse.dir, warehouse.lock_wait_s):
        if state is not None:
            _rebuild_catalog(warehouse, state, report)
        with warehouse.connect() as con:  # upgrades an old warehouse, relinks a moved one
            problems = catalog.damaged_files(con, warehouse.dir, deep=True) + _table_problems(con)
            for rollout_id in sorted({p.rollout_id for p in problems}):
                mine = [p for p in problems if p.rollout_id == rollout_id]
                with transaction(con):
                    _repair_rollout(con, warehouse.dir, rollout_id, mine, report)
    return report


def _repair_rollout(con, root: Path, rollout_id: str, problems: list[Problem],
                    report: RepairReport) -> None:
    bad_files = {p.where for p in problems if not p.where.startswith("table ")}
    bad_tables = {(p.where.removeprefix("table "), p.model) for p in problems
                  if p.where.startswith("table ")}
    listed = con.execute("select table_name, model, path from parquet_files where rollout_id = ?",
                         [rollout_id]).fetchall()
    relink = False
    for table, model, rel in listed:
        file_bad, rows_bad = rel in bad_files, (table, model) in bad_tables
        where = f"rollout '{rollout_id}'" + (f" (model {model})" if model else "")
        if table == "attention":
            if file_bad:
                _drop_attention(con, rollout_id, model)
                relink = True
                report.not_fixed.append(f"{where}: attention file {rel} is lost; dropped from "
                                        "the catalog: run `cli.py ingest` again to recompute it")
            continue
        if file_bad and rows_bad:
            if model is None:
                _drop_rollout(con, rollout_id)
                relink = True
                report.dropped_rollouts.append(rollout_id)
                report.not_fixed.append(f"{where}: {table} lost in both copies; rollout dropped "
                                        "from the catalog: `cli.py repair --from ROOT` or "
                                        "`cli.py load ROOT` reloads it")
                break
            _drop_attention(con, rollout_id, model)
            relink = True
            report.not_fixed.append(f"{where}: {table} lost in both copies; attention dropped: "
                                    "run `cli.py ingest` again to recompute it")
        elif file_bad:
            new_rel = _rewrite_file(con, root, table, rollout_id, model, rel)
            report.fixed.append(f"{where}: {rel} rewritten from the table as {new_rel}")
        elif rows_bad:
            key, args = _scope(rollout_id, model)
            con.execute(f"delete from {table} where {key}", args)
            con.execute(f"insert into {table} by name select * from read_parquet(?)", [str(root / rel)])
            report.fixed.append(f"{where}: table {table} reloaded from {rel}")
    if relink:
        catalog.relink(con, root)
    for (table, model) in bad_tables:
        if table == "kept_scores" and con.execute(
                "select count(*) from parquet_files where rollout_id = ? and model = ? "
                "and table_name = 'attention'", [rollout_id, model]).fetchone()[0]:
            catalog.keep_scores(con, model, rollout_id)
            report.fixed.append(f"rollout '{rollout_id}' (model {model}): kept scores recomputed")


def _scope(rollout_id: str, model: str | None) -> tuple[str, list]:
    if model is None:
        return "rollout_id = ?", [rollout_id]
    return "rollout_id = ? and model = ?", [rollout_id, model]


def _rewrite_file(con, root: Path, table: str, rollout_id: str, model: str | None,
                  rel: str) -> str:
    key, args = _scope(rollout_id, model)
    rows = con.sql(f"select * from {table} where {key}", params=args).to_arrow_table()
    new_rel = Path(rel).parent / f"{table}-{new_version()}.parquet"
    write_parquet(root / new_rel, rows.cast(arrow_schema(table)))
    con.execute("delete from parquet_files where path = ?", [rel])
    catalog.record_files(con, root, rollout_id, model, {table: new_rel})
    return new_rel.as_posix()


def _drop_attention(con, rollout_id: str, model: str) -> None:
    for table in ("sentence_spans", "attention_runs", "kept_scores", "kept_tag_blocks",
                  "parquet_files"):
        con.execute(f"delete from {table} where rollout_id = ? and model = ?", [rollout_id, model])


def _drop_rollout(con, rollout_id: str) -> None:
    for table in (*ROLLOUT_TABLES, "sentence_spans", "attention_runs", "kept_scores", "kept_tag_blocks",
                  "parquet_files"):
        con.execute(f"delete from {table} where rollout_id = ?", [rollout_id])


# --- rebuilding the catalog from the files ---------------------------------------------------


def _latest_sets(directory: Path, names: tuple[str, ...]) -> list[dict[str, Path]]:
    """Per folder under directory: the newest version that has a file for every name."""
    sets = []
    folders = {p.parent for p in catalog.own_data_files(directory.parent.parent)
               if directory in p.parents}
    for folder in sorted(folders):
        versions: dict[str, dict[str, Path]] = {}
        for path in folder.glob("*.parquet"):
            name, _, version = path.name.removesuffix(".parquet").partition("-")
            versions.setdefault(version, {})[name] = path
        complete = [v for v in sorted(versions) if set(names) <= set(versions[v])]
        if complete:
            sets.append({n: versions[complete[-1]][n] for n in names})
    return sets


def _rebuild_catalog(warehouse, state: str, report: RepairReport) -> None:
    root = warehouse.dir
    if warehouse.exists():
        aside = root / f"{DB_FILE}.damaged-{utc_now().strftime('%Y%m%dT%H%M%S')}"
        warehouse.db_path.rename(aside)
        wal = root / f"{DB_FILE}.wal"
        if wal.exists():
            wal.rename(aside.with_name(aside.name + ".wal"))
        report.fixed.append(f"catalog {state}: kept as {aside.name}")
    con = duckdb.connect(str(warehouse.db_path),
                         config={"storage_compatibility_version": STORAGE_VERSION})
    try:
        with transaction(con):
            sql.install(con)
            rollout_ids = set()
            for files in _latest_sets(root / catalog.PARQUET_DIR / "rollouts", ROLLOUT_TABLES):
                rid = pq.read_table(files["rollouts"], columns=["rollout_id"]).column(0)[0].as_py()
                _adopt(con, root, rid, None, files)
                rollout_ids.add(rid)
            attention_names = ("attention", "sentence_spans", "attention_runs")
            for files in _latest_sets(root / catalog.PARQUET_DIR / "attention", attention_names):
                run = pq.read_table(files["attention_runs"], columns=["model", "rollout_id"])
                model, rid = run.column(0)[0].as_py(), run.column(1)[0].as_py()
                info = model_of_file(files["attention"])
                if rid not in rollout_ids or info is None:
                    why = "its rollout's files are gone" if rid not in rollout_ids else \
                        "the file records no model (written before the catalog kept one)"
                    report.not_fixed.append(f"rollout '{rid}' (model {model}): attention not "
                                            f"restored: {why}; run `cli.py ingest` again")
                    continue
                con.execute("delete from models where model = ?", [model])
                con.execute("insert into models values (?, ?, ?, ?, ?, ?, ?, ?)",
                            [info.name, info.source, info.revision, info.n_layers, info.n_heads,
                             info.n_kv_heads, info.head_dim, json.dumps(info.config or {})])
                _adopt(con, root, rid, model, files)
            catalog.relink(con, root)
            for model, rid in con.execute("select model, rollout_id from attention_runs").fetchall():
                catalog.keep_scores(con, model, rid)
        report.fixed.append(f"catalog rebuilt from the data files: {len(rollout_ids)} rollouts")
    finally:
        con.close()


def _adopt(con, root: Path, rollout_id: str, model: str | None, files: dict[str, Path]) -> None:
    for name, path in files.items():
        if name != "attention":
            con.execute(f"insert into {name} by name select * from read_parquet(?)", [str(path)])
    catalog.record_files(con, root, rollout_id, model,
                         {name: path.relative_to(root) for name, path in files.items()})
