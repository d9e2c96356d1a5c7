"""The warehouse on disk: a Parquet store (durable) and one DuckDB file (query engine).

Layout of a warehouse directory::

    va.duckdb                       tables of sql/00_tables, views and macros of sql/
    parquet/rollouts/<rollout_id>/{rollouts,sentences,sentence_tags}-<version>.parquet
    parquet/attention/<model>/<rollout_id>/{attention,sentence_spans,attention_runs}-<version>.parquet
    write.lock                      held by the one process allowed to write

Writing one rollout (or one rollout's attention for a model) is atomic:

1. every Parquet file is written under a temporary name and renamed into place;
2. one DuckDB transaction deletes the rollout's old rows, inserts the new ones from
   those files and points the ``parquet_files`` manifest at them;
3. only then are the old files deleted.

A crash before step 2 commits leaves new files that no manifest row names: the next
writer deletes them. A crash after it leaves old files that no manifest row names:
likewise. The DuckDB transaction is the single commit point, so no reader ever sees
a rollout half-written or twice.

Locking (the README's "Locking model"): ``write.lock`` (an flock, released by the
kernel when its holder dies) admits one writing command at a time. The DuckDB file is
opened only for short connections, never across a model pass: a writer opens it per
commit, readers whenever they like. DuckDB itself lets one process open the file
read-write, or any number read-only; whoever finds it taken retries for
``lock_wait_s`` and then raises WarehouseLockedError naming the holder's PID.

While a command holds the write lock, the stored hashes and fingerprints are read once
(`attention_fingerprint` and `write_rollout`'s change check use that snapshot) and kept
current by its own commits: no other process may write meanwhile.

Test hook: `crash_point` kills the process at named points when the environment
variable VA_WAREHOUSE_CRASH_AT names one (tests/test_reliability_crash.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import sql

DB_FILE = "va.duckdb"
LOCK_FILE = "write.lock"
PARQUET_DIR = "parquet"
# DuckDB 2.x writes storage the 1.5 shell (duckdb-cli) cannot read unless told to
# stay compatible; the shell is how users query the warehouse without Python.
STORAGE_VERSION = "v1.5.0"
DEFAULT_LOCK_WAIT_S = 30.0
CRASH_ENV = "VA_WAREHOUSE_CRASH_AT"
CRASH_SIGNAL_ENV = "VA_WAREHOUSE_CRASH_SIGNAL"
CRASH_POINTS = ("model_pass", "parquet_write", "duckdb_load", "committed")

ROLLOUT_TABLES = ("rollouts", "sentences", "sentence_tags")
ATTENTION_TABLES = ("attention", "sentence_spans", "attention_runs")


class WarehouseError(Exception):
    """The warehouse cannot be opened, read or written as asked."""


class WarehouseLockedError(WarehouseError):
    """Another process holds the warehouse and did not let go in time."""


@dataclass(frozen=True)
class ModelInfo:
    """What the attention rows of one model need to say about it."""

    name: str
    n_layers: int
    n_heads: int
    source: str | None = None
    revision: str | None = None
    n_kv_heads: int | None = None
    head_dim: int | None = None
    config: dict | None = None


@dataclass(frozen=True)
class RolloutRecord:
    """One rollout as the warehouse stores it (rows of rollouts, sentences, sentence_tags)."""

    rollout_id: str
    rollout_name: str
    root: str
    source_path: str
    sentences: list[str]
    char_spans: list[tuple[int, int]]  # of each sentence in the 'chunks' text
    tags: list[list[str]]  # tags[k] = the tags of sentence k
    sentence_source: str
    text_hash: str
    metadata: dict
    warnings: list[str]
    problem_id: str | None = None
    solution_folder: str | None = None
    is_correct: bool | None = None

    @property
    def content_hash(self) -> str:
        """Changes whenever anything stored about the rollout would change."""
        payload = [self.rollout_name, self.root, self.source_path, self.sentences,
                   self.char_spans, self.tags, self.sentence_source, self.metadata,
                   self.warnings, self.problem_id, self.solution_folder, self.is_correct]
        blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SentenceSpan:
    char_start: int | None
    char_end: int | None
    token_start: int
    token_end: int
    match: str


@dataclass(frozen=True)
class AttentionRun:
    """How one rollout's attention was produced (the attention_runs row)."""

    fingerprint: str
    text_source: str
    dtype: str
    n_tokens: int
    device: str | None = None
    query_block: int | None = None
    duration_s: float | None = None
    parameters: dict | None = None
    code_version: str | None = None


