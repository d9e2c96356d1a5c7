"""Direct NumPy evaluation of the permutation statistics of docs/STATISTICS.md.

The reference the SQL of sql/40_stats is tested against. Permutations and sign flips are
derived from md5 keys exactly as docs/STATISTICS.md §2 and §6 define them, so the same
(seed, permutation, rollout) gives the same labels here and in DuckDB. Vertical scores
and ΔVA come from metrics_reference (METRICS.md §5-6).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

import metrics_reference as ref
import numpy as np

SLACK = 1e-12  # ties within float noise count as "at least as extreme"
T_SLACK = 1e-9


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def scored_columns(n: int, p: int) -> list[int]:
    """Analysed columns with a defined v_c (c <= n - 1 - p, METRICS.md §5)."""
    return list(range(max(0, n - p)))


def permutation_order(seed: int, k: int, rollout_id: str, idxs: Sequence[int]) -> list[int]:
    """§2: the positions 0..len(idxs)-1 ordered by md5('{seed}/{k}/{rollout_id}/{idx}'), ties by idx."""
    keys = [(md5_hex(f"{seed}/{k}/{rollout_id}/{idx}"), idx, pos) for pos, idx in enumerate(idxs)]
    return [pos for _, _, pos in sorted(keys)]


def flip_sign(seed: int, k: int, rollout_id: str) -> float:
    """§6: +1 if the first hex digit of md5('sign/{seed}/{k}/{rollout_id}') is 0-7, else -1."""
    return 1.0 if md5_hex(f"sign/{seed}/{k}/{rollout_id}")[0] < "8" else -1.0


def delta(v: np.ndarray, targets: np.ndarray) -> float:
    """ΔVA (METRICS.md §6): mean of the finite v over targets minus over the others."""
    v = np.asarray(v, dtype=float)
    targets = np.asarray(targets, dtype=bool)
    a, b = v[targets], v[~targets]
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not a.size or not b.size:
        return math.nan
    return float(np.mean(a) - np.mean(b))


def position_strata(n_scored: int) -> list[int]:
    """§2: the 'position' stratum of each scored column: blocks of about 24 columns."""
    g = max(1, math.floor(n_scored / 24 + 0.5))
    return [c * g // n_scored for c in range(n_scored)]


def detrended(v: Sequence[float], strata: Sequence[int], n_chars: Sequence[int] | None) -> np.ndarray:
    """§2: r_c = v_c - its stratum's mean - b_c (c - c̄_s) - b_l (l_c - l̄_s), l = ln(1 +
    n_chars) (0 without texts), (b_c, b_l) the least-squares slopes pooled over the strata
    (b_l = 0 when the centred lengths are constant or collinear with c)."""
    v, strata = np.asarray(v, dtype=float), np.asarray(strata)
    c = np.arange(len(v), dtype=float)
    length = np.log1p(np.asarray(n_chars, dtype=float)) if n_chars is not None else np.zeros_like(c)
    dv, dc, dl = np.empty_like(v), np.empty_like(c), np.empty_like(c)
    for s in set(strata.tolist()):
        in_s = strata == s
        dv[in_s], dc[in_s] = v[in_s] - v[in_s].mean(), c[in_s] - c[in_s].mean()
        dl[in_s] = length[in_s] - length[in_s].mean()
    cc, ll, cl = float(dc @ dc), float(dl @ dl), float(dc @ dl)
    det = cc * ll - cl * cl
    if det > 1e-9 * cc * ll:
        b_c = (ll * float(dc @ dv) - cl * float(dl @ dv)) / det
        b_l = (cc * float(dl @ dv) - cl * float(dc @ dv)) / det
    else:
        b_c, b_l = (float(dc @ dv) / cc if cc > 0 else 0.0), 0.0
    return dv - b_c * dc - b_l * dl


def variance_model(residuals: Sequence[np.ndarray], n_valid_rows: Sequence[int]) -> tuple[float, float]:
    """§2: (a, b) of var(r_c) = a + b / n_valid_rows_c for the heads of one rollout and
    layer: the least-squares line of n_valid_rows_c r_c² / mean_c(r_c²) on n_valid_rows_c,
    pooled over the heads (intercept b, slope a; a = 0 when every column has as many rows)."""
    w = np.tile(np.asarray(n_valid_rows, dtype=float), len(residuals))
    z = w * np.concatenate([r * r / np.mean(r * r) for r in residuals])
    spread = float(w @ w) - w.sum() ** 2 / w.size
    a = float((w - w.mean()) @ z) / spread if spread > 0 else 0.0
    return a, float(z.mean() - a * w.mean())


def position_residuals(
    v_by_head: Sequence[Sequence[float]], strata: Sequence[int], n_valid_rows: Sequence[int],
    n_chars: Sequence[int] | None,
) -> list[np.ndarray]:
    """§2: u_c = r_c f_c for every head of one rollout and layer (same scored columns), with
    (a, b) = variance_model: f = 1 when b <= 0, sqrt(n_valid_rows) when a <= 0, otherwise
    sqrt((a + b) / (a + b / n_valid_rows))."""
    residuals = [detrended(v, strata, n_chars) for v in v_by_head]
    a, b = variance_model(residuals, n_valid_rows)
    w = np.asarray(n_valid_rows, dtype=float)
    factor = np.ones_like(w) if b <= 0 else np.sqrt(w) if a <= 0 else np.sqrt((a + b) * w / (a * w + b))
    return [r * factor for r in residuals]


def p_value(observed: float, permuted: Sequence[float], slack: float = SLACK) -> float:
    """(1 + #{k: permuted_k >= observed - slack}) / (1 + K), on statistics already made >= 0."""
    permuted = np.asarray(permuted, dtype=float)
    return (1 + int(np.sum(permuted >= observed - slack))) / (1 + permuted.size)


def permuted_deltas(
    v: np.ndarray, mask: Sequence[bool], rollout_id: str, first_idx: int, p: int, seed: int, permutations: int
) -> list[float]:
    """[ΔVA_0 (observed), ΔVA_1, ..., ΔVA_K] for one head's v (length n) and analysed mask."""
    v = np.asarray(v, dtype=float)
    m = np.asarray(mask, dtype=bool)
    cols = scored_columns(len(m), p)
    vs, ms = v[cols], m[cols]
    t = int(ms.sum())
    if t == 0 or t == len(cols):
        return []
    idxs = [c + first_idx for c in cols]
    out = [delta(vs, ms)]
    for k in range(1, permutations + 1):
        order = permutation_order(seed, k, rollout_id, idxs)
        labels = np.zeros(len(cols), dtype=bool)
        labels[order[:t]] = True
        out.append(delta(vs, labels))
    return out


def rollout_tests(
    matrices: Mapping[tuple[int, int], np.ndarray],
    mask: Sequence[bool],
    rollout_id: str,
    seed: int,
    permutations: int,
    p: int = 4,
    control_depth: bool = True,
    trim: bool = True,
) -> dict:
    """Per-head p-values, per-layer family-wise p-values and the p-value of S for one rollout.

    matrices maps (layer, head) to the full N x N matrix A (as stored). Returns
    {"heads": {(layer, head): (delta, p)}, "layers": {layer: (best_head, p_uncorr, p_fwer)},
    "score": p_S} with only defined entries.
    """
    heads, deltas = {}, {}
    first_idx = 1 if trim and len(mask) >= 3 else 0
    for (layer, head), A in matrices.items():
        B, m = ref.analysed(A, mask, trim)
        v = ref.vertical_scores(B, p, control_depth)
        d = permuted_deltas(v, m, rollout_id, first_idx, p, seed, permutations)
        if d:
            deltas[(layer, head)] = np.asarray(d)
            heads[(layer, head)] = (d[0], p_value(abs(d[0]), np.abs(d[1:])))
    layers, maxima = {}, {}
    for layer in sorted({lh[0] for lh in deltas}):
        keys = sorted(lh for lh in deltas if lh[0] == layer)
        stacked = np.abs(np.stack([deltas[key] for key in keys]))  # [head, permutation]
        best = keys[int(np.argmax(np.round(stacked[:, 0], 12)))]
        layer_max = stacked.max(axis=0)
        maxima[layer] = layer_max
        layers[layer] = (best[1], heads[best][1], p_value(layer_max[0], layer_max[1:]))
    score = None
    if maxima:
        total = np.sum(np.stack(list(maxima.values())), axis=0)
        score = p_value(total[0], total[1:])
    return {"heads": heads, "layers": layers, "score": score}


def consistency(
    deltas: Mapping[tuple[int, int], Mapping[str, float]], seed: int, permutations: int
) -> dict[tuple[int, int], dict[str, float]]:
    """§6 for one tag and model: deltas[(layer, head)][rollout_id] = defined ΔVA."""
    observed, flipped = {}, {}
    for key, by_rollout in deltas.items():
        rollouts = sorted(by_rollout)
        x = np.array([by_rollout[r] for r in rollouts])
        n = len(x)
        signs = np.array([[flip_sign(seed, k, r) for r in rollouts] for k in range(1, permutations + 1)])
        sums = signs @ x if permutations else np.zeros(0)
        observed[key] = (x, float(x.sum()))
        flipped[key] = (sums, float(np.sum(x * x)), n)

    def abs_t(total: np.ndarray, squares: float, n: int) -> np.ndarray:
        mean = total / n
        var = np.maximum((squares - total * total / n) / (n - 1), 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(var > 0, np.abs(mean) / np.sqrt(var / n), np.where(mean != 0, np.inf, np.nan))
        return t

    max_t = np.full(permutations, -np.inf)
    for sums, squares, n in flipped.values():
        if n >= 2:
            max_t = np.fmax(max_t, abs_t(sums, squares, n))
    out = {}
    for key, (x, total) in observed.items():
        sums, squares, n = flipped[key]
        mean = float(np.mean(x))
        sd = float(np.std(x, ddof=1)) if n >= 2 else math.nan
        t0 = float(abs_t(np.array([total]), squares, n)[0]) if n >= 2 else math.nan
        out[key] = {
            "n_rollouts": n,
            "mean_delta_va_vert": mean,
            "sd_delta_va_vert": sd,
            "t_statistic": mean / (sd / math.sqrt(n)) if n >= 2 and sd > 0 else math.nan,
            "share_same_sign": float(np.mean(np.sign(x) == np.sign(mean))) if mean != 0 else math.nan,
            "p_value": p_value(abs(total), np.abs(sums)),
            "p_value_fwer": p_value(t0, max_t, T_SLACK) if not math.isnan(t0) else math.nan,
        }
    return out
