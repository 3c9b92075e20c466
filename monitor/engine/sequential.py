"""Evidence that accumulates: Page's CUSUM on per-block values, and the confidence level.

One window's interval misses a shift smaller than about two of its standard errors however
long it lasts. Page's cumulative sum (Page 1954, "Continuous inspection schemes",
Biometrika 41; in its likelihood-ratio form, Lorden 1971) adds the evidence of consecutive,
non-overlapping blocks (a day, or the window when shorter), so such a shift still breaches
once the blocks together are conclusive. Each block's value is compared with the objective
in units of its own standard error (from its interval), so blocks with few rows weigh little.

The chart tests "value at the objective" against "value two window standard errors on the
wrong side": with W blocks per window a block's log-likelihood-ratio increment is
(2 / sqrt(W)) z - 2 / W, z the block's standardised distance beyond the objective. It breaches
at h = ln(W / (1 - confidence)). By Lorden's bound the in-control average run length is at
least e^h = W / (1 - confidence) blocks, i.e. 20 windows at 0.95 *for a value sitting exactly
on the objective*; a healthy value, on the good side, makes false alarms far rarer still.
"""

from __future__ import annotations

import math
from datetime import timedelta

from scipy import stats

from monitor.core.objectives import Objective
from monitor.core.values import MetricValue

Z_95 = 1.959963984540054
DAY = timedelta(days=1)


def z_for(confidence: float) -> float:
    """Two-sided normal quantile: 1.96 at 0.95."""
    return float(stats.norm.ppf(0.5 + confidence / 2))


def at_confidence(value: float, ci: tuple[float, float], confidence: float) -> tuple[float, float]:
    """A detector's 95% interval rescaled around its value to another confidence level."""
    scale = z_for(confidence) / Z_95
    return (value - (value - ci[0]) * scale, value + (ci[1] - value) * scale)


def block_length(window: timedelta) -> timedelta:
    """Blocks are days, or the whole window when it is shorter than a day."""
    return min(window, DAY)


def blocks_per_window(window: timedelta) -> int:
    return max(1, int(window / block_length(window)))


def cusum_threshold(window: timedelta, confidence: float) -> float:
    """h = ln(W / (1 - confidence)): an in-control run length of at least W / (1 - c) blocks."""
    return math.log(blocks_per_window(window) / (1 - confidence))


def standardised_shortfall(value: MetricValue, objective: Objective) -> float | None:
    """How many standard errors the block's value sits on the wrong side of the objective
    (negative on the good side); None when the block has no value or no interval."""
    if value.value is None or value.ci is None:
        return None
    se = (value.ci[1] - value.ci[0]) / (2 * Z_95)
    if se <= 0 or not math.isfinite(se):
        return None
    gap = objective.threshold - value.value
    return (gap if objective.higher_is_better else -gap) / se


def cusum_step(
    previous: float, block: MetricValue, objective: Objective, window: timedelta
) -> float:
    """One block's update of the one-sided CUSUM (reset at zero, never negative)."""
    z = standardised_shortfall(block, objective)
    if z is None:
        return previous
    w = blocks_per_window(window)
    return max(0.0, previous + 2 * z / math.sqrt(w) - 2 / w)
