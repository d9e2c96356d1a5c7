"""Faults and misuse end in one line, never a traceback, and never harm what is stored.

Issue 14 points 4-6: `attach` refuses the warehouse's own names and SQL keywords; a full
disk (a real 20 MiB tmpfs), a damaged DuckDB file, an empty query, a warehouse path under
a regular file and an unreadable rollout directory (a real permission failure, also when
the tests run as root) each print one line; a `duckdb -readonly` shell open before ingest
starts only queues its commits; a lock message names the real holder; an ingest that
gives up records its outcome.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
from pathlib import Path

import duckdb
import pytest
from test_reliability_locks import LOCKED, attention_file_appears, duckdb_shell, hold, stop, wait_stopped
from test_reliability_support import (
    CLI,
    assert_consistent,
    cli,
    good_rollout,
    rollout_ids,
    subprocess_env,
    table_checksums,
)


def one_error_line(result, *starts: str) -> str:
    """The result failed with exit code 1 and exactly one `Error: ...` line, no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    line = lines[0][len("Error: "):]
    for start in starts:
        assert start in line, line
    return line


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Path:
    """A warehouse holding two rollouts (no model), copied by the tests that change it."""
    base = tmp_path_factory.mktemp("faults")
    for name in ("r1", "r2"):
        good_rollout(base / "root", name, n=4)
    result = cli("load", str(base / "root"), "--warehouse", str(base / "wh"))
    assert result.exit_code == 0, result.output
    return base / "wh"


@pytest.fixture
def wh(loaded, tmp_path) -> Path:
    shutil.copytree(loaded, tmp_path / "wh")
    return tmp_path / "wh"


# --- 4: attach names -----------------------------------------------------------------------


def attached(wh: Path) -> list[tuple]:
    with duckdb.connect(str(wh / "va.duckdb"), read_only=True) as con:
        return con.execute("select name, path from attached_tables order by name").fetchall()


def test_attach_refuses_warehouse_names_in_any_case_and_keywords(wh, tmp_path):
    grades = tmp_path / "grades.csv"
    grades.write_text("rollout_id,grade\nr1,A\n")
    with duckdb.connect(str(wh / "va.duckdb"), read_only=True) as con:
        ranking_sql = con.execute("select sql from duckdb_views() where view_name = "
                                  "'rollout_ranking'").fetchall()
    for name, what in [("Rollouts", "a warehouse table"), ("ROLLOUT_RANKING", "a warehouse"),
                       ("Head_Stats", "a warehouse"), ("attached_tables", "a warehouse table"),
                       ("select", "a DuckDB keyword"), ("Order", "a DuckDB keyword"),
                       ("best_heads", "a warehouse")]:
        result = cli("attach", str(grades), "--name", name, "--warehouse", str(wh))
        one_error_line(result, f"attach: '{name}' is {what}", "choose another --name")
    assert attached(wh) == []  # attached_tables stays true: nothing was attached
    with duckdb.connect(str(wh / "va.duckdb"), read_only=True) as con:
        assert con.execute("select sql from duckdb_views() where view_name = 'rollout_ranking'"
                           ).fetchall() == ranking_sql
        assert con.execute("select count(*) from rollouts").fetchone() == (2,)

    ok = cli("attach", str(grades), "--name", "grades", "--warehouse", str(wh))
    assert ok.exit_code == 0, ok.output
    again = cli("attach", str(grades), "--name", "GRADES", "--warehouse", str(wh))
    assert again.exit_code == 0, again.output  # the user's own view: replaced, listed once
    assert attached(wh) == [("GRADES", str(grades))]
    rows = cli("sql", "select grade from grades", "--format", "csv", "--warehouse", str(wh))
    assert rows.stdout == "grade\nA\n"


def test_reserved_names_come_from_the_installed_objects_and_duckdbs_keywords(wh):
    """Not a hand-written list: every sql/ object, every installed table, view and macro,
    every keyword DuckDB knows."""
    import sql
    from warehouse.attach import reserved_names

    with duckdb.connect(str(wh / "va.duckdb"), read_only=True) as con:
        reserved = reserved_names(con)
        installed = {row[0].lower() for row in con.execute(
            "select table_name from duckdb_tables() union select view_name from duckdb_views() "
            "where not internal union select function_name from duckdb_functions() "
            "where not internal and function_type in ('macro', 'table_macro')").fetchall()}
        keywords = {row[0].lower() for row in con.execute(
            "select keyword_name from duckdb_keywords()").fetchall()}
    assert {path.stem for path in sql.sql_files()} <= set(reserved)
    assert installed <= set(reserved) and keywords <= set(reserved)
    assert "grades" not in reserved


