"""Permutation p-values of sql/40_stats against the NumPy reference (docs/STATISTICS.md §2-5)."""

from __future__ import annotations

import metrics_reference as ref
import numpy as np
import pytest
import stats_reference as sref
from scipy import stats
from sql_fixtures import TAG, Rollout, as_float32, load, records, warehouse  # noqa: F401

SEED = 7


def random_rollouts(
    rng: np.random.Generator,
    n_rollouts: int,
    n: int,
    layers: int,
    heads: int,
    n_targets: int | None = None,
    extra_tags: tuple[str, ...] = (),
) -> list[Rollout]:
    """Random lower-triangular attention; target sentences random (n_targets each, or ~25%)."""
    rollouts = []
    for k in range(n_rollouts):
        if n_targets is None:
            mask = rng.random(n) < 0.25
        else:
            mask = np.zeros(n, dtype=bool)
            mask[1 + rng.choice(n - 2, size=n_targets, replace=False)] = True
        tags = [[t for t in extra_tags if rng.random() < 0.3] for _ in range(n)]
        matrices = {
            (layer, head): as_float32(np.tril(rng.random((n, n))))
            for layer in range(layers)
            for head in range(heads)
        }
        rollouts.append(Rollout(f"problem_{k % 3}/va_{k:02d}", matrices, mask.tolist(), tags))
    return rollouts


def plant(rollouts: list[Rollout], layer: int, head: int, extra: float = 0.6) -> None:
    """Target columns of (layer, head) receive extra attention from every later row."""
    for rollout in rollouts:
        matrix = rollout.matrices[(layer, head)].copy()
        for j, is_target in enumerate(rollout.mask):
            if is_target:
                matrix[j:, j] += extra
        rollout.matrices[(layer, head)] = as_float32(matrix)


def assert_uniform_orders(rows, rollout: Rollout, *, seed: int, permutations: int, n_scored: int) -> None:
    """column_permutations rows of the 'uniform' null put the rollout's scored columns in
    the reference order of every permutation k = 1..permutations (stats_reference)."""
    for k in range(1, permutations + 1):
        got = sorted(
            (r["position"], r["c"])
            for r in rows
            if r["rollout_id"] == rollout.rollout_id and r["permutation"] == k
        )
        expected = sref.permutation_order(seed, k, rollout.rollout_id, [c + 1 for c in range(n_scored)])
        assert [c for _, c in got] == expected


def test_column_permutations_match_reference(warehouse):  # noqa: F811
    rng = np.random.default_rng(1)
    rollouts = random_rollouts(rng, 2, 12, 1, 1)
    load(warehouse, rollouts, 1, 1)
    rows = records(
        warehouse,
        "select rollout_id, permutation, position, c, idx, n_scored "
        "from column_permutations(permutations := 5, seed := 3) order by all",
    )
    assert len(rows) == 2 * 5 * (10 - 4)
    for rollout in rollouts:
        for k in range(1, 6):
            got = [r["c"] for r in rows if r["rollout_id"] == rollout.rollout_id and r["permutation"] == k]
            assert sorted(got) == list(range(6))
        assert_uniform_orders(rows, rollout, seed=3, permutations=5, n_scored=6)


