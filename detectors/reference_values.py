"""A metric's value on the reference, and how much it varies over windows of n rows.

Relative objectives (`>= reference - 0.01`, `auto`) need both. The labelled reference keeps
its score histogram per class, so a binary classifier's quality metrics (and the estimates,
which on the reference equal their calibrated selves) can be computed on it as on a window.
The standard deviation a window of n rows would show is the reference's own, scaled by
sqrt(n_ref / n): every interval here is a sampling interval whose variance falls as 1 / n.
A window judged against the reference differs from it by both samples' errors
(`sd_from_reference`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np

from detectors.base import Detector, DetectorSettings, WindowSummary
from detectors.intervals import Z_95
from monitor.core.reference import ReferenceSummary
from monitor.core.summaries import SCORE_BINS, BucketSummary
from monitor.core.values import MetricValue

LOWER_IS_BETTER = frozenset({"log_loss", "brier", "ece", "mae", "rmse", "mape"})
"""Quality metrics where less is better; every other quality metric is better higher."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


RELATIVE_METRICS = frozenset(
    {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "pr_auc",
        "log_loss",
        "brier",
        "ece",
        "positive_rate",
        "estimated.accuracy",
        "estimated.precision",
        "estimated.recall",
        "estimated.f1",
        "estimated.roc_auc",
    }
)
"""Metrics the labelled reference of a binary classifier gives a value for."""


def higher_is_better(metric: str) -> bool:
    return metric.removeprefix("estimated.") not in LOWER_IS_BETTER


def relative_problem(metric: str, task: str) -> str | None:
    """Why an objective relative to the reference cannot work for this metric, or None."""
    if task != "binary_classification":
        return "objectives relative to the reference need a binary classifier's reference"
    if metric not in RELATIVE_METRICS:
        return f"the reference has no value of {metric}; use a fixed objective"
    return None


def reference_window(
    reference: ReferenceSummary, settings: DetectorSettings
) -> WindowSummary | None:
    """The labelled reference as a window: score histograms, confusion counts at the model's
    threshold, labelled rows. None when the reference has no per-class scores (not binary)."""
    pos = np.asarray(reference.class_score_hist.get("1", []), dtype=np.int64)
    neg = np.asarray(reference.class_score_hist.get("0", []), dtype=np.int64)
    if pos.size != SCORE_BINS or neg.size != SCORE_BINS or pos.sum() + neg.sum() == 0:
        return None
    decided = np.arange(SCORE_BINS) / SCORE_BINS >= settings.threshold - 1e-12
    confusion = {
        "1|1": int(pos[decided].sum()),
        "1|0": int(pos[~decided].sum()),
        "0|1": int(neg[decided].sum()),
        "0|0": int(neg[~decided].sum()),
    }
    total = int(pos.sum() + neg.sum())
    summary = BucketSummary(
        n=total,
        score_hist=[int(x) for x in pos + neg],
        n_labelled=total,
        confusion={k: v for k, v in confusion.items() if v},
        class_score_hist={"1": [int(x) for x in pos], "0": [int(x) for x in neg]},
    )
    return WindowSummary("reference", EPOCH, EPOCH, summary, None, settings=settings)


def reference_value(
    metric: str, detector: Detector, reference: ReferenceSummary, settings: DetectorSettings
) -> MetricValue | None:
    """The metric on the reference (with its interval at the reference's n), or None."""
    window = reference_window(reference, settings)
    if window is None:
        return None
    for value in detector.compute(window, reference, EPOCH):
        if value.metric == metric and value.feature is None and value.value is not None:
            return value
    return None


def sd_at(value: MetricValue, n: int) -> float | None:
    """The standard deviation of the metric over windows of n rows, from the reference's."""
    if value.ci is None or value.n <= 0 or n <= 0:
        return None
    sd = (value.ci[1] - value.ci[0]) / (2 * Z_95)
    return sd * math.sqrt(value.n / n) if math.isfinite(sd) else None


def sd_from_reference(value: MetricValue, n: int) -> float | None:
    """The standard deviation of a window of n rows' value minus the reference's own, when
    both are drawn from the same population: the reference is a sample too, so its error
    adds to the window's (sqrt(sd_n^2 + sd_ref^2)). `auto` needs this, not `sd_at` alone:
    a 30-day window of 1,000 rows a day holds more rows than a 20,000-row reference, and a
    threshold of 3 window standard deviations then sat within 2 of the difference's, so a
    quiet benchmark year paged for 26 days on the reference's luck."""
    window = sd_at(value, n)
    own = sd_at(value, value.n)
    if window is None or own is None:
        return None
    return math.hypot(window, own)
