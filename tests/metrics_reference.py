"""Direct NumPy/SciPy evaluation of METRICS.md §4-8 on full N x N matrices.

The reference the SQL metrics are tested against: every function works on one dense
matrix (upper triangle included) and follows the formulas of METRICS.md literally, with
NaN for undefined values. Reusable by any test that needs the expected numbers.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

HEAD_STAT_COLUMNS = (
    "mean_va_vert",
    "mean_nonva_vert",
    "delta_va_vert",
    "mean_in_va",
    "mean_in_nonva",
    "mean_out_va",
    "mean_va_to_va",
    "lift_in_va",
    "n_sentences",
    "n_va",
    "va_rate",
)


def representative_layers(n_layers: int) -> list[int]:
    """METRICS.md §7: early, middle and late layer of a model with n_layers layers."""
    last = n_layers - 1
    return sorted({max(0, int(0.10 * last)), int(0.50 * last), int(0.90 * last)})


def analysed(A: np.ndarray, mask: Sequence[bool], trim: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """METRICS.md §4: the analysed matrix B and mask m (drop first and last when N >= 3)."""
    A = np.asarray(A, dtype=float)
    m = np.asarray(mask, dtype=bool)
    if trim and A.shape[0] >= 3:
        return A[1:-1, 1:-1], m[1:-1]
    return A, m


def ranked_valid(B: np.ndarray, p: int = 4, control_depth: bool = True) -> np.ndarray:
    """The valid cells (c <= r - p) of B, rank-normalised per row if control_depth; NaN elsewhere."""
    if p < 0:
        raise ValueError("proximity_ignore must be >= 0")
    B = np.asarray(B, dtype=float)
    n = B.shape[0]
    out = np.full((n, n), np.nan)
    for r in range(n):
        width = r - p + 1
        if width <= 0:
            continue
        values = B[r, :width]
        if control_depth:
            values = stats.rankdata(values, method="average") / width
        out[r, :width] = values
    return out


def vertical_scores(
    B: np.ndarray, p: int = 4, control_depth: bool = True, score_type: str = "mean"
) -> np.ndarray:
    """METRICS.md §5: v_c per analysed column, NaN when column c has no valid cell."""
    if score_type not in ("mean", "median"):
        raise ValueError("score_type must be 'mean' or 'median'")
    ranked = ranked_valid(B, p, control_depth)
    n = ranked.shape[0]
    v = np.full(n, np.nan)
    for c in range(n):
        column = ranked[c + p :, c]
        if column.size:
            v[c] = np.mean(column) if score_type == "mean" else np.median(column)
    return v


def _mean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(np.mean(values)) if values.size else math.nan


def _block_mean(B: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> float:
    block = B[np.ix_(rows, cols)]
    return float(np.mean(block)) if block.size else math.nan


def head_stats(
    B: np.ndarray,
    m: Sequence[bool],
    p: int = 4,
    control_depth: bool = True,
    score_type: str = "mean",
) -> dict[str, float]:
    """METRICS.md §6 for one (rollout, layer, head), on the analysed B and m."""
    B = np.asarray(B, dtype=float)
    m = np.asarray(m, dtype=bool)
    v = vertical_scores(B, p, control_depth, score_type)
    mean_va_vert = _mean(v[m])
    mean_nonva_vert = _mean(v[~m])
    mean_in_va = _block_mean(B, ~m, m)
    mean_in_nonva = _block_mean(B, ~m, ~m)
    lift = math.nan
    if math.isfinite(mean_in_va) and math.isfinite(mean_in_nonva) and mean_in_nonva != 0:
        lift = mean_in_va / mean_in_nonva
    n = int(B.shape[0])
    n_va = int(m.sum())
    return {
        "mean_va_vert": mean_va_vert,
        "mean_nonva_vert": mean_nonva_vert,
        "delta_va_vert": mean_va_vert - mean_nonva_vert,
        "mean_in_va": mean_in_va,
        "mean_in_nonva": mean_in_nonva,
        "mean_out_va": _block_mean(B, m, ~m),
        "mean_va_to_va": _block_mean(B, m, m),
        "lift_in_va": lift,
        "n_sentences": n,
        "n_va": n_va,
        "va_rate": n_va / max(1, n),
    }


def best_head(stats_by_head: Mapping[int, Mapping[str, float]]) -> int | None:
    """METRICS.md §7: head with the largest |ΔVA|, NaN never chosen, ties to the lowest head."""
    best, best_abs = None, -math.inf
    for head in sorted(stats_by_head):
        delta = stats_by_head[head]["delta_va_vert"]
        if math.isnan(delta):
            continue
        if abs(delta) > best_abs:
            best, best_abs = head, abs(delta)
    return best


def distinctiveness(stats_by_layer_head: Mapping[int, Mapping[int, Mapping[str, float]]]) -> float:
    """METRICS.md §7: S = Σ_layers |ΔVA(best head)|; NaN when no layer has a best head."""
    total, found = 0.0, False
    for layer in sorted(stats_by_layer_head):
        head = best_head(stats_by_layer_head[layer])
        if head is not None:
            total += abs(stats_by_layer_head[layer][head]["delta_va_vert"])
            found = True
    return total if found else math.nan


def ranking(scores: Mapping[str, float]) -> list[str]:
    """Rollout ids ordered by S descending, ties by rollout id, NaN scores last."""
    return sorted(scores, key=lambda rid: (math.isnan(scores[rid]), -_finite(scores[rid]), rid))


def _finite(x: float) -> float:
    return 0.0 if math.isnan(x) else x


def kurtosis(v: Sequence[float]) -> float:
    """METRICS.md §8: Fisher excess kurtosis, population form, NaN values omitted."""
    values = np.asarray(v, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy: precision loss on constant input
        return float(stats.kurtosis(values, fisher=True, bias=True))
