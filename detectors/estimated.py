"""Quality estimated from scores alone, while labels lag (confidence-based estimation, CBPE).

The labelled reference calibrates each score bin to a probability of being positive
(isotonic regression); a window's score histogram then gives the expected
confusion matrix and ROC AUC without a single label. It is right while the relation between
score and outcome holds (no concept drift), which is exactly when labels are the slow part.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from scipy.optimize import isotonic_regression

from detectors.base import BINARY, SHARE, MetricInfo, WindowSummary
from detectors.intervals import hanley_mcneil_interval, wilson_interval
from detectors.ranking import roc_auc_from_hists
from monitor.core.reference import ReferenceSummary
from monitor.core.summaries import SCORE_BINS
from monitor.core.values import MetricValue


def _info(name: str, description: str) -> MetricInfo:
    """Estimates calibrate the positive class's score on the reference: binary models only."""
    return MetricInfo(
        name,
        "quality",
        "estimated_quality_drop",
        description=description,
        tasks=frozenset({BINARY}),
        bounds=SHARE,
        needs_score=True,
    )


def isotonic(rates: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The closest non-decreasing sequence in weighted least squares (pool adjacent violators,
    scipy's implementation)."""
    return np.asarray(isotonic_regression(rates, weights=weights, increasing=True).x)


def calibration_map(reference: ReferenceSummary) -> np.ndarray | None:
    """P(positive | score bin) from the labelled reference; empty bins fall back to the bin's
    own score, i.e. they assume the model is calibrated where the reference is silent."""
    pos = np.asarray(reference.class_score_hist.get("1", []), dtype=float)
    neg = np.asarray(reference.class_score_hist.get("0", []), dtype=float)
    if pos.size != SCORE_BINS or neg.size != SCORE_BINS or pos.sum() == 0 or neg.sum() == 0:
        return None
    counts = pos + neg
    centres = (np.arange(SCORE_BINS) + 0.5) / SCORE_BINS
    rates = np.where(counts > 0, pos / np.maximum(counts, 1), centres)
    weights = np.where(counts > 0, counts, 1e-6)
    return isotonic(rates, weights)


class Estimated:
    name: str = "estimated"
    metrics: tuple[MetricInfo, ...] = (
        _info("estimated.accuracy", "accuracy expected from the scores, before labels arrive"),
        _info("estimated.precision", "precision expected from the scores"),
        _info("estimated.recall", "recall expected from the scores"),
        _info("estimated.f1", "F1 expected from the scores"),
        _info("estimated.roc_auc", "ROC AUC expected from the scores"),
    )

    def compute(
        self, window: WindowSummary, reference: ReferenceSummary | None, now: datetime
    ) -> list[MetricValue]:
        label = window.label
        calibrated = calibration_map(reference) if reference is not None else None
        counts = np.zeros(SCORE_BINS)
        hist = window.summary.score_hist
        counts[: len(hist)] = hist
        n = int(counts.sum())
        if calibrated is None or n == 0:
            return [MetricValue(m.name, None, n, label) for m in self.metrics]
        exp_pos = counts * calibrated
        exp_neg = counts - exp_pos
        decided = np.arange(SCORE_BINS) / SCORE_BINS >= window.settings.threshold - 1e-12
        tp, fp = exp_pos[decided].sum(), exp_neg[decided].sum()
        fn, tn = exp_pos[~decided].sum(), exp_neg[~decided].sum()

        def share(metric: str, k: float, total: float) -> MetricValue:
            if total <= 0:
                return MetricValue(metric, None, 0, label)
            return MetricValue(metric, k / total, n, label, ci=wilson_interval(k, total))

        auc = roc_auc_from_hists(exp_pos, exp_neg)
        return [
            share("estimated.accuracy", tp + tn, n),
            share("estimated.precision", tp, tp + fp),
            share("estimated.recall", tp, tp + fn),
            share("estimated.f1", tp, tp + (fp + fn) / 2),
            MetricValue(
                "estimated.roc_auc",
                auc,
                n if auc is not None else 0,
                label,
                ci=hanley_mcneil_interval(auc, exp_pos.sum(), exp_neg.sum()) if auc else None,
            ),
        ]
