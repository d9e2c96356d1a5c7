"""Test hook: kill the process at named points of a write (tests/test_reliability_crash.py)."""

from __future__ import annotations

import os
import signal

CRASH_ENV = "VA_WAREHOUSE_CRASH_AT"
CRASH_SIGNAL_ENV = "VA_WAREHOUSE_CRASH_SIGNAL"
CRASH_POINTS = ("model_pass", "parquet_write", "duckdb_load", "committed")

_crash_counts: dict[str, int] = {}


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
