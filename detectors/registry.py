"""The explicit list of detectors: adding one is a module and a line here, nothing implicit."""

from __future__ import annotations

from detectors.base import Detector
from detectors.drift import PSI
from detectors.freshness import PredictionAge
from detectors.quality import Accuracy

DETECTORS: dict[str, Detector] = {
    detector.name: detector for detector in (Accuracy(), PSI(), PredictionAge())
}


def metric_names() -> dict[str, str]:
    """Every metric an SLO may name, with its family (quality, drift, freshness)."""
    return {name: detector.family for name, detector in DETECTORS.items()}
