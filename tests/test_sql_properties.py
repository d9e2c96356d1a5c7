"""Property tests: every SQL metric of METRICS.md §4-8 equals the NumPy reference."""

from __future__ import annotations

import math

import metrics_reference as ref
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sql_fixtures import Rollout, as_float32, close, connect, load, records

# A small value set: many ties, exact in FLOAT, zeros included.
VALUES = st.sampled_from([0.0, 0.0, 0.125, 0.25, 0.5, 0.75, 1.0])

_CON = None


def con():
    """One in-memory warehouse for the module (hypothesis reuses it across examples)."""
    global _CON
    if _CON is None:
        _CON = connect()
    return _CON


@st.composite
def rollout(draw, rollout_id: str, n_layers: int, n_heads: int) -> Rollout:
    n = draw(st.integers(1, 9))
    shape = draw(st.sampled_from(["random", "none", "all", "last"]))
    if shape == "random":
        mask = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    elif shape == "none":
        mask = [False] * n
    elif shape == "all":
        mask = [True] * n
    else:  # targets only among the last sentences (the last p columns)
        k = draw(st.integers(1, 3))
        mask = [idx >= n - k for idx in range(n)]
    # "Empty" sentences: all their rows and columns are zero.
    empty = draw(st.lists(st.integers(0, n - 1), max_size=2))
    matrices = {}
    for layer in range(n_layers):
        for head in range(n_heads):
            matrix = draw(arrays(np.float64, (n, n), elements=VALUES))
            matrix[empty, :] = 0.0
            matrix[:, empty] = 0.0
            matrices[(layer, head)] = as_float32(matrix)
    return Rollout(rollout_id, matrices, mask)


@st.composite
def warehouses(draw):
    n_layers = draw(st.integers(1, 2))
    n_heads = draw(st.integers(1, 3))
    n_rollouts = draw(st.integers(1, 3))
    rollouts = [draw(rollout(f"p/r{k}", n_layers, n_heads)) for k in range(n_rollouts)]
    params = {
        "proximity_ignore": draw(st.integers(0, 5)),
        "control_depth": draw(st.booleans()),
        "score_type": draw(st.sampled_from(["mean", "median"])),
        "trim": draw(st.booleans()),
    }
    return n_layers, n_heads, rollouts, params


def call(macro: str, params: dict, **extra) -> str:
    args = {**params, **extra}
    text = ", ".join(f"{k} := {_literal(v)}" for k, v in args.items())
    return f"select * from {macro}({text})"


def _literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def reference_stats(rollouts, params):
    """{rollout_id: {layer: {head: stats}}} and {(rollout, layer, head): v}."""
    stats, scores = {}, {}
    p, cd, score_type = params["proximity_ignore"], params["control_depth"], params["score_type"]
    for r in rollouts:
        per_layer = stats.setdefault(r.rollout_id, {})
        for (layer, head), matrix in r.matrices.items():
            B, m = ref.analysed(matrix, r.mask, params["trim"])
            per_layer.setdefault(layer, {})[head] = ref.head_stats(B, m, p, cd, score_type)
            scores[(r.rollout_id, layer, head)] = ref.vertical_scores(B, p, cd, score_type)
    return stats, scores


SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def loaded(case):
    """A connection holding the case's rollouts, and the NumPy reference of its metrics."""
    n_layers, n_heads, rollouts, params = case
    c = con()
    load(c, rollouts, n_layers, n_heads)
    stats, scores = reference_stats(rollouts, params)
    return c, n_layers, rollouts, params, stats, scores


