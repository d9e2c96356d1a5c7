"""Crash safety: a real `cli.py ingest` (or `load`) subprocess SIGKILLed at named points.

The kill points are the test hook `warehouse.store.crash_point` (VA_WAREHOUSE_CRASH_AT=
<point>@<n>: the n-th time the point is reached, the process sends itself SIGKILL):

- model_pass@6: rollout r2, after its 2nd of 4 layers went to the not-yet-visible file;
- parquet_write@7: rollout r2, its attention file renamed into place, its rollouts
  file too, its sentences file written under .tmp but not renamed;
- duckdb_load@2: rollout r2, inside the DuckDB transaction after every delete and insert,
  before commit;
- committed@2 (load, replacing rollout r2): right after its commit, before its old files
  are deleted; duckdb_load@2 (load, replacing r2): the old version must survive.

After each kill: `status` works and shows the run as interrupted, no rollout is
half-present or duplicated (tests/test_reliability_support.assert_consistent), then a
rerun completes, leaves no orphan file, and every table equals an uninterrupted run's
(checksums of all rows, timestamps and file names aside).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess

import pytest
from test_reliability_support import (
    CLI,
    assert_consistent,
    cli,
    connect,
    good_rollout,
    rollout_ids,
    subprocess_env,
    table_checksums,
)

INGEST_KILLS = {  # point -> rollouts fully present after the kill
    "model_pass@6": {"r1"},
    "parquet_write@7": {"r1"},
    "duckdb_load@2": {"r1"},
}


@pytest.fixture(scope="module")
def one_torch_thread():
    """In-process model runs on one thread: much faster on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def crash_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash") / "root"
    for name in ("r1", "r2", "r3"):
        good_rollout(root, name, n=6)
    return root


def model_args(model_dir) -> list[str]:
    return ["--checkpoint", str(model_dir), "--no-progress"]


@pytest.fixture(scope="module")
def reference(crash_root, tiny_model_dir, tmp_path_factory, one_torch_thread):
    """An uninterrupted ingest: the data every interrupted one must end up with."""
    wh = tmp_path_factory.mktemp("reference") / "wh"
    result = cli("ingest", str(crash_root), *model_args(tiny_model_dir), "--warehouse", str(wh))
    assert result.exit_code == 0, result.output
    return wh


@pytest.fixture(scope="module")
def killed_ingests(crash_root, tiny_model_dir, tmp_path_factory):
    """Start every killed ingest at once (they are mostly import time), wait for all."""
    runs = {}
    for point in INGEST_KILLS:
        wh = tmp_path_factory.mktemp("killed") / "wh"
        proc = subprocess.Popen(
            [*CLI, "ingest", str(crash_root), *model_args(tiny_model_dir), "--warehouse", str(wh)],
            env=subprocess_env(VA_WAREHOUSE_CRASH_AT=point), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        runs[point] = (proc, wh)
    out = {}
    for point, (proc, wh) in runs.items():
        stdout, stderr = proc.communicate(timeout=240)
        out[point] = (proc.returncode, stdout + stderr, wh)
    return out


def assert_after_kill(wh, present: set[str]) -> None:
    status = cli("status", "--warehouse", str(wh))
    assert status.exit_code == 0, status.output
    assert "running or interrupted" in status.stdout
    info = assert_consistent(wh)
    assert set(info["rollouts"]) == present


@pytest.mark.parametrize("point", list(INGEST_KILLS))
def test_killed_ingest_leaves_whole_rollouts_and_rerun_completes(point, killed_ingests, reference,
                                                                 tiny_model_dir, crash_root):
    returncode, output, wh = killed_ingests[point]
    assert returncode == -signal.SIGKILL, output
    leftovers = [p.name for p in (wh / "parquet").rglob("*") if p.is_file()]
    if point.startswith("model_pass"):  # killed while streaming layers to the hidden file
        assert any(n.startswith("attention-") and n.endswith(".parquet.tmp") for n in leftovers)
    if point.startswith("parquet_write"):  # r2: attention renamed, rollouts, sentences .tmp
        assert [n for n in leftovers if n.endswith(".tmp")][0].startswith("sentences-")
        assert sum(n.startswith("attention-") for n in leftovers) == 2  # r1's and r2's
    assert_after_kill(wh, INGEST_KILLS[point])
    info = assert_consistent(wh)
    assert info["attention"] == {("tiny-qwen3", r) for r in INGEST_KILLS[point]}

    rerun = cli("ingest", str(crash_root), *model_args(tiny_model_dir), "--warehouse", str(wh))
    assert rerun.exit_code == 0, rerun.output
    done = len(INGEST_KILLS[point])
    assert rerun.stdout.splitlines()[-1].startswith(
        f"{3 - done} ingested, {done} skipped (unchanged), 0 failed")
    assert_consistent(wh, no_orphans=True)
    assert table_checksums(wh, content_only=True) == table_checksums(reference, content_only=True)
    assert cli("status", "--warehouse", str(wh)).stdout.count("running or interrupted") == 1


@pytest.mark.parametrize(("point", "new_version_visible"), [("duckdb_load@2", False),
                                                            ("committed@2", True)])
def test_killed_replacement_keeps_exactly_one_version(point, new_version_visible, reference,
                                                      crash_root, tmp_path):
    """`load` rewriting r2 (its tags changed), killed just before or just after its commit.

    The root is a copy, so every rollout's stored path changes: r1 is rewritten first.
    """
    wh = tmp_path / "wh"
    shutil.copytree(reference, wh)
    root = tmp_path / "root"
    shutil.copytree(crash_root, root)
    labels_path = root / "r2" / "chunks_labeled.json"
    labels = json.loads(labels_path.read_text())
    labels[3]["function_tags"] = ["verbalized_evaluation_awareness"]
    labels_path.write_text(json.dumps(labels))
    before = table_checksums(wh, without=("r1", "r3"))

    proc = subprocess.run([*CLI, "load", str(root), "--warehouse", str(wh)],
                          env=subprocess_env(VA_WAREHOUSE_CRASH_AT=point),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    assert_after_kill(wh, {"r1", "r2", "r3"})
    with connect(wh) as con:
        tags = con.execute("select idx from sentence_tags where rollout_id = 'r2' and "
                           "tag = 'verbalized_evaluation_awareness' order by idx").fetchall()
    assert tags == ([(1,), (3,)] if new_version_visible else [(1,)])
    if not new_version_visible:
        assert table_checksums(wh, without=("r1", "r3")) == before  # the old version, untouched
    with connect(wh) as con:
        listed = {r[0] for r in con.execute("select path from parquet_files").fetchall()}
    on_disk = {p.relative_to(wh).as_posix() for p in (wh / "parquet").rglob("*") if p.is_file()}
    assert on_disk > listed  # r2's old (committed) or new (not committed) files, orphaned

    # Uninterrupted: the same load on a fresh copy of the reference.
    expected = tmp_path / "expected"
    shutil.copytree(reference, expected)
    assert cli("load", str(root), "--warehouse", str(expected)).exit_code == 0
    rerun = cli("load", str(root), "--warehouse", str(wh))
    assert rerun.exit_code == 0, rerun.output
    assert_consistent(wh, no_orphans=True)
    assert rollout_ids(wh) == {"r1", "r2", "r3"}
    assert table_checksums(wh, content_only=True) == table_checksums(expected, content_only=True)
