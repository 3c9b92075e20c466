"""The detector contract: a merged window (and the reference) in, metric values with `n` out.

A detector computes a family of metrics in one pass (all drift statistics share their
histograms); `metrics` declares each one with the alert kind it raises and whether
`min_samples` applies to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from monitor.core.reference import ReferenceSummary
from monitor.core.summaries import BucketSummary
from monitor.core.values import MetricValue

BINARY = "binary_classification"
MULTICLASS = "multiclass_classification"
REGRESSION = "regression"
ALL_TASKS = frozenset({BINARY, MULTICLASS, REGRESSION})
CLASSIFICATION = frozenset({BINARY, MULTICLASS})
SHARE = (0.0, 1.0)
"""The bounds of a proportion."""
NON_NEGATIVE = (0.0, math.inf)


@dataclass(frozen=True)
class MetricInfo:
    """What an SLO needs to know about a metric before judging it.

    `sample_gated`: whether `min_samples` applies (a quality estimate on 5 labels means
    little, but a prediction age is one exact observation however few rows arrived).
    `tasks`, `unit` and `bounds` let `vigil config check` refuse an SLO that cannot work:
    ROC AUC on a multiclass model, an age objective without a unit, an accuracy of 1.5.
    """

    name: str
    family: str
    kind: str
    unit: str = ""
    sample_gated: bool = True
    needs_labels: bool = False
    description: str = ""
    tasks: frozenset[str] = ALL_TASKS
    bounds: tuple[float, float] = (-math.inf, math.inf)
    needs_score: bool = False


def quality_metric(
    name: str,
    description: str,
    tasks: frozenset[str],
    *,
    bounds: tuple[float, float] = SHARE,
    needs_score: bool = False,
    estimated: bool = False,
) -> MetricInfo:
    """A model-quality metric, built in one place for every quality detector's table: judged
    on labels (`quality_drop`), or, `estimated`, from the scores alone before labels arrive."""
    return MetricInfo(
        name,
        "quality",
        "estimated_quality_drop" if estimated else "quality_drop",
        needs_labels=not estimated,
        description=description,
        tasks=tasks,
        bounds=bounds,
        needs_score=needs_score,
    )


@dataclass(frozen=True)
class DetectorSettings:
    """Per-model choices detectors need: the decision threshold and the drift test's rules.

    A feature drifts when its corrected test is significant *and* an effect size clears its
    floor: PSI for every feature, or (numeric features) the Wasserstein distance in reference
    standard deviations, which sees a spread or mean change that PSI's deciles barely register
    (+20% spread is W = 0.16 sd at PSI < 0.05). bench/drift_effect_bench.py justifies both.
    """

    threshold: float = 0.5
    drift_alpha: float = 0.05
    drift_correction: str = "bh"
    drift_min_psi: float = 0.05
    drift_min_wasserstein: float = 0.075
    drift_noise_level: float = 0.001
    """Each floor rises to the effect size sampling noise alone exceeds this rarely; 0: off."""


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
        """The same window restricted to one segment, such as `country=DE`: only the counts
        change; stream times and settings stay the model's."""
        return replace(self, summary=self.summary.segments.get(key, BucketSummary()))


@dataclass(frozen=True)
class WindowContext:
    """What the engine knows beside a window's buckets and hands to every detector."""

    newest_prediction: datetime | None = None
    newest_label: datetime | None = None
    last_bucket: int | None = None
    baseline: tuple[int, ...] = ()
    settings: DetectorSettings = field(default_factory=DetectorSettings)


class Detector(Protocol):
    name: str
    metrics: tuple[MetricInfo, ...]

    def compute(
        self, window: WindowSummary, reference: ReferenceSummary | None, now: datetime
    ) -> list[MetricValue]: ...