def code_version() -> str:
    """The git commit of this checkout, or the package version outside git."""
    head = Path(__file__).resolve().parent.parent / ".git"
    try:
        ref = (head / "HEAD").read_text().strip()
        if ref.startswith("ref: "):
            ref = (head / ref[5:]).read_text().strip()
        return ref[:12]
    except OSError:
        return "0.1.0"


def model_slug(model: str) -> str:
    """A directory name for a model name (Hub ids hold '/')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "--", model)


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

    # --- connections -------------------------------------------------------------------

    def exists(self) -> bool:
        return self.db_path.exists()

    @contextlib.contextmanager
    def connect(self, *, read_only: bool = False, wait_s: float | None = None):
        """A DuckDB connection; waits up to wait_s (default lock_wait_s) for another process's lock.

        The first read-write connection creates the warehouse if needed and (re)installs
        every view and macro, so a newer checkout's SQL reaches an older file.
        """
        if read_only and not self.exists():
            raise WarehouseError(
                f"no warehouse at {self.dir} (no {DB_FILE}); "
                "run `cli.py ingest` or `cli.py load` first"
            )
        if not read_only:
            self.dir.mkdir(parents=True, exist_ok=True)
        con = self._open_with_retry(read_only, self.lock_wait_s if wait_s is None else wait_s)
        try:
            if not read_only and not self._installed:
                with _transaction(con):  # all objects or none; one commit is also faster
                    sql.install(con)
                self._installed = True
            yield con
        finally:
            con.close()

    def _open_with_retry(self, read_only: bool, wait_s: float) -> duckdb.DuckDBPyConnection:
        config = {} if read_only else {"storage_compatibility_version": STORAGE_VERSION}
        deadline = time.monotonic() + wait_s
        delay = 0.05
        while True:
            try:
                return duckdb.connect(str(self.db_path), read_only=read_only, config=config)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise WarehouseError(f"cannot open {self.db_path}: {exc}") from None
                if time.monotonic() >= deadline:
                    raise WarehouseLockedError(_lock_message(self.db_path, exc, wait_s)) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    @contextlib.contextmanager
    def write_lock(self, *, wait_s: float | None = None) -> Iterator[None]:
        """Held for a whole writing command: one writer at a time touches parquet/."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / LOCK_FILE
        handle = open(path, "a+")
        deadline = time.monotonic() + (self.lock_wait_s if wait_s is None else wait_s)
        try:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        handle.seek(0)
                        holder = handle.read().strip() or "another process"
                        raise WarehouseLockedError(
                            f"warehouse {self.dir} is being written by {holder}; wait for it "
                            "to finish (or stop it), then run the command again"
                        ) from None
                    time.sleep(0.2)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} since {utc_now().isoformat(timespec='seconds')}\n")
            handle.flush()
            self._take_over()
            yield
        finally:
            self._stored = self._fingerprints = None
            handle.close()  # closing releases the flock

    # --- writing -------------------------------------------------------------------------

    def write_rollout(
        self, rollout: RolloutRecord, attention: PendingAttention | None = None, *,
        wait_s: float | None = None,
    ) -> str:
        """Store one rollout, and optionally one model's attention for it, in one transaction.

        Returns 'new', 'replaced' or 'unchanged' for the rollout's own rows (an unchanged
        rollout is not rewritten). When its sentences changed, every model's attention
        for it is dropped as well: it no longer matches them, and the next ingest
        recomputes it. Either everything given becomes visible, or nothing does.
        ``wait_s`` (default lock_wait_s) bounds the wait for the DuckDB file; on
        WarehouseLockedError nothing is visible, the attention file stays for a retry (the
        next writer removes it if none comes) and this call's other files are deleted.
        """
        rid = rollout.rollout_id
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
            version = _version()
            rel_dir = Path(PARQUET_DIR, "rollouts", rid)
            for name, table in _rollout_tables(rollout).items():
                files[name] = self._write_parquet(rel_dir / f"{name}-{version}.parquet", table)
        attention_files = self._attention_files(rid, attention) if attention else {}

        if files or attention_files:
            # this call's small files; the attention file stays for a retry of the commit
            written = [*files.values(), *(p for n, p in attention_files.items() if n != "attention")]
            try:
                with self.connect(wait_s=wait_s) as con, _transaction(con):
                    old: list[str] = []
                    if rollout_changed:
                        old += self._manifest(con, rid, "*" if drop_attention else None)
                        tables = list(files) + (list(ATTENTION_TABLES) if drop_attention else [])
                        for name in tables:
                            con.execute(f"delete from {name} where rollout_id = ?", [rid])
                        self._insert(con, files)
                        scope = "" if drop_attention else " and model is null"
                        con.execute(f"delete from parquet_files where rollout_id = ?{scope}", [rid])
                        self._record(con, rid, None, files)
                    if attention:
                        model = attention.model.name
                        self._upsert_model(con, attention.model)
                        if not drop_attention:
                            old += self._manifest(con, rid, model)
                        for name in attention_files:
                            con.execute(f"delete from {name} where model = ? and rollout_id = ?",
                                        [model, rid])
                        self._insert(con, attention_files)
                        con.execute("delete from parquet_files where rollout_id = ? and model = ?",
                                    [rid, model])
                        self._record(con, rid, model, attention_files)
                    crash_point("duckdb_load")
            except WarehouseLockedError:
                self._delete_files(written)
                raise
            crash_point("committed")
            self._remember(rollout, drop_attention, attention)
            self._delete_files(old)
        if not rollout_changed:
            return "unchanged"
        return "replaced" if row else "new"

    def attention_writer(
        self, model: ModelInfo, rollout_id: str, n_sentences: int
    ) -> AttentionWriter:
        """A writer that streams per-layer matrices to a not-yet-visible Parquet file."""
        rel_dir = Path(PARQUET_DIR, "attention", model_slug(model.name), rollout_id)
        return AttentionWriter(self.dir, rel_dir, model.name, rollout_id, n_sentences)

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
        with self.attention_writer(model, rollout.rollout_id, n) as writer:
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
                _spans_table(model, rollout_id, run.text_source, attention.spans),
            ),
            "attention_runs": self._write_parquet(
                written.rel_dir / f"attention_runs-{written.version}.parquet",
                _run_table(model, rollout_id, run),
            ),
        }

    def _insert(self, con, files: dict[str, Path]) -> None:
        for name, rel in files.items():
            con.execute(f"insert into {name} by name select * from read_parquet(?)",
                        [str(self.dir / rel)])

    @staticmethod
    def _record(con, rollout_id: str, model: str | None, files: dict[str, Path]) -> None:
        con.executemany(
            "insert into parquet_files values (?, ?, ?, ?)",
            [[name, rollout_id, model, rel.as_posix()] for name, rel in files.items()],
        )

    # --- reading -------------------------------------------------------------------------

    def attention_fingerprint(self, model: str, rollout_id: str) -> str | None:
        """The fingerprint of the stored attention of (model, rollout), or None."""
        if self._fingerprints is not None:
            return self._fingerprints.get((model, rollout_id))
        if not self.exists():
            return None
        with self.connect(read_only=True) as con:
            row = con.execute(
                "select fingerprint from attention_runs where model = ? and rollout_id = ?",
                [model, rollout_id],
            ).fetchone()
        return row[0] if row else None

    # --- internals -----------------------------------------------------------------------

    def _write_parquet(self, rel: Path, table: pa.Table) -> Path:
        final = self.dir / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(final.name + ".tmp")
        pq.write_table(table, tmp)
        crash_point("parquet_write")
        _fsync_rename(tmp, final)
        return rel

    @staticmethod
    def _upsert_model(con, model: ModelInfo) -> None:
        con.execute("delete from models where model = ?", [model.name])
        con.execute(
            "insert into models values (?, ?, ?, ?, ?, ?, ?, ?)",
            [model.name, model.source, model.revision, model.n_layers, model.n_heads,
             model.n_kv_heads, model.head_dim, json.dumps(model.config or {})],
        )

    @staticmethod
    def _manifest(con, rollout_id: str, model: str | None) -> list[str]:
        if model == "*":
            query, args = "select path from parquet_files where rollout_id = ?", [rollout_id]
        elif model is None:
            query = "select path from parquet_files where rollout_id = ? and model is null"
            args = [rollout_id]
        else:
            query = "select path from parquet_files where rollout_id = ? and model = ?"
            args = [rollout_id, model]
        return [row[0] for row in con.execute(query, args).fetchall()]

    def _delete_files(self, rel_paths: list[str]) -> None:
        for rel in rel_paths:
            with contextlib.suppress(FileNotFoundError):
                (self.dir / rel).unlink()

    def _take_over(self) -> None:
        """On taking the write lock: read the snapshot and remove orphans, in one connection."""
        keep: set[str] = set()
        self._stored, self._fingerprints = {}, {}
        if self.exists():
            with self.connect() as con:
                keep = {row[0] for row in con.execute("select path from parquet_files").fetchall()}
                for rid, text_hash, content_hash in con.execute(
                        "select rollout_id, text_hash, content_hash from rollouts").fetchall():
                    self._stored[rid] = (text_hash, content_hash)
                for model, rid, fp in con.execute(
                        "select model, rollout_id, fingerprint from attention_runs").fetchall():
                    self._fingerprints[(model, rid)] = fp
        self._remove_orphans(keep)

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

    def _remove_orphans(self, keep: set[str] | None = None) -> None:
        """Delete Parquet files no manifest row names: leftovers of an interrupted write."""
        root = self.dir / PARQUET_DIR
        if not root.exists():
            return
        if keep is None:
            keep = set()
            if self.exists():
                with self.connect() as con:
                    keep = {row[0] for row in con.execute("select path from parquet_files").fetchall()}
        for path in root.rglob("*"):
            if path.is_file() and path.relative_to(self.dir).as_posix() not in keep:
                path.unlink()
        for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()