@pytest.mark.parametrize(("control_depth", "trim", "proximity_ignore"), [(True, True, 4), (False, False, 2)])
def test_pvalues_match_reference(warehouse, control_depth, trim, proximity_ignore):  # noqa: F811
    rng = np.random.default_rng(2)
    rollouts = random_rollouts(rng, 4, 14, 2, 3, extra_tags=("plan",))
    rollouts[1].mask = [False] * 14  # a rollout without targets: no rows, no error
    load(warehouse, rollouts, 2, 3)
    params = (
        f"permutations := 150, seed := {SEED}, null_model := 'uniform', "
        f"control_depth := {control_depth}, trim := {trim}, "
        f"proximity_ignore := {proximity_ignore}, all_layers := true"
    )
    heads = records(warehouse, f"select * from head_pvalues({params})")
    layers = records(warehouse, f"select * from selected_head_pvalues({params})")
    ranking = records(warehouse, f"select * from rollout_ranking_pvalues({params})")
    stats_rows = records(warehouse, f"select * from head_stats({params.split(', ', 3)[3]})")
    expected = {
        r.rollout_id: sref.rollout_tests(
            r.matrices, r.mask, r.rollout_id, SEED, 150, proximity_ignore, control_depth, trim
        )
        for r in rollouts
    }
    assert len(heads) == sum(len(e["heads"]) for e in expected.values()) > 0
    by_stats = {(s["rollout_id"], s["layer"], s["head"]): s["delta_va_vert"] for s in stats_rows}
    for row in heads:
        delta, p = expected[row["rollout_id"]]["heads"][(row["layer"], row["head"])]
        assert row["delta_va_vert"] == pytest.approx(delta, abs=1e-9)
        assert row["delta_va_vert"] == pytest.approx(by_stats[(row["rollout_id"], row["layer"], row["head"])])
        assert row["p_value"] == p
        assert row["permutations"] == 150
    assert len(layers) == sum(len(e["layers"]) for e in expected.values())
    for row in layers:
        head, p_uncorrected, p_fwer = expected[row["rollout_id"]]["layers"][row["layer"]]
        assert (row["head"], row["p_value_uncorrected"], row["p_value_fwer"]) == (head, p_uncorrected, p_fwer)
        assert row["n_heads"] == 3
        assert p_fwer >= p_uncorrected
    for row in ranking:
        e = expected[row["rollout_id"]]
        assert row["p_value_score"] == e["score"]
        if e["layers"]:
            assert row["p_value_fwer_by_layer"] == [e["layers"][layer][2] for layer in row["layers"]]
        else:
            assert row["p_value_fwer_by_layer"] == [None, None]


def test_all_tags_match_single_tag(warehouse):  # noqa: F811
    rng = np.random.default_rng(3)
    rollouts = random_rollouts(rng, 3, 12, 1, 2, extra_tags=("plan", "uncertainty"))
    load(warehouse, rollouts, 1, 2)
    every = records(
        warehouse, "select * from head_pvalues(permutations := 40, all_tags := true, all_layers := true)"
    )
    assert {r["tag"] for r in every} == {TAG, "plan", "uncertainty"}
    for tag in ("plan", TAG):
        single = records(
            warehouse, f"select * from head_pvalues(tag := '{tag}', permutations := 40, all_layers := true)"
        )
        key = ("rollout_id", "layer", "head", "p_value")
        expected = {tuple(r[k] for k in key): r["delta_va_vert"] for r in every if r["tag"] == tag}
        assert len(single) == len(expected) > 0
        for row in single:
            assert row["delta_va_vert"] == pytest.approx(expected[tuple(row[k] for k in key)], abs=1e-12)


def test_position_residuals_match_the_reference(warehouse):  # noqa: F811
    # 40 and 60 sentences: 1 and 2 position blocks (34 and 54 scored columns); sentence
    # lengths from the stored texts, then without texts (no length adjustment); the
    # variance model is pooled over the 3 heads of a layer; random attention (all noise from
    # averaging rows), and attention whose columns differ by level (a > 0, or b <= 0)
    rng = np.random.default_rng(3)
    rollouts = random_rollouts(rng, 1, 40, 1, 3) + random_rollouts(rng, 1, 60, 1, 3)
    rollouts[1].rollout_id = "problem_9/va_long"
    flat = random_rollouts(rng, 1, 60, 1, 3)[0]
    flat.rollout_id = "problem_9/va_flat"
    for key, matrix in flat.matrices.items():  # each column's level varies, rows add little
        flat.matrices[key] = as_float32(np.tril(0.05 * rng.random(matrix.shape) + rng.random(60)[None, :]))
    rollouts.append(flat)
    load(warehouse, rollouts, 1, 3)
    warehouse.execute(
        "insert into sentences select rollout_id, i, repeat('x', 1 + (i * 7919) % 53), 0, 0 "
        "from rollouts, range(n_sentences) as t(i)"
    )
    query = "select rollout_id, layer, head, excess_delta_va from delta_va_permutations(permutations := 0)"
    models = set()
    for with_text in (True, False):
        if not with_text:
            warehouse.execute("delete from sentences")
        rows = records(warehouse, query)
        assert len(rows) == 9
        for row in rows:
            rollout = next(r for r in rollouts if r.rollout_id == row["rollout_id"])
            layer = row["layer"]
            analysed = [ref.analysed(rollout.matrices[(layer, head)], rollout.mask) for head in range(3)]
            m = analysed[0][1]
            n, p = len(m), 4
            cols = sref.scored_columns(n, p)
            n_chars = [1 + ((c + 1) * 7919) % 53 for c in cols] if with_text else None  # idx = c + 1 (trim)
            v_by_head = [ref.vertical_scores(B, p)[cols] for B, _ in analysed]
            strata = sref.position_strata(len(cols))
            assert len(set(strata)) == (1 if n == 38 else 2)
            n_valid_rows = [n - c - p for c in cols]
            u = sref.position_residuals(v_by_head, strata, n_valid_rows, n_chars)[row["head"]]
            assert row["excess_delta_va"] == pytest.approx(sref.delta(u, np.asarray(m)[cols]), abs=1e-9)
            a, b = sref.variance_model([sref.detrended(v, strata, n_chars) for v in v_by_head], n_valid_rows)
            models.add("constant" if b <= 0 else "rows" if a <= 0 else "both")
    assert models == {"rows", "both", "constant"}  # every branch of the model is exercised


