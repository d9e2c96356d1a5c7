"""In-place upgrade of a warehouse written before the one-copy layout (main at 16cb5a4).

Such a warehouse keeps every cell twice: an ``attention`` table inside the DuckDB file
and the Parquet files. The upgrade runs on the first read-write connection (any writing
command, or `cli.py repair`): it rewrites each attention file in the compact layout
(warehouse/attention_writer.py), then, in one transaction, drops the ``attention`` table,
adds the file facts to the manifest, installs the current SQL, points the
``attention_parquet`` view at the new files and computes the kept scores. The old files
are deleted after the commit; a crash before it leaves the old warehouse as it was (the
new files are orphans the next writer removes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

import sql
from warehouse import catalog
from warehouse.attention_writer import PARQUET_OPTIONS, attention_file_schema
from warehouse.connection import transaction
from warehouse.files import delete_files, file_facts, fsync_rename, new_version
from warehouse.records import ModelInfo

OLD_ATTENTION_TABLE = "attention"


def needs_upgrade(con) -> bool:
    """The file still has the cells table of the two-copy layout."""
    return bool(con.execute(
        "select count(*) from duckdb_tables() where table_name = ? and schema_name = 'main' "
        "and database_name = current_database()", [OLD_ATTENTION_TABLE]).fetchone()[0])


def _model_info(con, name: str) -> ModelInfo:
    row = con.execute("select model, n_layers, n_heads, source, revision, n_kv_heads, head_dim, "
                      "config from models where model = ?", [name]).fetchone()
    if row is None:
        return ModelInfo(name=name, n_layers=0, n_heads=0)
    return ModelInfo(*row[:7], config=json.loads(row[7]) if row[7] else None)


def _rewrite(root: Path, old_rel: str, model: ModelInfo) -> Path:
    """The compact copy of an old attention file, beside it, under a new version name."""
    old = root / old_rel
    new_rel = Path(old_rel).parent / f"attention-{new_version()}.parquet"
    tmp = root / new_rel.with_name(new_rel.name + ".tmp")
    schema = attention_file_schema(model)
    table = pq.read_table(old)
    with pq.ParquetWriter(tmp, schema, **PARQUET_OPTIONS) as writer:
        layers = table.column("layer").to_numpy()
        for layer in np.unique(layers):
            part = table.filter(pc.equal(table.column("layer"), layer))
            part = part.sort_by([("head", "ascending"), ("i", "ascending"), ("j", "ascending")])
            heads = max(1, len(np.unique(part.column("head").to_numpy())))
            writer.write_table(part.select(schema.names).cast(schema),
                               row_group_size=max(1, part.num_rows // heads * 8))
    fsync_rename(tmp, root / new_rel)
    return new_rel


def upgrade(con, root: Path) -> None:
    """Upgrade the connected (read-write) warehouse in place; see the module docstring."""
    old_files = con.execute("select rollout_id, model, path from parquet_files "
                            "where table_name = 'attention' order by all").fetchall()
    rewritten = [(rid, model, path, _rewrite(root, path, _model_info(con, model)))
                 for rid, model, path in old_files]
    with transaction(con):
        con.execute(f"drop table {OLD_ATTENTION_TABLE}")
        for column, kind in (("size_bytes", "bigint"), ("row_count", "bigint"),
                             ("sha256", "varchar")):
            con.execute(f"alter table parquet_files add column if not exists {column} {kind}")
        sql.install(con)
        for _rid, _model, old, new in rewritten:
            con.execute("update parquet_files set path = ? where path = ?", [new.as_posix(), old])
        for (rel,) in con.execute("select path from parquet_files").fetchall():
            facts = file_facts(root / rel)
            con.execute("update parquet_files set size_bytes = ?, row_count = ?, sha256 = ? "
                        "where path = ?", [facts.size_bytes, facts.row_count, facts.sha256, rel])
        catalog.relink(con, root)
        for rid, model, _old, _new in rewritten:
            catalog.keep_scores(con, model, rid)
    delete_files(root, [old for _rid, _model, old, _new in rewritten])
