"""Classification quality from confusion counts: accuracy, precision, recall, F1, positive rate.

Proportions carry Wilson intervals. F1 is the share 2TP / (2TP + FP + FN), i.e. TP out of
TP + (FP + FN)/2 trials, and gets the Wilson interval of that share; macro averages combine
their classes' standard errors.
"""

from __future__ import annotations

import math
from datetime import datetime

from detectors.base import (
    BINARY,
    CLASSIFICATION,
    SHARE,
    MetricInfo,
    WindowSummary,
    quality_metric,
)
from detectors.intervals import Z_95, wilson_interval
from monitor.core.reference import PREDICTION_COLUMN, ReferenceSummary
from monitor.core.summaries import BucketSummary
from monitor.core.values import MetricValue

POSITIVE = "1"


def _quality(name: str, description: str) -> MetricInfo:
    return quality_metric(name, description, CLASSIFICATION)


def confusion_matrix(summary: BucketSummary) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for key, count in summary.confusion.items():
        truth, _, predicted = key.partition("|")
        out[(truth, predicted)] = out.get((truth, predicted), 0) + count
    return out


def _ratio(metric: str, k: float, n: float, window: str, feature: str | None) -> MetricValue:
    if n <= 0:
        return MetricValue(metric, None, 0, window, feature)
    return MetricValue(metric, k / n, round(n), window, feature, wilson_interval(k, n))


def _macro(metric: str, parts: list[MetricValue], window: str) -> MetricValue:
    usable = [p for p in parts if p.value is not None and p.ci is not None]
    if not usable:
        return MetricValue(metric, None, 0, window)
    mean = sum(p.value for p in usable if p.value is not None) / len(usable)
    se = math.sqrt(sum(((p.ci[1] - p.ci[0]) / (2 * Z_95)) ** 2 for p in usable if p.ci))
    se /= len(usable)
    n = sum(p.n for p in usable)
    ci = (max(0.0, mean - Z_95 * se), min(1.0, mean + Z_95 * se))
    return MetricValue(metric, mean, n, window, ci=ci)


class Classification:
    name: str = "classification"
    metrics: tuple[MetricInfo, ...] = (
        _quality("accuracy", "share of labelled predictions that were right"),
        _quality("precision", "share of positive decisions that were truly positive"),
        _quality("recall", "share of true positives the model caught"),
        _quality("f1", "harmonic mean of precision and recall"),
        _quality("macro_f1", "F1 averaged over classes"),
        MetricInfo(
            "positive_rate",
            "quality",
            "prediction_drift",
            description="share of all predictions that were positive (labels not needed)",
            tasks=frozenset({BINARY}),
            bounds=SHARE,
        ),
    )

    def compute(
        self, window: WindowSummary, reference: ReferenceSummary | None, now: datetime
    ) -> list[MetricValue]:
        label = window.label
        matrix = confusion_matrix(window.summary)
        total = sum(matrix.values())
        correct = sum(c for (t, p), c in matrix.items() if t == p)
        out = [_ratio("accuracy", correct, total, label, None)]
        classes = sorted({t for t, _ in matrix} | {p for _, p in matrix} - {"?"})
        binary = set(classes) <= {"0", "1"}
        per_class: dict[str, list[MetricValue]] = {"precision": [], "recall": [], "f1": []}
        for cls in classes:
            tp = matrix.get((cls, cls), 0)
            predicted = sum(c for (_, p), c in matrix.items() if p == cls)
            actual = sum(c for (t, _), c in matrix.items() if t == cls)
            feature = None if binary and cls == POSITIVE else f"class={cls}"
            values = {
                "precision": _ratio("precision", tp, predicted, label, feature),
                "recall": _ratio("recall", tp, actual, label, feature),
                "f1": _ratio("f1", tp, tp + (predicted - tp + actual - tp) / 2, label, feature),
            }
            for metric, value in values.items():
                per_class[metric].append(value)
                if not binary or cls == POSITIVE:
                    out.append(value)
        if binary and POSITIVE not in classes:
            out += [MetricValue(m, None, 0, label) for m in ("precision", "recall", "f1")]
        out.append(_macro("macro_f1", per_class["f1"], label))
        if not binary:
            out += [_macro(m, per_class[m], label) for m in ("precision", "recall", "f1")]
        out.append(self._positive_rate(window))
        return out

    @staticmethod
    def _positive_rate(window: WindowSummary) -> MetricValue:
        decided = window.summary.categorical.get(PREDICTION_COLUMN, {})
        n = sum(decided.values())
        return _ratio("positive_rate", decided.get(POSITIVE, 0), n, window.label, None)
