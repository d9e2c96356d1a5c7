"""The bundled demo sample (examples/va_sample): ten synthetic problem-9 rollouts.

The expected counts are written out here, and also re-read from the raw JSON without the
loader, so a change to either the data or the loader shows up as a failure.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.rollouts import discover, load_all, load_rollout
from ingest.spans import char_spans

DEMO_ROOT = Path(__file__).resolve().parent.parent / "examples" / "va_sample"
TAG = "verbalized_evaluation_awareness"
IDS = [f"correct_base_solution/problem_9_va_{i:02d}" for i in range(10)]

# rollout number -> (sentences, VA sentence indices), as written in the JSON files
EXPECTED = {
    0: (23, [2, 11, 13, 18]),
    1: (29, [3, 13, 19, 20, 21]),
    2: (25, [0, 11, 15, 20]),  # a VA sentence first: the [1:-1] trim drops it
    3: (28, [12, 18, 19, 23]),
    4: (34, [10, 16, 25, 29]),
    5: (38, [14, 25, 31, 35]),  # a VA sentence among the last four
    6: (37, [4, 19, 30, 31]),
    7: (23, [7, 15]),
    8: (24, [13, 19]),
    9: (28, [11, 22, 23]),
}
TOTAL_SENTENCES = 289
TOTAL_VA = 36
# full_cot differs from the chunks in whitespace only: (rollout, sentence) not found verbatim
WHITESPACE_ONLY = {3: [21], 6: [27]}


def raw(i: int, name: str):
    path = DEMO_ROOT / "correct_base_solution" / f"problem_9_va_{i:02d}" / name
    return json.loads(path.read_bytes().decode("utf-8"))


@pytest.fixture(scope="module")
def loaded():
    result = load_all([DEMO_ROOT])
    assert result.errors == []
    return {r.rollout_id: r for r in result.rollouts}


def test_expected_totals_add_up():
    assert sum(n for n, _ in EXPECTED.values()) == TOTAL_SENTENCES
    assert sum(len(va) for _, va in EXPECTED.values()) == TOTAL_VA


def test_discovers_the_ten_rollouts():
    dirs = discover([DEMO_ROOT])
    assert [d.rollout_id for d in dirs] == IDS
    assert [d.rollout_id for d in discover([DEMO_ROOT], "problem_9_va_*")] == IDS


@pytest.mark.parametrize("i", range(10))
def test_raw_json_matches_expected_counts(i):
    chunks = raw(i, "chunks.json")
    labels = raw(i, "chunks_labeled.json")
    assert chunks["chunks"] == [e["chunk"] for e in labels]
    assert [e["chunk_idx"] for e in labels] == list(range(len(labels)))
    n, va = EXPECTED[i]
    assert len(chunks["chunks"]) == n
    assert [k for k, e in enumerate(labels) if TAG in e["function_tags"]] == va
    base = raw(i, "base_solution.json")
    assert base["is_correct"] is True
    assert base["full_cot"] == base["prompt"] + "\n\n" + base["solution"]
    assert raw(i, "problem.json")["problem"] in base["prompt"]


@pytest.mark.parametrize("i", range(10))
def test_loader_agrees_with_raw_json(i, loaded):
    rollout = loaded[IDS[i]]
    chunks = raw(i, "chunks.json")["chunks"]
    labels = raw(i, "chunks_labeled.json")
    assert rollout.warnings == ()
    assert rollout.sentence_source == "chunks.json"
    assert list(rollout.sentences) == chunks
    mask = rollout.target_mask(TAG)
    assert [k for k, hit in enumerate(mask) if hit] == EXPECTED[i][1]
    assert mask == [TAG in e["function_tags"] for e in labels]
    assert rollout.solution_folder == "correct_base_solution"
    assert rollout.problem_id == "9"
    assert rollout.is_correct is True
    assert rollout.text == "\n".join(chunks)


def test_load_rollout_directly_and_totals(loaded):
    one = load_rollout(discover([DEMO_ROOT], "problem_9_va_05")[0])
    assert one.rollout_id == IDS[5] and one.warnings == ()
    assert sum(len(r.sentences) for r in loaded.values()) == TOTAL_SENTENCES
    assert sum(sum(r.target_mask(TAG)) for r in loaded.values()) == TOTAL_VA


@pytest.mark.parametrize("i", range(10))
def test_full_cot_holds_every_sentence(i):
    """Verbatim, except the whitespace-only differences, which the tolerant search finds."""
    base = raw(i, "base_solution.json")
    chunks = raw(i, "chunks.json")["chunks"]
    cot, prompt = base["full_cot"], base["prompt"]
    missing = [k for k, s in enumerate(chunks) if s not in cot]
    assert missing == WHITESPACE_ONLY.get(i, [])
    assert "".join(cot[len(prompt):].split()) == "".join("".join(chunks).split())
    spans = char_spans(cot, chunks, whitespace_tolerant=True)
    assert all(s.found and s.start >= len(prompt) for s in spans)
    kinds = [k for k, s in enumerate(spans) if s.match == "whitespace"]
    assert kinds == WHITESPACE_ONLY.get(i, [])
