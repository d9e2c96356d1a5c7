"""The ingest_log table: one row per writing command, from start to outcome."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from warehouse.store import Warehouse, code_version, utc_now


@dataclass
class IngestLog:
    warehouse: Warehouse
    run_id: str

    @classmethod
    def start(cls, warehouse: Warehouse, command: str, model: str | None, parameters: dict):
        """Record a command as 'running'; a row left so was interrupted."""
        run_id = uuid.uuid4().hex[:12]
        with warehouse.connect() as con:
            con.execute(
                "insert into ingest_log (run_id, command, started_at, model, parameters, "
                "code_version, outcome) values (?, ?, ?, ?, ?, ?, 'running')",
                [run_id, command, utc_now(), model, json.dumps(parameters, default=str),
                 code_version()],
            )
        return cls(warehouse, run_id)

    def finish(self, summary, duration_s: float, error: BaseException | None = None) -> None:
        if error is not None:
            outcome = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            message = str(error) or type(error).__name__
        else:
            outcome = "partial" if summary.failed else "ok"
            message = None
        try:
            with self.warehouse.connect() as con:
                con.execute(
                    "update ingest_log set finished_at = ?, n_ok = ?, n_skipped = ?, "
                    "n_failed = ?, duration_s = ?, outcome = ?, message = ? where run_id = ?",
                    [utc_now(), len(summary.ingested), len(summary.skipped), len(summary.failed),
                     duration_s, outcome, message, self.run_id],
                )
        except Exception:
            if error is None:
                raise
            # Keep the original error: a log row left 'running' already says 'interrupted'.
