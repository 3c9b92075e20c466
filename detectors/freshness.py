"""Freshness and volume: is data arriving, are labels arriving, and at the usual rate?"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from detectors.base import NON_NEGATIVE, SHARE, MetricInfo, WindowSummary
from detectors.intervals import poisson_interval, wilson_interval
from monitor.core.reference import ReferenceSummary
from monitor.core.summaries import LAG_EDGES_S
from monitor.core.values import MetricValue


def lag_quantile(hist: list[int], q: float) -> float | None:
    """Quantile of the label delay, interpolated log-linearly inside its bin."""
    counts = np.asarray(hist, dtype=float)
    total = counts.sum()
    if total == 0:
        return None
    target = q * total
    cumulative = np.cumsum(counts)
    index = int(np.searchsorted(cumulative, target, side="left"))
    edges = [1.0, *LAG_EDGES_S, LAG_EDGES_S[-1] * 2.0]
    low, high = edges[index], edges[index + 1]
    before = cumulative[index - 1] if index else 0.0
    fraction = (target - before) / counts[index] if counts[index] else 0.0
    return float(math.exp(math.log(low) + fraction * (math.log(high) - math.log(low))))


class Freshness:
    name: str = "freshness"
    metrics: tuple[MetricInfo, ...] = (
        MetricInfo(
            "freshness.prediction_age",
            "freshness",
            "stale_predictions",
            "s",
            sample_gated=False,
            bounds=NON_NEGATIVE,
            description="time since the newest prediction",
        ),
        MetricInfo(
            "freshness.label_age",
            "freshness",
            "stale_labels",
            "s",
            sample_gated=False,
            bounds=NON_NEGATIVE,
            description="time since the newest label arrived",
        ),
        MetricInfo(
            "freshness.label_lag_p50",
            "freshness",
            "stale_labels",
            "s",
            bounds=NON_NEGATIVE,
            description="median delay from prediction to label",
        ),
        MetricInfo(
            "freshness.label_lag_p95",
            "freshness",
            "stale_labels",
            "s",
            bounds=NON_NEGATIVE,
            description="95th percentile delay from prediction to label",
        ),
        MetricInfo(
            "label_coverage",
            "freshness",
            "stale_labels",
            bounds=SHARE,
            description="share of the window's predictions that have a label",
        ),
        MetricInfo(
            "volume.ratio",
            "freshness",
            "volume_anomaly",
            sample_gated=False,
            bounds=NON_NEGATIVE,
            description="predictions in the last hour against the same hour in past weeks",
        ),
    )

    def compute(
        self, window: WindowSummary, reference: ReferenceSummary | None, now: datetime
    ) -> list[MetricValue]:
        summary, label = window.summary, window.label
        out = [
            self._age("freshness.prediction_age", window.newest_prediction, summary.n, label, now),
            self._age("freshness.label_age", window.newest_label, summary.n_labelled, label, now),
        ]
        for metric, q in (("freshness.label_lag_p50", 0.5), ("freshness.label_lag_p95", 0.95)):
            value = lag_quantile(summary.lag_hist, q)
            out.append(MetricValue(metric, value, sum(summary.lag_hist), label, unit="s"))
        if summary.n:
            labelled = min(summary.n_labelled, summary.n)
            out.append(
                MetricValue(
                    "label_coverage",
                    labelled / summary.n,
                    summary.n,
                    label,
                    ci=wilson_interval(labelled, summary.n),
                )
            )
        else:
            out.append(MetricValue("label_coverage", None, 0, label))
        out.append(self._volume(window))
        return out

    @staticmethod
    def _age(
        metric: str, newest: datetime | None, n: int, label: str, now: datetime
    ) -> MetricValue:
        if newest is None:
            return MetricValue(metric, None, n, label, unit="s")
        return MetricValue(metric, max(0.0, (now - newest).total_seconds()), n, label, unit="s")

    @staticmethod
    def _volume(window: WindowSummary) -> MetricValue:
        if window.last_bucket is None or not window.baseline:
            return MetricValue("volume.ratio", None, 0, window.label)
        expected = sum(window.baseline) / len(window.baseline)
        if expected <= 0:
            return MetricValue("volume.ratio", None, 0, window.label)
        low, high = poisson_interval(window.last_bucket)
        return MetricValue(
            "volume.ratio",
            window.last_bucket / expected,
            round(expected),
            window.label,
            ci=(low / expected, high / expected),
        )
