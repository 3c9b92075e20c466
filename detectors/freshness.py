"""Freshness: how long since the model last logged a prediction that Vigil could read."""

from __future__ import annotations

from datetime import datetime

from detectors.base import MetricValue, WindowSummary
from monitor.reference import ReferenceSummary


class PredictionAge:
    """Seconds since the newest prediction read; `n` is the predictions seen in the window."""

    name = "freshness.prediction_age"
    family = "freshness"
    kind = "stale_predictions"
    unit = "s"
    sample_gated = False

    def compute(
        self, window: WindowSummary, reference: ReferenceSummary | None, now: datetime
    ) -> list[MetricValue]:
        newest = window.newest_prediction
        n = window.summary.n
        if newest is None:
            return [MetricValue(self.name, None, n, window.label, unit=self.unit)]
        age = max(0.0, (now - newest).total_seconds())
        return [MetricValue(self.name, age, n, window.label, unit=self.unit)]
