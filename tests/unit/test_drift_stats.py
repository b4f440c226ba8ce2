"""The drift statistics agree with scipy on the same bins (to 1e-6 or better)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from workbench.drift import stats as ds

TOL = 1e-9


def _random_pairs(seed: int, n: int = 60) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(1, 40))
        hi = int(rng.choice([3, 50, 10_000]))
        ref = rng.integers(0, hi, k)
        cur = rng.integers(0, hi, k)
        # some zero bins on one side or both
        ref[rng.random(k) < 0.15] = 0
        cur[rng.random(k) < 0.15] = 0
        if ref.sum() == 0 or cur.sum() == 0:
            continue
        out.append((ref, cur))
    return out


PAIRS = _random_pairs(0)
EDGE_CASES = [
    (np.array([5]), np.array([7])),  # one bin
    (np.array([10, 0, 0]), np.array([0, 0, 10])),  # disjoint
    (np.array([1, 2, 3, 4]), np.array([1, 2, 3, 4])),  # identical
    (np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])),  # same proportions
    (np.array([0, 5, 0, 5]), np.array([3, 3, 0, 4])),  # a bin empty on both sides
    (np.array([1_000_000, 1]), np.array([1, 1_000_000])),
]
CASES = PAIRS + EDGE_CASES


def _centers(k: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed + k)
    return np.cumsum(rng.random(k) + 0.01) - 3.0


@pytest.mark.parametrize("ref,cur", CASES)
def test_kl_and_psi_match_scipy_entropy(ref, cur):
    r, c = ds.proportions(ref), ds.proportions(cur)
    assert ds.kl(ref, cur) == pytest.approx(stats.entropy(c, r), abs=TOL)
    expected_psi = stats.entropy(c, r) + stats.entropy(r, c)
    assert ds.psi(ref, cur) == pytest.approx(expected_psi, abs=TOL)


@pytest.mark.parametrize("ref,cur", CASES)
def test_js_matches_scipy(ref, cur):
    expected = jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2)
    assert ds.js_distance(ref, cur) == pytest.approx(expected, abs=1e-7)
    assert 0.0 <= ds.js_distance(ref, cur) <= 1.0


@pytest.mark.parametrize("ref,cur", CASES)
def test_wasserstein_matches_scipy(ref, cur):
    centers = _centers(ref.size)
    expected = stats.wasserstein_distance(centers, centers, ref, cur)
    assert ds.wasserstein(centers, ref, cur, 1.0) == pytest.approx(expected, abs=TOL)
    assert ds.wasserstein(centers, ref, cur, 2.5) == pytest.approx(expected / 2.5, abs=TOL)
    other = np.sort(np.random.default_rng(ref.size).normal(size=ref.size))
    expected = stats.wasserstein_distance(centers, other, ref, cur)
    assert ds.wasserstein(centers, ref, cur, 1.0, cur_centers=other) == pytest.approx(
        expected, abs=TOL
    )


def test_wasserstein_zero_scale_means_unscaled():
    centers = np.array([0.0, 1.0, 2.0])
    assert ds.wasserstein(centers, [1, 0, 0], [0, 0, 1], 0.0) == pytest.approx(2.0)


@pytest.mark.parametrize("ref,cur", CASES)
def test_ks_matches_ks_2samp_asymp(ref, cur):
    centers = _centers(ref.size)
    if ref.sum() + cur.sum() > 3_000_000:
        pytest.skip("too many rows to expand")
    res = stats.ks_2samp(np.repeat(centers, ref), np.repeat(centers, cur), method="asymp")
    d, p = ds.ks(ref, cur)
    assert d == pytest.approx(res.statistic, abs=1e-12)
    assert p == pytest.approx(res.pvalue, abs=1e-6)


@pytest.mark.parametrize("shift", [0.0, 0.004, 0.006, 0.01, 0.05])
def test_ks_large_samples_match_scipy(shift):
    """Large effective n (the asymptotic Smirnov expansion's region) still agrees to 1e-6."""
    rng = np.random.default_rng(7)
    edges = np.linspace(-3, 3, 99)
    ref = np.bincount(np.searchsorted(edges, rng.normal(size=300_000)), minlength=100)
    cur = np.bincount(np.searchsorted(edges, rng.normal(shift, size=200_000)), minlength=100)
    centers = np.concatenate(([-3.5], (edges[:-1] + edges[1:]) / 2, [3.5]))
    res = stats.ks_2samp(np.repeat(centers, ref), np.repeat(centers, cur), method="asymp")
    d, p = ds.ks(ref, cur)
    assert d == pytest.approx(res.statistic, abs=1e-12)
    assert p == pytest.approx(res.pvalue, abs=1e-6)


@pytest.mark.parametrize("n", [20_000, 100_000, 1_000_000])
@pytest.mark.parametrize("t", [0.5, 2.2, 2.5, 4.0, 9.0, 30.0, 400.0])
def test_ks_pvalue_matches_kstwo(n, t):
    d = math.sqrt(t / n)
    expected = stats.kstwo.sf(d, n)
    assert ds.ks_pvalue(d, 2 * n, 2 * n) == pytest.approx(expected, abs=1e-7)


@pytest.mark.parametrize("ref,cur", CASES)
def test_chi_square_matches_chi2_contingency(ref, cur):
    keep = (ref + cur) > 0
    table = np.vstack([ref, cur])[:, keep]
    chi, p = ds.chi_square(ref, cur)
    if table.shape[1] == 1:
        assert (chi, p) == (0.0, 1.0)
        return
    expected = stats.chi2_contingency(table, correction=False)
    assert chi == pytest.approx(expected[0], rel=1e-9, abs=TOL)
    assert p == pytest.approx(expected[1], abs=1e-9)


def test_identical_distributions_give_no_drift():
    counts = np.array([5, 0, 10, 20, 1])
    assert ds.psi(counts, counts * 3) == pytest.approx(0.0, abs=1e-15)
    assert ds.kl(counts, counts) == pytest.approx(0.0, abs=1e-15)
    assert ds.js_distance(counts, counts * 7) == pytest.approx(0.0, abs=1e-7)
    assert ds.wasserstein(_centers(5), counts, counts * 2, 1.0) == pytest.approx(0.0, abs=1e-15)
    d, p = ds.ks(counts, counts * 2)
    assert d == pytest.approx(0.0, abs=1e-15)
    assert p == pytest.approx(1.0)
    chi, pc = ds.chi_square(counts, counts * 2)
    assert chi == pytest.approx(0.0, abs=1e-12)
    assert pc == pytest.approx(1.0)


def test_one_bin():
    assert ds.psi([5], [9]) == 0.0
    assert ds.kl([5], [9]) == 0.0
    assert ds.js_distance([5], [9]) == 0.0
    assert ds.ks([5], [9])[0] == 0.0
    assert ds.chi_square([5], [9]) == (0.0, 1.0)


def test_proportions_floor_and_renormalise():
    p = ds.proportions([0, 0, 100])
    assert p.sum() == pytest.approx(1.0)
    assert p[0] == p[1] == pytest.approx(1e-4 / (1 + 2e-4))
    assert (ds.proportions([0, 1]) > 0).all()
    # without a floor: raw proportions
    assert ds.proportions([1, 3], floor=0).tolist() == [0.25, 0.75]


def test_empty_side_gives_nan():
    assert math.isnan(ds.psi([0, 0], [1, 2]))
    assert math.isnan(ds.js_distance([1, 2], [0, 0]))
    assert all(math.isnan(v) for v in ds.ks([0, 0], [1, 2]))
    assert all(math.isnan(v) for v in ds.chi_square([1, 2], [0, 0]))


def test_mismatched_bins_raise():
    with pytest.raises(ValueError, match="bins differ"):
        ds.psi([1, 2], [1, 2, 3])


def test_psi_known_value():
    # two bins, 50/50 vs 80/20: (0.8-0.5) ln(1.6) + (0.2-0.5) ln(0.4)
    expected = 0.3 * math.log(1.6) - 0.3 * math.log(0.4)
    assert ds.psi([50, 50], [80, 20]) == pytest.approx(expected, abs=1e-12)


count_vectors = st.integers(min_value=1, max_value=30).flatmap(
    lambda k: st.tuples(
        st.lists(st.integers(0, 5_000), min_size=k, max_size=k),
        st.lists(st.integers(0, 5_000), min_size=k, max_size=k),
    )
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(count_vectors)
def test_random_counts_match_scipy(pair):
    ref = np.array(pair[0])
    cur = np.array(pair[1])
    assume(ref.sum() > 0 and cur.sum() > 0)
    r, c = ds.proportions(ref), ds.proportions(cur)
    assert ds.kl(ref, cur) == pytest.approx(stats.entropy(c, r), abs=1e-6)
    assert ds.psi(ref, cur) == pytest.approx(stats.entropy(c, r) + stats.entropy(r, c), abs=1e-6)
    assert ds.js_distance(ref, cur) == pytest.approx(
        jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2), abs=1e-6
    )
    centers = _centers(ref.size)
    assert ds.wasserstein(centers, ref, cur, 1.0) == pytest.approx(
        stats.wasserstein_distance(centers, centers, ref, cur), abs=1e-6
    )
    res = stats.ks_2samp(np.repeat(centers, ref), np.repeat(centers, cur), method="asymp")
    d, p = ds.ks(ref, cur)
    assert d == pytest.approx(res.statistic, abs=1e-6)
    # (1 row against 1 row: the effective sample size rounds to 0 and both give NaN)
    assert p == pytest.approx(res.pvalue, abs=1e-6, nan_ok=True)
    keep = (ref + cur) > 0
    chi, pc = ds.chi_square(ref, cur)
    if keep.sum() > 1:
        expected = stats.chi2_contingency(np.vstack([ref, cur])[:, keep], correction=False)
        assert chi == pytest.approx(expected[0], rel=1e-6, abs=1e-6)
        assert pc == pytest.approx(expected[1], abs=1e-6)
