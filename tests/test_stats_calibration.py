"""Calibration of the permutation tests (docs/STATISTICS.md §11): replicated null experiments.

Vertical scores here depend on position by construction (later columns receive more
attention, as with recency, on top of the rank normalisation of control_depth), and the
null labels depend on position (drawn with probability rising with position) but carry
nothing else. Each experiment is replicated over rollouts and over independent null tags
(one tag = one replicate; ``all_tags`` runs them in one pass). The default null
('position') must hold its size: the share of p <= ALPHA at most ALPHA + TOLERANCE, for
per-head, family-wise, score and consistency p-values; the earlier 'uniform' null is shown
to exceed it on the same data (the experiment has teeth). Power: labels on the sentences a
head attends to most are found. Deterministic seeds; a few seconds each.
"""

from __future__ import annotations

import metrics_reference as ref
import numpy as np
import pytest
from sql_fixtures import Rollout, as_float32, load, records, warehouse  # noqa: F401

ALPHA = 0.05
TOLERANCE = 0.04  # about 2 binomial standard errors at the replicate counts used here
N_TAGS = 8


def positional_matrix(rng: np.random.Generator, n: int, recency: float) -> np.ndarray:
    """Random lower-triangular attention whose columns get more mass the later they are."""
    weights = 1 + recency * np.arange(n) / n
    return as_float32(np.tril(rng.random((n, n)) * weights[None, :]))


def positional_mask(rng: np.random.Generator, n: int, n_targets: int) -> list[bool]:
    """n_targets sentences among 1..n-2, drawn with probability rising as position cubed."""
    candidates = np.arange(1, n - 1)
    weights = (candidates / n) ** 3
    chosen = rng.choice(candidates, size=n_targets, replace=False, p=weights / weights.sum())
    mask = np.zeros(n, dtype=bool)
    mask[chosen] = True
    return mask.tolist()


def null_rollouts(
    seed: int, n_rollouts: int, n: int, heads: int, n_targets: int, recency: float
) -> list[Rollout]:
    """Rollouts with N_TAGS independent position-biased null tags ('null_0', ...) each."""
    rng = np.random.default_rng(seed)
    rollouts = []
    for k in range(n_rollouts):
        masks = [positional_mask(rng, n, n_targets) for _ in range(N_TAGS)]
        tags = [[f"null_{t}" for t in range(N_TAGS) if masks[t][i]] for i in range(n)]
        matrices = {(0, head): positional_matrix(rng, n, recency) for head in range(heads)}
        rollouts.append(Rollout(f"problem_{k}/null_{k:02d}", matrices, [False] * n, tags))
    return rollouts


def share_significant(rows: list[dict], column: str) -> float:
    values = [r[column] for r in rows if r[column] is not None]
    assert values
    return float(np.mean([v <= ALPHA for v in values]))


@pytest.fixture(scope="module")
def null_warehouse():
    """30 rollouts x 3 heads x 8 null tags, 36 sentences, strong recency."""
    from sql_fixtures import connect

    con = connect()
    load(con, null_rollouts(20260101, 30, 36, 3, 4, recency=3.0), 1, 3)
    yield con
    con.close()


def test_per_head_and_familywise_size(null_warehouse):
    params = "all_tags := true, permutations := 99, seed := 3, all_layers := true"
    heads = records(null_warehouse, f"select * from head_pvalues({params})")
    assert len(heads) >= 0.95 * 30 * 3 * N_TAGS  # a tag whose targets are all unscored has no row
    assert share_significant(heads, "p_value") <= ALPHA + TOLERANCE
    uniform = records(null_warehouse, f"select * from head_pvalues({params}, null_model := 'uniform')")
    # the earlier test calls position "significant": the experiment can tell the two apart
    assert share_significant(uniform, "p_value") > share_significant(heads, "p_value")
    assert share_significant(uniform, "p_value") > ALPHA + TOLERANCE
    selected = records(null_warehouse, f"select * from selected_head_pvalues({params})")
    assert len(selected) >= 0.95 * 30 * N_TAGS
    assert share_significant(selected, "p_value_fwer") <= ALPHA + TOLERANCE
    # q-values are never below the p-values and keep their order within a family
    assert all(r["q_value"] >= r["p_value"] - 1e-12 for r in heads)


def test_score_and_consistency_size(null_warehouse):
    scores = []
    for t in range(3):
        scores += records(
            null_warehouse,
            "select p_value_score from rollout_ranking_pvalues("
            f"tag := 'null_{t}', permutations := 99, seed := 5)",
        )
    assert len(scores) == 30 * 3
    assert share_significant(scores, "p_value_score") <= ALPHA + TOLERANCE
    consistency = records(
        null_warehouse, "select * from head_consistency(all_tags := true, permutations := 99, seed := 6)"
    )
    assert len(consistency) == 3 * N_TAGS
    # 24 per-head tests (3 heads sharing each tag's labels) and 8 family-wise tests (one per
    # tag): at most 3 (ALPHA + 0.075, the binomial 90% bound for 24 tests) and 1 significant
    assert sum(r["p_value"] <= ALPHA for r in consistency) <= 3
    assert len({r["tag"] for r in consistency if r["p_value_fwer"] <= ALPHA}) <= 1
    uniform = records(
        null_warehouse,
        "select * from head_consistency("
        "all_tags := true, permutations := 99, seed := 6, null_model := 'uniform')",
    )
    assert sum(r["p_value"] <= ALPHA for r in uniform) > sum(r["p_value"] <= ALPHA for r in consistency)


