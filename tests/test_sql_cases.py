"""Hand-made matrices with exact expected rows (METRICS.md §4-8)."""

from __future__ import annotations

import duckdb
import metrics_reference as ref
import numpy as np
import pytest
from pytest import approx
from sql_fixtures import Rollout, as_float32, load, records, same_rows, warehouse  # noqa: F401

# A 5 x 5 analysed matrix B (lower triangle) and mask m = [F, T, F, F, T].
B5 = np.array(
    [
        [0.5, 0, 0, 0, 0],
        [0.2, 0.8, 0, 0, 0],
        [0.4, 0.4, 0.2, 0, 0],
        [0.1, 0.3, 0.3, 0.3, 0],
        [0.2, 0.2, 0.2, 0.2, 0.2],
    ]
)
M5 = [False, True, False, False, True]

# With p = 1 and control_depth, the valid cells rank as (ties averaged, / row count):
#   r1: [0.2]                -> [1]
#   r2: [0.4, 0.4]           -> [0.75, 0.75]
#   r3: [0.1, 0.3, 0.3]      -> [1/3, 5/6, 5/6]
#   r4: [0.2, 0.2, 0.2, 0.2] -> [0.625] * 4
V5 = [
    (1 + 0.75 + 1 / 3 + 0.625) / 4,  # v0
    (0.75 + 5 / 6 + 0.625) / 3,  # v1
    (5 / 6 + 0.625) / 2,  # v2
    0.625,  # v3
    None,  # v4: no row r >= 4 + 1
]
STATS5 = {
    "mean_va_vert": V5[1],  # v4 undefined, omitted
    "mean_nonva_vert": (V5[0] + V5[2] + V5[3]) / 3,
    "delta_va_vert": V5[1] - (V5[0] + V5[2] + V5[3]) / 3,
    "mean_in_va": (0.4 + 0.3) / 6,  # rows {0, 2, 3} x cols {1, 4}
    "mean_in_nonva": (0.5 + 0.4 + 0.2 + 0.1 + 0.3 + 0.3) / 9,
    "mean_out_va": (0.2 + 0.2 + 0.2 + 0.2) / 6,  # rows {1, 4} x cols {0, 2, 3}
    "mean_va_to_va": (0.8 + 0.2 + 0.2) / 4,
    "lift_in_va": ((0.4 + 0.3) / 6) / (1.8 / 9),
    "n_sentences": 5,
    "n_va": 2,
    "va_rate": 0.4,
}


def embed(B: np.ndarray, first: float = 0.3, last: float = 0.1) -> np.ndarray:
    """A (n + 2) x (n + 2) matrix whose trimmed interior is B."""
    n = B.shape[0]
    A = np.zeros((n + 2, n + 2))
    A[1:-1, 1:-1] = B
    A[:, 0] = first
    A[-1, :] = last
    return np.tril(A)


def records_of_b5(warehouse, query: str) -> list[dict]:  # noqa: F811
    """The rows of ``query`` over one rollout holding B5 (targets M5) in layer 0, head 0."""
    load(warehouse, [Rollout("p/x", {(0, 0): as_float32(B5)}, M5)], 1, 1)
    return records(warehouse, query)


