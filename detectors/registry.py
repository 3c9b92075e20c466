"""The explicit list of detectors: adding one is a module and a line here, nothing implicit."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TypeVar

from detectors.base import Detector, MetricInfo
from detectors.classification import Classification
from detectors.data_quality import DataQuality
from detectors.drift import Drift
from detectors.estimated import Estimated
from detectors.freshness import Freshness
from detectors.ranking import Ranking
from detectors.regression import Regression

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class DuplicateRegistration(ValueError):
    """Two plug-ins claimed one name: a silent overwrite would change what an SLO measures."""


def unique(pairs: Iterable[tuple[K, V]], what: str) -> dict[K, V]:
    """A registry dict from (name, item) pairs that refuses a name given twice."""
    out: dict[K, V] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateRegistration(f"{what} {key!r} is registered twice")
        out[key] = value
    return out


def build_registries(
    detectors: Iterable[Detector],
) -> tuple[dict[str, Detector], dict[str, tuple[MetricInfo, Detector]]]:
    found = unique(((d.name, d) for d in detectors), "detector")
    metrics = unique(
        ((info.name, (info, d)) for d in found.values() for info in d.metrics), "metric"
    )
    return found, metrics


DETECTORS, METRICS = build_registries(
    (
        Classification(),
        Ranking(),
        Regression(),
        Estimated(),
        Drift(),
        Freshness(),
        DataQuality(),
    )
)


def metric_info(metric: str) -> MetricInfo:
    return METRICS[metric][0]


def detector_for(metric: str) -> Detector:
    return METRICS[metric][1]


def metric_names() -> dict[str, str]:
    """Every metric an SLO may name, with its family."""
    return {name: info.family for name, (info, _) in METRICS.items()}