def test_attach_takes_lock_wait(wh, tmp_path):
    grades = tmp_path / "grades.csv"
    grades.write_text("rollout_id,grade\nr1,A\n")
    holder = hold(wh / "va.duckdb", read_only=False, seconds=60)
    try:
        refused = cli("attach", str(grades), "--lock-wait", "1", "--warehouse", str(wh))
    finally:
        stop(holder)
    assert refused.exit_code == 1
    match = LOCKED.match(refused.stderr)
    assert match and match["pid"] == str(holder.pid) and match["wait"] == "1", refused.stderr

    holder = hold(wh / "va.duckdb", read_only=False, seconds=1.5)
    try:
        waited = cli("attach", str(grades), "--lock-wait", "60", "--warehouse", str(wh))
    finally:
        stop(holder)
    assert waited.exit_code == 0, waited.output
    assert attached(wh) == [("grades", str(grades))]


# --- 5: one line for every error path --------------------------------------------------------


@pytest.mark.parametrize("query", ["", "   ", "/* only a comment */"])
def test_empty_query_is_one_line(wh, query):
    result = cli("sql", query, "--warehouse", str(wh))
    one_error_line(result, "empty query" if not query.strip() else "returns no rows")


def test_warehouse_path_under_a_regular_file(tmp_path, wh):
    (tmp_path / "plain").write_text("not a directory\n")
    bad = str(tmp_path / "plain" / "wh")
    grades = tmp_path / "grades.csv"
    grades.write_text("rollout_id\nr1\n")
    good_rollout(tmp_path / "root", "r1", n=3)
    for args in (["load", str(tmp_path / "root")], ["attach", str(grades)], ["status"],
                 ["sql", "select 1"], ["rank"]):
        result = cli(*args, "--warehouse", bad)
        line = one_error_line(result, bad)
        if args[0] in ("load", "attach"):
            assert "a part of that path is a regular file" in line
    assert (tmp_path / "plain").read_text() == "not a directory\n"


