"""Sentence fields and dependencies of chunks_labeled.json: loaded, stored, scored, correlated."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from metrics_reference import kurtosis, vertical_scores
from scipy import stats
from sql_fixtures import close
from stats_reference import p_value, permutation_order

from ingest.pipeline import to_record
from ingest.rollouts import LABELS, NOT_FIELDS, discover, load_all, load_rollout
from warehouse.store import ModelInfo, Warehouse

N_LAYERS, N_HEADS = 4, 2


def labels_of(rollout) -> list:
    return json.loads((rollout.path / LABELS).read_text(encoding="utf-8"))


def expected_fields(rollout) -> list[tuple]:
    """(idx, field, number or None, JSON value) straight from the file."""
    rows = []
    for k, entry in enumerate(labels_of(rollout)[: len(rollout.sentences)]):
        for key, value in entry.items():
            if key in NOT_FIELDS:
                continue
            number = float(value) if isinstance(value, int | float) else None
            rows.append((k, key, number, value))
    return rows


def expected_edges(rollout) -> list[tuple[int, int]]:
    """One edge per depends_on entry that names an earlier sentence, in file order."""
    edges = []
    for k, entry in enumerate(labels_of(rollout)[: len(rollout.sentences)]):
        for raw in entry.get("depends_on", []):
            target = int(raw)
            if 0 <= target < k:
                edges.append((k, target))
    return edges


@pytest.fixture(scope="module")
def shared_loaded(shared_rollouts):
    """Every shared math and sesgo rollout, read by the loader."""
    result = load_all([shared_rollouts / "math", shared_rollouts / "sesgo"])
    assert len(result.rollouts) >= 120
    return result.rollouts


def test_loaded_fields_equal_the_json_for_every_sentence(shared_loaded):
    fields_seen = set()
    for rollout in shared_loaded:
        got = [(f.idx, f.field, f.value, json.loads(f.value_json)) for f in rollout.fields]
        assert got == expected_fields(rollout), rollout.rollout_id
        fields_seen |= {f.field for f in rollout.fields}
    assert {"counterfactual_importance_accuracy", "p_biased", "answer_type_distribution",
            "depends_on", "summary", "counterfactual_bias_importance"} <= fields_seen


def test_dependency_edges_counted_exactly(shared_loaded):
    total = skipped = 0
    for rollout in shared_loaded:
        edges = expected_edges(rollout)
        assert list(rollout.dependencies) == edges, rollout.rollout_id
        total += len(edges)
        entries = sum(len(e.get("depends_on", [])) for e in labels_of(rollout))
        if entries != len(edges):
            skipped += entries - len(edges)
            warning = [w for w in rollout.warnings if "depends_on" in w]
            assert warning and f"skipped {entries - len(edges)} entr(ies)" in warning[0]
    assert total > 6000
    assert skipped > 0  # the sesgo data names some later sentences and itself


def write_rollout_dir(root, name, entries) -> None:
    path = root / name
    path.mkdir(parents=True)
    (path / LABELS).write_text(entries, encoding="utf-8")


def test_bad_values_are_null_with_a_warning_never_a_failed_load(tmp_path):
    entries = """[
      {"chunk": "a", "function_tags": ["x"], "score": 1.5, "flag": true, "depends_on": []},
      {"chunk": "b", "score": NaN, "flag": false, "depends_on": ["0", 0, "7", 1, null, 1.5]},
      {"chunk": "c", "score": "high", "nested": {"v": Infinity}, "depends_on": "0"},
      {"chunk": "d", "score": 1e400, "depends_on": [2, " 1 "]}
    ]"""
    write_rollout_dir(tmp_path, "r", entries)
    rollout = load_rollout(discover([tmp_path])[0])
    values = {(f.idx, f.field): (f.value, f.value_json) for f in rollout.fields}
    assert values[(0, "score")] == (1.5, "1.5")
    assert values[(0, "flag")] == (1.0, "true") and values[(1, "flag")] == (0.0, "false")
    assert values[(1, "score")] == (None, "null")
    assert values[(2, "score")] == (None, '"high"')
    assert values[(2, "nested")] == (None, '{"v": null}')
    assert values[(3, "score")] == (None, "null")
    assert rollout.dependencies == ((1, 0), (1, 0), (3, 2), (3, 1))  # one edge per entry
    text = "\n".join(rollout.warnings)
    assert "field 'score' is nan, not a finite number in sentence(s) 1" in text
    assert "field 'score' is a string, not a number as in other sentences in sentence(s) 2" in text
    assert "field 'score' is inf, not a finite number in sentence(s) 3" in text
    assert "field 'nested' holds NaN or Infinity" in text
    assert "skipped 5 entr(ies)" in text and "1 -> \"7\"" in text and "2 -> a string" in text


# --- stored with the rollout, and the SQL over it ---------------------------------------


@pytest.fixture(scope="module")
def scored(shared_loaded, tmp_path_factory):
    """Three math and two sesgo rollouts with seeded random attention (4 layers x 2 heads)."""
    math_ids = sorted(r.rollout_id for r in shared_loaded if r.rollout_id.startswith("deepseek"))
    sesgo_ids = sorted(r.rollout_id for r in shared_loaded if r.rollout_id.startswith("claude"))
    chosen = [r for r in shared_loaded
              if r.rollout_id in math_ids[:3] + sesgo_ids[:2] and len(r.sentences) < 120]
    warehouse = Warehouse(tmp_path_factory.mktemp("fields") / "wh")
    rng = np.random.default_rng(3)
    model = ModelInfo("tiny", n_layers=N_LAYERS, n_heads=N_HEADS)
    matrices = {}
    with warehouse.write_lock():
        for rollout in chosen:
            n = len(rollout.sentences)
            matrices[rollout.rollout_id] = np.tril(
                rng.random((N_LAYERS, N_HEADS, n, n), dtype=np.float32))
            warehouse.write_attention(to_record(rollout), model, matrices[rollout.rollout_id])
    return warehouse, chosen, matrices


def query(warehouse, sql, params=None) -> list[dict]:
    with warehouse.connect(read_only=True) as con:
        cursor = con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_stored_fields_and_edges_equal_the_json(scored):
    warehouse, chosen, _ = scored
    assert len(chosen) >= 3
    for rollout in chosen:
        rows = query(warehouse, "select idx, field, value, value_json::varchar as j "
                     "from sentence_fields where rollout_id = ? order by idx, field",
                     [rollout.rollout_id])
        expected = sorted(expected_fields(rollout), key=lambda r: (r[0], r[1]))
        assert [(r["idx"], r["field"], r["value"], json.loads(r["j"])) for r in rows] == expected
        edges = query(warehouse, "select idx, depends_on_idx from sentence_dependencies "
                      "where rollout_id = ?", [rollout.rollout_id])
        assert sorted((e["idx"], e["depends_on_idx"]) for e in edges) == sorted(
            expected_edges(rollout))
        graph = query(warehouse, "select idx, in_degree, out_degree, depends_on from "
                      "sentence_graph where rollout_id = ? order by idx", [rollout.rollout_id])
        assert len(graph) == len(rollout.sentences)
        for row in graph:  # degrees count distinct neighbours
            mine = sorted({t for s, t in expected_edges(rollout) if s == row["idx"]})
            assert row["depends_on"] == mine and row["out_degree"] == len(mine)
            assert row["in_degree"] == len({s for s, t in expected_edges(rollout) if t == row["idx"]})


def test_a_changed_field_reloads_the_rollout(tmp_path):
    entries = '[{"chunk": "a", "score": 1}, {"chunk": "b", "score": 2, "depends_on": [0]}]'
    write_rollout_dir(tmp_path / "root", "r", entries)
    warehouse = Warehouse(tmp_path / "wh")

    def store() -> str:
        with warehouse.write_lock():
            return warehouse.write_rollout(to_record(load_rollout(discover([tmp_path / "root"])[0])))

    assert store() == "new"
    assert store() == "unchanged"
    (tmp_path / "root" / "r" / LABELS).write_text(entries.replace('"score": 2', '"score": 5'))
    assert store() == "replaced"
    assert query(warehouse, "select value from sentence_fields where idx = 1 and field = 'score'"
                 ) == [{"value": 5.0}]
    assert query(warehouse, "select * from sentence_dependencies") == [
        {"rollout_id": "r", "idx": 1, "depends_on_idx": 0}]


def reference_scores(matrix: np.ndarray, p: int, control_depth: bool, trim: bool) -> np.ndarray:
    """v per original index (NaN outside the analysed range), from METRICS.md §4-5."""
    n = matrix.shape[0]
    first = 1 if trim and n >= 3 else 0
    B = matrix.astype(np.float64)[first : n - first, first : n - first]
    out = np.full(n, np.nan)
    out[first : n - first] = vertical_scores(B, p, control_depth)
    return out


def test_receiver_scores_follow_the_paper(scored):
    warehouse, chosen, matrices = scored
    k = 3
    paper = {rid: {(layer, head): reference_scores(m[layer, head], 4, False, False)
                   for layer in range(N_LAYERS) for head in range(N_HEADS)}
             for rid, m in matrices.items()}
    kurt = {lh: [kurtosis(paper[rid][lh]) for rid in paper] for lh in paper[chosen[0].rollout_id]}
    mean_kurt = {lh: np.nanmean(values) for lh, values in kurt.items()}  # NULL ones omitted
    top = sorted(mean_kurt, key=lambda lh: (-mean_kurt[lh], lh))[:k]
    rows = query(warehouse, "select rollout_id, idx, receiver_score from receiver_scores(k := 3)")
    assert rows
    for row in rows:
        values = [paper[row["rollout_id"]][lh][row["idx"]] for lh in top]
        values = [v for v in values if not math.isnan(v)]
        assert close(row["receiver_score"], float(np.mean(values)) if values else None)


def test_sentence_scores_joins_tags_degrees_and_best_heads(scored):
    warehouse, chosen, matrices = scored
    rollout = next(r for r in chosen if r.rollout_id.startswith("deepseek"))
    rows = query(warehouse, "select * from sentence_scores(tag := 'plan_generation', k := 3) "
                 "where rollout_id = ? order by idx", [rollout.rollout_id])
    assert len(rows) == len(rollout.sentences)
    best = query(warehouse, "select layer, head from best_heads(tag := 'plan_generation') "
                 "where rollout_id = ? order by layer", [rollout.rollout_id])
    for row in rows:
        assert row["tags"] == sorted(rollout.tags[row["idx"]])
        assert row["layers"] == [b["layer"] for b in best]
        assert row["heads"] == [b["head"] for b in best] and None not in row["heads"]
        for layer, head, got in zip(row["layers"], row["heads"], row["vertical_score_by_layer"],
                                    strict=True):
            want = reference_scores(matrices[rollout.rollout_id][layer, head], 4, True, True)
            assert close(got, None if math.isnan(want[row["idx"]]) else want[row["idx"]])
    edges = expected_edges(rollout)
    assert sum(r["in_degree"] for r in rows) == sum(r["out_degree"] for r in rows) == len(set(edges))


def test_field_correlations_equal_scipy(scored):
    warehouse, chosen, _ = scored
    math_rollouts = [r for r in chosen if r.rollout_id.startswith("deepseek")]
    field = "counterfactual_importance_accuracy"
    k, permutations = 3, 30
    got = query(warehouse, f"select * from field_correlations(field := '{field}', k := 3, "
                "permutations := 30, seed := 5)")
    assert {r["field"] for r in got} == {field}
    truth = {r.rollout_id: {f.idx: f.value for f in r.fields if f.field == field}
             for r in math_rollouts}
    receiver = query(warehouse, f"select rollout_id, idx, receiver_score as y from receiver_scores(k := {k})")
    heads = query(warehouse, "select rollout_id, idx, layer, head, vertical_score as y from vertical_scores")
    series = {("receiver_score", None, None): receiver}
    for row in heads:
        series.setdefault(("vertical_score", row["layer"], row["head"]), []).append(row)
    checked = 0
    for (score, layer, head), rows in series.items():
        by_rollout = {}
        for row in sorted(rows, key=lambda r: (r["rollout_id"], r["idx"])):
            x = truth.get(row["rollout_id"], {}).get(row["idx"])
            if x is not None and row["y"] is not None:
                by_rollout.setdefault(row["rollout_id"], []).append((row["idx"], x, row["y"]))
        for rid in [*by_rollout, None]:
            triples = by_rollout[rid] if rid else [t for v in by_rollout.values() for t in v]
            x = [t[1] for t in triples]
            y = [t[2] for t in triples]
            rho = stats.spearmanr(x, y).statistic
            (mine,) = [r for r in got if r["score"] == score and r["layer"] == layer
                       and r["head"] == head and r["rollout_id"] == rid]
            assert mine["n_sentences"] == len(triples)
            assert close(mine["spearman_rho"], rho), (score, layer, head, rid)
            if rid is not None and layer in (None, 0):  # p-values, on a few series
                idxs = [t[0] for t in triples]
                permuted = []
                for draw in range(1, permutations + 1):
                    order = permutation_order(5, draw, rid, idxs)
                    permuted.append(abs(stats.spearmanr([x[i] for i in order], y).statistic))
                assert close(mine["p_value"], p_value(abs(rho), permuted))
            checked += 1
    assert checked >= 1 + 3 * N_HEADS  # receiver score and the heads of layers 0, 1, 2


def test_default_field_is_the_first_counterfactual_importance_field(scored):
    warehouse, _, _ = scored
    fields = query(warehouse, "select distinct field from field_correlations(permutations := 0)")
    # math and bias rollouts side by side: alphabetically first of both data sets' fields
    assert fields == [{"field": "counterfactual_bias_importance"}]


def test_readme_cookbook_field_queries_return_rows_on_real_data(scored):
    from test_readme_sql import cookbook_statements

    warehouse, _, _ = scored
    statements = [s for s in cookbook_statements()
                  if "sentence_field_scores" in s or "field_correlations" in s]
    assert len(statements) == 2
    important, heads = (query(warehouse, s.replace("permutations := 200", "permutations := 20"))
                        for s in statements)
    assert len(important) == 10
    values = [abs(r["importance"]) for r in important]
    assert values == sorted(values, reverse=True)
    assert len(heads) == min(10, N_LAYERS * N_HEADS)
    assert all(r["n_sentences"] > 0 and 0 < r["p_value"] <= 1 for r in heads)