def test_pvalues_uniform_under_random_labels(warehouse):  # noqa: F811
    # 40 rollouts x 4 heads, 4 random targets among 22 analysed sentences: no effect
    rng = np.random.default_rng(20240611)
    rollouts = random_rollouts(rng, 40, 24, 1, 4, n_targets=4)
    load(warehouse, rollouts, 1, 4)
    p_values = [
        r["p_value"]
        for r in records(
            warehouse,
            "select p_value from head_pvalues(permutations := 199, seed := 11, null_model := 'uniform', "
            "all_layers := true)",
        )
    ]
    assert len(p_values) >= 150
    assert stats.kstest(p_values, "uniform").pvalue > 0.01
    assert 0.35 < float(np.mean(p_values)) < 0.65


def test_planted_effect_is_found(warehouse):  # noqa: F811
    rng = np.random.default_rng(5)
    rollouts = random_rollouts(rng, 8, 18, 2, 4, n_targets=3)
    plant(rollouts, layer=1, head=2)
    load(warehouse, rollouts, 2, 4)
    params = "permutations := 199, seed := 1, all_layers := true"
    planted = records(warehouse, f"select * from head_pvalues({params}) where layer = 1 and head = 2")
    assert len(planted) == 8
    assert all(r["p_value"] <= 0.05 and r["delta_va_vert"] > 0 for r in planted)
    selected = records(warehouse, f"select * from selected_head_pvalues({params}) where layer = 1")
    assert all(r["head"] == 2 and r["p_value_fwer"] <= 0.05 for r in selected)
    consistency = records(
        warehouse, f"select * from head_consistency({params}) order by p_value_fwer, abs(t_statistic) desc"
    )
    top = consistency[0]
    assert (top["layer"], top["head"]) == (1, 2)
    assert top["share_same_sign"] == 1.0 and top["n_rollouts"] == 8
    assert top["p_value"] <= 0.05 and top["p_value_fwer"] <= 0.05
    # 8 rollouts have 2^8 = 256 sign patterns: the null heads are rarely significant
    others = [r for r in consistency if (r["layer"], r["head"]) != (1, 2)]
    assert sum(r["p_value_fwer"] <= 0.05 for r in others) <= 1


def test_bad_parameters_raise(warehouse):  # noqa: F811
    rng = np.random.default_rng(6)
    load(warehouse, random_rollouts(rng, 1, 10, 1, 1), 1, 1)
    for call in (
        "head_pvalues(permutations := -1)",
        "head_pvalues(proximity_ignore := -2)",
        "head_consistency(permutations := -5)",
        "column_permutations(seed := null)",
    ):
        with pytest.raises(Exception, match="must be"):
            warehouse.execute(f"select * from {call}").fetchall()


def test_zero_permutations_give_p_one(warehouse):  # noqa: F811
    rng = np.random.default_rng(8)
    load(warehouse, random_rollouts(rng, 2, 12, 1, 2, n_targets=3), 1, 2)
    rows = records(warehouse, "select p_value from head_pvalues(permutations := 0, all_layers := true)")
    assert rows and all(r["p_value"] == 1.0 for r in rows)
