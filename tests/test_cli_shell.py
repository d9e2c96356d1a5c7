"""`cli.py shell` opens the duckdb shell on the warehouse: read-only by default, views work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ingest.pipeline import to_record
from ingest.rollouts import load_all
from warehouse.store import ModelInfo, Warehouse

ROOT = Path(__file__).resolve().parent.parent
DEMO_ROOT = ROOT / "examples" / "va_sample"


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory) -> Warehouse:
    warehouse = Warehouse(tmp_path_factory.mktemp("shell") / "wh")
    rng = np.random.default_rng(1)
    model = ModelInfo("tiny", n_layers=4, n_heads=2)
    with warehouse.write_lock():
        for rollout in load_all([DEMO_ROOT]).rollouts[:3]:
            n = len(rollout.sentences)
            warehouse.write_attention(to_record(rollout), model,
                                      np.tril(rng.random((4, 2, n, n), dtype=np.float32)))
    return warehouse


def shell(warehouse: Warehouse, script: str, *extra: str) -> subprocess.CompletedProcess:
    """The real command, with the script on stdin (as `python cli.py shell < script.sql`)."""
    try:
        from warehouse.shell import shell_binary

        shell_binary()
    except Exception as exc:  # noqa: BLE001 - the binary is an optional install
        pytest.skip(str(exc))
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "shell", "--warehouse", str(warehouse.dir), *extra],
        input=script, capture_output=True, text=True, timeout=120, check=False, cwd="/",
    )


def test_shell_runs_a_query_on_the_views(demo_warehouse):
    done = shell(demo_warehouse, ".mode csv\nselect count(*) as n from rollout_ranking;\n"
                 "select count(*) as n from sentence_graph;\n")
    assert done.returncode == 0, done.stderr
    counts = [line for line in done.stdout.splitlines() if line != "n"]
    expected = [3, sum(len(r.sentences) for r in load_all([DEMO_ROOT]).rollouts[:3])]
    assert [int(c) for c in counts] == expected


def test_shell_is_read_only_unless_told(demo_warehouse):
    done = shell(demo_warehouse, "create table scratch as select 1 as x;\n")
    assert "read-only" in (done.stdout + done.stderr).lower()
    done = shell(demo_warehouse, "create table scratch as select 1 as x;\n", "--write")
    assert done.returncode == 0, done.stderr
    done = shell(demo_warehouse, ".mode csv\nselect x from scratch;\n")
    assert done.stdout.split() == ["x", "1"]


def test_shell_without_a_warehouse_says_so(tmp_path):
    done = shell(Warehouse(tmp_path / "none"), "select 1;\n")
    assert done.returncode == 1
    assert "no warehouse at" in done.stderr and "run `cli.py ingest` or `cli.py load` first" in done.stderr
