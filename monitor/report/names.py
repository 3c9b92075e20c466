"""Plain-language names and numbers, for readers who do not know what PSI means.

An SLO's `description` from the config always wins; otherwise a sentence is generated from the
metric, the objective and the window ("Accuracy stays at or above 85% (24h window)").
"""

from __future__ import annotations

from detectors.reference_values import higher_is_better
from detectors.registry import METRICS
from monitor.config.models import SLOConfig
from monitor.core.durations import format_duration, humanize

#: Metrics whose values read best as percentages (shares of rows or of predictions).
PERCENT_METRICS = frozenset(
    {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "macro_f1",
        "positive_rate",
        "estimated.accuracy",
        "estimated.precision",
        "estimated.recall",
        "estimated.f1",
        "label_coverage",
        "drift.share",
        "drift.missing_share",
        "drift.new_category_share",
        "dq.missing_rate",
        "dq.invalid_rate",
        "dq.out_of_range_rate",
        "dq.absent_rate",
        "dq.duplicate_rate",
        "dq.future_rate",
        "dq.bad_row_rate",
        "mape",
    }
)

#: Short subjects for the metrics people ask about most; the rest use the registry's text.
SUBJECTS = {
    "accuracy": "Accuracy",
    "precision": "Precision (share of flagged cases that were real)",
    "recall": "Recall (share of real cases the model catches)",
    "f1": "F1 score",
    "roc_auc": "Ranking quality (ROC AUC)",
    "pr_auc": "Ranking quality (PR AUC)",
    "positive_rate": "Share of positive decisions",
    "drift.psi": "Input drift (PSI)",
    "drift.share": "Share of drifted inputs",
    "freshness.prediction_age": "Age of the newest prediction",
    "freshness.label_age": "Age of the newest label",
    "freshness.label_lag_p50": "Median time until a label arrives",
    "freshness.label_lag_p95": "Time until 95% of labels arrive",
    "label_coverage": "Share of predictions with a label",
    "volume.ratio": "Prediction volume against the usual",
    "mae": "Mean absolute error",
    "rmse": "Root mean squared error",
}

_OP_WORDS = {">=": "at or above", ">": "above", "<=": "at or below", "<": "below"}
_LIMIT_WORDS = {">=": "at least", ">": "above", "<=": "at most", "<": "below"}


def unit_of(metric: str) -> str:
    info = METRICS.get(metric)
    return info[0].unit if info else ""


def fmt_value(metric: str, value: float | None) -> str:
    """A metric value as a reader expects it: 85.3%, 6h 0m, 0.21."""
    if value is None:
        return "n/a"
    if unit_of(metric) == "s":
        return humanize(value)
    if metric in PERCENT_METRICS:
        return f"{value * 100:.1f}%"
    return f"{value:.3g}"


def fmt_threshold(metric: str, value: float) -> str:
    if unit_of(metric) == "s":
        return humanize(value)
    if metric in PERCENT_METRICS:
        return f"{value * 100:g}%"
    return f"{value:g}"


def fmt_pct(share: float | None, digits: int = 1) -> str:
    return "n/a" if share is None else f"{share * 100:.{digits}f}%"


def subject(metric: str) -> str:
    if metric in SUBJECTS:
        return SUBJECTS[metric]
    info = METRICS.get(metric)
    text = info[0].description if info and info[0].description else metric
    return text[:1].upper() + text[1:]


def relative_words(slo: SLOConfig, computed: tuple[float, float] | None = None) -> str:
    """A relative objective in words, with the thresholds it resolved to when known:
    "the reference − 0.01 (computed: 0.961)", "auto: the reference's own spread at the
    window's size (computed: 0.955–0.958)"."""
    objective = slo.objective
    if objective.base == "auto":
        words = "auto: the reference's own spread at the window's size"
    else:
        words = "the reference"
        if objective.operator:
            operand = f"{objective.operand:g}"
            sign = {"-": "−", "*": "×"}.get(objective.operator, objective.operator)
            words += f" {sign} {operand}"
    if computed is None:
        return f"{words} (not computed yet)"
    low, high = (fmt_threshold(slo.metric, v) for v in computed)
    return f"{words} (computed: {low if low == high else f'{low}–{high}'})"


def threshold_words(slo: SLOConfig, computed: tuple[float, float] | None = None) -> str:
    """The objective's threshold as a reader sees it: a number, or a relative objective
    explained with what it resolved to (never "nan")."""
    if slo.objective.relative:
        return relative_words(slo, computed)
    return fmt_threshold(slo.metric, slo.objective.threshold)


def slo_sentence(slo: SLOConfig, computed: tuple[float, float] | None = None) -> str:
    """The SLO's own description, or "<subject> stays <op> <threshold> (<window> window)";
    `computed`: the lowest and highest threshold a relative objective resolved to."""
    if slo.description:
        return slo.description
    words = _OP_WORDS[effective_op(slo)]
    threshold = threshold_words(slo, computed)
    scope = ""
    if slo.features is not None:
        scope = " for every input" if slo.features == "all" else f" for {', '.join(slo.features)}"
    if slo.segment_by:
        scope += f" in every {slo.segment_by}"
    window = "" if unit_of(slo.metric) == "s" else f" ({format_duration(slo.window)} window)"
    return f"{subject(slo.metric)} stays {words} {threshold}{scope}{window}"


def objective_words(slo: SLOConfig, computed: tuple[float, float] | None = None) -> str:
    """`below 0.2`, `at least 85%`, `at least the reference − 0.01 (computed: 0.961)`."""
    return f"{_LIMIT_WORDS[effective_op(slo)]} {threshold_words(slo, computed)}"


def effective_op(slo: SLOConfig) -> str:
    """`auto` is written without a direction: it takes the metric's (`<=` for errors)."""
    if slo.objective.base == "auto" and higher_is_better(slo.metric) is False:
        return "<="
    return slo.objective.op


def fmt_duration(seconds: float | None) -> str:
    return "n/a" if seconds is None else humanize(seconds)
