"""Fuzz: random malformed rollout directories (hypothesis), for a bounded number of examples.

The loader may only raise the project's own errors (RolloutError, DiscoveryError), and
whatever it accepts must be storable; `load` into a warehouse never leaves a partial
write: each rollout is either stored whole and current, or exactly as it was before.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_reliability_support import TAG, assert_consistent, connect, table_checksums

from ingest.pipeline import load, to_record
from ingest.rollouts import DiscoveryError, RolloutError, load_all
from warehouse.tables import rollout_tables

MAX_SENTENCE_CHARS = 40  # low, so that the limit is hit too

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
DAMAGE = ("missing", "random JSON", "truncated", "random bytes", "latin-1", "surrogate", "deep")


@st.composite
def label_entry(draw, chunk: str, k: int):
    """A plausible label, or one with a wrong field (repaired with a warning), or junk."""
    entry = {"chunk": chunk, "chunk_idx": k, "function_tags": draw(st.lists(
        st.sampled_from([TAG, "plan_generation", "uncertainty_management"]), max_size=2))}
    field = draw(st.sampled_from([None, None, None, "chunk", "chunk_idx", "function_tags", "entry"]))
    if field == "entry":
        return draw(json_values)
    if field is not None:
        entry[field] = draw(json_values)
    return entry


@st.composite
def rollout_files(draw):
    """A rollout directory's files (bytes, or None when absent): valid, with 0-2 of them damaged."""
    chunks = draw(st.lists(st.text(max_size=45), min_size=1, max_size=6))
    labels = [draw(label_entry(c, k)) for k, c in enumerate(chunks)]
    labels = labels[: draw(st.integers(0, len(labels)))] if draw(st.booleans()) else labels
    values = {
        "chunks.json": {"chunks": chunks} if draw(st.booleans()) else None,  # absent: labels' chunks
        "chunks_labeled.json": labels,
        "base_solution.json": {"full_cot": "\n".join(chunks), "is_correct": draw(json_values)},
        "item.json": draw(json_values),  # NaN and Infinity included, as Python writes them
    }
    files = {name: None if value is None else json.dumps(value).encode() for name, value in values.items()}
    for name in draw(st.sets(st.sampled_from(sorted(files)), max_size=2)):
        files[name] = draw(damaged(files[name] or b"{}"))
    return files


@st.composite
def damaged(draw, data: bytes):
    how = draw(st.sampled_from(DAMAGE))
    text = data.decode()
    if how == "missing":
        return None
    if how == "random JSON":
        return json.dumps(draw(json_values)).encode()
    if how == "truncated":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if how == "random bytes":
        return draw(st.binary(max_size=40))
    if how == "latin-1":
        return text.replace('"', '"\u00e9', 1).encode("latin-1", errors="replace")
    if how == "surrogate":
        return text.replace('"', '"\\udc80', 1).encode()
    depth = draw(st.integers(500, 5000))
    return b"[" * depth + b"]" * depth


roots = st.lists(rollout_files(), min_size=1, max_size=3)


def write_root(base: Path, rollouts: list[dict]) -> Path:
    root = base / "root"
    for k, files in enumerate(rollouts):
        directory = root / f"r{k}"
        directory.mkdir(parents=True)
        for name, data in files.items():
            if data is not None:
                (directory / name).write_bytes(data)
    return root


@settings(max_examples=150, deadline=None)
@given(rollouts=roots)
def test_loader_raises_only_its_own_errors(rollouts):
    with tempfile.TemporaryDirectory() as tmp:
        root = write_root(Path(tmp), rollouts)
        try:
            result = load_all([root], keep_going=True, max_sentence_chars=MAX_SENTENCE_CHARS)
        except DiscoveryError:
            return
        for error in result.errors:
            assert isinstance(error, RolloutError) and str(error).startswith(f"rollout '{error.rollout}': ")
        for rollout in result.rollouts:
            assert all(isinstance(s, str) and len(s) <= MAX_SENTENCE_CHARS for s in rollout.sentences)
            assert len(rollout.tags) == len(rollout.sentences) > 0
            rollout_tables(to_record(rollout))  # what is accepted can be stored


@pytest.fixture(scope="module")
def shared_warehouse(tmp_path_factory):
    from warehouse.store import Warehouse

    return Warehouse(tmp_path_factory.mktemp("fuzz") / "wh")


def stored_state(wh_dir: Path) -> dict:
    """rollout_id -> (content_hash, md5 of its sentences and tags)."""
    if not (wh_dir / "va.duckdb").exists():
        return {}
    with connect(wh_dir) as con:
        return {rid: rest for rid, *rest in con.execute("""
            select r.rollout_id, r.content_hash,
                   (select md5(string_agg(cast(s as varchar), '|' order by s.idx)) from sentences s
                    where s.rollout_id = r.rollout_id),
                   (select md5(coalesce(string_agg(cast(t as varchar), '|' order by t.idx, t.tag), ''))
                    from sentence_tags t where t.rollout_id = r.rollout_id)
            from rollouts r""").fetchall()}


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rollouts=roots, keep_going=st.booleans())
def test_load_never_leaves_a_partial_write(shared_warehouse, rollouts, keep_going):
    wh_dir = shared_warehouse.dir
    with tempfile.TemporaryDirectory() as tmp:
        root = write_root(Path(tmp), rollouts)
        before, tables_before = stored_state(wh_dir), table_checksums(wh_dir)
        try:
            expected = load_all([root], keep_going=True, max_sentence_chars=MAX_SENTENCE_CHARS)
        except DiscoveryError:
            expected = None
        try:
            load([str(root)], shared_warehouse, keep_going=keep_going,
                 max_sentence_chars=MAX_SENTENCE_CHARS)
        except (RolloutError, DiscoveryError):
            event("refused before writing")
            assert not keep_going or expected is None
            assert table_checksums(wh_dir) == tables_before  # checked first, nothing written
            return
        after = stored_state(wh_dir)
        assert_consistent(wh_dir)
        accepted = expected.rollouts if expected else []  # keep_going: an empty root is a failure
        event(f"stored {len(accepted)} of {len(rollouts)}, keep_going={keep_going}")
        good = {r.rollout_id: to_record(r).content_hash for r in accepted}
        for rid in set(before) | set(after):
            if rid in good:
                assert after[rid][0] == good[rid]  # stored whole and current
            else:
                assert after.get(rid) == before.get(rid)  # untouched
