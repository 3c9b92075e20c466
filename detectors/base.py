"""The detector contract: a merged window (and the reference) in, metric values with `n` out.

A detector computes a family of metrics in one pass (all drift statistics share their
histograms); `metrics` declares each one with the alert kind it raises and whether
`min_samples` applies to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from monitor.reference import ReferenceSummary
from monitor.summaries import BucketSummary


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


@dataclass(frozen=True)
class MetricInfo:
    """What an SLO needs to know about a metric before judging it.

    `sample_gated`: whether `min_samples` applies (a quality estimate on 5 labels means
    little, but a prediction age is one exact observation however few rows arrived).
    """

    name: str
    family: str
    kind: str
    unit: str = ""
    sample_gated: bool = True
    needs_labels: bool = False
    description: str = ""


@dataclass(frozen=True)
class DetectorSettings:
    """Per-model choices detectors need: the decision threshold and the drift test's rules."""

    threshold: float = 0.5
    drift_alpha: float = 0.05
    drift_correction: str = "bh"
    drift_min_psi: float = 0.05


@dataclass(frozen=True)
class WindowSummary:
    """The merge of a window's buckets, plus what the stream positions tell about freshness.

    `baseline` holds the prediction counts of the same hour of the week in past weeks, for
    the volume detector; `last_bucket` is the count of the newest complete bucket.
    """

    label: str
    start: datetime
    end: datetime
    summary: BucketSummary
    newest_prediction: datetime | None
    newest_label: datetime | None = None
    last_bucket: int | None = None
    baseline: tuple[int, ...] = field(default_factory=tuple)
    settings: DetectorSettings = field(default_factory=DetectorSettings)

    def segment(self, key: str) -> WindowSummary:
        """The same window restricted to one segment, such as `country=DE`."""
        return WindowSummary(
            label=self.label,
            start=self.start,
            end=self.end,
            summary=self.summary.segments.get(key, BucketSummary()),
            newest_prediction=self.newest_prediction,
            newest_label=self.newest_label,
            settings=self.settings,
        )


class Detector(Protocol):
    name: str
    metrics: tuple[MetricInfo, ...]

    def compute(
        self, window: WindowSummary, reference: ReferenceSummary | None, now: datetime
    ) -> list[MetricValue]: ...