@SETTINGS
@given(warehouses())
def test_metrics_match_reference(case):
    c, n_layers, rollouts, params, stats, scores = loaded(case)

    # §5 vertical scores, one row per analysed column
    rows = records(c, call("vertical_scores", params, all_layers=True))
    expected_rows = sum(len(v) for v in scores.values())
    assert len(rows) == expected_rows
    for row in rows:
        v = scores[(row["rollout_id"], row["layer"], row["head"])]
        assert close(row["vertical_score"], v[row["c"]]), row
        r = next(x for x in rollouts if x.rollout_id == row["rollout_id"])
        offset = 1 if params["trim"] and r.n >= 3 else 0
        assert row["idx"] == row["c"] + offset
        assert row["is_target"] == r.mask[row["idx"]]

    # §6 head statistics, one row per stored (rollout, layer, head)
    rows = records(c, call("head_stats", params, all_layers=True))
    assert len(rows) == sum(len(r.matrices) for r in rollouts)
    for row in rows:
        expected = stats[row["rollout_id"]][row["layer"]][row["head"]]
        for column in ref.HEAD_STAT_COLUMNS:
            assert close(row[column], expected[column]), (column, row, expected)
    head_rows = {(r["rollout_id"], r["layer"], r["head"]): r for r in rows}

    # §7 best heads: a whole head_stats row of a head whose |ΔVA| is maximal
    rows = records(c, call("best_heads", params, all_layers=True))
    assert len(rows) == sum(n_layers for _ in rollouts)
    for row in rows:
        per_head = stats[row["rollout_id"]][row["layer"]]
        best = ref.best_head(per_head)
        if best is None:
            assert row["head"] is None and row["delta_va_vert"] is None
            continue
        best_abs = abs(per_head[best]["delta_va_vert"])
        assert close(row["abs_delta_va_vert"], best_abs)
        tied = [
            h
            for h, s in per_head.items()
            if not math.isnan(s["delta_va_vert"]) and abs(abs(s["delta_va_vert"]) - best_abs) < 1e-9
        ]
        assert row["head"] == min(tied)
        same = head_rows[(row["rollout_id"], row["layer"], row["head"])]
        for column in ref.HEAD_STAT_COLUMNS:
            assert close(row[column], same[column]), column

    # §7 ranking
    rows = records(c, call("rollout_ranking", params, all_layers=True))
    S = {rid: ref.distinctiveness(per_layer) for rid, per_layer in stats.items()}
    assert [r["rollout_id"] for r in rows] == sorted(
        S, key=lambda rid: (math.isnan(S[rid]), -round(0 if math.isnan(S[rid]) else S[rid], 9), rid)
    )
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    for row in rows:
        r = next(x for x in rollouts if x.rollout_id == row["rollout_id"])
        assert close(row["distinctiveness_score"], S[row["rollout_id"]])
        B, m = ref.analysed(np.zeros((r.n, r.n)), r.mask, params["trim"])
        assert (row["n_sentences"], row["n_va"]) == (len(m), int(np.sum(m)))
        assert (row["n_sentences_original"], row["n_va_original"]) == (r.n, sum(r.mask))
        assert row["layers"] == list(range(n_layers))


@SETTINGS
@given(warehouses())
def test_kurtosis_matches_scipy(case):
    c, _n_layers, rollouts, params, _stats, scores = loaded(case)
    rows = records(c, call("receiver_head_kurtosis", params))
    assert len(rows) == len(scores)
    for row in rows:
        v = scores[(row["rollout_id"], row["layer"], row["head"])]
        defined = v[~np.isnan(v)]
        assert row["n_scores"] == defined.size
        if defined.size and np.ptp(defined) < 1e-9 * max(1.0, abs(float(np.mean(defined)))):
            continue  # constant up to rounding: NaN in exact arithmetic, noise otherwise
        assert close(row["kurtosis"], ref.kurtosis(v), tol=1e-6 * max(1.0, abs(ref.kurtosis(v)))), (
            row,
            v,
        )


def test_kurtosis_constant_is_null():
    c = con()
    matrix = np.tril(np.full((8, 8), 0.5))
    load(c, [Rollout("p/const", {(0, 0): matrix}, [False] * 8)], 1, 1)
    (row,) = records(c, "select * from receiver_head_kurtosis(control_depth := false)")
    assert row["kurtosis"] is None
    assert math.isnan(ref.kurtosis(ref.vertical_scores(matrix, 4, False)))


@pytest.mark.parametrize("n_layers", [1, 2, 3, 7, 11, 28, 36, 40, 64, 80])
def test_representative_layers(n_layers):
    c = con()
    load(c, [], n_layers, 1)
    (row,) = records(c, "select * from representative_layers")
    assert row["layers"] == ref.representative_layers(n_layers)
