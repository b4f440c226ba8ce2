"""Drift statistics on binned counts.

Every function takes two count vectors on the *same* bins (the reference's and the current
data's) and returns a number; nothing here sees raw rows, so a check costs the same for
1,000 rows as for 100 million once they are binned (see `drift.counter.Counter`).

Conventions (DESIGN.md "Drift conventions"):

- `proportions` turns counts into proportions and floors empty bins at `FLOOR` (1e-4), then
  **renormalises** so the proportions sum to 1. PSI and KL use these floored proportions, so
  `kl(r, c) == scipy.stats.entropy(proportions(c), proportions(r))` and
  `psi(r, c) == kl(r, c) + kl(c, r)` exactly as PSI's definition implies.
- Jensen-Shannon uses the raw proportions (no floor: it is finite with empty bins), base 2,
  so the distance lies in [0, 1].
- Wasserstein is the 1-D earth mover's distance between the two weighted bin
  representatives, divided by `scale` (the reference standard deviation).
- KS is evaluated at the bin boundaries with the asymptotic two-sided p-value scipy's
  `ks_2samp(..., method="asymp")` gives for samples of the two totals' sizes.
- Chi-square is the 2 x k contingency test over the bins where either side has rows.

A function given an empty side returns NaN (there is nothing to compare).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

FLOOR = 1e-4
# Effective sample size above which the KS tail uses the asymptotic Smirnov expansion.
SMIRNOV_SERIES_N = 10_000


def _counts(counts: ArrayLike) -> np.ndarray:
    arr = np.asarray(counts, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError("counts must be a 1-D array")
    return arr


def _pair(ref_counts: ArrayLike, cur_counts: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    ref = _counts(ref_counts)
    cur = _counts(cur_counts)
    if ref.shape != cur.shape:
        raise ValueError(f"bins differ: {ref.shape[0]} reference vs {cur.shape[0]} current")
    return ref, cur


def proportions(counts: ArrayLike, floor: float = FLOOR) -> np.ndarray:
    """counts / total; bins below `floor` are raised to it and the result renormalised to sum 1.

    An all-zero vector gives uniform proportions (callers report "no data" before this).
    """
    arr = _counts(counts)
    total = arr.sum()
    if arr.size == 0:
        return arr
    if total <= 0:
        return np.full(arr.shape, 1.0 / arr.size)
    p: np.ndarray = arr / total
    if floor > 0:
        p = np.maximum(p, floor)
        p = p / p.sum()
    return p


def psi(ref_counts: ArrayLike, cur_counts: ArrayLike, floor: float = FLOOR) -> float:
    """Population stability index: sum((c - r) * ln(c / r)) on floored proportions."""
    ref, cur = _pair(ref_counts, cur_counts)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return math.nan
    r = proportions(ref, floor)
    c = proportions(cur, floor)
    return float(np.sum((c - r) * np.log(c / r)))


def kl(ref_counts: ArrayLike, cur_counts: ArrayLike, floor: float = FLOOR) -> float:
    """KL(current || reference) in nats on floored proportions (== scipy.stats.entropy(c, r))."""
    ref, cur = _pair(ref_counts, cur_counts)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return math.nan
    r = proportions(ref, floor)
    c = proportions(cur, floor)
    return float(np.sum(c * np.log(c / r)))


def js_distance(ref_counts: ArrayLike, cur_counts: ArrayLike) -> float:
    """Jensen-Shannon distance, base 2, in [0, 1] (== scipy.spatial.distance.jensenshannon)."""
    ref, cur = _pair(ref_counts, cur_counts)
    rt, ct = ref.sum(), cur.sum()
    if rt <= 0 or ct <= 0:
        return math.nan
    p = ref / rt
    q = cur / ct
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0)
        right = np.where(q > 0, q * np.log(q / m), 0.0)
    js = (left.sum() + right.sum()) / 2.0 / math.log(2.0)
    return float(math.sqrt(max(js, 0.0)))


def wasserstein(
    centers: ArrayLike,
    ref_counts: ArrayLike,
    cur_counts: ArrayLike,
    scale: float,
    cur_centers: ArrayLike | None = None,
) -> float:
    """Earth mover's distance between the binned samples, divided by `scale` (0 -> 1).

    Reference rows sit at `centers` with weights `ref_counts`; current rows at `cur_centers`
    (default: the same `centers`) with weights `cur_counts`. Equals
    `scipy.stats.wasserstein_distance(centers, cur_centers, ref_counts, cur_counts) / scale`.
    """
    ref, cur = _pair(ref_counts, cur_counts)
    u = _counts(centers)
    v = u if cur_centers is None else _counts(cur_centers)
    if u.shape != ref.shape or v.shape != cur.shape:
        raise ValueError("centers and counts differ in length")
    rt, ct = ref.sum(), cur.sum()
    if rt <= 0 or ct <= 0:
        return math.nan
    # scipy's _cdf_distance with p = 1, on weighted values.
    u_sorter = np.argsort(u, kind="mergesort")
    v_sorter = np.argsort(v, kind="mergesort")
    all_values = np.concatenate((u, v))
    all_values.sort(kind="mergesort")
    deltas = np.diff(all_values)
    u_idx = u[u_sorter].searchsorted(all_values[:-1], "right")
    v_idx = v[v_sorter].searchsorted(all_values[:-1], "right")
    u_cum = np.concatenate(([0.0], np.cumsum(ref[u_sorter])))
    v_cum = np.concatenate(([0.0], np.cumsum(cur[v_sorter])))
    u_cdf = u_cum[u_idx] / u_cum[-1]
    v_cdf = v_cum[v_idx] / v_cum[-1]
    dist = float(np.sum(np.abs(u_cdf - v_cdf) * deltas))
    if not scale or not math.isfinite(scale):
        scale = 1.0
    return dist / abs(scale)


def ks(ref_counts: ArrayLike, cur_counts: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov (D, p) at the bin boundaries.

    D = max |CDF_ref - CDF_cur|; p is the asymptotic two-sided p-value
    (`scipy.stats.kstwo.sf(D, round(n*m/(n+m)))`), as `ks_2samp(method="asymp")` computes it.
    """
    ref, cur = _pair(ref_counts, cur_counts)
    n1, n2 = ref.sum(), cur.sum()
    if n1 <= 0 or n2 <= 0:
        return math.nan, math.nan
    diffs = np.cumsum(ref) / n1 - np.cumsum(cur) / n2
    min_s = float(np.clip(-diffs.min(), 0, 1))
    max_s = float(diffs.max())
    d = min_s if min_s > max_s else max_s
    return float(d), ks_pvalue(d, round(float(n1)), round(float(n2)))


