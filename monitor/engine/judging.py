"""Decides a value's status against its objective, and which rule decided it.

A value is `ok` when its point estimate is on the right side (rule `point`); too few samples
is `insufficient_data` (rule `min_samples`). Otherwise it is a `breach` when one of three
rules says so, and `uncertain` when none does:

- `interval`: the whole interval (at the SLO's confidence) is on the wrong side, so 40
  labelled rows do not page anyone;
- `sequential`: Page's CUSUM over consecutive blocks is conclusive
  (monitor/engine/sequential.py): a lasting shift too small for one window's interval
  still breaches;
- `point`: the point estimate has stayed on the wrong side for a whole window, so an SLO
  never stays `uncertain` forever. A value without an interval breaches on its point.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from monitor.core.objectives import Objective
from monitor.core.values import BREACH, INSUFFICIENT, OK, UNCERTAIN, MetricValue
from monitor.engine.sequential import at_confidence

RULES = ("point", "interval", "sequential", "min_samples", "reference")
"""`reference`: a relative objective the reference has no value for (insufficient data)."""


@dataclass(frozen=True)
class Decision:
    """A status and the rule that decided it (one of RULES)."""

    status: str
    rule: str


def decide(
    objective: Objective,
    value: MetricValue,
    min_samples: int,
    sample_gated: bool,
    *,
    confidence: float = 0.95,
    evidence: bool = False,
    wrong_for: timedelta | None = None,
    window: timedelta | None = None,
) -> Decision:
    """`evidence`: the sequential chart is past its threshold; `wrong_for`: how long the point
    estimate has been on the wrong side; `window`: the SLO's window."""
    if value.value is None or (sample_gated and value.n < min_samples):
        return Decision(INSUFFICIENT, "min_samples")
    if objective.is_good(value.value):
        return Decision(OK, "point")
    if value.ci is None:
        return Decision(BREACH, "point")
    low, high = at_confidence(value.value, value.ci, confidence)
    if not objective.is_good(high if objective.higher_is_better else low):
        return Decision(BREACH, "interval")
    if evidence:
        return Decision(BREACH, "sequential")
    if wrong_for is not None and window is not None and wrong_for >= window:
        return Decision(BREACH, "point")
    return Decision(UNCERTAIN, "interval")


def judge(objective: Objective, value: MetricValue, min_samples: int, sample_gated: bool) -> str:
    """The status by the point and interval rules alone, at 95%."""
    return decide(objective, value, min_samples, sample_gated).status
