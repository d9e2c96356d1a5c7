"""The ingest_log table: one row per writing command, from start to outcome.

A command may find the DuckDB file held by a reader (a `duckdb -readonly` shell) when
it starts and still when it gives up. Its row then cannot be written there; it goes to
``ingest_log.pending.jsonl`` beside the file instead, the next writing command moves it
into the table, and `status` shows it meanwhile. So every run's outcome is recorded,
and a row left 'running' in the table really was interrupted.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from warehouse.records import WarehouseError, WarehouseLockedError, code_version, utc_now
from warehouse.store import Warehouse

PENDING_FILE = "ingest_log.pending.jsonl"
COLUMNS = ("run_id", "command", "started_at", "finished_at", "model", "parameters",
           "code_version", "n_ok", "n_skipped", "n_failed", "duration_s", "outcome", "message",
           "executor", "workers")
# How long writing a log row waits for the DuckDB file before it goes to the pending file.
TRY_S = 0.5


@dataclass
class IngestLog:
    warehouse: Warehouse
    run_id: str
    row: dict = field(default_factory=dict)
    in_table: bool = False  # whether the 'running' row reached the table

    @classmethod
    def start(cls, warehouse: Warehouse, command: str, model: str | None, parameters: dict, *,
              executor: str | None = None, workers: int | None = None):
        """Record a command as 'running'; a row left so was interrupted.

        ``executor`` ('serial' or 'ray') and ``workers`` say how an ingest ran its model.
        """
        run_id = uuid.uuid4().hex[:12]
        row = {"run_id": run_id, "command": command, "started_at": utc_now(), "model": model,
               "parameters": json.dumps(parameters, default=str),
               "code_version": code_version(), "outcome": "running",
               "executor": executor, "workers": workers}
        log = cls(warehouse, run_id, row)
        try:
            with warehouse.connect(wait_s=TRY_S) as con:
                _move_pending_rows(warehouse, con)
                _insert(con, row)
            log.in_table = True
        except WarehouseLockedError:
            pass  # a reader holds the file: the row is written with the outcome
        return log

    def finish(self, summary, duration_s: float, error: BaseException | None = None) -> None:
        if error is not None:
            outcome = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            message = str(error) or type(error).__name__
        else:
            outcome = "partial" if summary.failed else "ok"
            message = None
        self.row.update(finished_at=utc_now(), n_ok=len(summary.ingested),
                        n_skipped=len(summary.skipped), n_failed=len(summary.failed),
                        duration_s=duration_s, outcome=outcome, message=message)
        # After a lock error the file is most likely still held: do not wait for it again.
        wait_s = TRY_S if error is not None else None
        try:
            with self.warehouse.connect(wait_s=wait_s) as con:
                con.execute("delete from ingest_log where run_id = ?", [self.run_id])
                _insert(con, self.row)
        except WarehouseError:
            self._write_pending()  # held by a reader (or damaged): recorded beside the file
        except Exception:
            if error is None:
                raise
            self._write_pending()  # keep the original error; the outcome is recorded anyway

    def _write_pending(self) -> None:
        try:
            with open(self.warehouse.dir / PENDING_FILE, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(self.row, default=str) + "\n")
        except OSError:
            pass  # e.g. the disk is full: the table row (if any) says 'running or interrupted'


def pending_rows(warehouse: Warehouse) -> list[dict]:
    """Outcomes waiting in the pending file (newest last)."""
    path = warehouse.dir / PENDING_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a crash or a full disk
    return rows


def _move_pending_rows(warehouse: Warehouse, con) -> None:
    rows = pending_rows(warehouse)
    for row in rows:
        con.execute("delete from ingest_log where run_id = ?", [row.get("run_id")])
        _insert(con, row)
    if rows:
        (warehouse.dir / PENDING_FILE).unlink()


def _insert(con, row: dict) -> None:
    con.execute(f"insert into ingest_log ({', '.join(COLUMNS)}) values "
                f"({', '.join('?' for _ in COLUMNS)})", [row.get(c) for c in COLUMNS])
