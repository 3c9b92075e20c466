"""Quality estimated from scores alone, while labels lag (confidence-based estimation, CBPE).

The labelled reference calibrates each score bin to a probability of being positive
(isotonic regression); a window's score histogram then gives the expected
confusion matrix and ROC AUC without a single label. It is right while the relation between
score and outcome holds (no concept drift), which is exactly when labels are the slow part.

Each estimate carries the sampling interval *of the estimate*: with the calibration map fixed,
an estimate is a smooth function f(p) of the window's score-bin shares p, and p is a
multinomial sample of n scores, so the delta method gives Var f = (sum_i p_i g_i^2 -
(sum_i p_i g_i)^2) / n with g = grad f (the analytic variance of the CBPE estimator given the
scores). It is far narrower than the interval a labelled sample of n rows would have (no
label noise enters), which is why a Wilson or Hanley–McNeil interval here would hide a
sustained drop behind an interval ten times too wide.

A multiclass model with `scores:` is estimated one class against the rest (multiclass CBPE,
as NannyML does it): each class's score is calibrated on the reference's rows of that class
and of the others, the window's histogram of that score gives the class's expected
one-vs-rest confusion and ROC AUC (`feature="class=X"`), `estimated.roc_auc` is their mean
(macro), and `estimated.accuracy` is the expected share of rows whose decided class is true:
the calibrated probability of the decided class, summed over rows. Precision, recall and F1
estimates stay binary.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import numpy as np
from scipy.optimize import isotonic_regression

from detectors.base import BINARY, CLASSIFICATION, MetricInfo, WindowSummary, quality_metric
from detectors.intervals import Z_95
from detectors.ranking import average, ovr_hists, roc_auc_from_hists
from monitor.core.reference import ReferenceSummary
from monitor.core.summaries import SCORE_BINS, BucketSummary
from monitor.core.values import MetricValue


def _info(name: str, description: str, tasks: frozenset[str] = frozenset({BINARY})) -> MetricInfo:
    """Estimates calibrate the positive class's score (multiclass: each class's) on the
    reference; precision, recall and F1 estimates are for binary models only."""
    return quality_metric(name, description, tasks, needs_score=True, estimated=True)


def isotonic(rates: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The closest non-decreasing sequence in weighted least squares (pool adjacent violators,
    scipy's implementation)."""
    return np.asarray(isotonic_regression(rates, weights=weights, increasing=True).x)


def calibration_map(reference: ReferenceSummary) -> np.ndarray | None:
    """P(positive | score bin) from the labelled reference; empty bins fall back to the bin's
    own score, i.e. they assume the model is calibrated where the reference is silent."""
    pos = np.asarray(reference.class_score_hist.get("1", []), dtype=float)
    neg = np.asarray(reference.class_score_hist.get("0", []), dtype=float)
    return calibrate(pos, neg)


def calibrate(pos: np.ndarray, neg: np.ndarray) -> np.ndarray | None:
    """P(positive | score bin) from the positives' and negatives' histograms (isotonic)."""
    if pos.size != SCORE_BINS or neg.size != SCORE_BINS or pos.sum() == 0 or neg.sum() == 0:
        return None
    counts = pos + neg
    centres = (np.arange(SCORE_BINS) + 0.5) / SCORE_BINS
    rates = np.where(counts > 0, pos / np.maximum(counts, 1), centres)
    weights = np.where(counts > 0, counts, 1e-6)
    return isotonic(rates, weights)


def delta_interval(
    value: float, shares: np.ndarray, grad: np.ndarray, n: float
) -> tuple[float, float]:
    """Normal interval from the delta method for a function of multinomial shares."""
    mean = float(np.sum(shares * grad))
    variance = max(float(np.sum(shares * grad * grad)) - mean * mean, 0.0) / max(n, 1.0)
    half = Z_95 * float(np.sqrt(variance))
    return (max(0.0, value - half), min(1.0, value + half))


def auc_gradient(c: np.ndarray, shares: np.ndarray, auc: float) -> np.ndarray:
    """d AUC / d p_k for AUC = sum_{i>j} pos_i neg_j (+ ties halved) / (Pos * Neg), with
    pos = p * c and neg = p * (1 - c)."""
    pos, neg = shares * c, shares * (1 - c)
    total_pos, total_neg = pos.sum(), neg.sum()
    neg_below = np.concatenate([[0.0], np.cumsum(neg)[:-1]]) + neg / 2
    pos_above = (total_pos - np.cumsum(pos)) + pos / 2
    d_numerator = c * neg_below + (1 - c) * pos_above
    return np.asarray(
        d_numerator / (total_pos * total_neg) - auc * (c / total_pos + (1 - c) / total_neg)
    )


