"""Concurrent use: another process holds the DuckDB file while `ingest` runs.

DuckDB lets one process open the file read-write, or any number read-only, not both.
`ingest` waits up to --lock-wait for the file, then fails with one line naming the
holder's PID and what to do; it never holds the file during a model pass, so a reader
can open it between commits (README, "Locking model"). While a reader keeps it open,
finished rollouts wait to be committed and the model goes on.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
import test_reliability_support as support

LOCKED = re.compile(r"^Error: (?P<db>\S+) is locked by (?P<who>.+) \(PID (?P<pid>\d+)\), still after "
                    r"(?P<wait>\d+) s\. DuckDB lets one process open the file read-write or any number "
                    r"read-only, not both: close that connection \(quit that `duckdb` shell; reopen it "
                    r"with -readonly when this command is done\) and run the command again, or give it "
                    r"longer with --lock-wait\.\n$")


def attention_file_appears(proc, wh, rollout: str, timeout_s: float) -> bool:
    """Wait (while ``proc`` runs) until the tiny model's attention file of ``rollout`` exists."""
    folder = wh / "parquet" / "attention" / "tiny-qwen3" / rollout
    deadline = time.monotonic() + timeout_s
    while not list(folder.glob("attention-*.parquet")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    return bool(list(folder.glob("attention-*.parquet")))


@pytest.fixture(scope="module")
def base(tmp_path_factory, tiny_model_dir):
    """A root of two rollouts and a warehouse already holding the first one's attention."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("locks")
    for name in ("r1", "r2"):
        support.good_rollout(base / "root", name, n=4)
    result = support.cli("ingest", str(base / "root"), "--pattern", "r1", "--checkpoint", str(tiny_model_dir),
                         "--no-progress", "--warehouse", str(base / "wh"))
    assert result.exit_code == 0, result.output
    yield base
    torch.set_num_threads(threads)


@pytest.fixture
def wh(base, tmp_path) -> Path:
    shutil.copytree(base / "wh", tmp_path / "wh")
    return tmp_path / "wh"


def hold(db: Path, *, read_only: bool, seconds: float) -> subprocess.Popen:
    """A Python process that opens the file, says 'ready', holds it, closes it, says 'released'."""
    script = textwrap.dedent(f"""
        import duckdb, time
        con = duckdb.connect({str(db)!r}, read_only={read_only})
        print("ready", flush=True)
        time.sleep({seconds})
        con.close()
        print("released", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def duckdb_shell(db: Path) -> subprocess.Popen:
    """The real `duckdb` shell, opened -readonly, idle at its prompt (stdin kept open)."""
    shell = shutil.which("duckdb") or str(Path(sys.executable).parent / "duckdb")
    proc = subprocess.Popen([shell, "-readonly", "-csv", str(db)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdin.write("select count(*) as n from rollouts;\n")
    proc.stdin.flush()
    assert [proc.stdout.readline().strip() for _ in range(2)] == ["n", "1"]
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.stdin:
        proc.stdin.close()
    proc.kill()
    proc.wait()


def run_ingest(base: Path, wh: Path, model_dir, *extra: str):
    return support.cli("ingest", str(base / "root"), "--checkpoint", str(model_dir), "--no-progress",
                       "--warehouse", str(wh), *extra)


def test_ingest_waits_for_a_writer_that_lets_go(base, wh, tiny_model_dir):
    holder = hold(wh / "va.duckdb", read_only=False, seconds=2)
    try:
        started = time.monotonic()
        result = run_ingest(base, wh, tiny_model_dir, "--lock-wait", "60")
        waited = time.monotonic() - started
        assert holder.stdout.readline().strip() == "released"  # by closing, not by exiting
    finally:
        stop(holder)
    assert result.exit_code == 0, result.output
    assert waited >= 1.0
    assert result.stdout.splitlines()[-1].startswith("1 ingested, 1 skipped (unchanged), 0 failed")
    support.assert_consistent(wh, no_orphans=True)


@pytest.mark.parametrize("holder_kind", ["python read-write", "python read-only", "duckdb shell -readonly"])
def test_ingest_gives_up_naming_the_holder_and_changes_nothing(base, wh, tiny_model_dir, holder_kind):
    before = support.table_checksums(wh)
    db = wh / "va.duckdb"
    if holder_kind == "duckdb shell -readonly":
        holder = duckdb_shell(db)
    else:
        holder = hold(db, read_only=holder_kind == "python read-only", seconds=60)
    try:
        result = run_ingest(base, wh, tiny_model_dir, "--lock-wait", "1")
    finally:
        stop(holder)
    assert result.exit_code == 1
    if holder_kind == "python read-write":
        assert result.stdout == ""  # not even the snapshot could be read: nothing computed
    else:  # a reader: the model ran and its commits were queued (README, "Locking model")
        assert result.stdout.startswith(f"note: {db} is open in another process"), result.stdout
    match = LOCKED.match(result.stderr)
    assert match, result.stderr
    assert match["db"] == str(db) and match["wait"] == "1"
    if holder_kind == "duckdb shell -readonly":
        assert match["who"].endswith("duckdb")  # the shell binary (its launcher's child)
    else:
        assert (match["pid"], match["who"]) == (str(holder.pid), os.path.realpath(sys.executable))
    assert support.table_checksums(wh) == before
    support.assert_consistent(wh, no_orphans=holder_kind == "python read-write")  # queued files stay


def wait_stopped(proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ingest ended ({proc.returncode}) before the pause: "
                                 + proc.communicate()[1][-2000:])
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return
        time.sleep(0.05)
    raise AssertionError("ingest did not reach the model pass in time")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_shell_open_during_the_model_pass_only_defers_the_commits(base, wh, tiny_model_dir):
    """Freeze a real ingest inside its model pass (the test hook with SIGSTOP): the file is
    free (a reader opens it at once, `status` works). Then a `duckdb -readonly` shell opens
    it and stays: the model pass goes on (r2's attention file appears), the commits wait,
    and when the shell quits they are made and the run succeeds."""
    proc = subprocess.Popen(
        [*support.CLI, "ingest", str(base / "root"), "--checkpoint", str(tiny_model_dir), "--no-progress",
         "--force", "--lock-wait", "60", "--warehouse", str(wh)],
        env=support.subprocess_env(VA_WAREHOUSE_CRASH_AT="model_pass@1", VA_WAREHOUSE_CRASH_SIGNAL="SIGSTOP"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_stopped(proc)
        with duckdb.connect(str(wh / "va.duckdb"), read_only=True) as reader:  # no waiting
            assert reader.execute("select outcome from ingest_log order by started_at desc "
                                  "limit 1").fetchone() == ("running",)
        status = support.cli("status", "--warehouse", str(wh), "--lock-wait", "0")
        assert status.exit_code == 0 and "running or interrupted" in status.stdout
        shell = duckdb_shell(wh / "va.duckdb")
        try:
            os.kill(proc.pid, signal.SIGCONT)
            assert attention_file_appears(proc, wh, "r2", 120), "the model pass stopped behind the shell"
            time.sleep(0.5)
            assert proc.poll() is None  # still waiting to commit
        finally:
            stop(shell)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert stdout.splitlines()[0].startswith(f"note: {wh / 'va.duckdb'} is open in another process")
    assert stdout.splitlines()[-1].startswith("2 ingested, 0 skipped (unchanged), 0 failed")
    support.assert_consistent(wh, no_orphans=True)
    assert support.rollout_ids(wh) == {"r1", "r2"}


def test_a_writer_that_keeps_the_file_past_the_model_pass_is_named(base, wh, tiny_model_dir,
                                                                   monkeypatch):
    """A read-write holder appears during the model pass and stays: the run's commits wait
    --lock-wait, then it fails with one line naming the holder; nothing changed."""
    import ingest.pipeline as pipeline

    holders = []

    def start_holder_at_model_pass(point: str) -> None:
        if point == "model_pass" and not holders:
            holders.append(hold(wh / "va.duckdb", read_only=False, seconds=60))

    monkeypatch.setattr(pipeline, "crash_point", start_holder_at_model_pass)
    before = support.table_checksums(wh)
    try:
        result = run_ingest(base, wh, tiny_model_dir, "--force", "--lock-wait", "1")
    finally:
        for holder in holders:
            stop(holder)
    assert result.exit_code == 1
    match = LOCKED.match(result.stderr)
    assert match, result.stderr
    assert match["pid"] == str(holders[0].pid)
    assert support.table_checksums(wh) == before
    support.assert_consistent(wh)  # the computed files are orphans, removed by the next writer
    rerun = run_ingest(base, wh, tiny_model_dir)
    assert rerun.exit_code == 0, rerun.output
    support.assert_consistent(wh, no_orphans=True)


def test_report_reads_beside_a_shell_waits_for_a_writer_or_names_it(base, wh, tmp_path):
    """`report` opens the file read-only: a `duckdb -readonly` shell does not block it; a
    read-write holder makes it wait, and give up after --lock-wait naming the holder."""
    out = tmp_path / "report"
    args = ["report", "--warehouse", str(wh), "--out", str(out), "--permutations", "0"]
    shell = duckdb_shell(wh / "va.duckdb")
    try:
        built = support.cli(*args, "--lock-wait", "0")
    finally:
        stop(shell)
    assert built.exit_code == 0, built.output
    assert (out / "index.html").is_file()

    holder = hold(wh / "va.duckdb", read_only=False, seconds=60)
    try:
        refused = support.cli(*args, "--lock-wait", "1")
    finally:
        stop(holder)
    assert refused.exit_code == 1
    match = LOCKED.match(refused.stderr)
    assert match and match["pid"] == str(holder.pid), refused.stderr

    holder = hold(wh / "va.duckdb", read_only=False, seconds=1.5)
    try:
        started = time.monotonic()
        waited = support.cli(*args, "--lock-wait", "60")
        assert time.monotonic() - started >= 1.0
    finally:
        stop(holder)
    assert waited.exit_code == 0, waited.output
    assert waited.stdout.startswith("report skipped")  # same content: nothing to rebuild
