"""The explicit list of detectors: adding one is a module and a line here, nothing implicit."""

from __future__ import annotations

from detectors.base import Detector, MetricInfo
from detectors.classification import Classification
from detectors.data_quality import DataQuality
from detectors.drift import Drift
from detectors.estimated import Estimated
from detectors.freshness import Freshness
from detectors.ranking import Ranking
from detectors.regression import Regression

DETECTORS: dict[str, Detector] = {
    d.name: d
    for d in (
        Classification(),
        Ranking(),
        Regression(),
        Estimated(),
        Drift(),
        Freshness(),
        DataQuality(),
    )
}

METRICS: dict[str, tuple[MetricInfo, Detector]] = {
    info.name: (info, detector) for detector in DETECTORS.values() for info in detector.metrics
}


def metric_info(metric: str) -> MetricInfo:
    return METRICS[metric][0]


def detector_for(metric: str) -> Detector:
    return METRICS[metric][1]


def metric_names() -> dict[str, str]:
    """Every metric an SLO may name, with its family."""
    return {name: info.family for name, (info, _) in METRICS.items()}