@pytest.mark.parametrize("where", ["header", "first block", "data block"])
def test_damaged_duckdb_file_is_one_line_and_left_as_it_was(wh, where):
    """Damage in the header, in the block DuckDB reads on opening, or in a data block that
    only a query reads: every command says the file is damaged, naming it, and changes nothing."""
    db = wh / "va.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        (block_size,) = con.execute("select block_size from pragma_database_size()").fetchone()
    offsets = {"header": 0, "first block": 12288 + 200}
    damaged = []
    candidates = [offsets[where]] if where in offsets else [
        12288 + block_size * k + 200 for k in range(1, db.stat().st_size // block_size)]
    original = db.read_bytes()
    for offset in candidates:  # the first data block whose damage a query of sentences meets
        data = bytearray(original)
        data[offset:offset + 64] = b"\xde\xad\xbe\xef" * 16
        db.write_bytes(bytes(data))
        result = cli("sql", "select count(*), sum(length(text)) from sentences", "--warehouse",
                     str(wh))
        if result.exit_code != 0:
            damaged.append(result)
            break
    if not damaged:
        pytest.skip("no data block of this warehouse is read by the query (layout changed)")
    before = db.read_bytes()
    line = one_error_line(damaged[0], f"{db} is damaged or is not a DuckDB database")
    assert "nothing was changed" in line
    if where != "data block":
        for args in (["status"], ["rank"], ["load", str(wh.parent / "nothing-here")]):
            result = cli(*args, "--warehouse", str(wh))
            assert "Traceback" not in result.output and result.exit_code == 1, result.output
            assert len(result.stderr.splitlines()) == 1, result.stderr
    assert db.read_bytes() == before


def test_debug_shows_the_traceback(tmp_path, wh):
    """`--debug` before the command (for every command) or after it (as before)."""
    (tmp_path / "plain").write_text("x")
    bad = str(tmp_path / "plain" / "wh")
    for args in (["--debug", "attach", str(tmp_path / "plain"), "--warehouse", bad],
                 ["sql", "--debug", "", "--warehouse", str(wh)],
                 ["--debug", "sql", "", "--warehouse", str(wh)]):
        result = cli(*args)
        assert result.exit_code == 1
        assert "Traceback (most recent call last)" in result.stderr, result.stderr
        assert result.stderr.splitlines()[-1].startswith("Error: ")


# --- 5: unreadable rollout directories --------------------------------------------------------


def unprivileged_prefix(probe_dir: Path) -> list[str]:
    """A command prefix under which probe_dir (mode 000) really cannot be read.

    Root reads everything through CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH: drop those two
    from the bounding set with setpriv, staying uid 0 so the checkout and the temporary
    files stay reachable. Skips, saying why, where neither works.
    """
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: a mode-000 directory stays readable")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]
    probe = subprocess.run([*prefix, *CLI[:1], "-c", f"import os; os.listdir({str(probe_dir)!r})"],
                           capture_output=True, text=True)
    if probe.returncode == 0:
        pytest.skip(f"cannot make a directory unreadable here (listed it as uid {os.geteuid()} "
                    f"with {prefix or 'no prefix'})")
    return prefix


def test_unreadable_rollout_directory_fails_naming_it(tmp_path):
    root = tmp_path / "root"
    good_rollout(root, "r1", n=3)
    locked = good_rollout(root / "group", "r2", n=3).parent  # a folder holding a rollout
    good_rollout(root, "r3", n=3)
    locked.chmod(0)
    try:
        prefix = unprivileged_prefix(locked)
        env = subprocess_env()
        wh = tmp_path / "wh"
        keep_going = subprocess.run(
            [*prefix, *CLI, "load", str(root), "--keep-going", "--warehouse", str(wh)],
            capture_output=True, text=True, env=env, timeout=300)
        stopped = subprocess.run(
            [*prefix, *CLI, "load", str(root), "--pattern", "r*", "--warehouse",
             str(tmp_path / "wh2")], capture_output=True, text=True, env=env, timeout=300)
    finally:
        locked.chmod(0o755)
    assert keep_going.returncode == 1, keep_going.stderr
    assert "Traceback" not in keep_going.stderr
    failed = [line for line in keep_going.stdout.splitlines() if line.startswith("failed: ")]
    assert failed == [f"failed: rollout 'group': its directory {locked} cannot be read "
                      "(Permission denied): give the user running this command read permission, "
                      "or move it out of the root"], keep_going.stdout
    assert keep_going.stdout.splitlines()[-1].startswith("2 ingested, 0 skipped (unchanged), 1 failed")
    assert rollout_ids(wh) == {"r1", "r3"}
    # without --keep-going (and whatever the pattern) the run stops before writing anything
    assert stopped.returncode == 1 and "Traceback" not in stopped.stderr
    assert stopped.stderr.splitlines() == [
        f"Error: rollout 'group': its directory {locked} cannot be read (Permission denied): give "
        "the user running this command read permission, or move it out of the root"]
    assert not (tmp_path / "wh2" / "va.duckdb").exists()


# --- 5: a full disk ---------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A real 20 MiB tmpfs (needs root and mount): a disk that really fills up."""
    mount = shutil.which("mount")
    if os.geteuid() != 0 or mount is None:
        pytest.skip("a real small disk needs root (mount -t tmpfs); not root here")
    point = tmp_path / "disk"
    point.mkdir()
    done = subprocess.run([mount, "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 20 MiB tmpfs here: {done.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill the file system with one file until only ``leave`` bytes are free."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(chunk)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
            handle.truncate(max(0, os.path.getsize(filler) - leave))
    return filler


def temporary_files(wh: Path) -> list[Path]:
    return sorted(wh.rglob("*.tmp"))


def test_full_disk_is_one_line_keeps_committed_rollouts_and_the_next_run_frees_space(
        small_disk, tmp_path, tiny_model_dir):
    root = tmp_path / "root"
    for name in ("r1", "r2", "r3"):
        good_rollout(root, name, n=120)  # ~1 MiB of attention each for the tiny model
    wh = small_disk / "wh"
    args = ("ingest", str(root), "--checkpoint", str(tiny_model_dir), "--no-progress", "--warehouse",
            str(wh))
    first = cli(*args[:2], "--pattern", "r1", *args[2:])
    assert first.exit_code == 0, first.output
    before = table_checksums(wh)

    filler = fill(small_disk, leave=1 << 20)
    full = cli(*args)
    line = one_error_line(full, f"disk full: no space left on device writing {wh}",
                          "the next attempt needs about", "committed rollouts are intact")
    assert temporary_files(wh) == []
    assert_consistent(wh)
    assert table_checksums(wh, without=("r2", "r3"))["sentences"] == before["sentences"]
    assert table_checksums(wh, without=("r2", "r3"))["attention"] == before["attention"]
    needed_mib = float(line.split("needs about ")[1].split(" ")[0].replace(",", ""))

    # A killed run's temporary file holds space: the next run frees it before anything else.
    filler.unlink()
    leftover = wh / "parquet" / "attention" / "tiny-qwen3" / "r9" / "attention-0-dead.parquet.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"\0" * (8 << 20))
    fill(small_disk, leave=0)
    assert needed_mib < 8 * 2  # the leftover frees enough for the rest, DuckDB's copy included
    rerun = cli(*args)
    assert rerun.exit_code == 0, rerun.output
    assert temporary_files(wh) == []
    assert_consistent(wh)
    assert rollout_ids(wh) == {"r1", "r2", "r3"}


# --- 6: locks ---------------------------------------------------------------------------------


@pytest.fixture
def ingested(tmp_path, tiny_model_dir) -> tuple[Path, Path]:
    root = tmp_path / "root"
    for name in ("r1", "r2"):
        good_rollout(root, name, n=4)
    wh = tmp_path / "wh"
    result = cli("ingest", str(root), "--pattern", "r1", "--checkpoint", str(tiny_model_dir),
                 "--no-progress", "--warehouse", str(wh))
    assert result.exit_code == 0, result.output
    return root, wh


def test_a_shell_open_before_ingest_starts_only_defers_the_commits(ingested, tiny_model_dir):
    """README "Locking model": with a `duckdb -readonly` shell already open, ingest computes
    (r2's attention file appears while the shell is open), queues the commit, and makes
    it once the shell quits."""
    root, wh = ingested
    shell = duckdb_shell(wh / "va.duckdb")
    try:
        proc = subprocess.Popen(
            [*CLI, "ingest", str(root), "--checkpoint", str(tiny_model_dir), "--no-progress",
             "--lock-wait", "120", "--warehouse", str(wh)],
            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert attention_file_appears(proc, wh, "r2", 180), "ingest computed nothing beside the shell"
        note = proc.stdout.readline()  # printed when the commit found the file held
        assert proc.poll() is None  # its commit waits for the shell
    finally:
        stop(shell)
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    assert note.startswith(f"note: {wh / 'va.duckdb'} is open in another process"), note
    assert stdout.splitlines()[-1].startswith("1 ingested, 1 skipped (unchanged), 0 failed")
    assert_consistent(wh, no_orphans=True)


def last_run(wh: Path) -> tuple:
    with duckdb.connect(str(wh / "va.duckdb"), read_only=True) as con:
        return con.execute("select command, outcome, message from ingest_log "
                           "order by started_at desc limit 1").fetchone()


def test_an_ingest_that_gives_up_records_its_outcome(ingested, tiny_model_dir):
    root, wh = ingested
    shell = duckdb_shell(wh / "va.duckdb")
    try:
        result = cli("ingest", str(root), "--checkpoint", str(tiny_model_dir), "--no-progress",
                     "--lock-wait", "1", "--warehouse", str(wh))
        status = cli("status", "--warehouse", str(wh))  # reads beside the shell
    finally:
        stop(shell)
    assert result.exit_code == 1
    match = LOCKED.match(result.stderr)
    assert match and match["who"].endswith("duckdb"), result.stderr
    assert status.exit_code == 0, status.output
    runs = [line.split() for line in status.stdout.splitlines() if line.strip().startswith("20")]
    assert runs[0][2:4] == ["ingest", "failed"], status.stdout  # newest first, not 'running'
    assert str(wh / "va.duckdb") in status.stdout.splitlines()[-2]
    # the next writer moves the recorded outcome into ingest_log
    assert cli("load", str(root), "--warehouse", str(wh)).exit_code == 0
    with duckdb.connect(str(wh / "va.duckdb"), read_only=True) as con:
        runs = con.execute("select command, outcome, message from ingest_log "
                           "order by started_at").fetchall()
    assert [(c, o) for c, o, _ in runs] == [("ingest", "ok"), ("ingest", "failed"), ("load", "ok")]
    assert "is locked by" in runs[1][2]
    assert not (wh / "ingest_log.pending.jsonl").exists()


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_lock_messages_name_another_cli_command(ingested, tiny_model_dir, tmp_path):
    """A real `cli.py ingest` frozen inside its commit (the test hook with SIGSTOP) holds
    both locks: the message names that command and its PID, not a duckdb shell."""
    root, wh = ingested
    proc = subprocess.Popen(
        [*CLI, "ingest", str(root), "--checkpoint", str(tiny_model_dir), "--no-progress",
         "--warehouse", str(wh)],
        env=subprocess_env(VA_WAREHOUSE_CRASH_AT="duckdb_load", VA_WAREHOUSE_CRASH_SIGNAL="SIGSTOP"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    grades = tmp_path / "grades.csv"
    grades.write_text("rollout_id\nr1\n")
    try:
        wait_stopped(proc)
        attach = cli("attach", str(grades), "--lock-wait", "1", "--warehouse", str(wh))
        load = cli("load", str(root), "--lock-wait", "1", "--warehouse", str(wh))
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    line = one_error_line(attach, f"{wh / 'va.duckdb'} is locked by another va-warehouse "
                          "command, `cli.py ingest ", f"(PID {proc.pid}), still after 1 s: wait "
                          "for it to finish (or stop it)")
    assert "duckdb` shell" not in line
    one_error_line(load, f"warehouse {wh} is being written by `cli.py ingest ",
                   f"(PID {proc.pid}) since ")
    assert_consistent(wh, no_orphans=True)