def test_vertical_scores_by_hand(warehouse):  # noqa: F811
    rows = records_of_b5(
        warehouse,
        "select c, idx, is_target, vertical_score, n_valid_rows from vertical_scores("
        "proximity_ignore := 1, trim := false, all_layers := true) order by c",
    )
    assert [r["c"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["idx"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["is_target"] for r in rows] == M5
    assert [r["n_valid_rows"] for r in rows] == [4, 3, 2, 1, 0]
    assert [r["vertical_score"] for r in rows] == [approx(v, abs=1e-9) if v else v for v in V5]
    assert ref.vertical_scores(B5, 1).tolist()[:4] == approx(V5[:4])


@pytest.mark.parametrize("trim", [False, True])
def test_head_stats_by_hand(warehouse, trim):  # noqa: F811
    # trimmed: the same B inside a 7 x 7 matrix whose first and last sentence are dropped
    matrix = embed(B5) if trim else B5
    mask = [True, *M5, True] if trim else M5
    load(warehouse, [Rollout("p/x", {(0, 0): as_float32(matrix)}, mask)], 1, 1)
    (row,) = records(
        warehouse,
        f"select * from head_stats(proximity_ignore := 1, trim := {trim}, all_layers := true)",
    )
    assert (row["model"], row["rollout_id"], row["layer"], row["head"]) == ("test-model", "p/x", 0, 0)
    for column, expected in STATS5.items():
        assert row[column] == approx(expected, abs=1e-6), column
    (ranking,) = records(
        warehouse,
        f"select * from rollout_ranking(proximity_ignore := 1, trim := {trim}, all_layers := true)",
    )
    assert ranking["n_sentences"] == 5 and ranking["n_va"] == 2
    assert ranking["n_sentences_original"] == (7 if trim else 5)
    assert ranking["n_va_original"] == (4 if trim else 2)


def test_raw_median_scores(warehouse):  # noqa: F811
    rows = records_of_b5(
        warehouse,
        "select vertical_score from vertical_scores(proximity_ignore := 0, control_depth := false,"
        " score_type := 'median', trim := false, all_layers := true) order by c",
    )
    # p = 0 includes the diagonal: column c uses rows r >= c
    expected = [np.median(B5[c:, c]) for c in range(5)]
    assert [r["vertical_score"] for r in rows] == approx(expected, abs=1e-6)


def test_best_head_never_mixes_heads(warehouse):  # noqa: F811
    """Head 0 has the largest |ΔVA| but an undefined lift; pandas' groupby().first()
    would take head 1's lift. The warehouse reports head 0's row: lift NULL."""
    n = 8
    mask = [False, False, True, False, False, False, False, False]
    # head 0: only target columns receive attention, so mean_in_nonva = 0 -> lift undefined
    h0 = np.zeros((n, n))
    h0[:, 2] = 1.0
    h0 = np.tril(h0)
    h1 = np.tril(np.full((n, n), 0.25))
    h1[5, 2] = 0.5
    load(warehouse, [Rollout("p/x", {(0, 0): h0, (0, 1): h1}, mask)], 1, 2)
    stats = {
        r["head"]: r
        for r in records(warehouse, "select * from head_stats(trim := false, all_layers := true)")
    }
    assert abs(stats[0]["delta_va_vert"]) > abs(stats[1]["delta_va_vert"])
    assert stats[0]["lift_in_va"] is None and stats[1]["lift_in_va"] is not None
    (best,) = records(warehouse, "select * from best_heads(trim := false, all_layers := true)")
    assert best["head"] == 0
    assert best["lift_in_va"] is None
    for column in ref.HEAD_STAT_COLUMNS:
        assert best[column] == stats[0][column], column
    (ranking,) = records(warehouse, "select * from rollout_ranking(trim := false, all_layers := true)")
    assert ranking["heads"] == [0] and ranking["lift_in_va_by_layer"] == [None]


def test_best_head_ties_go_to_lowest_head(warehouse):  # noqa: F811
    rng = np.random.default_rng(3)
    n = 9
    mask = [False, True, False, False, True, False, False, False, False]
    weak = np.tril(np.full((n, n), 0.1))
    strong = as_float32(np.tril(rng.random((n, n))))
    load(warehouse, [Rollout("p/x", {(0, 0): weak, (0, 1): strong, (0, 2): strong}, mask)], 1, 3)
    (best,) = records(warehouse, "select * from best_heads(all_layers := true)")
    assert best["head"] == 1


def test_no_target_rollout_ranks_last(warehouse):  # noqa: F811
    rng = np.random.default_rng(4)
    n = 10
    with_va = [i in (2, 3) for i in range(n)]
    rollouts = [
        Rollout("p/a_none", {(0, 0): as_float32(np.tril(rng.random((n, n))))}, [False] * n),
        Rollout("p/b_va", {(0, 0): as_float32(np.tril(rng.random((n, n))))}, with_va),
    ]
    load(warehouse, rollouts, 1, 1)
    rows = records(warehouse, "select * from rollout_ranking(all_layers := true)")
    assert [r["rollout_id"] for r in rows] == ["p/b_va", "p/a_none"]
    assert rows[0]["distinctiveness_score"] > 0
    assert rows[1]["distinctiveness_score"] is None and rows[1]["rank"] == 2
    assert rows[1]["heads"] == [None]
    # head_stats still has a row for the rollout without targets
    stats = records(warehouse, "select * from head_stats(all_layers := true) where n_va = 0")
    assert len(stats) == 1 and stats[0]["delta_va_vert"] is None


def test_default_view_uses_representative_layers(warehouse):  # noqa: F811
    rng = np.random.default_rng(5)
    n = 12
    mask = [i in (3, 7) for i in range(n)]
    stored = [0, 3, 5, 17, 31, 35]
    matrices = {(layer, 0): as_float32(np.tril(rng.random((n, n)))) for layer in stored}
    load(warehouse, [Rollout("p/x", matrices, mask)], 36, 1)
    (view,) = records(warehouse, "select * from rollout_ranking")
    (macro,) = records(warehouse, "select * from rollout_ranking()")
    assert view.keys() == macro.keys()
    for key, value in view.items():
        if isinstance(value, float):
            assert macro[key] == approx(value, abs=1e-9), key
        elif key == "delta_va_vert_by_layer":
            assert macro[key] == approx(value, abs=1e-9)
        else:
            assert macro[key] == value, key
    assert view["layers"] == [3, 17, 31]
    explicit = records(warehouse, "select * from rollout_ranking(layers := [5, 0])")
    assert explicit[0]["layers"] == [0, 5]
    every = records(warehouse, "select * from rollout_ranking(all_layers := true)")
    assert every[0]["layers"] == stored
    # S is the sum over the representative layers of |ΔVA| of the best head
    expected = 0.0
    for layer in (3, 17, 31):
        B, m = ref.analysed(matrices[(layer, 0)], mask)
        expected += abs(ref.head_stats(B, m)["delta_va_vert"])
    assert view["distinctiveness_score"] == approx(expected, abs=1e-6)


def test_tag_parameter(warehouse):  # noqa: F811
    n = 6
    load(
        warehouse,
        [Rollout("p/x", {(0, 0): np.tril(np.ones((n, n)))}, [False] * n, tags=[[], ["other"], ["other"]])],
        1,
        1,
    )
    (row,) = records(warehouse, "select * from rollout_ranking(tag := 'other', all_layers := true)")
    assert (row["n_va"], row["n_va_original"]) == (2, 2)
    (row,) = records(warehouse, "select * from rollout_ranking(all_layers := true)")
    assert (row["n_va"], row["n_va_original"]) == (0, 0)


def test_bad_parameters_raise(warehouse):  # noqa: F811
    load(warehouse, [Rollout("p/x", {(0, 0): np.tril(np.ones((4, 4)))}, [True] * 4)], 1, 1)
    with pytest.raises(duckdb.Error, match="proximity_ignore must be an integer >= 0"):
        warehouse.execute("select * from head_stats(proximity_ignore := -1)").fetchall()
    with pytest.raises(duckdb.Error, match="score_type must be 'mean' or 'median'"):
        warehouse.execute("select * from rollout_ranking(score_type := 'mode')").fetchall()


def test_receiver_heads(warehouse):  # noqa: F811
    rng = np.random.default_rng(6)
    n = 12
    rollouts = []
    for k in range(3):
        matrices = {
            (layer, head): as_float32(np.tril(rng.random((n, n)) ** (1 + 3 * head)))
            for layer in range(2)
            for head in range(3)
        }
        rollouts.append(Rollout(f"p/r{k}", matrices, [False] * n))
    load(warehouse, rollouts, 2, 3)
    expected = {}
    for layer, head in rollouts[0].matrices:
        values = [ref.kurtosis(ref.vertical_scores(r.matrices[(layer, head)], 4, False)) for r in rollouts]
        expected[(layer, head)] = float(np.mean(values))
    order = sorted(expected, key=lambda lh: (-expected[lh], lh))
    rows = records(warehouse, "select * from receiver_heads(k := 4)")
    assert [(r["layer"], r["head"]) for r in rows] == order[:4]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    for row in rows:
        assert row["mean_kurtosis"] == approx(expected[(row["layer"], row["head"])], abs=1e-6)
        assert row["n_rollouts"] == 3
    assert len(records(warehouse, "select * from receiver_heads")) == 6
    # the ranking of per-rollout kurtoses kept apart (scoped, as the report keeps them)
    for k, rollout in enumerate(rollouts):
        warehouse.execute(f"create or replace temp table kept_{k} as "
                          f"select * from receiver_head_kurtosis(only_rollouts := ['{rollout.rollout_id}'])")
    warehouse.execute("create temp view kept_kurtosis as "
                      "select * from kept_0 union all select * from kept_1 union all select * from kept_2")
    kept = records(warehouse, "select * from receiver_heads_of(kurtosis := 'kept_kurtosis', k := 4)")
    assert same_rows(kept, rows)
    # scoped receiver scores: those rollouts' rows, the heads still ranked over every rollout
    whole = records(warehouse, "select * from receiver_scores(k := 2) where rollout_id = 'p/r1' order by idx")
    scoped = records(warehouse, "select * from receiver_scores(k := 2, only_rollouts := ['p/r1']) "
                                "order by idx")
    assert whole and same_rows(scoped, whole)