def ks_pvalue(d: float, n1: int, n2: int) -> float:
    """Asymptotic two-sided KS p-value for statistic `d` with sample sizes n1, n2.

    As `ks_2samp(method="asymp")`: `kstwo.sf(d, round(n1*n2/(n1+n2)))`. In one region,
    effective n above `SMIRNOV_SERIES_N` and 2.2 <= n*d^2 < 370 (p below ~0.025), scipy sums
    Smirnov's exact series, which costs ~0.1-0.5 s a call at n = 1e5-1e6; there we use the
    series' asymptotic expansion 2 exp(-2t) (1 - 2d/3 + (2t/3 - 4t^2/9) / n), t = n d^2,
    which agrees with scipy to better than 1e-7 (absolute) for n > 10,000.
    """
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = float(np.round(m * n / (m + n)))
    if en < 1:  # 1 row against 1 row: scipy gives NaN too (kstwo needs n >= 1)
        return math.nan
    if en > SMIRNOV_SERIES_N and 0.0 < d < 0.5:
        t = en * d * d
        if t >= 370.0:
            return 0.0
        if t >= 2.2:
            prob = 2.0 * math.exp(-2.0 * t) * (1 - 2.0 * d / 3 + (2 * t / 3 - 4 * t * t / 9) / en)
            return float(min(max(prob, 0.0), 1.0))
    from scipy.stats import distributions

    prob = distributions.kstwo.sf(d, en)
    return float(np.clip(prob, 0, 1))


def chi_square(ref_counts: ArrayLike, cur_counts: ArrayLike) -> tuple[float, float]:
    """Chi-square test of homogeneity on the 2 x k table (bins empty on both sides dropped).

    == scipy.stats.chi2_contingency(np.vstack([ref, cur])[:, nonzero], correction=False)[:2].
    """
    ref, cur = _pair(ref_counts, cur_counts)
    rt, ct = ref.sum(), cur.sum()
    if rt <= 0 or ct <= 0:
        return math.nan, math.nan
    keep = (ref + cur) > 0
    ref, cur = ref[keep], cur[keep]
    k = ref.size
    if k <= 1:
        return 0.0, 1.0
    total = rt + ct
    col = ref + cur
    e_ref = rt * col / total
    e_cur = ct * col / total
    stat = float(np.sum((ref - e_ref) ** 2 / e_ref) + np.sum((cur - e_cur) ** 2 / e_cur))
    from scipy.special import chdtrc

    return stat, float(chdtrc(k - 1, stat))
