"""What every stage passes along: a metric's value with its sample size, and the four
statuses a judged value can have."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OK, BREACH, UNCERTAIN, INSUFFICIENT = "ok", "breach", "uncertain", "insufficient_data"


@dataclass(frozen=True)
class MetricValue:
    """One number with its sample size; `value` is None when there is not enough data.

    `feature` names what the value is about where a metric has several: a feature, a class
    (`class=1`) or a segment (`country=DE`).
    """

    metric: str
    value: float | None
    n: int
    window: str
    feature: str | None = None
    ci: tuple[float, float] | None = None
    unit: str = ""
    root_cause: tuple[str, ...] = field(default=(), compare=False)
    """For a quality value that breaches: the top slices explaining its change, one line
    each (`detectors.root_cause`)."""
    root_cause_table: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    """Every slice's share, metric, mix and performance terms: the full table."""
