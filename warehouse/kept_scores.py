"""The kept label-free scores of one layer, computed from its matrices as they stream in.

The definition is SQL's: table ``kept_scores`` (sql/00_tables) and macro
``kept_scores_of`` (sql/20_metrics), which the upgrade and repair run. Ranking 36 million
cells per rollout in SQL takes minutes, so the writer computes the same numbers here with
NumPy while it holds each layer anyway; tests/test_store_kept.py compares the two.
Parameter sets: sql/defaults.py KEPT_SETS (ranking: the notebook's; receiver: the paper's).
"""

from __future__ import annotations

import numpy as np

from sql.defaults import KEPT_SETS

RANKING, RECEIVER = KEPT_SETS["ranking"], KEPT_SETS["receiver"]
COLUMNS = ("vertical_score", "n_valid_rows", "column_sum", "row_sum", "receiver_score")


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Average 1-based ranks along the last axis (ties share their mean rank), as SQL's
    (rank() + cume_dist() * count) / 2 of column_scores."""
    order = np.argsort(values, axis=-1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=-1)
    n = values.shape[-1]
    pos = np.broadcast_to(np.arange(n), values.shape)
    differs = ordered[..., 1:] != ordered[..., :-1]
    starts = np.concatenate([np.ones(values.shape[:-1] + (1,), bool), differs], axis=-1)
    ends = np.concatenate([differs, np.ones(values.shape[:-1] + (1,), bool)], axis=-1)
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=-1)
    last = np.minimum.accumulate(np.where(ends, pos, n)[..., ::-1], axis=-1)[..., ::-1]
    ranks = np.empty(values.shape, np.float64)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=-1)
    return ranks


def _column_means(scores: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over valid rows of each column ([head, row, col] -> [head, col]); NaN if none."""
    count = valid.sum(axis=1)
    total = np.where(valid, scores, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan), count


def _first_analysed(params: dict, n: int) -> int:
    """Index of the first analysed sentence: 1 when the set trims (METRICS.md §4, N >= 3)."""
    return 1 if params["trim"] and n >= 3 else 0


def layer_blocks(mats: np.ndarray, tags: list[list[str]]) -> dict[str, np.ndarray]:
    """Per tag of the rollout: TT, the sum of B[r, c] over analysed rows and columns that
    both carry the tag (c <= r; the matrices are lower-triangular), one value per head."""
    mats = np.tril(np.asarray(mats, dtype=np.float32)).astype(np.float64)
    n = mats.shape[-1]
    first = _first_analysed(RANKING, n)
    members: dict[str, list[int]] = {}
    for idx in range(first, n - first):
        for tag in set(tags[idx]) if idx < len(tags) else ():
            members.setdefault(tag, []).append(idx)
    return {tag: mats[:, idx][:, :, idx].sum(axis=(1, 2)) for tag, idx in members.items()}


def _set_scores(mats: np.ndarray, params: dict) -> tuple[slice, np.ndarray, np.ndarray]:
    """Vertical scores of one kept set (METRICS.md §5): the analysed columns' slice of the
    original indices, each column's mean score over its valid rows, and that row count."""
    if params["score_type"] != "mean":
        raise ValueError("kept scores are column means; sql/defaults.py KEPT_SETS asks for "
                         f"score_type {params['score_type']!r}")
    n = mats.shape[-1]
    first = _first_analysed(params, n)
    b = mats[:, first:n - first, first:n - first]
    m = b.shape[-1]
    r = np.arange(m)[:, None]
    valid = np.broadcast_to(np.arange(m)[None, :] <= r - params["proximity_ignore"], b.shape)
    if params["control_depth"]:  # rank-normalised valid cells of each row
        ranked = _average_ranks(np.where(valid, b, np.float32(np.inf)))
        scores = ranked / np.maximum(r - params["proximity_ignore"] + 1, 1).astype(np.float64)
    else:  # raw values
        scores = b.astype(np.float64)
    mean, count = _column_means(scores, valid)
    return slice(first, n - first), mean, count


def layer_scores(mats: np.ndarray) -> dict[str, np.ndarray]:
    """Kept columns of one layer: each an [head, N] array indexed by original sentence idx
    (NaN where SQL has NULL: outside the analysed range, or no valid cell)."""
    mats = np.tril(np.asarray(mats, dtype=np.float32))
    heads, n, _ = mats.shape
    out = {name: np.full((heads, n), np.nan) for name in COLUMNS}
    if n == 0:
        return out
    span, mean, _ = _set_scores(mats, RECEIVER)
    out["receiver_score"][:, span] = mean
    span, mean, count = _set_scores(mats, RANKING)
    out["vertical_score"][:, span] = mean
    out["n_valid_rows"][:, span] = count
    analysed = mats[:, span, span].astype(np.float64)  # the ranking set's trim
    out["column_sum"][:, span] = analysed.sum(axis=1)
    out["row_sum"][:, span] = analysed.sum(axis=2)
    return out
