"""Across-rollout consistency, receiver heads and the tag summary (docs/STATISTICS.md §6-7)."""

from __future__ import annotations

import math

import metrics_reference as ref
import numpy as np
import pytest
import stats_reference as sref
from sql_fixtures import TAG, close, load, records, same_rows, warehouse  # noqa: F401
from test_stats_permutations import plant, random_rollouts

SEED = 4
CONSISTENCY_COLUMNS = (
    "n_rollouts",
    "mean_delta_va_vert",
    "sd_delta_va_vert",
    "t_statistic",
    "share_same_sign",
    "p_value",
    "p_value_fwer",
)


def observed_deltas(rollouts, tag_of=lambda r: r.mask) -> dict:
    """deltas[(layer, head)][rollout_id] = defined ΔVA (METRICS.md §6), notebook setting."""
    out: dict = {}
    for rollout in rollouts:
        for key, A in rollout.matrices.items():
            B, m = ref.analysed(A, tag_of(rollout))
            d = sref.permuted_deltas(ref.vertical_scores(B), m, rollout.rollout_id, 1, 4, SEED, 0)
            if d:
                out.setdefault(key, {})[rollout.rollout_id] = d[0]
    return out


def test_consistency_matches_reference(warehouse):  # noqa: F811
    rng = np.random.default_rng(11)
    rollouts = random_rollouts(rng, 7, 14, 2, 3)
    rollouts[2].mask = [False] * 14  # undefined ΔVA in that rollout: left out of every head
    load(warehouse, rollouts, 2, 3)
    rows = records(
        warehouse,
        f"select * from head_consistency(permutations := 300, seed := {SEED}, null_model := 'uniform')",
    )
    expected = sref.consistency(observed_deltas(rollouts), SEED, 300)
    assert len(rows) == len(expected) == 6
    for row in rows:
        e = expected[(row["layer"], row["head"])]
        assert row["tag"] == TAG and row["permutations"] == 300
        for column in CONSISTENCY_COLUMNS:
            assert close(row[column], e[column], 1e-9), (column, row[column], e[column])
        assert row["p_value_fwer"] >= row["p_value"]


def test_consistency_single_rollout(warehouse):  # noqa: F811
    rng = np.random.default_rng(12)
    load(warehouse, random_rollouts(rng, 1, 14, 1, 2, n_targets=3), 1, 2)
    rows = records(warehouse, "select * from head_consistency(permutations := 20, null_model := 'uniform')")
    assert len(rows) == 2
    for row in rows:
        assert row["n_rollouts"] == 1
        assert row["sd_delta_va_vert"] is None and row["t_statistic"] is None
        assert row["p_value"] == 1.0 and row["p_value_fwer"] is None


def test_receiver_head_delta_va(warehouse):  # noqa: F811
    rng = np.random.default_rng(13)
    rollouts = random_rollouts(rng, 5, 14, 2, 3, n_targets=3)
    load(warehouse, rollouts, 2, 3)
    receivers = records(warehouse, "select * from receiver_heads(k := 4)")
    rows = records(warehouse, "select * from receiver_head_delta_va(k := 4, permutations := 50)")
    consistency = {
        (r["layer"], r["head"]): r
        for r in records(warehouse, "select * from head_consistency(permutations := 50)")
    }
    assert [(r["rank"], r["layer"], r["head"]) for r in rows] == [
        (r["rank"], r["layer"], r["head"]) for r in receivers
    ]
    for row, receiver in zip(rows, receivers, strict=True):
        assert row["mean_kurtosis"] == pytest.approx(receiver["mean_kurtosis"])
        same = consistency[(row["layer"], row["head"])]
        for column in CONSISTENCY_COLUMNS:
            assert close(row[column], same[column], 1e-12)
    # the kurtosis is the paper's setting: no trim, no control_depth (METRICS.md §8)
    top = rows[0]
    kurt = [
        ref.kurtosis(ref.vertical_scores(np.asarray(r.matrices[(top["layer"], top["head"])]), 4, False))
        for r in rollouts
    ]
    assert top["mean_kurtosis"] == pytest.approx(float(np.nanmean(kurt)), abs=1e-6)


