"""The detector contract: a merged window (and the reference) in, metric values with `n` out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from monitor.reference import ReferenceSummary
from monitor.summaries import BucketSummary


@dataclass(frozen=True)
class MetricValue:
    """One number with its sample size; `value` is None when there is not enough data."""

    metric: str
    value: float | None
    n: int
    window: str
    feature: str | None = None
    ci: tuple[float, float] | None = None
    unit: str = ""


@dataclass(frozen=True)
class WindowSummary:
    """The merge of a window's buckets, plus the newest prediction ever read for freshness."""

    label: str
    start: datetime
    end: datetime
    summary: BucketSummary
    newest_prediction: datetime | None


class Detector(Protocol):
    """`kind` is the alert kind (and runbook) a breach of this metric raises.

    `sample_gated` says whether `min_samples` applies: a quality estimate on 5 labels means
    little, but a prediction age is one exact observation however few rows arrived.
    """

    name: str
    family: str
    kind: str
    unit: str
    sample_gated: bool

    def compute(
        self, window: WindowSummary, reference: ReferenceSummary | None, now: datetime
    ) -> list[MetricValue]: ...
