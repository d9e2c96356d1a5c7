"""The catalog of the Parquet store: the ``parquet_files`` manifest and what hangs off it.

- `record_files`: manifest rows with each file's size, row count and checksum;
- `relink`: rewrites the ``attention_parquet`` view (absolute paths of the current
  attention files) in the caller's transaction, so the view and the manifest change
  together; `link_for_reading` covers a warehouse directory that was moved or copied;
- `keep_scores`: the kept label-free scores of one (model, rollout), same transaction;
- `sweep_orphans`: deletes only the warehouse's own file names that no row lists;
- `damaged_files`: files that are missing or of the wrong size (checksums with ``deep``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sql
from warehouse.files import file_facts, is_own_file, remove_empty_dirs

PARQUET_DIR = "parquet"
ATTENTION_VIEW = "attention_parquet"


def record_files(con, root: Path, rollout_id: str, model: str | None,
                 files: dict[str, Path]) -> None:
    """Add manifest rows for freshly written files (facts read from the files now)."""
    rows = []
    for name, rel in files.items():
        facts = file_facts(root / rel)
        rows.append([name, rollout_id, model, Path(rel).as_posix(), facts.size_bytes,
                     facts.row_count, facts.sha256])
    con.executemany(
        "insert into parquet_files (table_name, rollout_id, model, path, size_bytes, "
        "row_count, sha256) values (?, ?, ?, ?, ?, ?, ?)", rows)


def manifest_paths(con, rollout_id: str, model: str | None) -> list[str]:
    """Paths listed for a rollout: its own files (model None), one model's, or all ('*')."""
    if model == "*":
        query, args = "select path from parquet_files where rollout_id = ?", [rollout_id]
    elif model is None:
        query = "select path from parquet_files where rollout_id = ? and model is null"
        args = [rollout_id]
    else:
        query = "select path from parquet_files where rollout_id = ? and model = ?"
        args = [rollout_id, model]
    return [row[0] for row in con.execute(query, args).fetchall()]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def attention_view_sql(con, root: Path, *, temporary: bool = False) -> str:
    """The definition of attention_parquet over the manifest's current attention files.

    A listed file that is missing is left out (DuckDB refuses a view over a missing file);
    reads refuse a damaged warehouse before they get here (Warehouse.connect).
    """
    paths = [str(root / rel) for (rel,) in con.execute(
        "select path from parquet_files where table_name = 'attention' "
        "order by model, rollout_id").fetchall() if (root / rel).is_file()]
    create = "create or replace temp view" if temporary else "create or replace view"
    if not paths:  # the empty definition of sql/00_tables
        text = sql.render(sql.SQL_DIR / "00_tables" / f"{ATTENTION_VIEW}.sql")
        return text.replace("create view if not exists", create)
    listing = ",\n    ".join(_quote(p) for p in paths)
    return (f"{create} {ATTENTION_VIEW} as\n"
            "select model, rollout_id, layer, head, i, j, value\n"
            f"from read_parquet([\n    {listing}\n])")


def relink(con, root: Path) -> None:
    """Point attention_parquet at the manifest's files (in the caller's transaction)."""
    con.execute(attention_view_sql(con, root))
    con.execute(f"comment on view {ATTENTION_VIEW} is {_quote(str(root))}")


def linked_root(con) -> str | None:
    row = con.execute("select comment from duckdb_views() where view_name = ? and not temporary",
                      [ATTENTION_VIEW]).fetchone()
    return row[0] if row else None


def link_for_reading(con, root: Path) -> None:
    """On a read-only connection: a temporary view over this directory's files when the
    stored view names another directory (the warehouse was moved or copied)."""
    if linked_root(con) not in (None, str(root)):
        con.execute(attention_view_sql(con, root, temporary=True))


def keep_scores(con, model: str, rollout_id: str, rows=None, blocks=None) -> None:
    """Replace the kept scores of one (model, rollout): ``rows`` (kept_scores) and
    ``blocks`` (kept_tag_blocks) as the writer computed them (Arrow tables), or, for each
    one not given, computed from the stored cells in SQL."""
    con.execute("delete from kept_scores where model = ? and rollout_id = ?", [model, rollout_id])
    _insert_rows(con, "kept_scores", rows, model, rollout_id)
    keep_blocks(con, model, rollout_id, blocks)


