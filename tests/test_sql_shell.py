"""The duckdb shell (CLI 1.5) reads the views and macros of a file the library wrote."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pytest import approx
from sql_fixtures import Rollout, as_float32, connect, load, records


def shell_binary() -> str | None:
    found = shutil.which("duckdb")
    if found:
        return found
    beside = Path(sys.executable).parent / "duckdb"
    return str(beside) if beside.exists() else None


def run_shell(path: Path, query: str, extra: list[str] | tuple = ()) -> list[dict]:
    binary = shell_binary()
    if binary is None:
        pytest.skip("duckdb shell not installed")
    done = subprocess.run(
        [binary, "-readonly", "-json", str(path), *extra, "-c", query],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout or "[]")


def test_shell_reads_views_and_macros(tmp_path):
    rng = np.random.default_rng(7)
    n = 10
    rollouts = [
        Rollout(
            f"problem_9/va_0{k}",
            {
                (layer, head): as_float32(np.tril(rng.random((n, n))))
                for layer in range(4)
                for head in range(2)
            },
            [idx in (2, 5 + k) for idx in range(n)],
            tags=[["x"] if idx == 3 else [] for idx in range(n)],
        )
        for k in range(3)
    ]
    path = tmp_path / "warehouse.duckdb"
    con = connect(path)
    load(con, rollouts, 4, 2)
    view = records(con, "select * from rollout_ranking")
    macro = records(con, "select * from rollout_ranking(tag := 'x', proximity_ignore := 2)")
    con.close()

    for query, expected in (
        ("select * from rollout_ranking;", view),
        ("select * from rollout_ranking(tag := 'x', proximity_ignore := 2);", macro),
    ):
        got = run_shell(path, query)
        assert [r["rollout_id"] for r in got] == [r["rollout_id"] for r in expected]
        for row, want in zip(got, expected, strict=True):
            assert row["rank"] == want["rank"]
            assert row["layers"] == want["layers"]
            assert row["heads"] == want["heads"]
            assert row["n_va"] == want["n_va"]
            assert row["n_va_original"] == want["n_va_original"]
            if want["distinctiveness_score"] is None:
                assert row["distinctiveness_score"] is None
            else:
                assert row["distinctiveness_score"] == approx(want["distinctiveness_score"], abs=1e-9)
    # every object also binds in the 1.5 shell (no function newer than the shell's)
    counts = run_shell(
        path,
        "select (select count(*) from vertical_scores(score_type := 'median')) as vertical,"
        " (select count(*) from head_stats(control_depth := false)) as heads,"
        " (select count(*) from receiver_heads(k := 5)) as receivers;",
    )
    assert counts == [{"vertical": 3 * 3 * 8 * 2, "heads": 3 * 3 * 2, "receivers": 5}]
    assert view[0]["layers"] == [0, 1, 2]  # representative layers of a 4-layer model
    assert {r["n_va"] for r in macro} == {1}
