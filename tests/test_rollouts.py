"""The rollout loader on the real shared rollouts and on hand-made directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.rollouts import (
    DiscoveryError,
    RolloutError,
    discover,
    load_all,
    load_rollout,
)


def write_rollout(directory: Path, chunks=None, labels=None, **files) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    if chunks is not None:
        (directory / "chunks.json").write_text(json.dumps({"chunks": chunks}))
    if labels is not None:
        (directory / "chunks_labeled.json").write_text(json.dumps(labels))
    for name, value in files.items():
        (directory / f"{name}.json").write_text(json.dumps(value))
    return directory


def labels_for(chunks, tags=None):
    tags = tags or {}
    return [{"chunk": c, "chunk_idx": k, "function_tags": tags.get(k, ["plan_generation"])}
            for k, c in enumerate(chunks)]


def test_all_shared_rollouts_load_with_right_counts(shared_rollouts):
    """Counts computed independently from the raw JSON; 8 sesgo dirs lack labels."""
    result = load_all([shared_rollouts])
    expected_sentences = expected_tags = 0
    unlabeled = []
    for labels_path in sorted(shared_rollouts.rglob("chunks_labeled.json")):
        labels = json.loads(labels_path.read_text())
        chunks_path = labels_path.parent / "chunks.json"
        sentences = (json.loads(chunks_path.read_text())["chunks"] if chunks_path.exists()
                     else [e["chunk"] for e in labels])
        expected_sentences += len(sentences)
        expected_tags += sum(len(set(e["function_tags"])) for e in labels[: len(sentences)])
    for chunks_path in shared_rollouts.rglob("chunks.json"):
        if not (chunks_path.parent / "chunks_labeled.json").exists():
            unlabeled.append(chunks_path.parent)
    assert len(result.rollouts) == 126  # 20 math + 106 sesgo (data/README.md)
    assert sum(len(r.sentences) for r in result.rollouts) == expected_sentences
    assert sum(len(t) for r in result.rollouts for t in r.tags) == expected_tags
    assert len(result.errors) == len(unlabeled) == 8
    assert all("chunks_labeled.json is missing" in str(e) for e in result.errors)
    math = [r for r in result.rollouts if r.rollout_id.startswith("math/")]
    assert len(math) == 20 and all(r.sentence_source == "chunks_labeled.json" for r in math)
    assert all(r.sentence_source == "chunks.json" for r in result.rollouts if r not in math)
    assert {r.is_correct for r in math} == {True, False}


def test_sesgo_string_is_biased_and_item_metadata_kept(shared_rollouts):
    rollout = next(r for r in load_all([shared_rollouts / "sesgo"]).rollouts)
    assert set(rollout.metadata) >= {"base_solution", "item"}
    assert rollout.problem_id is not None


def test_ids_are_relative_paths_and_pattern_filters(tmp_path):
    chunks = ["a.", "b.", "c."]
    for name in ("problem_9_va_00", "problem_9_va_01", "problem_10"):
        write_rollout(tmp_path / "correct_base_solution" / name, chunks, labels_for(chunks))
    found = discover([tmp_path], "problem_9_va_*")
    assert [d.rollout_id for d in found] == [
        "correct_base_solution/problem_9_va_00", "correct_base_solution/problem_9_va_01"]
    assert [d.rollout_id for d in discover([tmp_path / "correct_base_solution" / "problem_10"])] == [
        "problem_10"]


def test_fallback_to_labels_when_chunks_json_absent(tmp_path):
    chunks = ["First.", "Second.", "Third."]
    d = write_rollout(tmp_path / "r", None, labels_for(chunks, {1: ["verbalized_evaluation_awareness"]}))
    rollout = load_rollout(discover([tmp_path])[0])
    assert rollout.sentences == tuple(chunks)
    assert rollout.sentence_source == "chunks_labeled.json"
    assert rollout.target_mask() == [False, True, False]
    assert rollout.text == "First.\nSecond.\nThird."
    assert d.name == rollout.name


def test_labels_by_position_truncated_and_padded(tmp_path):
    chunks = ["a", "b", "c"]
    labels = labels_for(chunks + ["d"], {3: ["verbalized_evaluation_awareness"]})
    write_rollout(tmp_path / "long", chunks, labels)
    write_rollout(tmp_path / "short", chunks, labels[:1])
    long, short = (load_rollout(d) for d in discover([tmp_path]))
    assert long.target_mask() == [False, False, False]
    assert "4 entries for 3 sentences (truncated)" in long.warnings[0]
    assert short.tags == (("plan_generation",), (), ())
    assert "the rest have no tags" in short.warnings[0]


def test_malformed_label_entries_are_repaired_with_warnings(tmp_path):
    chunks = ["a", "b", "c", "d"]
    labels = ["not a dict", {"chunk": "b", "function_tags": "uncertainty_management"},
              {"chunk": "c", "chunk_idx": 7, "function_tags": ["x", 3, "x"]},
              {"chunk": "d", "chunk_idx": 3}]
    write_rollout(tmp_path / "r", chunks, labels)
    rollout = load_rollout(discover([tmp_path])[0])
    assert rollout.tags == ((), (), ("x",), ())
    text = "\n".join(rollout.warnings)
    assert "entry 0 is a string, not an object" in text
    assert "function_tags is a string, not a list" in text
    assert "chunk_idx 7" in text
    assert "non-string function_tags ignored" in text


@pytest.mark.parametrize(
    ("chunks_obj", "message"),
    [
        ({"chunks": "one string"}, "chunks.json 'chunks' must be a list of strings, not a string"),
        ({"chunks": ["ok", 5]}, "chunks.json 'chunks'[1] is a number, not a string"),
        ({"chunks": []}, "chunks.json holds no sentences"),
        ({"other": []}, "chunks.json has no key 'chunks'"),
    ],
)
def test_bad_chunks_name_rollout_file_and_problem(tmp_path, chunks_obj, message):
    d = tmp_path / "bad"
    write_rollout(d, None, labels_for(["x"]))
    (d / "chunks.json").write_text(json.dumps(chunks_obj))
    with pytest.raises(RolloutError) as info:
        load_rollout(discover([tmp_path])[0])
    assert str(info.value) == f"rollout 'bad': {message}"


def test_invalid_json_and_non_utf8(tmp_path):
    d = write_rollout(tmp_path / "r", ["a"], labels_for(["a"]))
    (d / "chunks_labeled.json").write_text('[{"chunk": "a",\n  "function_tags": [}]')
    with pytest.raises(RolloutError, match=r"chunks_labeled.json is not valid JSON \(.*line 2"):
        load_rollout(discover([tmp_path])[0])
    (d / "chunks_labeled.json").write_bytes(b'[{"chunk": "caf\xe9"}]')
    with pytest.raises(RolloutError, match="chunks_labeled.json is not UTF-8 .byte 0xe9"):
        load_rollout(discover([tmp_path])[0])


def test_discovery_errors(tmp_path):
    with pytest.raises(DiscoveryError, match="does not exist"):
        discover([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DiscoveryError, match="holds no rollout directory"):
        discover([tmp_path / "empty"])
    for root in ("a", "b"):
        write_rollout(tmp_path / root / "problem_1", ["x"], labels_for(["x"]))
    with pytest.raises(DiscoveryError, match="'problem_1' is held by two roots"):
        discover([tmp_path / "a", tmp_path / "b"])


def test_symlink_loop_is_walked_once(tmp_path):
    write_rollout(tmp_path / "root" / "sub" / "problem_1", ["x"], labels_for(["x"]))
    (tmp_path / "root" / "sub" / "loop").symlink_to(tmp_path / "root")
    assert [d.rollout_id for d in discover([tmp_path / "root"])] == ["sub/problem_1"]
