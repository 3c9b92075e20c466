"""Drift in words and data health (freshness, label lag, volume), from the store alone.

Drift is told per input: which inputs moved past their objective, since when (the start of the
breach run, even when it began in an earlier week), how far, and when they came back, with the
evidently reports attached to their incidents. Label lag and coverage come from the bucket
summaries, which late labels keep updating: they are "as of the time the report was made".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from detectors.freshness import lag_quantile
from detectors.registry import METRICS
from monitor.config.models import ModelConfig, SLOConfig
from monitor.core.summaries import merge_all
from monitor.core.values import BREACH
from monitor.ingest.bucketing import bucket_start
from monitor.report.incidents import IncidentRow
from monitor.report.names import fmt_value, objective_words, slo_sentence, subject
from monitor.report.slos import counts_by_feature
from monitor.report.weeks import Week
from monitor.store.slis import slo_id
from monitor.store.state import load_buckets
from monitor.store.tables import SLOEvaluation

MEASURES = {
    "drift.psi": "PSI",
    "drift.js": "Jensen–Shannon distance",
    "drift.wasserstein": "Wasserstein distance",
    "drift.ks": "KS statistic",
    "drift.chi2": "chi-square statistic",
}


@dataclass
class DriftFinding:
    feature: str
    peak: str
    peak_at: datetime | None
    since: datetime | None
    until: datetime | None
    breaches: int
    report_urls: list[str] = field(default_factory=list)


@dataclass
class DriftSummary:
    name: str
    metric: str
    measure: str
    limit: str
    findings: list[DriftFinding]
    calm: list[tuple[str, str]]
    """Inputs that stayed within the objective, with their largest value, largest first."""


@dataclass(frozen=True)
class HealthRow:
    what: str
    objective: str
    typical: str
    worst: str
    within: float | None
    """Share of the week's evaluations that met the objective, where there is one."""


@dataclass
class Volume:
    series: list[tuple[datetime, int]]
    width: timedelta
    daily_coverage: list[tuple[datetime, float | None]]
    predictions: int
    previous: int
    labelled: int
    unusable: int
    silent: timedelta
    """Time in buckets without a single prediction."""
    lag_p50: float | None
    lag_p95: float | None


def _run_edges(
    session: Session, model: str, sid: str, feature: str, first: datetime, last: datetime
) -> tuple[datetime, datetime | None]:
    """Start of the breach run holding `first`, and the first good evaluation after `last`."""
    where = (
        SLOEvaluation.model == model,
        SLOEvaluation.slo_id == sid,
        SLOEvaluation.feature == feature,
    )
    calm_before = session.scalar(
        select(func.max(SLOEvaluation.at)).where(
            *where, SLOEvaluation.status != BREACH, SLOEvaluation.at < first
        )
    )
    since = first
    if calm_before is not None:
        since = (
            session.scalar(
                select(func.min(SLOEvaluation.at)).where(
                    *where, SLOEvaluation.status == BREACH, SLOEvaluation.at > calm_before
                )
            )
            or first
        )
    else:
        since = session.scalar(select(func.min(SLOEvaluation.at)).where(*where)) or first
    until = session.scalar(
        select(func.min(SLOEvaluation.at)).where(
            *where, SLOEvaluation.status != BREACH, SLOEvaluation.at > last
        )
    )
    return since, until


def drift_summaries(
    session: Session, model: str, spec: ModelConfig, week: Week, incidents: list[IncidentRow]
) -> list[DriftSummary]:
    out = []
    for slo in spec.slos:
        if not slo.metric.startswith("drift.") or slo.features is None:
            continue
        sid = slo_id(slo)
        peak_fn = func.min if slo.objective.higher_is_better else func.max
        in_week = (
            SLOEvaluation.model == model,
            SLOEvaluation.slo_id == sid,
            SLOEvaluation.at > week.start,
            SLOEvaluation.at <= week.end,
        )
        peaks = dict(
            session.execute(
                select(SLOEvaluation.feature, peak_fn(SLOEvaluation.value))
                .where(*in_week)
                .group_by(SLOEvaluation.feature)
            ).all()
        )
        counts = counts_by_feature(session, model, sid, week.start, week.end)
        findings, calm = [], []
        for feature, peak in peaks.items():
            if not counts.get(feature) or counts[feature].bad == 0:
                calm.append((feature, peak))
                continue
            first, last = session.execute(
                select(func.min(SLOEvaluation.at), func.max(SLOEvaluation.at)).where(
                    *in_week, SLOEvaluation.feature == feature, SLOEvaluation.status == BREACH
                )
            ).one()
            peak_at = session.scalar(
                select(func.min(SLOEvaluation.at)).where(
                    *in_week, SLOEvaluation.feature == feature, SLOEvaluation.value == peak
                )
            )
            since, until = _run_edges(session, model, sid, feature, first, last)
            urls = [
                i.report_url
                for i in incidents
                if i.report_url and i.metric == slo.metric and i.feature == feature
            ]
            findings.append(
                DriftFinding(
                    feature=feature,
                    peak=fmt_value(slo.metric, peak),
                    peak_at=peak_at,
                    since=since,
                    until=until if until is not None and until <= week.end else None,
                    breaches=counts[feature].bad,
                    report_urls=urls,
                )
            )
        reverse = not slo.objective.higher_is_better
        findings.sort(key=lambda f: (-f.breaches, f.feature))
        calm.sort(key=lambda fp: (fp[1] is None, -(fp[1] or 0) if reverse else fp[1] or 0))
        out.append(
            DriftSummary(
                name=slo_sentence(slo),
                metric=slo.metric,
                measure=MEASURES.get(slo.metric, slo.metric),
                limit=objective_words(slo),
                findings=findings,
                calm=[(f, fmt_value(slo.metric, p)) for f, p in calm],
            )
        )
    return out


