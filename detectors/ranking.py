"""Ranking and probability quality of binary scores: ROC AUC, PR AUC, log loss, Brier, ECE.

AUCs and ECE come from the per-class score histograms (100 bins of [0, 1]): scores that share
a bin count as ties, which bounds the error by the mass of the busiest bin. Log loss and
Brier are exact, from per-row sums.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from detectors.base import (
    BINARY,
    NON_NEGATIVE,
    SHARE,
    MetricInfo,
    WindowSummary,
    quality_metric,
)
from detectors.intervals import hanley_mcneil_interval, logit_interval, mean_interval
from monitor.core.reference import ReferenceSummary
from monitor.core.summaries import SCORE_BINS, BucketSummary
from monitor.core.values import MetricValue

ECE_BINS = 10


def _info(name: str, description: str, bounds: tuple[float, float] = SHARE) -> MetricInfo:
    """Ranking and calibration read the score of the positive class: binary models only."""
    return quality_metric(name, description, frozenset({BINARY}), bounds=bounds, needs_score=True)


def class_hists(summary: BucketSummary) -> tuple[np.ndarray, np.ndarray]:
    """(positives, negatives) per score bin."""
    pos = np.zeros(SCORE_BINS)
    neg = np.zeros(SCORE_BINS)
    p, n = summary.class_score_hist.get("1", []), summary.class_score_hist.get("0", [])
    pos[: len(p)] = p
    neg[: len(n)] = n
    return pos, neg


def roc_auc_from_hists(pos: np.ndarray, neg: np.ndarray) -> float | None:
    """Mann–Whitney AUC with ties within a bin counted half."""
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return None
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    return float(np.sum(pos * (below + neg / 2)) / (n_pos * n_neg))


def average_precision_from_hists(pos: np.ndarray, neg: np.ndarray) -> float | None:
    """Average precision with one threshold per bin, as scikit-learn sums it."""
    n_pos = pos.sum()
    if n_pos == 0:
        return None
    tp = np.cumsum(pos[::-1])
    fp = np.cumsum(neg[::-1])
    taken = (tp + fp) > 0
    precision = np.where(taken, tp / np.maximum(tp + fp, 1), 1.0)
    recall = tp / n_pos
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * precision))


def expected_calibration_error(pos: np.ndarray, neg: np.ndarray) -> float | None:
    """ECE on 10 equal-width bins, each bin's confidence taken at its score bins' centres."""
    total = pos.sum() + neg.sum()
    if total == 0:
        return None
    centres = (np.arange(SCORE_BINS) + 0.5) / SCORE_BINS
    group = SCORE_BINS // ECE_BINS
    p = pos.reshape(ECE_BINS, group)
    count = (pos + neg).reshape(ECE_BINS, group)
    n_g = count.sum(axis=1)
    conf = (count * centres.reshape(ECE_BINS, group)).sum(axis=1)
    used = n_g > 0
    gaps = np.abs(p.sum(axis=1)[used] - conf[used])
    return float(gaps.sum() / total)


class Ranking:
    name: str = "ranking"
    metrics: tuple[MetricInfo, ...] = (
        _info("roc_auc", "how well scores rank positives above negatives (ROC AUC)"),
        _info("pr_auc", "average precision: precision across all recall levels"),
        _info(
            "log_loss",
            "mean negative log-likelihood of the labels (lower is better)",
            NON_NEGATIVE,
        ),
        _info("brier", "mean squared error of the scores as probabilities (lower is better)"),
        _info("ece", "expected calibration error on 10 bins (lower is better)"),
    )

    def compute(
        self, window: WindowSummary, reference: ReferenceSummary | None, now: datetime
    ) -> list[MetricValue]:
        label = window.label
        pos, neg = class_hists(window.summary)
        n_pos, n_neg = float(pos.sum()), float(neg.sum())
        n = int(n_pos + n_neg)
        auc = roc_auc_from_hists(pos, neg)
        ap = average_precision_from_hists(pos, neg)
        ece = expected_calibration_error(pos, neg)
        out = [
            MetricValue(
                "roc_auc",
                auc,
                n if auc is not None else 0,
                label,
                ci=hanley_mcneil_interval(auc, n_pos, n_neg) if auc is not None else None,
            ),
            MetricValue(
                "pr_auc",
                ap,
                n if ap is not None else 0,
                label,
                ci=logit_interval(ap, n_pos) if ap is not None else None,
            ),
            MetricValue("ece", ece, n if ece is not None else 0, label),
        ]
        sums = window.summary.prob_sums
        count = sums.get("n", 0.0)
        for metric in ("log_loss", "brier"):
            key = "logloss" if metric == "log_loss" else "brier"
            if count <= 0:
                out.append(MetricValue(metric, None, 0, label))
                continue
            mean = sums.get(key, 0.0) / count
            ci = mean_interval(sums.get(key, 0.0), sums.get(f"{key}_sq", 0.0), count)
            out.append(MetricValue(metric, mean, int(count), label, ci=(max(0.0, ci[0]), ci[1])))
        return out
