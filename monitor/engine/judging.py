"""Decides a value's status against its objective, knowing its sample size and interval.

A value with a confidence interval is a `breach` only when the whole interval is on the wrong
side of the objective, `ok` when the point estimate is on the right side, and `uncertain`
in between; too few samples is `insufficient_data`. So 40 labelled rows do not page anyone.
"""

from __future__ import annotations

from monitor.core.objectives import Objective
from monitor.core.values import BREACH, INSUFFICIENT, OK, UNCERTAIN, MetricValue


def judge(objective: Objective, value: MetricValue, min_samples: int, sample_gated: bool) -> str:
    if value.value is None:
        return INSUFFICIENT
    if sample_gated and value.n < min_samples:
        return INSUFFICIENT
    if objective.is_good(value.value):
        return OK
    if value.ci is None:
        return BREACH
    nearest_to_good = value.ci[1] if objective.higher_is_better else value.ci[0]
    return UNCERTAIN if objective.is_good(nearest_to_good) else BREACH