def test_length_biased_labels_keep_their_size(warehouse):  # noqa: F811
    # columns receive attention rising with their sentence's length (stored texts), and
    # the null labels pick long sentences (probability rising as length squared)
    rng = np.random.default_rng(31)
    rollouts, texts = [], []
    for k in range(30):
        n = 36
        chars = rng.integers(5, 300, size=n)
        matrices = {(0, head): as_float32(np.tril(rng.random((n, n)) * np.log(chars)[None, :]))
                    for head in range(3)}
        tags: list[list[str]] = [[] for _ in range(n)]
        for t in range(N_TAGS):
            weights = chars[1:n - 1] ** 2.0
            for i in rng.choice(np.arange(1, n - 1), size=4, replace=False, p=weights / weights.sum()):
                tags[i].append(f"null_{t}")
        rollouts.append(Rollout(f"problem_{k}/length_{k:02d}", matrices, [False] * n, tags))
        texts += [(rollouts[-1].rollout_id, i, "x" * int(chars[i]), 0, 0) for i in range(n)]
    load(warehouse, rollouts, 1, 3)
    warehouse.executemany("insert into sentences values (?, ?, ?, ?, ?)", texts)
    params = "all_tags := true, permutations := 99, seed := 4, all_layers := true"
    heads = records(warehouse, f"select * from head_pvalues({params})")
    assert len(heads) >= 0.95 * 30 * 3 * N_TAGS
    assert share_significant(heads, "p_value") <= ALPHA + TOLERANCE
    uniform = records(warehouse, f"select * from head_pvalues({params}, null_model := 'uniform')")
    assert share_significant(uniform, "p_value") > ALPHA + TOLERANCE  # length alone fools it


def test_few_labellings_exact(warehouse):  # noqa: F811
    # 12 sentences: 6 scored columns, 2 targets (or 1 when one is unscored), one stratum:
    # C(6, 2) = 15 (or 6) labellings <= K, every one enumerated
    rollouts = null_rollouts(11, 30, 12, 2, 2, recency=3.0)
    load(warehouse, rollouts, 1, 2)
    query = "select * from head_pvalues(all_tags := true, permutations := 99, all_layers := true{})"
    rows = records(warehouse, query.format(""))
    assert rows and all(r["is_exact"] and r["n_labellings"] in (6, 15) for r in rows)
    assert all(r["n_draws"] == r["n_labellings"] for r in rows)
    # the floor is 1 / L and every p is a multiple of it: p <= 0.05 is impossible
    for r in rows:
        scaled = r["p_value"] * r["n_labellings"]
        assert abs(scaled - round(scaled)) < 1e-9 and r["p_value"] >= 1 / r["n_labellings"]
    assert share_significant(rows, "p_value") == 0.0
    sampled = records(warehouse, query.format(", exact := false"))
    assert all(not r["is_exact"] and r["n_draws"] == 99 for r in sampled)
    assert share_significant(sampled, "p_value") <= ALPHA + TOLERANCE


def test_power_on_the_sentences_a_head_attends_to_most(warehouse):  # noqa: F811
    # labels: the 4 scored columns with the largest vertical score of head 1, in 30 rollouts
    rng = np.random.default_rng(12)
    rollouts = []
    for k in range(30):
        n = 40
        matrices = {(0, head): positional_matrix(rng, n, recency=1.0) for head in range(4)}
        B, _ = ref.analysed(matrices[(0, 1)], [False] * n)
        v = ref.vertical_scores(B)
        top = np.argsort(-np.nan_to_num(v, nan=-np.inf))[:4] + 1  # analysed c -> original idx
        mask = np.zeros(n, dtype=bool)
        mask[top] = True
        rollouts.append(Rollout(f"problem_{k}/planted_{k:02d}", matrices, mask.tolist()))
    load(warehouse, rollouts, 1, 4)
    params = "permutations := 199, seed := 2, all_layers := true"
    planted = records(warehouse, f"select * from head_pvalues({params}) where head = 1")
    assert len(planted) == 30
    assert np.mean([r["p_value"] <= ALPHA for r in planted]) >= 0.8
    consistency = records(warehouse, f"select * from head_consistency({params}) order by p_value_fwer, head")
    assert consistency[0]["head"] == 1 and consistency[0]["p_value_fwer"] <= ALPHA
    assert all(r["p_value_fwer"] > ALPHA for r in consistency[1:])
