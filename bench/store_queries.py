"""Shared timing of the store benchmarks: one scan of every cell against the rankings."""

from __future__ import annotations

import time

QUERIES = {
    "scan: select sum(value) from attention": "select sum(value) from attention",
    "select * from rollout_ranking": "select * from rollout_ranking",
    "rollout_ranking(tag := 'plan_generation')":
        "select * from rollout_ranking(tag := 'plan_generation')",
    "select * from best_heads": "select * from best_heads",
    "head_stats(tag := 'plan_generation')": "select * from head_stats(tag := 'plan_generation')",
}


def best_of(con, query: str, repeat: int = 3) -> float:
    """The fastest of ``repeat`` runs (seconds), after one warm-up run."""
    con.execute(query).fetchall()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        con.execute(query).fetchall()
        times.append(time.perf_counter() - started)
    return min(times)


def report(con, n_rollouts: int, repeat: int = 3) -> dict[str, float]:
    """Print each query's time, per rollout, and its ratio to the scan; return the times."""
    times = {label: best_of(con, query, repeat) for label, query in QUERIES.items()}
    scan = next(iter(times.values()))
    for label, seconds in times.items():
        print(f"  {label:<45} {seconds * 1000:9.1f} ms  {seconds / n_rollouts * 1000:8.1f} ms "
              f"per rollout  {seconds / scan:5.2f} x scan")
    return times


def directory_bytes(path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
