"""Drift of each feature against the reference, from bucket histograms on the reference's bins."""

from __future__ import annotations

from datetime import datetime

from detectors.base import MetricValue, WindowSummary
from detectors.stats import psi
from monitor.reference import ReferenceSummary


class PSI:
    """Population stability index per feature; missing values are left to their own metric."""

    name = "drift.psi"
    family = "drift"
    kind = "feature_drift"
    unit = ""
    sample_gated = True

    def compute(
        self, window: WindowSummary, reference: ReferenceSummary | None, now: datetime
    ) -> list[MetricValue]:
        if reference is None:
            return []
        out: list[MetricValue] = []
        summary = window.summary
        for name, ref in reference.numeric.items():
            counts = summary.numeric.get(name, [])
            n = sum(counts)
            if n == 0 or sum(ref.counts) == 0 or len(counts) != len(ref.counts):
                out.append(MetricValue(self.name, None, n, window.label, feature=name))
                continue
            out.append(
                MetricValue(self.name, psi(ref.counts, counts), n, window.label, feature=name)
            )
        for name, cat_ref in reference.categorical.items():
            current = summary.categorical.get(name, {})
            n = sum(current.values())
            if n == 0 or not cat_ref.counts:
                out.append(MetricValue(self.name, None, n, window.label, feature=name))
                continue
            categories = sorted(cat_ref.counts.keys() | current.keys())
            value = psi(
                [cat_ref.counts.get(c, 0) for c in categories],
                [current.get(c, 0) for c in categories],
            )
            out.append(MetricValue(self.name, value, n, window.label, feature=name))
        return out