def _freshness_row(session: Session, model: str, slo: SLOConfig, week: Week) -> HealthRow:
    sid = slo_id(slo)
    values = [
        v
        for v in session.scalars(
            select(SLOEvaluation.value).where(
                SLOEvaluation.model == model,
                SLOEvaluation.slo_id == sid,
                SLOEvaluation.at > week.start,
                SLOEvaluation.at <= week.end,
                SLOEvaluation.value.is_not(None),
            )
        )
        if v is not None
    ]
    values.sort()
    worst = (values[0] if slo.objective.higher_is_better else values[-1]) if values else None
    counts = counts_by_feature(session, model, sid, week.start, week.end)
    good = sum(c.good for c in counts.values())
    bad = sum(c.bad for c in counts.values())
    return HealthRow(
        what=slo.description or subject(slo.metric),
        objective=objective_words(slo),
        typical=fmt_value(slo.metric, values[len(values) // 2] if values else None),
        worst=fmt_value(slo.metric, worst),
        within=good / (good + bad) if good + bad else None,
    )


def _objective_for(spec: ModelConfig, metric: str) -> str:
    for slo in spec.slos:
        if slo.metric == metric:
            return objective_words(slo)
    return "no objective set"


def volume(session: Session, model: str, week: Week, bucket: timedelta) -> Volume:
    """Counts per chart bin (the model's bucket, at least an hour), daily label coverage, time
    without any prediction, and the label delay of the week's predictions."""
    buckets = load_buckets(session, model, week.start, week.end)
    previous = load_buckets(session, model, week.previous().start, week.start)
    total = merge_all(s for _, s in buckets)
    width = max(bucket, timedelta(hours=1))
    bins: dict[datetime, int] = {}
    for start, summary in buckets:
        key = bucket_start(start, width)
        bins[key] = bins.get(key, 0) + summary.n
    coverage: list[tuple[datetime, float | None]] = []
    for _day, lo, hi in week.days():
        day = merge_all(s for t, s in buckets if lo <= t < hi)
        coverage.append((lo, min(day.n_labelled, day.n) / day.n if day.n else None))
    expected = math.ceil((week.end - week.start) / bucket)
    busy = sum(1 for _, s in buckets if s.n)
    return Volume(
        series=sorted(bins.items()),
        width=width,
        daily_coverage=coverage,
        predictions=total.n,
        previous=sum(s.n for _, s in previous),
        labelled=min(total.n_labelled, total.n),
        unusable=sum(total.bad.values()),
        silent=max(0, expected - busy) * bucket,
        lag_p50=lag_quantile(total.lag_hist, 0.5),
        lag_p95=lag_quantile(total.lag_hist, 0.95),
    )


def health_rows(
    session: Session, model: str, spec: ModelConfig, week: Week, vol: Volume
) -> list[HealthRow]:
    rows = [
        _freshness_row(session, model, slo, week)
        for slo in spec.slos
        if METRICS.get(slo.metric) and METRICS[slo.metric][0].family == "freshness"
    ]
    if spec.labels is not None:
        coverage = vol.labelled / vol.predictions if vol.predictions else None
        for what, metric, value in (
            (
                "Median time until a label arrives (labels so far)",
                "freshness.label_lag_p50",
                vol.lag_p50,
            ),
            (
                "Time until 95% of labels arrive (labels so far)",
                "freshness.label_lag_p95",
                vol.lag_p95,
            ),
            ("Share of the week's predictions with a label so far", "label_coverage", coverage),
        ):
            rows.append(
                HealthRow(
                    what=what,
                    objective=_objective_for(spec, metric),
                    typical=fmt_value(metric, value),
                    worst="",
                    within=None,
                )
            )
    return rows
