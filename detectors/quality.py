"""Quality detectors computed from the confusion counts of labelled predictions."""

from __future__ import annotations

from datetime import datetime

from detectors.base import MetricValue, WindowSummary
from detectors.stats import wilson_interval
from monitor.reference import ReferenceSummary


class Accuracy:
    """Share of labelled predictions whose decision matched the label, with a Wilson interval."""

    name = "accuracy"
    family = "quality"
    kind = "quality_drop"
    unit = ""
    sample_gated = True

    def compute(
        self, window: WindowSummary, reference: ReferenceSummary | None, now: datetime
    ) -> list[MetricValue]:
        confusion = window.summary.confusion
        n = sum(confusion.values())
        if n == 0:
            return [MetricValue(self.name, None, 0, window.label)]
        correct = sum(c for key, c in confusion.items() if key.split("|")[0] == key.split("|")[1])
        return [
            MetricValue(self.name, correct / n, n, window.label, ci=wilson_interval(correct, n))
        ]
