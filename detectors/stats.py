"""Small statistical helpers shared by detectors; each is checked against scipy in the tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z_95 = 1.959963984540054
PSI_FLOOR = 1e-4
"""Proportions are floored like evidently's PSI so an empty bin gives a large, finite term."""


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval: honest near 0 and 1 and for small n, unlike the normal one."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two count vectors on the same bins."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    e = np.clip(e / e.sum(), PSI_FLOOR, None)
    a = np.clip(a / a.sum(), PSI_FLOOR, None)
    return float(np.sum((a - e) * np.log(a / e)))