def test_tag_summary_compares_tags(warehouse):  # noqa: F811
    rng = np.random.default_rng(14)
    rollouts = random_rollouts(rng, 8, 18, 2, 4, n_targets=3, extra_tags=("planning", "uncertainty"))
    plant(rollouts, layer=1, head=2)  # only the target tag gets an effect
    load(warehouse, rollouts, 2, 4)
    rows = records(warehouse, "select * from tag_summary(permutations := 199, seed := 2, all_layers := true)")
    by_tag = {r["tag"]: r for r in rows}
    assert set(by_tag) == {TAG, "planning", "uncertainty"}
    va = by_tag[TAG]
    assert (va["top_layer"], va["top_head"]) == (1, 2)
    assert va["top_p_value_fwer"] <= 0.05 and va["n_heads_fwer_significant"] >= 1
    # layer 1 of most rollouts (a rollout with one scored target cannot reach p < 1/12)
    assert va["share_uncorrected_significant"] >= 0.375
    assert va["share_fwer_significant"] > max(
        by_tag[t]["share_fwer_significant"] for t in ("planning", "uncertainty")
    )
    assert 1 <= va["mean_n_target"] <= 3 and va["n_rollouts"] == 8 and va["n_selections"] == 16
    for tag in ("planning", "uncertainty"):
        assert by_tag[tag]["top_p_value_fwer"] > 0.05
    # one tag only
    single = records(
        warehouse, "select tag from tag_summary(all_tags := false, tag := 'planning', permutations := 10)"
    )
    assert [r["tag"] for r in single] == ["planning"]
    assert not math.isnan(va["median_p_value_fwer"])


def test_per_rollout_inputs_combine_to_the_same_statistics(warehouse):  # noqa: F811
    # consistency_draws and selected_head_pvalues scoped to one rollout or a batch of them
    # (only_rollouts) give those rollouts' rows of the unscoped call; the combination
    # macros over those rows kept as tables (as the report keeps them) give
    # head_consistency and tag_summary
    rng = np.random.default_rng(21)
    rollouts = random_rollouts(rng, 5, 16, 2, 3, extra_tags=("plan",))
    plant(rollouts, layer=1, head=2)
    load(warehouse, rollouts, 2, 3)
    args = "all_tags := true, permutations := 30, seed := 2"
    order = "order by tag, rollout_id, layer, head"
    for macro, extra in (("consistency_draws", ", permutation"), ("selected_head_pvalues", "")):
        whole = records(warehouse, f"select * from {macro}({args}) {order}{extra}")
        scoped = []
        for batch in ([rollouts[0]], rollouts[1:3], rollouts[3:]):
            ids = ", ".join(f"'{r.rollout_id}'" for r in batch)
            scoped += records(warehouse, f"select * from {macro}({args}, only_rollouts := [{ids}])")
        key = lambda r: (r["tag"], r["rollout_id"], r["layer"], r["head"], r.get("permutation", 0))  # noqa: E731
        assert whole and same_rows(sorted(scoped, key=key), whole)
    # the ranking's p-values of one rollout: its row of the unscoped call (q-values aside)
    ranking = records(warehouse, "select * exclude (q_value_score) from rollout_ranking_pvalues("
                                 "permutations := 30, seed := 2) order by rank")
    for row in ranking:
        scoped = records(warehouse, "select * exclude (q_value_score) from rollout_ranking_pvalues("
                                    "permutations := 30, seed := 2, "
                                    f"only_rollouts := ['{row['rollout_id']}'])")
        assert same_rows(scoped, [row])
    # three problems (two of two rollouts); the partials of two disjoint sets of problems,
    # kept apart (as the report's buckets)
    warehouse.execute("update rollouts set problem_id = split_part(rollout_id, '/', 1)")
    warehouse.execute(f"create temp table kept_draws as select * from consistency_draws({args})")
    warehouse.execute("create temp view draws_a as select * from kept_draws where cluster_id < 'problem_2'")
    warehouse.execute("create temp view draws_b as select * from kept_draws where cluster_id >= 'problem_2'")
    warehouse.execute("create temp table kept_partials as "
                      "select * from consistency_partials_of(draws := 'draws_a') union all "
                      "select * from consistency_partials_of(draws := 'draws_b')")
    counts = "select count(distinct cluster_id), count(distinct rollout_id) from {}"
    assert warehouse.execute(counts.format("draws_a")).fetchone() == (2, 4)  # problems 0 and 1
    assert warehouse.execute(counts.format("draws_b")).fetchone() == (1, 1)
    warehouse.execute("create temp table kept_selections as select * from "
                      f"selected_head_pvalues({args}, all_layers := true)")
    warehouse.execute("create temp table kept_consistency as select * from head_consistency_of("
                      "draws := 'kept_draws', partials := 'kept_partials', permutations := 30, seed := 2)")
    direct = records(warehouse, f"select * from head_consistency({args}) order by tag, layer, head")
    combined = records(warehouse, "select * from kept_consistency order by tag, layer, head")
    assert direct and same_rows(combined, direct)
    direct = records(warehouse, f"select * from tag_summary({args}, all_layers := true) order by tag")
    combined = records(warehouse, "select * from tag_summary_of(selections := 'kept_selections', "
                                  "consistency := 'kept_consistency', permutations := 30) order by tag")
    assert len(direct) == 2 and same_rows(combined, direct)
