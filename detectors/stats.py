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


def wasserstein_binned(
    edges: Sequence[float],
    expected: Sequence[float],
    actual: Sequence[float],
    low: float,
    high: float,
) -> float:
    """Earth mover's distance between two histograms, mass spread evenly within each bin.

    The outer bins reach from `low` to the first edge and from the last edge to `high`.
    """
    bounds = np.concatenate([[low], np.asarray(edges, dtype=float), [high]])
    widths = np.diff(bounds)
    cdf_e = np.concatenate([[0.0], np.cumsum(_proportions(expected))])
    cdf_a = np.concatenate([[0.0], np.cumsum(_proportions(actual))])
    d0, d1 = (cdf_e - cdf_a)[:-1], (cdf_e - cdf_a)[1:]
    same_sign = d0 * d1 >= 0
    area = np.where(
        same_sign,
        widths * np.abs(d0 + d1) / 2,
        widths * (d0**2 + d1**2) / (2 * (np.abs(d0) + np.abs(d1)) + 1e-300),
    )
    return float(np.sum(area))


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
