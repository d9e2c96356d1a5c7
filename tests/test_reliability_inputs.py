"""Bad-input catalog at the command line: one clear line, exit codes, nothing else touched.

Each bad rollout 'm_bad' sits between two good ones ('a_good', 'z_good') in a root, and
the warehouse already holds an unrelated rollout 'prev'. Without --keep-going the run
stops at the first problem, before anything is written (every rollout is checked
first); with it the good rollouts are stored and the exit code is 1. Either way every
table holds exactly what it held plus the good rollouts (checksums of all rows).
Loader-level details of some of these are in tests/test_rollouts.py; here they are
checked end to end through `cli.py load` (and `cli.py ingest` where the model matters).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_reliability_support import (
    TAG,
    assert_consistent,
    cli,
    connect,
    good_rollout,
    labels_for,
    rollout_ids,
    sentences,
    table_checksums,
    write_rollout,
)

GOOD = ("a_good", "z_good")
CHUNKS = sentences("m_bad", 4)
LABELS = labels_for(CHUNKS)


@pytest.fixture(scope="module")
def earlier_warehouse(tmp_path_factory):
    """A warehouse that holds one rollout, 'prev', loaded from its own root."""
    base = tmp_path_factory.mktemp("earlier")
    good_rollout(base / "earlier", "prev")
    result = cli("load", str(base / "earlier"), "--warehouse", str(base / "wh"))
    assert result.exit_code == 0, result.output
    return base


@pytest.fixture
def setup(tmp_path, earlier_warehouse):
    """(root with a_good and z_good, a copy of the warehouse holding 'prev')."""
    root, wh = tmp_path / "root", tmp_path / "wh"
    for name in GOOD:
        good_rollout(root, name)
    shutil.copytree(earlier_warehouse / "wh", wh)
    return root, wh


def assert_holds_before_plus(wh: Path, before: dict, good: tuple[str, ...]) -> None:
    """Every table: the rows it held, plus those of the good rollouts, nothing else."""
    assert table_checksums(wh, without=good) == before  # the good ids are new
    assert rollout_ids(wh) == {"prev", *good}
    assert_consistent(wh)


def run_both_ways(root: Path, wh: Path, expected: str, *extra: str, command: str = "load"):
    """Stop-at-first and --keep-going runs over the root; returns nothing, asserts all."""
    before = table_checksums(wh)
    stopped = cli(command, str(root), *extra, "--warehouse", str(wh))
    assert stopped.exit_code == 1
    assert stopped.stdout == ""
    assert stopped.stderr == f"Error: {expected}\n"  # one line, no traceback
    assert table_checksums(wh) == before

    kept = cli(command, str(root), *extra, "--keep-going", "--warehouse", str(wh))
    assert kept.exit_code == 1
    lines = kept.stdout.splitlines()
    assert f"failed: {expected}" in lines
    assert lines[-1].startswith("2 ingested, 0 skipped (unchanged), 1 failed in ")
    assert kept.stderr == ""
    assert_holds_before_plus(wh, before, GOOD)


# --- errors: the rollout is refused -------------------------------------------------------

ERRORS = {
    "missing_labels": (
        lambda d: write_rollout(d, CHUNKS),
        "chunks_labeled.json is missing (chunks.json alone carries no labels)"),
    "no_chunks_and_no_usable_labels": (
        lambda d: write_rollout(d, None, [{"chunk_idx": 0, "function_tags": []}]),
        "chunks_labeled.json entry 0 has no 'chunk' string, and there is no chunks.json to take "
        "the sentences from"),
    "invalid_json_empty_file": (
        lambda d: write_rollout(d, b"", LABELS),
        "chunks.json is not valid JSON (Expecting value, line 1, column 1)"),
    "invalid_json_truncated": (
        lambda d: write_rollout(d, CHUNKS, b'[{"chunk": "x", "function_tags": ["a"]}, {"chu'),
        "chunks_labeled.json is not valid JSON (Unterminated string starting at, line 1, column 43)"),
    "not_utf8": (
        lambda d: write_rollout(d, None, '[{"chunk": "caf\u00e9"}]'.encode("latin-1")),
        "chunks_labeled.json is not UTF-8 (byte 0xe9 at offset 15)"),
    "chunks_not_a_list": (
        lambda d: write_rollout(d, "One. Two.", LABELS),
        "chunks.json 'chunks' must be a list of strings, not a string"),
    "chunks_holds_non_string": (
        lambda d: write_rollout(d, ["One.", {"text": "Two."}], LABELS),
        "chunks.json 'chunks'[1] is an object, not a string"),
    "empty_sentence_list": (
        lambda d: write_rollout(d, [], LABELS),
        "chunks.json holds no sentences"),
    "labels_not_a_list": (
        lambda d: write_rollout(d, CHUNKS, {"0": LABELS[0]}),
        "chunks_labeled.json must hold a list of chunk entries, not an object"),
    "one_megabyte_sentence": (
        lambda d: write_rollout(d, ["Short.", "x" * 1_000_000], LABELS),
        "chunks.json sentence 1 is 1,000,000 characters long (limit 100,000); split it, or raise "
        "the limit with --max-sentence-chars"),
    "unpaired_surrogate": (
        lambda d: write_rollout(d, b'{"chunks": ["ok", "bad \\ud83d"]}', LABELS),
        "chunks.json holds text that is not valid Unicode (unpaired surrogate \\ud83d)"),
    "nested_too_deeply": (
        lambda d: write_rollout(d, CHUNKS, LABELS, item=b"[" * 100_000 + b"]" * 100_000),
        "item.json is nested too deeply to be read"),
    "integer_too_long": (
        lambda d: write_rollout(d, CHUNKS, LABELS, item=b"1" * 5000),
        "item.json holds a value Python cannot read (Exceeds the limit (4300 digits) for integer "
        "string conversion: value has 5000 digits; use sys.set_int_max_str_digits() to increase "
        "the limit)"),
    "metadata_invalid_json": (
        lambda d: write_rollout(d, CHUNKS, LABELS, base_solution=b'{"full_cot": "x",}'),
        "base_solution.json is not valid JSON (Expecting property name enclosed in double quotes, "
        "line 1, column 18)"),
}


@pytest.mark.parametrize("kind", list(ERRORS))
def test_bad_rollout_is_refused_with_one_line(setup, kind):
    root, wh = setup
    make, problem = ERRORS[kind]
    make(root / "m_bad")
    run_both_ways(root, wh, f"rollout 'm_bad': {problem}")


def test_long_sentence_loads_when_the_limit_is_raised(setup):
    root, wh = setup
    write_rollout(root / "m_big", ["Short.", "x" * 1_000_000], LABELS)
    result = cli("load", str(root), "--max-sentence-chars", "2000000", "--warehouse", str(wh))
    assert result.exit_code == 0, result.output
    assert rollout_ids(wh) == {"prev", "m_big", *GOOD}
    assert_consistent(wh)


@pytest.mark.skipif(os.uname().sysname != "Linux", reason="needs a filesystem that takes any bytes")
def test_directory_name_not_utf8(setup):
    root, wh = setup
    name = os.fsdecode(b"m_bad_\xff")
    write_rollout(root / name, CHUNKS, LABELS)
    run_both_ways(root, wh, "rollout 'm_bad_\\udcff': its directory name is not UTF-8: rename the "
                            "directory")


# --- discovery: roots -------------------------------------------------------------------


def test_empty_root(setup, tmp_path):
    root, wh = setup
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no rollouts here")
    expected = (f"root '{empty}' holds no rollout directory (a directory with chunks.json or "
                "chunks_labeled.json)")
    before, kept = stops_then_fails_alone(wh, [root, empty], expected)
    assert "2 ingested, 0 skipped (unchanged), 1 failed" in kept.stdout
    assert_holds_before_plus(wh, before, GOOD)


def stops_then_fails_alone(wh, roots, expected: str):
    """`load` of these roots stops with ``expected`` and changes nothing; with --keep-going
    it lists ``expected`` as failed. Returns (checksums before, the --keep-going result)."""
    before = table_checksums(wh)
    stopped = cli("load", *map(str, roots), "--warehouse", str(wh))
    assert (stopped.exit_code, stopped.stderr) == (1, f"Error: {expected}\n")
    assert table_checksums(wh) == before
    kept = cli("load", *map(str, roots), "--keep-going", "--warehouse", str(wh))
    assert kept.exit_code == 1
    assert f"failed: {expected}" in kept.stdout.splitlines()
    return before, kept


def test_missing_root(setup, tmp_path):
    root, wh = setup
    result = cli("load", str(root), str(tmp_path / "typo"), "--warehouse", str(wh))
    assert (result.exit_code, result.stderr) == (1, f"Error: root '{tmp_path / 'typo'}' does not exist\n")


def test_two_roots_hold_the_same_rollout_id(setup, tmp_path):
    root, wh = setup
    other = tmp_path / "other"
    good_rollout(root, "m_dup")
    good_rollout(other, "m_dup")
    expected = (f"rollout id 'm_dup' is held by two roots: {root / 'm_dup'} and {other / 'm_dup'}; "
                "load them into separate warehouses or pass roots whose relative paths differ")
    before, _kept = stops_then_fails_alone(wh, [root, other], expected)
    assert_holds_before_plus(wh, before, GOOD)  # neither copy: which one is meant is unknown


def test_symlink_loop_is_walked_once(setup):
    """Repair: a link back up the tree is not followed twice; the run succeeds."""
    root, wh = setup
    (root / "a_good" / "sub").mkdir()
    (root / "loop").symlink_to(root)
    (root / "a_good" / "sub" / "up").symlink_to(root)
    result = cli("load", str(root), "--warehouse", str(wh))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("2 ingested, 0 skipped (unchanged), 0 failed")
    assert rollout_ids(wh) == {"prev", *GOOD}
    assert_consistent(wh)


# --- repairs: stored, with a warning ----------------------------------------------------

REPAIRS = {
    "labels_shorter": (LABELS[:2],
                       "chunks_labeled.json has 2 entries for 4 sentences (the rest have no tags)",
                       [["plan_generation"], [TAG], [], []]),
    "labels_longer": (LABELS + labels_for(["extra"], va=(0,)),
                      "chunks_labeled.json has 5 entries for 4 sentences (truncated)",
                      [["plan_generation"], [TAG], ["plan_generation"], ["plan_generation"]]),
    "function_tags_not_a_list": (
        [LABELS[0], {**LABELS[1], "function_tags": TAG}, *LABELS[2:]],
        "chunks_labeled.json entry 1: function_tags is a string, not a list (no tags)",
        [["plan_generation"], [], ["plan_generation"], ["plan_generation"]]),
    "function_tags_holds_non_strings": (
        [LABELS[0], {**LABELS[1], "function_tags": [TAG, 7, None]}, *LABELS[2:]],
        "chunks_labeled.json entry 1: non-string function_tags ignored",
        [["plan_generation"], [TAG], ["plan_generation"], ["plan_generation"]]),
    "chunk_idx_out_of_order": (
        [LABELS[0], {**LABELS[2], "chunk_idx": 2}, {**LABELS[1], "chunk_idx": 1}, LABELS[3]],
        "chunks_labeled.json entry 1 has chunk_idx 2 (labels are taken by position)",
        [["plan_generation"], ["plan_generation"], [TAG], ["plan_generation"]]),
    "entry_not_an_object": (
        [LABELS[0], "verbalized_evaluation_awareness", *LABELS[2:]],
        "chunks_labeled.json entry 1 is a string, not an object (no tags)",
        [["plan_generation"], [], ["plan_generation"], ["plan_generation"]]),
}


@pytest.mark.parametrize("kind", list(REPAIRS))
def test_repairable_labels_are_stored_with_a_warning(setup, kind):
    root, wh = setup
    labels, warning, tags = REPAIRS[kind]
    write_rollout(root / "m_bad", CHUNKS, labels)
    before = table_checksums(wh)
    result = cli("load", str(root), "--warehouse", str(wh))
    assert result.exit_code == 0, result.output
    assert f"note: rollout 'm_bad': {warning}" in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1].startswith("3 ingested, 0 skipped (unchanged), 0 failed")
    assert table_checksums(wh, without=("m_bad", *GOOD)) == before
    with connect(wh) as con:
        stored = con.execute("select warnings from rollouts where rollout_id = 'm_bad'").fetchone()[0]
        got = con.execute("select idx, tag from sentence_tags where rollout_id = 'm_bad'").fetchall()
    assert warning in stored
    assert sorted(got) == sorted((k, t) for k, ts in enumerate(tags) for t in ts)
    assert_consistent(wh)


def test_nan_in_metadata_becomes_null_with_a_warning(setup):
    root, wh = setup
    write_rollout(root / "m_bad", CHUNKS, LABELS, base_solution=b'{"score": NaN, "x": [Infinity]}')
    result = cli("load", str(root), "--warehouse", str(wh))
    assert result.exit_code == 0, result.output
    assert ("note: rollout 'm_bad': base_solution.json: Infinity, NaN replaced by null"
            in result.stdout.splitlines())
    with connect(wh) as con:
        meta = con.execute("select metadata->'$.base_solution' from rollouts "
                           "where rollout_id = 'm_bad'").fetchone()[0]
    assert meta.replace(" ", "") == '{"score":null,"x":[null]}'


# --- through `ingest`, with the model ---------------------------------------------------


def test_ingest_stops_at_first_or_keeps_going_and_touches_nothing_else(setup, earlier_warehouse,
                                                                       tiny_model_dir):
    """A sentence missing from full_cot (text source full_cot) fails; with the real model."""
    root, wh = setup
    good = list(CHUNKS)
    write_rollout(root / "m_bad", good, LABELS,
                  base_solution={"full_cot": "\n".join([good[0], good[1], good[3]])})
    model = ["--checkpoint", str(tiny_model_dir), "--text-source", "full_cot", "--no-progress"]
    prev = cli("ingest", str(earlier_warehouse / "earlier"), *model, "--warehouse", str(wh))
    assert prev.exit_code == 0, prev.output
    expected = ("rollout 'm_bad': base_solution.json 'full_cot' does not contain sentence(s) 2 of 4, "
                "even ignoring whitespace; use --text-source chunks for this rollout")
    run_both_ways(root, wh, expected, *model, command="ingest")
    info = assert_consistent(wh, no_orphans=True)
    assert info["attention"] == {("tiny-qwen3", r) for r in ("prev", *GOOD)}


def test_ingest_refuses_a_rollout_with_no_text(setup, tiny_model_dir):
    """A single empty sentence is storable (`load`) but gives the model no token."""
    root, wh = setup
    write_rollout(root / "m_bad", [""], labels_for([""]))
    assert cli("load", str(root), "--warehouse", str(wh)).exit_code == 0
    result = cli("ingest", str(root), "--checkpoint", str(tiny_model_dir), "--no-progress",
                 "--warehouse", str(wh))
    assert result.exit_code == 1
    assert result.stderr == ("Error: rollout 'm_bad': chunks.json holds only an empty sentence: "
                             "no text for the model\n")
