"""Distances between two distributions given as counts on shared bins.

Every function takes the reference's counts first and the current window's second; the
binned approximations (KS, Wasserstein) are checked against scipy on raw values in the tests,
with their tolerances stated there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

PSI_FLOOR = 1e-4
"""Proportions are floored like evidently's PSI so an empty bin gives a large, finite term."""


def _proportions(counts: Sequence[float]) -> np.ndarray:
    arr = np.asarray(counts, dtype=float)
    total = arr.sum()
    return arr / total if total > 0 else arr


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two count vectors on the same bins."""
    e = np.clip(_proportions(expected), PSI_FLOOR, None)
    a = np.clip(_proportions(actual), PSI_FLOOR, None)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Jensen–Shannon distance (natural log, as scipy's `jensenshannon` by default)."""
    p, q = _proportions(expected), _proportions(actual)
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        mask = x > 0
        return float(np.sum(x[mask] * np.log(x[mask] / m[mask])))

    return float(np.sqrt(max((kl(p) + kl(q)) / 2, 0.0)))


def ks_binned(expected: Sequence[float], actual: Sequence[float]) -> tuple[float, float]:
    """Two-sample KS statistic on binned data, and its asymptotic p-value.

    The statistic is the largest gap between the two CDFs at the bin edges, so it can only
    underestimate the raw one, by at most the probability mass of one bin.
    """
    e, a = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    n, m = e.sum(), a.sum()
    if n == 0 or m == 0:
        return 0.0, 1.0
    d = float(np.max(np.abs(np.cumsum(e) / n - np.cumsum(a) / m)))
    en = n * m / (n + m)
    p_value = float(stats.kstwobign.sf(d * np.sqrt(en)))
    return d, min(max(p_value, 0.0), 1.0)


def wasserstein_from_bins(
    ref_means: Sequence[float],
    ref_counts: Sequence[float],
    cur_sums: Sequence[float],
    cur_counts: Sequence[float],
) -> float:
    """Earth mover's distance with each bin's mass placed at the mean of its values.

    Both sides keep per-bin sums, so each is a discrete distribution of at most 20 atoms;
    the error against the raw distance is bounded by the spread of values within a bin.
    """
    rc, cc = np.asarray(ref_counts, dtype=float), np.asarray(cur_counts, dtype=float)
    cur_means = np.divide(
        np.asarray(cur_sums, dtype=float), cc, out=np.zeros_like(cc), where=cc > 0
    )
    r_used, c_used = rc > 0, cc > 0
    return float(
        stats.wasserstein_distance(
            np.asarray(ref_means, dtype=float)[r_used], cur_means[c_used], rc[r_used], cc[c_used]
        )
    )


def chi_square(expected: Sequence[float], actual: Sequence[float]) -> tuple[float, float]:
    """Chi-square test of homogeneity between the reference's and the window's categories."""
    table = np.vstack([np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def adjust_p_values(p_values: Sequence[float], method: str) -> list[float]:
    """Benjamini–Hochberg (false discovery rate) or Bonferroni (family-wise) adjustment."""
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return []
    if method == "bonferroni":
        return [float(x) for x in np.minimum(p * p.size, 1.0)]
    return [float(x) for x in stats.false_discovery_control(p, method="bh")]
