"""What a warehouse holds, for `cli.py status`."""

from __future__ import annotations

from warehouse.ingest_log import pending_rows
from warehouse.store import Warehouse


def warehouse_status(warehouse: Warehouse, *, wait_s: float = 30.0) -> dict:
    """Counts per table and model, the latest writes, and interrupted runs."""
    with warehouse.connect(read_only=True, wait_s=wait_s) as con:
        def one(query, args=()):
            return con.execute(query, list(args)).fetchone()[0]

        models = con.execute(
            "select m.model, m.n_layers, m.n_heads, count(distinct r.rollout_id), "
            "coalesce(sum(r.n_tokens), 0), max(r.ingested_at) "
            "from models m left join attention_runs r using (model) "
            "group by all order by m.model"
        ).fetchall()
        log = con.execute(
            "select started_at, command, model, outcome, n_ok, n_skipped, n_failed, message "
            "from ingest_log order by started_at desc limit 5"
        ).fetchall()
        return {
            "path": str(warehouse.dir),
            "rollouts": one("select count(*) from rollouts"),
            "sentences": one("select count(*) from sentences"),
            "tags": one("select count(*) from sentence_tags"),
            "distinct_tags": one("select count(distinct tag) from sentence_tags"),
            "attention_cells": one("select count(*) from attention"),
            "rollouts_with_warnings": one("select count(*) from rollouts where len(warnings) > 0"),
            "models": [
                {"model": m, "n_layers": nl, "n_heads": nh, "rollouts": nr, "tokens": nt,
                 "last_ingest": str(last) if last else None}
                for m, nl, nh, nr, nt, last in models
            ],
            "recent_runs": _recent_runs(warehouse, log),
            "attached_tables": [r[0] for r in con.execute(
                "select name from attached_tables order by name").fetchall()],
            "db_bytes": warehouse.db_path.stat().st_size,
        }


def _recent_runs(warehouse: Warehouse, log: list[tuple]) -> list[dict]:
    """The table's latest runs and those whose outcome waits beside the file (ingest_log)."""
    runs = [
        {"started_at": str(s), "command": c, "model": m, "outcome": o, "ok": ok,
         "skipped": sk, "failed": f, "message": msg}
        for s, c, m, o, ok, sk, f, msg in log
    ]
    for row in pending_rows(warehouse):
        runs = [run for run in runs if run["started_at"] != str(row.get("started_at"))]
        runs.append({"started_at": str(row.get("started_at")), "command": row.get("command"),
                     "model": row.get("model"), "outcome": row.get("outcome"),
                     "ok": row.get("n_ok"), "skipped": row.get("n_skipped"),
                     "failed": row.get("n_failed"), "message": row.get("message")})
    return sorted(runs, key=lambda run: run["started_at"], reverse=True)[:5]


def format_status(info: dict) -> str:
    lines = [
        f"warehouse {info['path']} ({info['db_bytes'] / 1e6:,.1f} MB)",
        f"  rollouts   {info['rollouts']:>10,}  ({info['rollouts_with_warnings']} with load warnings)",
        f"  sentences  {info['sentences']:>10,}",
        f"  tags       {info['tags']:>10,}  ({info['distinct_tags']} distinct)",
        f"  attention  {info['attention_cells']:>10,}  cells",
    ]
    for m in info["models"]:
        lines.append(
            f"  model {m['model']}: {m['n_layers']} layers x {m['n_heads']} heads, "
            f"{m['rollouts']} rollouts, {m['tokens']:,} tokens, last ingest {m['last_ingest']}"
        )
    if info["attached_tables"]:
        lines.append("  attached: " + ", ".join(info["attached_tables"]))
    for run in info["recent_runs"]:
        outcome = run["outcome"]
        if outcome == "running":
            outcome = "running or interrupted"
        lines.append(
            f"  {run['started_at'][:19]} {run['command']:<6} {outcome:<10} ok={run['ok']} "
            f"skipped={run['skipped']} failed={run['failed']}"
            + (f"  {run['message'][:80]}" if run["message"] else "")
        )
    return "\n".join(lines)