def keep_blocks(con, model: str, rollout_id: str, blocks=None) -> None:
    """Replace the kept target x target sums of one (model, rollout), e.g. after its tags
    changed (``blocks`` as kept_score_rows, or computed in SQL)."""
    con.execute("delete from kept_tag_blocks where model = ? and rollout_id = ?",
                [model, rollout_id])
    _insert_rows(con, "kept_tag_blocks", blocks, model, rollout_id)


def _insert_rows(con, table: str, rows, model: str, rollout_id: str) -> None:
    if rows is not None:
        con.register("kept_rows_to_insert", rows)
        try:
            con.execute(f"insert into {table} select * from kept_rows_to_insert")
        finally:
            con.unregister("kept_rows_to_insert")
        return
    con.execute(f"insert into {table} select * from "
                f"{table}_of(only_model := ?::varchar, only_rollouts := ?::varchar[])",
                [model, [rollout_id]])


def listed_paths(con) -> set[str]:
    return {row[0] for row in con.execute("select path from parquet_files").fetchall()}


def sweep_orphans(root: Path, keep: set[str]) -> list[Path]:
    """Delete the warehouse's own data files under parquet/ that ``keep`` does not list.

    Only names the warehouse writes (warehouse.files.is_own_file) are candidates: a user's
    own files are never touched. Call it only with a readable catalog's ``keep``.
    """
    base = root / PARQUET_DIR
    removed = []
    if not base.exists():
        return removed
    for path in base.rglob("*"):
        if (path.is_file() and not path.is_symlink() and is_own_file(path)
                and path.relative_to(root).as_posix() not in keep):
            path.unlink()
            removed.append(path)
    remove_empty_dirs(base)
    return removed


def own_data_files(root: Path) -> list[Path]:
    """The warehouse's own committed-looking data files under parquet/ (not .tmp)."""
    base = root / PARQUET_DIR
    if not base.exists():
        return []
    return sorted(p for p in base.rglob("*.parquet") if p.is_file() and is_own_file(p))


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a stored rollout: which rollout, which file or table, what."""

    rollout_id: str
    model: str | None
    where: str  # a path relative to the warehouse directory, or a table name
    problem: str

    def line(self) -> str:
        model = f" (model {self.model})" if self.model else ""
        return f"rollout '{self.rollout_id}'{model}: {self.where}: {self.problem}"


def damaged_files(con, root: Path, *, deep: bool = False) -> list[Problem]:
    """Manifest files that are missing or differ from what was recorded when written.

    Without ``deep`` only existence and size (one stat per file: cheap enough before every
    read); with it also the row count in the file and the SHA-256 of its bytes.
    """
    problems = []
    rows = con.execute("select table_name, rollout_id, model, path, size_bytes, row_count, sha256 "
                       "from parquet_files order by rollout_id, model, table_name").fetchall()
    for _table, rollout_id, model, rel, size, count, digest in rows:
        path = root / rel
        try:
            actual = path.stat().st_size
        except OSError:
            problems.append(Problem(rollout_id, model, rel, "file is missing"))
            continue
        if size is not None and actual != size:
            problems.append(Problem(rollout_id, model, rel,
                                    f"file has {actual:,} bytes, {size:,} when written"))
            continue
        if not deep:
            continue
        try:
            facts = file_facts(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a finding
            problems.append(Problem(rollout_id, model, rel, f"file is unreadable: {exc}"))
            continue
        if count is not None and facts.row_count != count:
            problems.append(Problem(rollout_id, model, rel,
                                    f"file holds {facts.row_count:,} rows, {count:,} when written"))
        elif digest is not None and facts.sha256 != digest:
            problems.append(Problem(rollout_id, model, rel,
                                    "file content changed since it was written (checksum)"))
    return problems