@dataclass(frozen=True)
class PendingAttention:
    """One model's attention for a rollout, written to Parquet but not yet visible."""

    model: ModelInfo
    writer: AttentionWriter
    spans: list[SentenceSpan]
    run: AttentionRun


class AttentionWriter:
    """Streams one rollout's attention, layer by layer, into a not-yet-visible Parquet file.

    Only the lower triangle (j <= i) is written: METRICS.md §3 makes the rest 0.
    """

    SCHEMA = pa.schema([
        ("model", pa.dictionary(pa.int32(), pa.string())),
        ("rollout_id", pa.dictionary(pa.int32(), pa.string())), ("layer", pa.int16()),
        ("head", pa.int16()), ("i", pa.int32()), ("j", pa.int32()), ("value", pa.float32()),
    ])

    def __init__(self, root: Path, rel_dir: Path, model: str, rollout_id: str, n: int):
        self.root, self.rel_dir, self.model = root, rel_dir, model
        self.rollout_id, self.n = rollout_id, n
        self.version = _version()
        self.rel_path = rel_dir / f"attention-{self.version}.parquet"
        self._tmp = root / rel_dir / f"attention-{self.version}.parquet.tmp"
        self._writer: pq.ParquetWriter | None = None
        self.closed = False
        self.layers_written: list[int] = []
        self._rows, self._cols = np.tril_indices(n)

    def __enter__(self) -> AttentionWriter:
        self._tmp.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self._tmp, self.SCHEMA)
        return self

    def add_layer(self, layer: int, mats: np.ndarray) -> None:
        """Append one layer: ``mats`` is [head, i, j] float32 sentence attention."""
        mats = np.asarray(mats, dtype=np.float32)
        if mats.ndim != 3 or mats.shape[1:] != (self.n, self.n):
            raise WarehouseError(
                f"rollout '{self.rollout_id}': layer {layer} matrices have shape {mats.shape}, "
                f"expected (heads, {self.n}, {self.n})"
            )
        n_heads, cells = mats.shape[0], len(self._rows)
        values = mats[:, self._rows, self._cols].reshape(-1)  # [head * cells]
        constant = np.zeros(n_heads * cells, np.int32)  # dictionary-encoded constant columns
        table = pa.table({
            "model": pa.DictionaryArray.from_arrays(constant, [self.model]),
            "rollout_id": pa.DictionaryArray.from_arrays(constant, [self.rollout_id]),
            "layer": np.full(n_heads * cells, layer, np.int16),
            "head": np.repeat(np.arange(n_heads, dtype=np.int16), cells),
            "i": np.tile(self._rows.astype(np.int32), n_heads),
            "j": np.tile(self._cols.astype(np.int32), n_heads),
            "value": values,
        })
        self._writer.write_table(table)
        self.layers_written.append(layer)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._writer is not None:
            self._writer.close()
        if exc_type is not None:
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()
            return
        _fsync_rename(self._tmp, self.root / self.rel_path)
        self.closed = True


