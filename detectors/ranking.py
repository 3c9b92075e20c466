"""Ranking and probability quality of scores: ROC AUC, PR AUC, log loss, Brier, ECE.

AUCs and ECE come from the per-class score histograms (100 bins of [0, 1]): scores that share
a bin count as ties, which bounds the error by the mass of the busiest bin. Log loss and
Brier are exact, from per-row sums.

A multiclass model with `scores:` is judged one class against the rest, as scikit-learn's
`multi_class="ovr"`: `roc_auc` and `ece` per class (`feature="class=X"`), `roc_auc` and
`macro_roc_auc` as their mean over classes, `weighted_roc_auc` weighted by each class's
prevalence, `ece` as the mean of the classes' ECE (class-wise calibration); log loss and
Brier (summed over classes, against the one-hot truth) come from per-row sums as for binary.
An average's interval combines its classes' standard errors as if they were independent.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from detectors.base import (
    BINARY,
    CLASSIFICATION,
    NON_NEGATIVE,
    SHARE,
    MetricInfo,
    WindowSummary,
    quality_metric,
)
from detectors.intervals import Z_95, hanley_mcneil_interval, logit_interval, mean_interval
from monitor.core.reference import ReferenceSummary
from monitor.core.summaries import SCORE_BINS, BucketSummary, ovr_key
from monitor.core.values import MetricValue

ECE_BINS = 10


def _info(
    name: str,
    description: str,
    bounds: tuple[float, float] = SHARE,
    tasks: frozenset[str] = CLASSIFICATION,
) -> MetricInfo:
    """Ranking and calibration read scores: the positive class's, or each class's (`scores:`)."""
    return quality_metric(name, description, tasks, bounds=bounds, needs_score=True)


def bins_of(counts: list[int] | None) -> np.ndarray:
    """A stored histogram as SCORE_BINS floats (missing or short: zeros)."""
    out = np.zeros(SCORE_BINS)
    if counts:
        out[: len(counts)] = counts
    return out


def class_hists(summary: BucketSummary) -> tuple[np.ndarray, np.ndarray]:
    """(positives, negatives) per score bin."""
    return bins_of(summary.class_score_hist.get("1")), bins_of(summary.class_score_hist.get("0"))


def ovr_hists(hists: dict[str, list[int]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per class, its score's histogram over (the class's rows, the other rows), from the
    `class|1` / `class|0` keys of a multiclass summary."""
    classes = sorted({key.rpartition("|")[0] for key in hists})
    return {
        c: (bins_of(hists.get(ovr_key(c, True))), bins_of(hists.get(ovr_key(c, False))))
        for c in classes
    }


def average(
    metric: str, parts: list[MetricValue], weights: list[float], window: str
) -> MetricValue:
    """The weighted mean of the classes' values that exist; its standard error combines
    theirs (each read off its 95% interval) as independent."""
    usable = [(p, w) for p, w in zip(parts, weights, strict=True) if p.value is not None and w > 0]
    total = sum(w for _, w in usable)
    if not usable or total <= 0:
        return MetricValue(metric, None, 0, window)
    mean = sum(p.value * w for p, w in usable if p.value is not None) / total
    n = max(p.n for p, _ in usable)
    if any(p.ci is None for p, _ in usable):
        return MetricValue(metric, mean, n, window)
    se = math.sqrt(
        sum((w / total * (p.ci[1] - p.ci[0]) / (2 * Z_95)) ** 2 for p, w in usable if p.ci)
    )
    return MetricValue(
        metric, mean, n, window, ci=(max(0.0, mean - Z_95 * se), min(1.0, mean + Z_95 * se))
    )


def multiclass_ranking(summary: BucketSummary, label: str) -> list[MetricValue]:
    """One-vs-rest ROC AUC and ECE per class, and their macro and prevalence-weighted means."""
    aucs: list[MetricValue] = []
    eces: list[MetricValue] = []
    prevalence: list[float] = []
    for cls, (pos, neg) in ovr_hists(summary.ovr_score_hist).items():
        n_pos, n_neg = float(pos.sum()), float(neg.sum())
        n = int(n_pos + n_neg)
        auc = roc_auc_from_hists(pos, neg)
        ci = hanley_mcneil_interval(auc, n_pos, n_neg) if auc is not None else None
        aucs.append(
            MetricValue("roc_auc", auc, n if auc is not None else 0, label, f"class={cls}", ci)
        )
        ece = expected_calibration_error(pos, neg)
        eces.append(MetricValue("ece", ece, n if ece is not None else 0, label, f"class={cls}"))
        prevalence.append(n_pos)
    ones = [1.0] * len(aucs)
    return [
        *aucs,
        average("roc_auc", aucs, ones, label),
        average("macro_roc_auc", aucs, ones, label),
        average("weighted_roc_auc", aucs, prevalence, label),
        *eces,
        average("ece", eces, ones, label),
        MetricValue("pr_auc", None, 0, label),
    ]


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
        _info(
            "roc_auc",
            "how well scores rank positives above negatives (ROC AUC; multiclass: "
            "one class against the rest, per class and their mean)",
        ),
        _info("macro_roc_auc", "ROC AUC of each class against the rest, averaged over classes"),
        _info("weighted_roc_auc", "ROC AUC of each class against the rest, weighted by prevalence"),
        _info(
            "pr_auc",
            "average precision: precision across all recall levels",
            tasks=frozenset({BINARY}),
        ),
        _info(
            "log_loss",
            "mean negative log-likelihood of the labels (lower is better)",
            NON_NEGATIVE,
        ),
        _info(
            "brier",
            "mean squared error of the scores as probabilities (lower is better; multiclass: "
            "summed over classes against the one-hot truth, 0 to 2)",
        ),
        _info(
            "ece",
            "expected calibration error on 10 bins (lower is better; multiclass: per "
            "class, one against the rest, and their mean)",
        ),
    )

    def compute(
        self, window: WindowSummary, reference: ReferenceSummary | None, now: datetime
    ) -> list[MetricValue]:
        label = window.label
        out = (
            multiclass_ranking(window.summary, label)
            if window.summary.ovr_score_hist
            else self._binary(window.summary, label)
        )
        out += self._probability_sums(window.summary, label)
        return out

    @staticmethod
    def _binary(summary: BucketSummary, label: str) -> list[MetricValue]:
        pos, neg = class_hists(summary)
        n_pos, n_neg = float(pos.sum()), float(neg.sum())
        n = int(n_pos + n_neg)
        auc = roc_auc_from_hists(pos, neg)
        ap = average_precision_from_hists(pos, neg)
        ece = expected_calibration_error(pos, neg)
        auc_ci = hanley_mcneil_interval(auc, n_pos, n_neg) if auc is not None else None
        return [
            *(
                MetricValue(metric, auc, n if auc is not None else 0, label, ci=auc_ci)
                for metric in ("roc_auc", "macro_roc_auc", "weighted_roc_auc")
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

    @staticmethod
    def _probability_sums(summary: BucketSummary, label: str) -> list[MetricValue]:
        """Log loss and Brier, exact from per-row sums (binary and multiclass alike)."""
        out: list[MetricValue] = []
        sums = summary.prob_sums
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
