"""The warehouse on disk: Parquet files (the durable data) and one DuckDB file (catalog,
query engine, kept scores). `Warehouse` owns the write transaction; the other jobs live
in their own modules:

- warehouse/records.py          what is stored about a rollout, model, run; errors; `utc_now`
- warehouse/tables.py           Arrow tables of the written rows (schemas from sql/00_tables)
- warehouse/attention_writer.py the attention Parquet file, streamed layer by layer
- warehouse/kept_scores.py      the kept label-free scores of each layer as it streams
- warehouse/connection.py       DuckDB connections and the write lock
- warehouse/catalog.py          manifest, attention view, kept scores, orphan sweep, damage
- warehouse/files.py            atomic file writes and the warehouse's own file names
- warehouse/crash.py            the kill points of the crash tests
- warehouse/upgrade.py          in-place upgrade of a warehouse written by older code
- warehouse/check.py            `check` and `repair`
- warehouse/query.py            read-only queries returning Polars frames

Layout of a warehouse directory::

    va.duckdb                       tables of sql/00_tables, views and macros of sql/
    parquet/rollouts/<rollout_id>/{rollouts,sentences,sentence_tags,sentence_fields,
                                   sentence_dependencies}-<version>.parquet
    parquet/attention/<model>/<rollout_id>/{attention,sentence_spans,attention_runs}-<version>.parquet
    write.lock                      held by the one process allowed to write

The attention cells exist once, in the attention file (read in place through the
``attention_parquet`` view); the small per-rollout tables are in both the Parquet files
and DuckDB tables, so the catalog can be rebuilt from the files (`cli.py repair`).

Writing one rollout (or one rollout's attention for a model) is atomic:

1. every Parquet file is written under a temporary name and renamed into place;
2. one DuckDB transaction deletes the rollout's old rows, inserts the new ones from
   those files, points the ``parquet_files`` manifest and the ``attention_parquet`` view
   at them and computes the rollout's kept scores from its new cells;
3. only then are the old files deleted.

A crash before step 2 commits leaves new files that no manifest row names: the next
writer deletes them. A crash after it leaves old files that no manifest row names:
likewise. Only the warehouse's own file names are ever deleted, and only while its
catalog is readable. The DuckDB transaction is the single commit point, so no reader
ever sees a rollout half-written or twice.

While a command holds the write lock, the stored hashes and fingerprints are read once
(`attention_fingerprint` and `write_rollout`'s change check use that snapshot) and kept
current by its own commits: no other process may write meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np

import sql
from warehouse import catalog, faults, upgrade
from warehouse.attention_writer import AttentionWriter, PendingAttention
from warehouse.catalog import PARQUET_DIR
from warehouse.connection import (
    DB_FILE,
    DEFAULT_LOCK_WAIT_S,
    LOCK_FILE,
    STORAGE_VERSION,
    is_damage,
    make_dir,
    open_error,
    open_with_retry,
    transaction,
    write_lock,
)
from warehouse.crash import CRASH_ENV, CRASH_POINTS, CRASH_SIGNAL_ENV, crash_point
from warehouse.files import delete_files, new_version, write_parquet
from warehouse.records import (
    AttentionRun,
    DiskFullError,
    ModelInfo,
    RolloutRecord,
    SentenceSpan,
    WarehouseError,
    WarehouseLockedError,
    code_version,
    model_slug,
)
from warehouse.tables import ATTENTION_TABLES, ROLLOUT_TABLES, rollout_tables, run_table, spans_table

# The public names of the warehouse package, for the modules and tests that import them here.
__all__ = [
    "ATTENTION_TABLES", "CRASH_ENV", "CRASH_POINTS", "CRASH_SIGNAL_ENV", "DB_FILE",
    "DEFAULT_LOCK_WAIT_S", "LOCK_FILE", "PARQUET_DIR", "ROLLOUT_TABLES", "STORAGE_VERSION",
    "AttentionRun", "AttentionWriter", "DiskFullError", "ModelInfo", "PendingAttention", "RolloutRecord",
    "SentenceSpan", "Warehouse", "WarehouseDamagedError", "WarehouseError",
    "WarehouseLockedError", "code_version", "crash_point", "model_slug", "remove_warehouse",
]
# Tables holding rows of one (model, rollout) attention, besides its cells.
_ATTENTION_ROW_TABLES = ("sentence_spans", "attention_runs", "kept_scores", "kept_tag_blocks")


class WarehouseDamagedError(WarehouseError):
    """A stored file is missing or damaged (`cli.py check` lists every problem)."""


class Warehouse:
    """A warehouse directory. Cheap to construct; connections are opened per use.

    ``lock_wait_s`` is how long a connection or the write lock waits for another
    process before WarehouseLockedError (the commands' ``--lock-wait``).
    """

    def __init__(self, directory: str | os.PathLike, *, lock_wait_s: float = DEFAULT_LOCK_WAIT_S):
        self.dir = Path(directory).expanduser().absolute()
        self.db_path = self.dir / DB_FILE
        self.lock_wait_s = lock_wait_s
        self._installed = False  # views and macros are (re)installed once per instance
        # While this instance holds the write lock: rollout_id -> (text_hash, content_hash)
        # and (model, rollout_id) -> fingerprint, as committed.
        self._stored: dict[str, tuple[str, str]] | None = None
        self._fingerprints: dict[tuple[str, str], str] | None = None
        self._files_now: list[Path] = []  # the Parquet files of the write in progress

    # --- connections -------------------------------------------------------------------

    def exists(self) -> bool:
        return self.db_path.exists()

    def _no_catalog_message(self) -> str | None:
        """Why this directory must not be written as a new warehouse, if it must not."""
        if self.exists() or not catalog.own_data_files(self.dir):
            return None
        return (f"warehouse {self.dir} holds data files but no catalog ({DB_FILE}); "
                "run `cli.py repair` to rebuild it from them (nothing was changed)")

    def _ensure_catalog(self) -> None:
        """Create the DuckDB file before the first data file of a new warehouse is written,
        so that data files without a catalog always mean a lost catalog, never a new one."""
        if not self.exists():
            with self.connect():
                pass

    @contextlib.contextmanager
    def connect(self, *, read_only: bool = False, wait_s: float | None = None,
                verify: bool = True):
        """A DuckDB connection; waits up to wait_s (default lock_wait_s) for another process's lock.

        The first read-write connection creates the warehouse if needed, upgrades one
        written by older code, and (re)installs every view and macro, so a newer
        checkout's SQL reaches an older file. A read-only connection first checks that
        every listed file is present with its recorded size (WarehouseDamagedError names
        the rollout; ``verify=False`` skips this, for check and repair).
        """
        if read_only and not self.exists():
            hint = self._no_catalog_message()
            raise WarehouseError(hint or (
                f"no warehouse at {self.dir} (no {DB_FILE}); "
                "run `cli.py ingest` or `cli.py load` first"
            ))
        if not read_only:
            if message := self._no_catalog_message():
                raise WarehouseError(message)
            make_dir(self.dir)
        con = open_with_retry(self.db_path, read_only, self.lock_wait_s if wait_s is None else wait_s)
        try:
            if read_only:
                if not upgrade.needs_upgrade(con):
                    catalog.link_for_reading(con, self.dir)
                if verify:
                    self._refuse_damaged(con)
            elif not self._installed:
                if upgrade.needs_upgrade(con):
                    upgrade.upgrade(con, self.dir)
                else:
                    with transaction(con):  # all objects or none; one commit is also faster
                        for path in sql.table_files():
                            con.execute(sql.render(path))
                        catalog.relink(con, self.dir)  # this directory's files, before views bind
                        sql.install(con)
                self._installed = True
            yield con
        except duckdb.Error as exc:
            if is_damage(exc) or faults.is_disk_full(exc):  # name the file, not just a block
                raise open_error(self.db_path, exc) from exc
            raise
        finally:
            con.close()

    def shell_args(self) -> list[str]:
        """Arguments for the duckdb 1.5 shell (``duckdb <args>``) reading this warehouse.

        The attention view names its files by absolute path, so the shell reads them from
        any working directory; when the directory was moved since the last write, a ``-cmd``
        first defines a temporary view over the files where they are now.
        """
        args = ["-readonly", str(self.db_path)]
        with self.connect(read_only=True) as con:
            if catalog.linked_root(con) not in (None, str(self.dir)):
                args += ["-cmd", catalog.attention_view_sql(con, self.dir, temporary=True)]
        return args

    def _refuse_damaged(self, con) -> None:
        if not con.execute("select count(*) from duckdb_columns() where table_name = "
                           "'parquet_files' and column_name = 'size_bytes'").fetchone()[0]:
            return  # written by older code: no sizes recorded yet
        problems = catalog.damaged_files(con, self.dir)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise WarehouseDamagedError(
                f"damaged warehouse: {problems[0].line()}{more}; run `cli.py check` for the "
                "list and `cli.py repair` to fix what can be fixed")

    @contextlib.contextmanager
    def write_lock(self, *, wait_s: float | None = None) -> Iterator[None]:
        """Held for a whole writing command: one writer at a time touches parquet/."""
        with write_lock(self.dir, self.lock_wait_s if wait_s is None else wait_s):
            try:
                self._take_over()
                yield
            finally:
                self._stored = self._fingerprints = None

    # --- writing -------------------------------------------------------------------------

    def write_rollout(
        self, rollout: RolloutRecord, attention: PendingAttention | None = None, *,
        wait_s: float | None = None,
    ) -> str:
        """Store one rollout, and optionally one model's attention for it, in one transaction.

        On a full disk nothing becomes visible either: this call's files (the attention
        file too) are deleted to give the space back, and DiskFullError says how much the
        next attempt needs.
        """
        self._files_now = []
        try:
            return self._write_rollout(rollout, attention, wait_s=wait_s)
        except Exception as exc:
            if not (isinstance(exc, DiskFullError) or faults.is_disk_full(exc)):
                raise
            raise self._disk_full(exc, attention) from exc

    def _disk_full(self, exc: Exception, attention: PendingAttention | None) -> DiskFullError:
        """Delete this write's files; the next attempt needs them again, and DuckDB's copy."""
        paths = [self.dir / rel for rel in self._files_now]
        if attention is not None:
            paths.append(self.dir / attention.writer.rel_path)
        paths += [p.with_name(p.name + ".tmp") for p in paths]
        sizes = 0
        for path in paths:
            with contextlib.suppress(OSError):
                sizes += path.stat().st_size
                path.unlink()
        where = Path(getattr(exc, "filename", None) or self.db_path)
        return DiskFullError(faults.disk_full_message(where, 2 * sizes + (1 << 20)))

    def _write_rollout(
        self, rollout: RolloutRecord, attention: PendingAttention | None = None, *,
        wait_s: float | None = None,
    ) -> str:
        """write_rollout without the disk-full handling.

        Returns 'new', 'replaced' or 'unchanged' for the rollout's own rows (an unchanged
        rollout is not rewritten). When its sentences changed, every model's attention
        for it is dropped as well: it no longer matches them, and the next ingest
        recomputes it. Either everything given becomes visible, or nothing does.
        ``wait_s`` (default lock_wait_s) bounds the wait for the DuckDB file; on
        WarehouseLockedError nothing is visible, the attention file stays for a retry (the
        next writer removes it if none comes) and this call's other files are deleted.
        """
        rid = rollout.rollout_id
        if self._stored is None:
            self._ensure_catalog()
        if self._stored is not None:
            row = self._stored.get(rid)
        else:
            with self.connect(wait_s=wait_s) as con:
                row = con.execute(
                    "select text_hash, content_hash from rollouts where rollout_id = ?", [rid]
                ).fetchone()
        rollout_changed = not row or row[1] != rollout.content_hash
        drop_attention = row is not None and row[0] != rollout.text_hash
        files: dict[str, Path] = {}
        if rollout_changed:
            version = new_version()
            rel_dir = Path(PARQUET_DIR, "rollouts", rid)
            for name, table in rollout_tables(rollout).items():
                files[name] = self._write_parquet(rel_dir / f"{name}-{version}.parquet", table)
        attention_files = self._attention_files(rid, attention) if attention else {}

        if files or attention_files:
            # this call's small files; the attention file stays for a retry of the commit
            written = [*files.values(), *(p for n, p in attention_files.items() if n != "attention")]
            try:
                with self.connect(wait_s=wait_s) as con, transaction(con):
                    old = self._commit(con, rid, files, drop_attention, attention,
                                       attention_files, rollout.tags)
                    crash_point("duckdb_load")
            except WarehouseLockedError:
                delete_files(self.dir, written)
                raise
            crash_point("committed")
            self._remember(rollout, drop_attention, attention)
            delete_files(self.dir, old)
        if not rollout_changed:
            return "unchanged"
        return "replaced" if row else "new"

    def _commit(self, con, rid: str, files: dict[str, Path], drop_attention: bool,
                attention: PendingAttention | None, attention_files: dict[str, Path],
                rollout_tags: list[list[str]]) -> list[str]:
        """The body of write_rollout's transaction; returns the files it made obsolete."""
        old: list[str] = []
        if files:
            old += catalog.manifest_paths(con, rid, "*" if drop_attention else None)
            tables = list(files) + (list(_ATTENTION_ROW_TABLES) if drop_attention else [])
            for name in tables:
                con.execute(f"delete from {name} where rollout_id = ?", [rid])
            self._insert(con, files)
            scope = "" if drop_attention else " and model is null"
            con.execute(f"delete from parquet_files where rollout_id = ?{scope}", [rid])
            catalog.record_files(con, self.dir, rid, None, files)
        if attention:
            model = attention.model.name
            self._upsert_model(con, attention.model)
            if not drop_attention:
                old += catalog.manifest_paths(con, rid, model)
            for name in _ATTENTION_ROW_TABLES:
                con.execute(f"delete from {name} where model = ? and rollout_id = ?", [model, rid])
            self._insert(con, {n: p for n, p in attention_files.items() if n != "attention"})
            con.execute("delete from parquet_files where rollout_id = ? and model = ?", [rid, model])
            catalog.record_files(con, self.dir, rid, model, attention_files)
        if attention or (files and drop_attention):
            catalog.relink(con, self.dir)
        if attention:
            writer = attention.writer
            catalog.keep_scores(con, attention.model.name, rid, writer.kept_rows(),
                                writer.kept_block_rows(rollout_tags))
        if files and not drop_attention:  # tags may have changed: other models' TT sums
            for (model,) in con.execute("select model from attention_runs where rollout_id = ?",
                                        [rid]).fetchall():
                if not attention or model != attention.model.name:
                    catalog.keep_blocks(con, model, rid)
        return old

    def attention_writer(
        self, model: ModelInfo, rollout_id: str, n_sentences: int,
        tags: list[list[str]] | None = None,
    ) -> AttentionWriter:
        """A writer that streams per-layer matrices to a not-yet-visible Parquet file.

        Given the rollout's ``tags``, it also computes the kept target x target sums as
        the layers pass; without, the commit computes them from the stored cells (slower).
        """
        self._ensure_catalog()
        rel_dir = Path(PARQUET_DIR, "attention", model_slug(model.name), rollout_id)
        return AttentionWriter(self.dir, rel_dir, model, rollout_id, n_sentences, tags)

    def write_attention(
        self,
        rollout: RolloutRecord,
        model: ModelInfo,
        matrices,
        spans: list[SentenceSpan] | None = None,
        run: AttentionRun | None = None,
    ) -> str:
        """Store a rollout with attention from any source: [L, H, N, N] or (layer, [H, N, N]) pairs.

        The entry point for tests and for matrices computed elsewhere; the model runner
        streams through attention_writer and write_rollout instead.
        """
        pairs = list(enumerate(matrices) if isinstance(matrices, np.ndarray) else matrices)
        n = len(rollout.sentences)
        with self.attention_writer(model, rollout.rollout_id, n, rollout.tags) as writer:
            for layer, mats in pairs:
                writer.add_layer(layer, mats)
        if spans is None:
            spans = [SentenceSpan(None, None, 0, 0, "external") for _ in range(n)]
        if run is None:
            run = AttentionRun(fingerprint="external", text_source="external", dtype="float32",
                               n_tokens=0)
        return self.write_rollout(rollout, PendingAttention(model, writer, spans, run))

    def _attention_files(self, rollout_id: str, attention: PendingAttention) -> dict[str, Path]:
        written = attention.writer
        if not written.closed:
            raise WarehouseError("PendingAttention needs a closed AttentionWriter")
        if written.rollout_id != rollout_id:
            raise WarehouseError(f"attention of '{written.rollout_id}' given for '{rollout_id}'")
        model, run = attention.model.name, attention.run
        return {
            "attention": written.rel_path,
            "sentence_spans": self._write_parquet(
                written.rel_dir / f"sentence_spans-{written.version}.parquet",
                spans_table(model, rollout_id, run.text_source, attention.spans),
            ),
            "attention_runs": self._write_parquet(
                written.rel_dir / f"attention_runs-{written.version}.parquet",
                run_table(model, rollout_id, run),
            ),
        }

    def _insert(self, con, files: dict[str, Path]) -> None:
        for name, rel in files.items():
            con.execute(f"insert into {name} by name select * from read_parquet(?)",
                        [str(self.dir / rel)])

    # --- reading -------------------------------------------------------------------------

    def attention_fingerprint(self, model: str, rollout_id: str) -> str | None:
        """The fingerprint of the stored attention of (model, rollout), or None."""
        if self._fingerprints is not None:
            return self._fingerprints.get((model, rollout_id))
        if not self.exists():
            return None
        with self.connect(read_only=True, verify=False) as con:
            row = con.execute(
                "select fingerprint from attention_runs where model = ? and rollout_id = ?",
                [model, rollout_id],
            ).fetchone()
        return row[0] if row else None

    # --- internals -----------------------------------------------------------------------

    def _write_parquet(self, rel: Path, table) -> Path:
        self._files_now.append(rel)
        write_parquet(self.dir / rel, table, before_rename=lambda: crash_point("parquet_write"))
        return rel

    @staticmethod
    def _upsert_model(con, model: ModelInfo) -> None:
        con.execute("delete from models where model = ?", [model.name])
        con.execute(
            "insert into models values (?, ?, ?, ?, ?, ?, ?, ?)",
            [model.name, model.source, model.revision, model.n_layers, model.n_heads,
             model.n_kv_heads, model.head_dim, json.dumps(model.config or {})],
        )

    def _take_over(self) -> None:
        """On taking the write lock: read the snapshot and remove orphans, in one connection."""
        self._stored, self._fingerprints = {}, {}
        self._ensure_catalog()
        # Read-only: a `duckdb -readonly` shell open now must not stop the writer from
        # starting; it computes and queues its commits (README, "Locking model").
        with self.connect(read_only=True, verify=False) as con:
            keep = catalog.listed_paths(con)
            for rid, text_hash, content_hash in con.execute(
                    "select rollout_id, text_hash, content_hash from rollouts").fetchall():
                self._stored[rid] = (text_hash, content_hash)
            for model, rid, fp in con.execute(
                    "select model, rollout_id, fingerprint from attention_runs").fetchall():
                self._fingerprints[(model, rid)] = fp
        catalog.sweep_orphans(self.dir, keep)

    def _remember(self, rollout: RolloutRecord, drop_attention: bool,
                  attention: PendingAttention | None) -> None:
        """Keep the snapshot equal to what was just committed."""
        if self._stored is None or self._fingerprints is None:
            return
        rid = rollout.rollout_id
        self._stored[rid] = (rollout.text_hash, rollout.content_hash)
        if drop_attention:
            for key in [k for k in self._fingerprints if k[1] == rid]:
                del self._fingerprints[key]
        if attention is not None:
            self._fingerprints[(attention.model.name, rid)] = attention.run.fingerprint


def remove_warehouse(directory: str | os.PathLike) -> None:
    """Delete a warehouse directory's data files (the DuckDB file and the Parquet store)."""
    directory = Path(directory)
    for name in (DB_FILE, DB_FILE + ".wal", LOCK_FILE):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
    shutil.rmtree(directory / PARQUET_DIR, ignore_errors=True)
