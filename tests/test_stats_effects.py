"""Effect sizes, q-values and placebo tags of sql/40_stats (docs/STATISTICS.md §8-10)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sql_fixtures import TAG, load, records, warehouse  # noqa: F401
from test_stats_permutations import assert_uniform_orders, plant, random_rollouts

PLACEBO = f"placebo:{TAG}"


def bh_q_values(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg q-values, the textbook step-up form."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    m = len(p)
    q_sorted = np.minimum.accumulate((p[order] * m / np.arange(1, m + 1))[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1)
    return q.tolist()


@pytest.fixture
def planted(warehouse):  # noqa: F811
    rng = np.random.default_rng(21)
    rollouts = random_rollouts(rng, 9, 20, 2, 3, n_targets=3)
    plant(rollouts, layer=1, head=2)
    load(warehouse, rollouts, 2, 3)
    # three problems of three rollouts each
    warehouse.execute("update rollouts set problem_id = split_part(rollout_id, '/', 1)")
    return warehouse, rollouts


def test_q_values_match_benjamini_hochberg(planted):
    con, _ = planted
    heads = records(con, "select * from head_pvalues(permutations := 99, all_layers := true)")
    for rollout_id in {r["rollout_id"] for r in heads}:
        family = [r for r in heads if r["rollout_id"] == rollout_id]
        expected = bh_q_values([r["p_value"] for r in family])
        assert [r["q_value"] for r in family] == pytest.approx(expected, abs=1e-12)
    consistency = records(con, "select * from head_consistency(permutations := 99)")
    assert [r["q_value"] for r in consistency] == pytest.approx(
        bh_q_values([r["p_value"] for r in consistency]), abs=1e-12
    )
    ranking = records(con, "select * from rollout_ranking_pvalues(permutations := 99)")
    assert [r["q_value_score"] for r in ranking] == pytest.approx(
        bh_q_values([r["p_value_score"] for r in ranking]), abs=1e-12
    )


def test_bootstrap_interval_matches_reference(planted):
    con, _ = planted
    deltas = records(con, "select * from rollout_deltas()")
    assert {r["cluster_id"] for r in deltas} == {"problem_0", "problem_1", "problem_2"}
    rows = records(con, "select * from head_effects(resamples := 200, seed := 3)")
    assert len(rows) == 6
    clusters = sorted({r["cluster_id"] for r in deltas})
    for row in rows:
        mine = [r for r in deltas if (r["layer"], r["head"]) == (row["layer"], row["head"])]
        sums = np.array([sum(r["delta_va_vert"] for r in mine if r["cluster_id"] == c) for c in clusters])
        counts = np.array([sum(r["cluster_id"] == c for r in mine) for c in clusters], dtype=float)
        means = []
        for b in range(1, 201):
            drawn = np.zeros(len(clusters))
            for j in range(1, len(clusters) + 1):
                digest = hashlib.md5(f"boot/3/{b}/{j}".encode()).hexdigest()
                drawn[int(digest[:15], 16) % len(clusters)] += 1
            means.append(drawn @ sums / (drawn @ counts))
        assert row["mean_delta_va_vert"] == pytest.approx(sums.sum() / counts.sum(), abs=1e-12)
        assert row["ci_low"] == pytest.approx(float(np.quantile(means, 0.025)), abs=1e-12)
        assert row["ci_high"] == pytest.approx(float(np.quantile(means, 0.975)), abs=1e-12)
        assert row["n_clusters"] == 3 and row["n_rollouts"] == 9
    planted_row = next(r for r in rows if (r["layer"], r["head"]) == (1, 2))
    assert planted_row["ci_low"] > 0


def test_split_half_estimate(planted):
    con, _ = planted
    rows = {r["layer"]: r for r in records(con, "select * from selected_head_effect(all_layers := true)")}
    assert set(rows) == {0, 1}
    # the planted head is picked on both halves and its effect holds out of sample
    assert rows[1]["head_a"] == 2 and rows[1]["head_b"] == 2
    assert rows[1]["split_half_estimate"] > 0.5 * rows[1]["in_sample_abs_delta_va"] > 0
    # a layer without an effect: the held-out estimate falls below the in-sample maximum
    assert rows[0]["split_half_estimate"] < rows[0]["in_sample_abs_delta_va"]


def test_placebo_tag_matches_counts_and_positions(planted):
    con, rollouts = planted
    real = records(con, "select * from scored_labels() where is_target")
    placebo = records(con, f"select * from scored_labels(tag := '{PLACEBO}') where is_target")
    assert {r["tag"] for r in placebo} == {PLACEBO}
    for rollout in rollouts:
        strata_real = sorted(r["stratum"] for r in real if r["rollout_id"] == rollout.rollout_id)
        strata_placebo = sorted(r["stratum"] for r in placebo if r["rollout_id"] == rollout.rollout_id)
        assert strata_real == strata_placebo
    assert {(r["rollout_id"], r["c"]) for r in real} != {(r["rollout_id"], r["c"]) for r in placebo}
    summary = records(
        con,
        f"select * from tag_summary(tag := '{PLACEBO}', all_tags := false, "
        "permutations := 99, all_layers := true)",
    )
    assert [r["tag"] for r in summary] == [PLACEBO]
    real_summary = records(
        con,
        f"select * from tag_summary(tag := '{TAG}', all_tags := false, "
        "permutations := 99, all_layers := true)",
    )
    assert real_summary[0]["top_p_value_fwer"] <= 0.05 < summary[0]["top_p_value_fwer"]


def test_uniform_reference_still_holds_for_column_order(planted):
    # null 'uniform' keeps the earlier permutations exactly (docs/STATISTICS.md §2)
    con, rollouts = planted
    rows = records(
        con,
        "select rollout_id, permutation, position, c from column_permutations("
        "permutations := 3, seed := 5, null_model := 'uniform') order by all",
    )
    assert_uniform_orders(rows, rollouts[0], seed=5, permutations=3, n_scored=14)