# --- table builders ----------------------------------------------------------------------


def _rollout_tables(rollout: RolloutRecord) -> dict[str, pa.Table]:
    n = len(rollout.sentences)
    rollout_row = pa.table({
        "rollout_id": [rollout.rollout_id],
        "rollout_name": [rollout.rollout_name],
        "root": [rollout.root],
        "source_path": [rollout.source_path],
        "problem_id": [rollout.problem_id],
        "solution_folder": [rollout.solution_folder],
        "is_correct": pa.array([rollout.is_correct], pa.bool_()),
        "path_parts": [rollout.rollout_id.split("/")],
        "n_sentences": pa.array([n], pa.int32()),
        "sentence_source": [rollout.sentence_source],
        "text_hash": [rollout.text_hash],
        "content_hash": [rollout.content_hash],
        "metadata": [json.dumps(rollout.metadata, ensure_ascii=False)],
        "warnings": pa.array([list(rollout.warnings)], pa.list_(pa.string())),
        "loaded_at": pa.array([utc_now()], pa.timestamp("us")),
    })
    sentences = pa.table({
        "rollout_id": [rollout.rollout_id] * n,
        "idx": pa.array(range(n), pa.int32()),
        "text": list(rollout.sentences),
        "char_start": pa.array([start for start, _ in rollout.char_spans], pa.int32()),
        "char_end": pa.array([end for _, end in rollout.char_spans], pa.int32()),
    })
    tag_rows = [(k, tag) for k, tags in enumerate(rollout.tags) for tag in tags]
    tags = pa.table({
        "rollout_id": pa.array([rollout.rollout_id] * len(tag_rows), pa.string()),
        "idx": pa.array([k for k, _ in tag_rows], pa.int32()),
        "tag": pa.array([t for _, t in tag_rows], pa.string()),
    })
    return {"rollouts": rollout_row, "sentences": sentences, "sentence_tags": tags}


