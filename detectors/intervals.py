"""Confidence intervals computed from sufficient statistics, each tested against scipy."""

from __future__ import annotations

import math

from scipy import stats

Z_95 = 1.959963984540054


def wilson_interval(successes: float, n: float, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval: honest near 0 and 1 and for small n, unlike the normal one."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(p * (1 - p) / n + z * z / (4 * n * n), 0.0)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(total: float, squares: float, n: float, z: float = Z_95) -> tuple[float, float]:
    """Normal interval for a mean from its sum and sum of squares (CLT; fine for n >= 30)."""
    if n <= 1:
        return (-math.inf, math.inf)
    mean = total / n
    variance = max(squares / n - mean * mean, 0.0) * n / (n - 1)
    half = z * math.sqrt(variance / n)
    return (mean - half, mean + half)


def hanley_mcneil_interval(auc: float, n_pos: float, n_neg: float) -> tuple[float, float]:
    """Hanley & McNeil (1982) standard error of the ROC AUC, as a normal interval."""
    if n_pos < 1 or n_neg < 1:
        return (0.0, 1.0)
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    variance = (
        auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)
    ) / (n_pos * n_neg)
    half = Z_95 * math.sqrt(max(variance, 0.0))
    return (max(0.0, auc - half), min(1.0, auc + half))


def _logistic(x: float) -> float:
    """1 / (1 + e^-x) without overflow: e^-x is never taken for a very negative x."""
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


def logit_interval(p: float, n: float) -> tuple[float, float]:
    """Logit interval for a proportion-like score (used for average precision, Boyd 2013).

    A score a rounding error short of 1 (average precision 1 - 1e-16 when the only
    positives rank first) has a huge half-width on the logit scale; the logistic must not
    overflow there (a quiet simulated stream crashed the tick on such a daily block)."""
    if n <= 0 or p <= 0 or p >= 1:
        return (0.0, 1.0)
    logit = math.log(p / (1 - p))
    half = Z_95 / math.sqrt(n * p * (1 - p))
    return (_logistic(logit - half), _logistic(logit + half))


def poisson_interval(count: int) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson count."""
    low = 0.0 if count == 0 else float(stats.chi2.ppf(0.025, 2 * count) / 2)
    high = float(stats.chi2.ppf(0.975, 2 * count + 2) / 2)
    return (low, high)