class Estimated:
    name: str = "estimated"
    metrics: tuple[MetricInfo, ...] = (
        _info(
            "estimated.accuracy",
            "accuracy expected from the scores, before labels arrive",
            CLASSIFICATION,
        ),
        _info("estimated.precision", "precision expected from the scores"),
        _info("estimated.recall", "recall expected from the scores"),
        _info("estimated.f1", "F1 expected from the scores"),
        _info(
            "estimated.roc_auc",
            "ROC AUC expected from the scores (multiclass: one class against the rest, "
            "per class and their mean)",
            CLASSIFICATION,
        ),
    )

    def compute(
        self, window: WindowSummary, reference: ReferenceSummary | None, now: datetime
    ) -> list[MetricValue]:
        label = window.label
        if reference is not None and reference.ovr_score_hist:
            return multiclass_estimates(window.summary, reference, label)
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

        shares = counts / n
        d = decided.astype(float)
        c = calibrated
        pd_, pc = float(np.sum(shares * d)), float(np.sum(shares * c))
        # Each metric as a ratio of linear functionals of the shares, and its gradient at v.
        ratios: dict[str, tuple[float, float, Callable[[float], np.ndarray]]] = {
            "estimated.accuracy": (tp + tn, n, lambda v: c * d + (1 - c) * (1 - d)),
            "estimated.precision": (tp, tp + fp, lambda v: d * (c - v) / pd_),
            "estimated.recall": (tp, tp + fn, lambda v: c * (d - v) / pc),
            "estimated.f1": (
                tp,
                tp + (fp + fn) / 2,
                lambda v: (2 * c * d - v * (c + d)) / (pd_ + pc),
            ),
        }
        out: list[MetricValue] = []
        for metric, (k, total, grad) in ratios.items():
            if total <= 0:
                out.append(MetricValue(metric, None, 0, label))
                continue
            v = float(k / total)
            out.append(MetricValue(metric, v, n, label, ci=delta_interval(v, shares, grad(v), n)))
        auc = roc_auc_from_hists(exp_pos, exp_neg)
        auc_ci = None
        if auc is not None:
            auc_ci = delta_interval(auc, shares, auc_gradient(c, shares, auc), n)
        out.append(
            MetricValue("estimated.roc_auc", auc, n if auc is not None else 0, label, ci=auc_ci)
        )
        return out


def multiclass_estimates(
    summary: BucketSummary, reference: ReferenceSummary, label: str
) -> list[MetricValue]:
    """Multiclass CBPE: per class, its calibrated score over the window's rows decided as it
    (`class|1`) and not (`class|0`) gives its expected one-vs-rest confusion and ROC AUC."""
    calibrations = {
        cls: calibrate(pos, neg) for cls, (pos, neg) in ovr_hists(reference.ovr_score_hist).items()
    }
    window = ovr_hists(summary.scores_hist)
    aucs: list[MetricValue] = []
    correct_shares: list[np.ndarray] = []
    correct_grads: list[np.ndarray] = []
    rows = max((float((d + r).sum()) for d, r in window.values()), default=0.0)
    for cls, (decided, rest) in window.items():
        c = calibrations.get(cls)
        counts = decided + rest
        n = float(counts.sum())
        if c is None or n == 0:
            aucs.append(MetricValue("estimated.roc_auc", None, 0, label, f"class={cls}"))
            continue
        shares = counts / n
        auc = roc_auc_from_hists(counts * c, counts * (1 - c))
        ci = (
            delta_interval(auc, shares, auc_gradient(c, shares, auc), n)
            if auc is not None
            else None
        )
        aucs.append(MetricValue("estimated.roc_auc", auc, int(n), label, f"class={cls}", ci))
        correct_shares.append(decided / rows)
        correct_grads.append(c)
    macro = average("estimated.roc_auc", aucs, [1.0] * len(aucs), label)
    if not correct_shares or len(correct_shares) < len(window):
        accuracy = MetricValue("estimated.accuracy", None, int(rows), label)
    else:
        # each row sits in exactly one `class|1` cell (its decided class) or in none
        shares = np.concatenate(
            [*correct_shares, [max(0.0, 1 - sum(s.sum() for s in correct_shares))]]
        )
        grads = np.concatenate([*correct_grads, [0.0]])
        value = float(np.sum(shares * grads))
        ci = delta_interval(value, shares, grads, rows)
        accuracy = MetricValue("estimated.accuracy", value, int(rows), label, ci=ci)
    others = [
        MetricValue(m, None, 0, label)
        for m in ("estimated.precision", "estimated.recall", "estimated.f1")
    ]
    return [accuracy, *others, *aucs, macro]