def _spans_table(
    model: str, rollout_id: str, text_source: str, spans: list[SentenceSpan]
) -> pa.Table:
    n = len(spans)
    return pa.table({
        "model": [model] * n,
        "rollout_id": [rollout_id] * n,
        "idx": pa.array(range(n), pa.int32()),
        "text_source": [text_source] * n,
        "char_start": pa.array([s.char_start for s in spans], pa.int32()),
        "char_end": pa.array([s.char_end for s in spans], pa.int32()),
        "token_start": pa.array([s.token_start for s in spans], pa.int32()),
        "token_end": pa.array([s.token_end for s in spans], pa.int32()),
        "match": [s.match for s in spans],
    })


def _run_table(model: str, rollout_id: str, run: AttentionRun) -> pa.Table:
    return pa.table({
        "model": [model],
        "rollout_id": [rollout_id],
        "fingerprint": [run.fingerprint],
        "text_source": [run.text_source],
        "dtype": [run.dtype],
        "device": [run.device],
        "n_tokens": pa.array([run.n_tokens], pa.int32()),
        "query_block": pa.array([run.query_block], pa.int32()),
        "duration_s": pa.array([run.duration_s], pa.float64()),
        "parameters": [json.dumps(run.parameters or {})],
        "code_version": [run.code_version or code_version()],
        "ingested_at": pa.array([utc_now()], pa.timestamp("us")),
    })


# --- helpers -----------------------------------------------------------------------------


def utc_now() -> dt.datetime:
    """Now in UTC, naive: DuckDB's `timestamp` columns hold UTC without a zone."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _version() -> str:
    """Sortable and unique: nanosecond time, then random bits."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


def crash_point(name: str) -> None:
    """Test hook: kill this process here when VA_WAREHOUSE_CRASH_AT names this point.

    ``VA_WAREHOUSE_CRASH_AT=<point>[@<n>]`` fires on the n-th time (default: first) the
    point is reached; VA_WAREHOUSE_CRASH_SIGNAL picks the signal (default SIGKILL;
    SIGSTOP freezes the process there instead). Points: CRASH_POINTS. Unset (always,
    outside tests), it costs one environment lookup.
    """
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    point, _, nth = spec.partition("@")
    if point != name:
        return
    _crash_counts[name] = _crash_counts.get(name, 0) + 1
    if _crash_counts[name] == int(nth or 1):
        os.kill(os.getpid(), getattr(signal, os.environ.get(CRASH_SIGNAL_ENV, "SIGKILL")))


_crash_counts: dict[str, int] = {}


def _fsync_rename(tmp: Path, final: Path) -> None:
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def _transaction(con):
    con.execute("begin transaction")
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def _lock_message(db_path: Path, exc: Exception, wait_s: float) -> str:
    holder = re.search(r"held in (.+?) \(PID (\d+)\)", str(exc))
    who = f"{holder.group(1)} (PID {holder.group(2)})" if holder else "another process"
    return (
        f"{db_path} is locked by {who}, still after {wait_s:.0f} s. DuckDB lets one process "
        "open the file read-write or any number read-only, not both: close that connection "
        "(quit that `duckdb` shell; reopen it with -readonly when this command is done) and "
        "run the command again, or give it longer with --lock-wait."
    )


def remove_warehouse(directory: str | os.PathLike) -> None:
    """Delete a warehouse directory's data files (the DuckDB file and the Parquet store)."""
    directory = Path(directory)
    for name in (DB_FILE, DB_FILE + ".wal", LOCK_FILE):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
    shutil.rmtree(directory / PARQUET_DIR, ignore_errors=True)
