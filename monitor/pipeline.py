"""One tick of one model: read new rows, fold them into buckets, judge SLOs, open incidents.

The daemon, `vigil check`, the demo and backtests all call `tick` with their own clock.
Each chunk commits its bucket counts together with the watermark that covers them, so a crash
mid-tick neither loses nor double-counts rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.incidents import IncidentChange, apply_verdict
from detectors.base import MetricValue, WindowSummary
from detectors.registry import DETECTORS
from monitor.config.models import ModelConfig
from monitor.reference import ReferenceSummary, fingerprint, fit_reference
from monitor.runtime import Runtime
from monitor.slo import Verdict, judge, record
from monitor.sources import Watermark
from monitor.state import (
    get_reference,
    get_watermark,
    load_buckets,
    save_reference,
    set_watermark,
    upsert_buckets,
)
from monitor.store.tables import MetricPoint, ModelHealth
from monitor.summaries import BucketSummary
from monitor.summarize import summarize_labels, summarize_predictions
from monitor.windows import build_window, window_bounds


@dataclass
class TickResult:
    model: str
    at: datetime
    predictions_read: int = 0
    labels_read: int = 0
    bad_rows: int = 0
    values: list[MetricValue] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    changes: list[IncidentChange] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def breached(self) -> bool:
        return any(v.status == "breach" for v in self.verdicts)


def reference_spec(model: ModelConfig) -> dict[str, object]:
    return {
        "reference": model.reference.model_dump(mode="json"),
        "features": model.predictions.features,
        "categorical": model.predictions.categorical,
        "source": model.source,
    }


def ensure_reference(rt: Runtime, name: str, now: datetime) -> ReferenceSummary:
    """Fit the reference once; refit only when its definition in the config changes."""
    model = rt.config.models[name]
    wanted = fingerprint(reference_spec(model))
    with rt.sessions.begin() as session:
        stored = get_reference(session, name)
        if stored is not None and stored.fingerprint == wanted:
            return stored
    frame = rt.source_for(name).reference_frame()
    reference = fit_reference(
        frame, model.predictions.features, model.predictions.categorical, wanted
    )
    with rt.sessions.begin() as session:
        save_reference(session, name, reference, now)
    return reference


def backfill(model: ModelConfig) -> timedelta:
    """On a first run, read as far back as the longest window needs."""
    return max([slo.window for slo in model.slos] + [model.bucket])


def ingest(
    rt: Runtime, name: str, reference: ReferenceSummary, now: datetime, result: TickResult
) -> None:
    """Read every new prediction and label, committing each chunk with its watermark."""
    model = rt.config.models[name]
    source = rt.source_for(name)
    until = now - model.settle_delay
    first_read = Watermark(now - backfill(model), None)
    with rt.sessions() as session:
        mark = get_watermark(session, name, "predictions") or first_read
        label_mark = get_watermark(session, name, "labels") or first_read
    for batch, new_mark in source.predictions_since(mark, until):
        buckets = summarize_predictions(
            batch, reference, model.task, model.threshold, model.bucket, now
        )
        _commit_chunk(rt, name, "predictions", buckets, new_mark, now)
        result.predictions_read += len(batch)
        result.bad_rows += sum(sum(b.bad.values()) for b in buckets.values())
    for labels, new_mark in source.labels_since(label_mark, until):
        buckets = summarize_labels(labels, model.task, model.threshold, model.bucket, now)
        _commit_chunk(rt, name, "labels", buckets, new_mark, now)
        result.labels_read += len(labels)
        result.bad_rows += sum(sum(b.bad.values()) for b in buckets.values())


def _commit_chunk(
    rt: Runtime,
    name: str,
    stream: str,
    buckets: dict[datetime, BucketSummary],
    mark: Watermark,
    now: datetime,
) -> None:
    with rt.sessions.begin() as session:
        upsert_buckets(session, name, buckets, now)
        set_watermark(session, name, stream, mark, now)


def evaluate(
    rt: Runtime, name: str, reference: ReferenceSummary, now: datetime, result: TickResult
) -> None:
    """Compute every SLO's metric on its window, judge it, and apply incident changes."""
    model = rt.config.models[name]
    longest = max([slo.window for slo in model.slos], default=model.bucket)
    start, end = window_bounds(now, longest, model.bucket)
    with rt.sessions.begin() as session:
        buckets = load_buckets(session, name, start, end)
        mark = get_watermark(session, name, "predictions")
        newest = mark.ts if mark and mark.row_id is not None else None
        windows: dict[timedelta, WindowSummary] = {}
        for slo in model.slos:
            if slo.window not in windows:
                windows[slo.window] = build_window(buckets, now, slo.window, model.bucket, newest)
            window = windows[slo.window]
            detector = DETECTORS[slo.metric]
            for value in detector.compute(window, reference, now):
                if slo.features not in (None, "all") and value.feature not in slo.features:
                    continue
                status = judge(slo.objective, value, slo.min_samples, detector.sample_gated)
                verdict = record(session, name, slo, value, status, now)
                result.values.append(value)
                result.verdicts.append(verdict)
                session.add(_point(name, value, now))
                change = apply_verdict(session, rt.config, name, verdict, now)
                if change is not None:
                    result.changes.append(change)


def _point(model: str, value: MetricValue, now: datetime) -> MetricPoint:
    low, high = value.ci if value.ci else (None, None)
    return MetricPoint(
        model=model,
        metric=value.metric,
        feature=value.feature or "",
        window=value.window,
        at=now,
        value=value.value,
        n=value.n,
        ci_low=low,
        ci_high=high,
    )


def tick(rt: Runtime, name: str, now: datetime) -> TickResult:
    """Run one model's whole path once; failures are recorded in its health row and re-raised."""
    started = time.perf_counter()
    result = TickResult(model=name, at=now)
    try:
        reference = ensure_reference(rt, name, now)
        ingest(rt, name, reference, now, result)
        evaluate(rt, name, reference, now, result)
    except Exception as exc:
        _record_health(rt, name, now, time.perf_counter() - started, error=exc)
        raise
    result.duration_s = time.perf_counter() - started
    _record_health(rt, name, now, result.duration_s, rows=result.predictions_read)
    return result


def _record_health(
    rt: Runtime,
    name: str,
    now: datetime,
    duration: float,
    rows: int = 0,
    error: Exception | None = None,
) -> None:
    with rt.sessions.begin() as session:
        health = session.get(ModelHealth, name) or ModelHealth(
            model=name, consecutive_failures=0, rows_read=0
        )
        session.add(health)
        health.last_tick_at, health.last_duration_s = now, duration
        if error is None:
            health.last_success_at, health.last_error, health.consecutive_failures = now, None, 0
            health.rows_read = (health.rows_read or 0) + rows
        else:
            health.last_error = rt.redact(f"{type(error).__name__}: {error}")[:2000]
            health.consecutive_failures = (health.consecutive_failures or 0) + 1
