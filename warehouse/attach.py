"""Register a user's own table (CSV or Parquet, keyed by rollout_id) as a view."""

from __future__ import annotations

import re
from pathlib import Path

from warehouse.store import Warehouse, WarehouseError, utc_now

RESERVED = {
    "rollouts", "sentences", "sentence_tags", "models", "attention", "sentence_spans",
    "attention_runs", "ingest_log", "parquet_files", "attached_tables",
}


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
    if name in RESERVED:
        raise WarehouseError(f"attach: '{name}' is a warehouse table; choose another --name")
    literal = str(path).replace("'", "''")
    reader = f"read_csv_auto('{literal}')" if file_format == "csv" else f"read_parquet('{literal}')"
    with warehouse.connect() as con:
        try:
            columns = [row[0] for row in con.execute(f"describe select * from {reader}").fetchall()]
        except Exception as exc:  # duckdb raises several kinds for unreadable files
            raise WarehouseError(f"attach: cannot read {path}: {exc}") from None
        if "rollout_id" not in columns:
            raise WarehouseError(
                f"attach: {path.name} has no 'rollout_id' column (columns: {', '.join(columns)}); "
                "the key joins it to the warehouse's rollouts"
            )
        existing = con.execute(
            "select table_type from information_schema.tables where table_name = ?", [name]
        ).fetchone()
        attached = con.execute("select count(*) from attached_tables where name = ?",
                               [name]).fetchone()[0]
        if existing and not attached:
            raise WarehouseError(f"attach: '{name}' already names a view or table; choose another --name")
        con.execute(f"create or replace view {name} as select * from {reader}")
        con.execute("delete from attached_tables where name = ?", [name])
        con.execute("insert into attached_tables values (?, ?, ?, ?)",
                    [name, str(path), file_format, utc_now()])
        rows, matched = con.execute(
            f"select count(*), count(r.rollout_id) from {name} t "
            "left join rollouts r on r.rollout_id = t.rollout_id::varchar"
        ).fetchone()
    return {"name": name, "path": str(path), "format": file_format, "columns": columns,
            "rows": rows, "matched_rollouts": matched}
