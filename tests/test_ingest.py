"""`cli.py ingest` end to end with the tiny model on real traces: the warehouse holds the
eager reference, the spans of METRICS.md §2, and re-runs skip or recompute as asked."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import cli
from tests.test_reliability_support import table_checksums

pytestmark = pytest.mark.slow

TRACES = [
    "sesgo/qwen3p7-plus/temperature_0.6_top_p_0.95/en/disambig/item_6",
    "sesgo/claude-sonnet-4-6/temperature_0.6_top_p_0.95/en/ambig/item_3",
    "math/deepseek-r1-distill-llama-8b/incorrect_base_solution/problem_2189",
]


@pytest.fixture(scope="module")
def traces_root(shared_rollouts, tmp_path_factory):
    """Three real traces (two short sesgo, one math) copied under one root."""
    root = tmp_path_factory.mktemp("traces")
    for rel in TRACES:
        shutil.copytree(shared_rollouts / rel, root / rel)
    return root


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    import torch

    from ingest.model import load_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: one thread is faster and steadier here
    yield load_model(str(tiny_model_dir), device="cpu", dtype="float32", offline=True)
    torch.set_num_threads(threads)


def ingest(*args):
    result = CliRunner().invoke(cli.main, ["ingest", "--no-progress", *args])
    assert result.exit_code == 0, result.output
    return result.output


def stored(warehouse, rollout_id, n_layers, n_heads, n):
    with warehouse.connect(read_only=True) as con:
        rows = con.execute("select layer, head, i, j, value from attention where rollout_id = ?",
                           [rollout_id]).fetchall()
    matrices = np.zeros((n_layers, n_heads, n, n), dtype=np.float32)
    for layer, head, i, j, value in rows:
        matrices[layer, head, i, j] = value
    return matrices, len(rows)


def test_ingest_stores_the_eager_reference_and_prefix_count_spans(traces_root, tiny_model_dir, loaded,
                                                                  warehouse):
    from ingest.capture import reference_sentence_attention
    from ingest.rollouts import discover, load_rollout
    from ingest.spans import char_spans

    ingest(str(traces_root), "--checkpoint", str(tiny_model_dir), "--warehouse", str(warehouse.dir))
    info = loaded.info
    for rollout_dir in discover([traces_root]):
        rollout = load_rollout(rollout_dir)
        n = len(rollout.sentences)
        text = rollout.text
        # METRICS.md §2, literally: one encode per prefix.
        spans = char_spans(text, list(rollout.sentences))
        expected_spans = [(len(loaded.tokenizer.encode(text[: s.start])) if s.start else 0,
                           len(loaded.tokenizer.encode(text[: s.end]))) for s in spans]
        with warehouse.connect(read_only=True) as con:
            got_spans = con.execute(
                "select token_start, token_end from sentence_spans where rollout_id = ? order by idx",
                [rollout.rollout_id]).fetchall()
        assert got_spans == expected_spans
        matrices, cells = stored(warehouse, rollout.rollout_id, info.n_layers, info.n_heads, n)
        assert cells == info.n_layers * info.n_heads * n * (n + 1) // 2  # full lower triangles
        reference = reference_sentence_attention(loaded, loaded.encode(text), expected_spans)
        assert reference.shape == matrices.shape
        assert np.abs(reference - matrices).max() <= 1e-5  # METRICS.md §9, every layer and head


def test_rerun_skips_unchanged_and_force_recomputes(traces_root, tiny_model_dir, warehouse):
    args = [str(traces_root), "--checkpoint", str(tiny_model_dir), "--warehouse", str(warehouse.dir)]
    first = ingest(*args)
    assert "3 ingested, 0 skipped (unchanged), 0 failed" in first
    before = table_checksums(warehouse.dir, without=("ingest_log",))
    again = ingest(*args)
    assert "0 ingested, 3 skipped (unchanged), 0 failed" in again
    assert table_checksums(warehouse.dir, without=("ingest_log",)) == before  # nothing changed

    with warehouse.connect(read_only=True) as con:
        runs_before = con.execute("select rollout_id, ingested_at from attention_runs order by 1").fetchall()
    forced = ingest(*args, "--force")
    assert "3 ingested, 0 skipped (unchanged), 0 failed" in forced
    with warehouse.connect(read_only=True) as con:
        runs_after = con.execute("select rollout_id, ingested_at from attention_runs order by 1").fetchall()
        log = con.execute("select command, outcome, n_ok, n_skipped from ingest_log order by started_at"
                          ).fetchall()
    assert [r for r, _ in runs_after] == [r for r, _ in runs_before]
    assert all(after > before for (_, before), (_, after) in zip(runs_before, runs_after, strict=True))
    content = ("attention", "sentence_spans", "sentences", "sentence_tags")
    assert {k: v for k, v in table_checksums(warehouse.dir).items() if k in content} == {
        k: v for k, v in before.items() if k in content}  # recomputed, same numbers
    assert log == [("ingest", "ok", 3, 0), ("ingest", "ok", 0, 3), ("ingest", "ok", 3, 0)]


def test_full_cot_text_source_reports_whitespace_matches(shared_rollouts, tiny_model_dir, warehouse):
    """Some chunks of problem_2189 differ from its full_cot in whitespace only (data README):
    exactly those need the tolerant match, and the run names them."""
    import json

    from ingest.spans import normalize_spaces

    root = shared_rollouts / "math/deepseek-r1-distill-llama-8b/correct_base_solution"
    output = ingest(str(root), "--pattern", "problem_2189", "--checkpoint", str(tiny_model_dir),
                    "--text-source", "full_cot", "--warehouse", str(warehouse.dir))
    labels = json.loads((root / "problem_2189" / "chunks_labeled.json").read_text())
    full_cot = normalize_spaces(json.loads((root / "problem_2189" / "base_solution.json").read_text())[
        "full_cot"])
    not_verbatim = [k for k, e in enumerate(labels) if normalize_spaces(e["chunk"]).strip() not in full_cot]
    with warehouse.connect(read_only=True) as con:
        tolerant = [k for (k,) in con.execute(
            "select idx from sentence_spans where match = 'whitespace' order by idx").fetchall()]
        missing = con.execute("select count(*) from sentence_spans where char_start is null").fetchone()
    assert missing == (0,)
    assert tolerant == not_verbatim and tolerant
    assert f"whitespace match for sentence(s) {', '.join(map(str, tolerant))}" in output
