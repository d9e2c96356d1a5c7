"""`cli.py ingest --ray` on a real local Ray runtime (2 CPUs, 2 workers, the tiny model).

The warehouse must equal a serial ingest's (cells and sums per (rollout, layer, head), the
ranking), also when a worker is killed mid-run; bad rollouts follow --keep-going; a re-run
of unchanged rollouts starts no actor. Ray starts once for the module and the tests are
few (Ray and its actors start slowly on 2 cores); every ingest stores the same three
bundled sample rollouts.
"""

from __future__ import annotations

import math
import os
import shutil

import pytest
from click.testing import CliRunner

import cli
from tests.conftest import DEMO_ROOT

ray = pytest.importorskip("ray", reason="Ray is the optional [ray] extra (make setup installs it)")

pytestmark = pytest.mark.slow

PATTERN = "problem_9_va_0[0-2]"


@pytest.fixture(scope="module")
def ray_runtime(tmp_path_factory):
    """A real local Ray runtime; workers see the kill-once test hook's marker path."""
    from ingest.ray_pool import KILL_ONCE_ENV

    marker = tmp_path_factory.mktemp("ray") / "kill-one-worker"
    old = os.environ.get(KILL_ONCE_ENV)
    os.environ[KILL_ONCE_ENV] = str(marker)  # inherited by the runtime's worker processes
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield marker
    ray.shutdown()
    if old is None:
        os.environ.pop(KILL_ONCE_ENV, None)
    else:
        os.environ[KILL_ONCE_ENV] = old


@pytest.fixture(scope="module")
def serial_warehouse(tiny_model_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("serial") / "wh"
    run_ingest(str(DEMO_ROOT), "--checkpoint", str(tiny_model_dir), "--warehouse", str(directory))
    return directory


def run_ingest(*args, exit_code=0):
    if "--pattern" not in args:
        args = ("--pattern", PATTERN, *args)
    result = CliRunner().invoke(cli.main, ["ingest", *args])
    assert result.exit_code == exit_code, result.output
    return result.output


def contents(directory) -> dict:
    """Cells and sums per (rollout, layer, head), and the ranking, of one warehouse."""
    from warehouse.store import Warehouse

    with Warehouse(directory).connect(read_only=True) as con:
        cells = con.execute(
            "select rollout_id, layer, head, count(*), sum(value) from attention "
            "group by all order by all").fetchall()
        ranking = con.execute("select rollout_id, delta_va_vert_by_layer from rollout_ranking "
                              "order by rollout_id").fetchall()
        log = con.execute("select executor, workers, n_ok, n_skipped, n_failed from ingest_log "
                          "order by started_at desc limit 1").fetchone()
    return {"cells": cells, "ranking": ranking, "log": log}


def assert_same_warehouse(got: dict, expected: dict) -> None:
    # Workers run one torch thread, the serial test more: sums agree to float32 noise.
    assert [row[:4] for row in got["cells"]] == [row[:4] for row in expected["cells"]]
    for a, b in zip(got["cells"], expected["cells"], strict=True):
        assert math.isclose(a[4], b[4], rel_tol=1e-5, abs_tol=1e-6), (a, b)
    assert [r[0] for r in got["ranking"]] == [r[0] for r in expected["ranking"]]
    for (_, a), (_, b) in zip(got["ranking"], expected["ranking"], strict=True):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-6)
    assert len(got["cells"]) == 3 * 4 * 8  # 3 rollouts x 4 layers x 8 heads


def actor_count() -> int:
    """Actors the runtime ever created (dead ones stay listed in its state)."""
    from ray._private import state

    return len(state.actors())


def test_ray_ingest_equals_serial_and_rerun_starts_no_actor(ray_runtime, serial_warehouse,
                                                            tiny_model_dir, tmp_path):
    directory = tmp_path / "wh"
    args = ["--checkpoint", str(tiny_model_dir), "--warehouse", str(directory), "--ray", "local"]
    output = run_ingest(str(DEMO_ROOT), *args, "--workers", "2")
    assert "3 ingested, 0 skipped (unchanged), 0 failed" in output
    assert "\r" not in output  # not a terminal: one plain line per rollout
    got, expected = contents(directory), contents(serial_warehouse)
    assert_same_warehouse(got, expected)
    assert got["log"] == ("ray", 2, 3, 0, 0)
    assert expected["log"] == ("serial", 1, 3, 0, 0)

    before = actor_count()
    output = run_ingest(str(DEMO_ROOT), *args, "--workers", "2")
    assert "0 ingested, 3 skipped (unchanged), 0 failed" in output
    assert actor_count() == before  # the fingerprints decided before any actor started


def test_killed_worker_and_malformed_rollout_with_keep_going(ray_runtime, serial_warehouse,
                                                            tiny_model_dir, tmp_path):
    """A worker SIGKILLed mid-rollout: retried on another; a bad rollout: reported, exit 1."""
    root = tmp_path / "root"
    shutil.copytree(DEMO_ROOT / "correct_base_solution", root / "correct_base_solution",
                    ignore=shutil.ignore_patterns("problem_9_va_0[3-9]"))
    bad = root / "correct_base_solution" / "problem_9_va_01x"
    shutil.copytree(DEMO_ROOT / "correct_base_solution" / "problem_9_va_01", bad)
    (bad / "chunks_labeled.json").write_text('[{"chunk": "unfinished"', encoding="utf-8")
    args = [str(root), "--checkpoint", str(tiny_model_dir), "--warehouse", str(tmp_path / "wh"),
            "--ray", "local", "--workers", "2"]
    pattern = ["--pattern", "problem_9_va_0[0-2]*"]
    output = run_ingest(*args, *pattern, exit_code=1)  # without --keep-going: nothing written
    assert "problem_9_va_01x" in output and "chunks_labeled.json" in output
    assert not (tmp_path / "wh").exists() or contents(tmp_path / "wh")["cells"] == []

    ray_runtime.write_text("kill the first worker that reaches a layer\n")
    output = run_ingest(*args, *pattern, "--keep-going", exit_code=1)
    assert not ray_runtime.exists()  # a worker really was killed mid-rollout
    assert "3 ingested, 0 skipped (unchanged), 1 failed" in output
    assert "failed: " in output and "problem_9_va_01x" in output
    got = contents(tmp_path / "wh")
    assert_same_warehouse(got, contents(serial_warehouse))
    assert got["log"] == ("ray", 2, 3, 0, 1)
