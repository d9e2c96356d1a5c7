"""Thought-anchors charts: to_dict round trips, and the sections in a report built on real data."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from ingest.pipeline import to_record
from ingest.rollouts import load_all
from reports import charts_causal
from reports.build import build_report, rollout_dir_names
from warehouse.store import ModelInfo, Warehouse


def rows(spec: dict, unit: dict) -> list[dict]:
    """A unit spec's rows: inline, or one of Altair's consolidated datasets."""
    data = unit["data"]
    return data["values"] if "values" in data else spec["datasets"][data["name"]]


def graph_frame() -> pl.DataFrame:
    return pl.DataFrame({
        "idx": [0, 1, 2, 3],
        "text": ["a", "b <script>", "c", "d"],
        "depends_on": [[], [0], [0, 1], [2]],
        "in_degree": [2, 1, 1, 0],
        "out_degree": [0, 1, 2, 1],
    })


def test_dependency_arcs_draw_one_arc_per_edge():
    spec = charts_causal.dependency_arcs(graph_frame()).to_dict()
    arcs, dots = spec["layer"]
    points = rows(spec, arcs)
    assert len({r["edge"] for r in points}) == 4
    assert len(points) == 4 * (charts_causal.ARC_POINTS + 1)
    ends = {(r["source"], r["target"]) for r in points}
    assert ends == {(1, 0), (2, 0), (2, 1), (3, 2)}
    for r in points:  # every point lies on the semicircle over its edge
        mid, radius = (r["source"] + r["target"]) / 2, (r["source"] - r["target"]) / 2
        assert (r["x"] - mid) ** 2 + r["y"] ** 2 == pytest.approx(radius ** 2)
        assert r["y"] >= -1e-12
    assert {t["field"] for t in dots["encoding"]["tooltip"]} >= {"idx", "text"}
    assert json.dumps(spec)  # serialisable


def test_dependency_arcs_without_edges():
    frame = graph_frame().with_columns(pl.lit([], dtype=pl.List(pl.Int64)).alias("depends_on"))
    spec = charts_causal.dependency_arcs(frame).to_dict()
    assert rows(spec, spec["layer"][0]) == []


def test_receiver_scatter_hovers_the_sentence_and_marks_targets():
    points = pl.DataFrame({
        "idx": [0, 1, 2], "text": ["a", "b", "c"], "tags": [["x"], ["y", "x"], []],
        "field": ["counterfactual_importance_accuracy"] * 3, "value": [0.1, 0.5, 0.2],
        "receiver_score": [0.3, 0.2, None],
    })
    spec = charts_causal.receiver_scatter(points, target_tag="y").to_dict()
    assert [(r["idx"], r["is_target"]) for r in rows(spec, spec)] == [(0, False), (1, True)]
    assert spec["encoding"]["x"]["title"] == "counterfactual_importance_accuracy"
    assert "text" in {t["field"] for t in spec["encoding"]["tooltip"]}


def test_field_heads_lists_the_strongest_first():
    heads = pl.DataFrame({
        "field": ["f"] * 4, "layer": [0, 0, 1, 1], "head": [0, 1, 0, 1],
        "spearman_rho": [0.1, -0.6, None, 0.3], "p_value": [0.5, 0.01, None, 0.2],
        "n_sentences": [40] * 4,
    })
    spec = charts_causal.field_heads(heads, top=2).to_dict()
    assert [r["label"] for r in rows(spec, spec)] == ["L0 H1", "L1 H1"]


@pytest.fixture(scope="module")
def causal_report(shared_rollouts, tmp_path_factory):
    """Two real math rollouts with seeded random attention, reported with few permutations."""
    rollouts = [r for r in load_all([shared_rollouts / "math"]).rollouts
                if len(r.sentences) < 60][:2]
    tmp = tmp_path_factory.mktemp("causal_report")
    warehouse = Warehouse(tmp / "wh")
    rng = np.random.default_rng(0)
    with warehouse.write_lock():
        for rollout in rollouts:
            n = len(rollout.sentences)
            warehouse.write_attention(to_record(rollout), ModelInfo("tiny", 4, 2),
                                      np.tril(rng.random((4, 2, n, n), dtype=np.float32)))
    build_report(warehouse, tmp / "out", tag="plan_generation", permutations=5, png=False)
    return tmp / "out", rollouts


def page_specs(path) -> dict:
    """The chart specs a page embeds, by chart name."""
    block = path.read_text(encoding="utf-8").split(
        '<script type="application/json" id="report-specs">')[1].split("</script>")[0]
    return {name: entry["spec"] for name, entry in json.loads(block).items()}


def test_report_shows_arcs_scatter_and_heads(causal_report):
    out, rollouts = causal_report
    names = rollout_dir_names([r.rollout_id for r in rollouts])
    for rollout in rollouts:
        path = out / names[rollout.rollout_id] / "index.html"
        assert "receiver score vs counterfactual_importance_accuracy" in path.read_text()
        specs = page_specs(path)
        arcs = rows(specs["dependencies"], specs["dependencies"]["layer"][0])
        assert len({r["edge"] for r in arcs}) == len(rollout.dependencies)
        points = rows(specs["receiver_vs_field"], specs["receiver_vs_field"])
        assert len(points) == len(rollout.sentences) - 4  # the last p have no receiver score
    heads = (out / "heads.html").read_text(encoding="utf-8")
    assert "Heads whose attention tracks counterfactual_importance_accuracy" in heads
    assert 'id="field_heads"' in heads
