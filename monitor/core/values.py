"""What every stage passes along: a metric's value with its sample size, and the four
statuses a judged value can have."""

from __future__ import annotations

from dataclasses import dataclass

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
