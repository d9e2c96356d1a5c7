"""Register a user's own table (CSV or Parquet, keyed by rollout_id) as a view."""

from __future__ import annotations

import re
from pathlib import Path

import sql
from warehouse.records import WarehouseError, utc_now
from warehouse.store import Warehouse


def reserved_names(con) -> dict[str, str]:
    """Lower-case names an attached view must not take -> what they name.

    Read from what is installed (every table, view and macro of the warehouse that the
    user did not attach, and every object file of sql/, installed or not) and from
    DuckDB's own keyword list: DuckDB names ignore letter case, so 'Rollouts' would
    replace the table 'rollouts', and a keyword cannot be a view name.
    """
    attached = {row[0].lower() for row in con.execute("select name from attached_tables").fetchall()}
    objects = con.execute(
        "select table_name, 'table' from duckdb_tables() "
        "where not internal and database_name = current_database() "
        "union all select view_name, 'view' from duckdb_views() "
        "where not internal and database_name = current_database() "
        "union all select function_name, 'macro' from duckdb_functions() "
        "where not internal and database_name = current_database() "
        "and function_type in ('macro', 'table_macro')"
    ).fetchall()
    reserved = {f"{row[0]}".lower(): f"a DuckDB keyword ({row[1]})" for row in con.execute(
        "select keyword_name, keyword_category from duckdb_keywords()").fetchall()}
    reserved.update({path.stem.lower(): f"a warehouse object ('{path.stem}', sql/"
                     f"{path.parent.name}/{path.name})" for path in sql.sql_files()})
    reserved.update({name.lower(): f"a warehouse {kind} ('{name}')" for name, kind in objects
                     if name.lower() not in attached})
    return reserved


def attach_table(warehouse: Warehouse, path: str | Path, name: str | None = None,
                 file_format: str | None = None) -> dict:
    """Create view ``name`` over the file; return its row count and key coverage.

    The view reads the file where it lies (absolute path), so edits to the file show
    up in the next query, in Python and in the duckdb shell alike.
    """
    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise WarehouseError(f"attach: {path} is not a file")
    file_format = file_format or {".csv": "csv", ".tsv": "csv", ".parquet": "parquet",
                                  ".pq": "parquet"}.get(path.suffix.lower())
    if file_format not in ("csv", "parquet"):
        raise WarehouseError(f"attach: cannot tell the format of {path.name}; pass --file-type csv|parquet")
    name = name or re.sub(r"\W+", "_", path.stem).strip("_").lower()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name or ""):
        raise WarehouseError(f"attach: '{name}' is not a valid table name (letters, digits, _)")
    literal = str(path).replace("'", "''")
    reader = f"read_csv_auto('{literal}')" if file_format == "csv" else f"read_parquet('{literal}')"
    with warehouse.connect() as con:
        what = reserved_names(con).get(name.lower())
        if what is not None:
            raise WarehouseError(f"attach: '{name}' is {what}; choose another --name (names "
                                 "ignore letter case)")
        try:
            columns = [row[0] for row in con.execute(f"describe select * from {reader}").fetchall()]
        except Exception as exc:  # duckdb raises several kinds for unreadable files
            raise WarehouseError(f"attach: cannot read {path}: {exc}") from None
        if "rollout_id" not in columns:
            raise WarehouseError(
                f"attach: {path.name} has no 'rollout_id' column (columns: {', '.join(columns)}); "
                "the key joins it to the warehouse's rollouts"
            )
        con.execute("begin transaction")  # the view and its attached_tables row, or neither
        try:
            con.execute(f"create or replace view {name} as select * from {reader}")
            con.execute("delete from attached_tables where lower(name) = lower(?)", [name])
            con.execute("insert into attached_tables values (?, ?, ?, ?)",
                        [name, str(path), file_format, utc_now()])
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("commit")
        rows, matched = con.execute(
            f"select count(*), count(r.rollout_id) from {name} t "
            "left join rollouts r on r.rollout_id = t.rollout_id::varchar"
        ).fetchone()
    return {"name": name, "path": str(path), "format": file_format, "columns": columns,
            "rows": rows, "matched_rollouts": matched}
