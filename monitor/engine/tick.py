"""One tick of one model, as named stages with typed hand-offs:

    read -> fold -> store   `ingest`            (chunk by chunk, each with its watermark)
    window                  `load_windows`      -> Windows
    values                  `compute_values`    -> list[SLOValue]
    judge -> incidents      `judge_values`      (one transaction, with the outbox)
    evidence -> notify      `evidence_and_notify` (drift reports rendered outside any
                                                   transaction, then their messages)

The daemon, `vigil check`, the demo and backtests all call `tick` with their own clock.
Each chunk commits its bucket counts together with the watermark that covers them, so a crash
mid-tick neither loses nor double-counts rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.burn import apply_budget
from alerts.dispatch import flush
from alerts.evidence import EvidenceContext, attach_reports, drift_incidents_opened, render_reports
from alerts.incidents import IncidentChange, refresh_suppression
from alerts.lifecycle import apply_verdict, settle_flapping
from detectors.base import Detector, DetectorSettings, WindowContext, WindowSummary
from detectors.reference_values import higher_is_better, reference_value, sd_from_reference
from detectors.registry import METRICS
from monitor.config.horizons import VOLUME_WEEKS, backfill_depth
from monitor.config.models import ModelConfig, SLOConfig, VigilConfig
from monitor.core import deadline
from monitor.core.objectives import resolve
from monitor.core.reference import ReferenceSummary, fingerprint
from monitor.core.values import MetricValue
from monitor.core.watermark import Watermark
from monitor.engine.backfill import chunk_budget
from monitor.engine.budgets import BudgetHistory, compute_budget
from monitor.engine.evidence import judge_value
from monitor.engine.reading import (
    LABELS,
    PREDICTIONS,
    Intake,
    read_labels,
    read_predictions,
    retry_held_labels,
)
from monitor.engine.root_cause import explain_values
from monitor.engine.runtime import Runtime
from monitor.engine.sequential import block_length
from monitor.engine.windows import build_window, window_bounds
from monitor.ingest.bucketing import bucket_start
from monitor.ingest.fit import fit_reference
from monitor.ingest.fit_quality import quality_summary
from monitor.store.slis import Verdict, record
from monitor.store.state import (
    get_reference,
    get_watermark,
    load_buckets,
    save_reference,
)
from monitor.store.tables import Incident, MetricPoint, ModelHealth, SLOState


@dataclass
class TickResult:
    model: str
    at: datetime
    predictions_read: int = 0
    labels_read: int = 0
    bad_rows: int = 0
    intake: Intake = field(default_factory=Intake)
    """Rows read per stream and the outcome of each (summarised, bad by reason, held)."""
    values: list[MetricValue] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    changes: list[IncidentChange] = field(default_factory=list)
    duration_s: float = 0.0
    backfilling: bool = False
    """The model's history is still being read (`monitor.engine.backfill`): nothing judged."""

    @property
    def breached(self) -> bool:
        return any(v.status == "breach" for v in self.verdicts)


def reference_spec(model: ModelConfig) -> dict[str, object]:
    """What the reference is fitted from; `scores` only when set, so adding multiclass
    scores refits that model's reference and no other."""
    spec: dict[str, object] = {
        "reference": model.reference.model_dump(mode="json"),
        "features": model.predictions.features,
        "categorical": model.predictions.categorical,
        "score": model.predictions.score,
        "prediction": model.predictions.prediction,
        "task": model.task,
        "source": model.source,
    }
    if model.predictions.scores:
        spec["scores"] = model.predictions.scores
    return spec


def ensure_reference(rt: Runtime, name: str, now: datetime) -> ReferenceSummary:
    """Fit the reference once; refit only when its definition in the config changes."""
    model = rt.config.models[name]
    wanted = fingerprint(reference_spec(model))
    with rt.sessions.begin() as session:
        stored = get_reference(session, name)
        if stored is not None and stored.fingerprint == wanted:
            return stored
    reference = fit_model_reference(model, rt.source_for(name).reference_frame(), wanted)
    with rt.sessions.begin() as session:
        save_reference(session, name, reference, now)
    return reference


def fit_model_reference(
    model: ModelConfig, frame: pd.DataFrame, spec_fingerprint: str
) -> ReferenceSummary:
    """The reference fitted on `frame`, with its labelled rows folded as one bucket (the
    "before" of root-cause hints, `monitor.ingest.fit_quality`)."""
    preds = model.predictions
    pooled = tuple(s for s in preds.segments if s != preds.model_version)
    reference = fit_reference(
        frame,
        preds.features,
        preds.categorical,
        spec_fingerprint,
        model.task,
        pooled_segments=pooled,
    )
    quality = quality_summary(
        frame, reference, preds.features, tuple(preds.segments), model.task, model.threshold
    )
    return replace(reference, quality=quality)


def ingest(
    rt: Runtime, name: str, reference: ReferenceSummary, now: datetime, result: TickResult
) -> None:
    """Read every new prediction and label (`monitor.engine.reading`), each chunk committed
    with its watermark, and account for every row read."""
    model = rt.config.models[name]
    first_read = Watermark(now - backfill_depth(model), None)
    with rt.sessions() as session:
        mark = get_watermark(session, name, "predictions") or first_read
        label_mark = get_watermark(session, name, "labels") or first_read
    for intake in (
        read_predictions(
            rt, name, reference, now, mark, chunk_budget(model, name, PREDICTIONS, mark, now)
        ),
        read_labels(
            rt, name, reference, now, label_mark, chunk_budget(model, name, LABELS, label_mark, now)
        ),
        retry_held_labels(rt, name, reference, now),
    ):
        result.intake.add_all(intake)
    result.backfilling = result.intake.capped
    result.predictions_read = result.intake.read.get(PREDICTIONS, 0)
    result.labels_read = result.intake.read.get(LABELS, 0)
    result.bad_rows = result.intake.bad_rows


@dataclass(frozen=True)
class Windows:
    """Stage "window": every window the model's SLOs read, merged from stored buckets."""

    by_length: dict[timedelta, WindowSummary]
    blocks: dict[timedelta, tuple[datetime, WindowSummary]] = field(default_factory=dict)
    """The newest complete block of each block length (monitor/engine/sequential.py)."""


def load_windows(rt: Runtime, name: str, now: datetime) -> Windows:
    """Merge the stored buckets into each SLO window, with what detectors need beside them."""
    model = rt.config.models[name]
    longest = max([slo.window for slo in model.slos], default=model.bucket)
    start, end = window_bounds(now, longest, model.bucket)
    with rt.sessions() as session:
        buckets = load_buckets(session, name, start, end, cache=rt.bucket_cache)
        context = WindowContext(
            newest_prediction=stream_time(session, name, "predictions"),
            newest_label=stream_time(session, name, "labels"),
            settings=detector_settings(model),
        )
        if any(slo.metric == "volume.ratio" for slo in model.slos):
            last, baseline = volume_baseline(session, name, now, model.bucket)
            context = replace(context, last_bucket=last, baseline=baseline)
        blocks: dict[timedelta, tuple[datetime, WindowSummary]] = {}
        for length in {block_length(slo.window) for slo in model.slos}:
            if length < model.bucket:
                continue
            block_end = bucket_start(now, length)
            rows = load_buckets(session, name, block_end - length, block_end, cache=rt.bucket_cache)
            newest = block_end - model.bucket
            block = build_window(rows, newest, length, model.bucket, context)
            blocks[length] = (block_end, block)
    lengths = dict.fromkeys(slo.window for slo in model.slos)
    return Windows(
        {length: build_window(buckets, now, length, model.bucket, context) for length in lengths},
        blocks,
    )


def detector_settings(model: ModelConfig) -> DetectorSettings:
    return DetectorSettings(
        threshold=model.threshold,
        drift_alpha=model.drift.alpha,
        drift_correction=model.drift.correction,
        drift_min_psi=model.drift.min_psi,
        drift_min_wasserstein=model.drift.min_wasserstein,
        drift_noise_level=model.drift.noise_level,
    )


@dataclass(frozen=True)
class SLOValue:
    """Stage "values": one metric value an SLO reads."""

    slo: SLOConfig
    value: MetricValue
    block: MetricValue | None = None
    """The same metric on the newest complete block, for the sequential rule."""
    block_end: datetime | None = None
    reference: MetricValue | None = None
    """The metric on the reference, for an objective relative to it."""


def compute_values(
    model: ModelConfig, windows: Windows, reference: ReferenceSummary, now: datetime
) -> list[SLOValue]:
    """Run each detector once per window (and segment column), however many SLOs read it."""
    computed: dict[tuple[str, timedelta, str | None], list[MetricValue]] = {}
    blocks_computed: dict[tuple[str, timedelta, str | None], list[MetricValue]] = {}
    out: list[SLOValue] = []
    for slo in model.slos:
        detector = METRICS[slo.metric][1]
        key = (detector.name, slo.window, slo.segment_by)
        if key not in computed:
            window = windows.by_length[slo.window]
            computed[key] = run_detector(detector, window, reference, now, slo.segment_by)
        block_end, blocks = block_values(slo, windows, reference, now, blocks_computed)
        on_reference = None
        if slo.objective.relative:
            settings = next(iter(windows.by_length.values())).settings
            on_reference = reference_value(slo.metric, detector, reference, settings)
        out += [
            SLOValue(slo, value, blocks.get(value.feature), block_end, on_reference)
            for value in computed[key]
            if value.metric == slo.metric and wanted_feature(slo.features, value.feature)
        ]
    return out


def explain_breaches(
    rt: Runtime, name: str, reference: ReferenceSummary, windows: Windows, values: list[SLOValue]
) -> list[SLOValue]:
    """Stage "explain": root-cause hints on breaching quality values (`engine.root_cause`)."""
    pairs = [(item.slo, item.value) for item in values]
    explained = explain_values(rt, name, reference, windows.by_length, pairs)
    return [replace(item, value=value) for item, value in zip(values, explained, strict=True)]


def block_values(
    slo: SLOConfig,
    windows: Windows,
    reference: ReferenceSummary,
    now: datetime,
    cache: dict[tuple[str, timedelta, str | None], list[MetricValue]],
) -> tuple[datetime | None, dict[str | None, MetricValue]]:
    """The SLO's metric on the newest complete block, by feature: only metrics with an
    interval (a block is weighed by its standard error) and gated by `min_samples`."""
    info, detector = METRICS[slo.metric]
    length = block_length(slo.window)
    if not info.sample_gated or length not in windows.blocks:
        return None, {}
    block_end, window = windows.blocks[length]
    key = (detector.name, length, slo.segment_by)
    if key not in cache:
        cache[key] = run_detector(detector, window, reference, now, slo.segment_by)
    found = {v.feature: v for v in cache[key] if v.metric == slo.metric and v.ci is not None}
    return block_end, found


def judge_values(
    rt: Runtime, name: str, values: list[SLOValue], now: datetime, result: TickResult
) -> dict[int, timedelta]:
    """Stages "judge" and "incidents", in one transaction: verdicts, SLI history, budgets,
    incident changes and their outbox messages commit together, so there is never an incident
    nobody is told about. Returns the drift incidents opened, whose messages wait for their
    evidence: those are written by `evidence_and_notify`."""
    with rt.sessions.begin() as session:
        history = BudgetHistory(session, name, now, [item.slo for item in values])
        for item in values:
            apply_value(
                session,
                rt.config,
                name,
                item.slo,
                item.value,
                now,
                result,
                item.block,
                item.block_end,
                item.reference,
                history,
            )
        refresh_open_incidents(session, rt.config, now)
        session.flush()
        wanted = drift_incidents_opened(session, result.changes)
        if not wanted:
            flush(session, now)
    return wanted


def evidence_and_notify(
    rt: Runtime, name: str, wanted: dict[int, timedelta], now: datetime
) -> None:
    """Stage "evidence": drift reports are rendered outside any store transaction (they read
    the source and can take seconds), attached to their incidents, and only then are their
    notifications written, so the first message already links its report. A crash in between
    delays the message and loses nothing: the incidents and their alert groups are committed,
    and the next flush writes their messages (without the report)."""
    if not wanted:
        return
    reports = render_reports(evidence_context(rt, name), name, wanted, now)
    with rt.sessions.begin() as session:
        attach_reports(session, reports)
        flush(session, now)


def evidence_context(rt: Runtime, name: str) -> EvidenceContext:
    return EvidenceContext(
        model=rt.config.models[name],
        source=rt.source_for(name),
        out_dir=rt.state_dir,
        redact=rt.redact,
    )


def apply_value(
    session: Session,
    config: VigilConfig,
    name: str,
    slo: SLOConfig,
    value: MetricValue,
    now: datetime,
    result: TickResult,
    block: MetricValue | None = None,
    block_end: datetime | None = None,
    reference: MetricValue | None = None,
    history: BudgetHistory | None = None,
) -> Verdict:
    """Judge one value, record it, and let the incident engine and the budget react.

    A relative objective is resolved first (`monitor.core.objectives.resolve`); the verdict
    carries the resolved SLO, so incidents and messages show the threshold that applied."""
    info = METRICS[slo.metric][0]
    if slo.objective.relative:
        slo = resolve_slo(slo, value, reference)
    decision, evidence = judge_value(
        session,
        name,
        slo,
        value,
        now,
        confidence=slo.confidence or config.confidence,
        sample_gated=info.sample_gated,
        block=block,
        block_end=block_end,
    )
    verdict = record(session, name, slo, value, decision.status, now, decision.rule, evidence)
    result.values.append(value)
    result.verdicts.append(verdict)
    session.add(_point(name, value, now))
    change = apply_verdict(session, config, name, verdict, now)
    if change is not None:
        result.changes.append(change)
    track_budget(session, config, name, verdict, now, history)
    return verdict


def resolve_slo(slo: SLOConfig, value: MetricValue, reference: MetricValue | None) -> SLOConfig:
    """The SLO with its relative objective's threshold for this value's sample size; left
    unresolved (judged `insufficient_data`) when the reference has no value for the metric."""
    sd = sd_from_reference(reference, value.n) if reference is not None else None
    ref = reference.value if reference is not None else None
    resolved = resolve(slo.objective, ref, sd, higher_is_better(slo.metric))
    return slo if resolved is None else slo.model_copy(update={"objective": resolved})


def track_budget(
    session: Session,
    config: VigilConfig,
    name: str,
    verdict: Verdict,
    now: datetime,
    history: BudgetHistory | None = None,
) -> None:
    """Keep the SLI's budget and burn rates current, and raise burn alerts if configured.
    With the tick's `history` (read once), no query per value."""
    session.flush()  # the evaluation just recorded counts in its own burn windows
    budget = None
    if history is not None and history.now == now:
        budget = history.budget(verdict.slo_id, verdict.feature, verdict.slo, verdict.status)
    if budget is None:
        budget = compute_budget(session, name, verdict.slo_id, verdict.feature, verdict.slo, now)
    state = session.get(SLOState, (name, verdict.slo_id, verdict.feature))
    if state is not None:
        state.budget_left = budget.budget_left
        state.burn_rates = budget.burn_rates
    if verdict.slo.burn_alerts:
        apply_budget(session, config, name, verdict, budget, now)


def refresh_open_incidents(session: Session, config: VigilConfig, now: datetime) -> None:
    """Silences start and end, inhibiting incidents resolve: re-decide who is muted; flapping
    incidents that have been calm long enough settle."""
    for incident in session.scalars(select(Incident).where(Incident.status != "resolved")):
        refresh_suppression(session, config, incident, now)
    settle_flapping(session, config, now)


def run_detector(
    detector: Detector,
    window: WindowSummary,
    reference: ReferenceSummary,
    now: datetime,
    segment_by: str | None,
) -> list[MetricValue]:
    """The detector on the whole window, or on each segment of one column (`country=DE`)."""
    if segment_by is None:
        return detector.compute(window, reference, now)
    out: list[MetricValue] = []
    prefix = f"{segment_by}="
    for key in sorted(k for k in window.summary.segments if k.startswith(prefix)):
        for value in detector.compute(window.segment(key), reference, now):
            label = key if value.feature is None else f"{key}/{value.feature}"
            out.append(replace(value, feature=label))
    return out


def stream_time(session: Session, name: str, stream: str) -> datetime | None:
    """The newest time read from a stream: what freshness is measured against."""
    mark = get_watermark(session, name, stream)
    return mark.ts if mark and mark.row_id is not None else None


def volume_baseline(
    session: Session, name: str, now: datetime, width: timedelta
) -> tuple[int, tuple[int, ...]]:
    """The last complete bucket's count and the same hour of the week in past weeks."""
    last = bucket_start(now, width) - width
    week = timedelta(days=7)
    wanted = [last - k * week for k in range(VOLUME_WEEKS + 1)]
    counts = {
        start: summary.n
        for start, summary in load_buckets(session, name, wanted[-1], last + width, only=wanted)
        if start in wanted
    }
    baseline = tuple(counts[s] for s in wanted[1:] if s in counts)
    return counts.get(last, 0), baseline


def wanted_feature(selection: str | list[str] | None, feature: str | None) -> bool:
    """`all` (or nothing) means every input feature; the score and decision pseudo-features
    (`@score`, `@prediction`) are watched only when named, as prediction drift."""
    if feature is None:
        return True
    if isinstance(selection, list):
        return feature in selection
    return not feature.startswith("@")


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
        model = rt.config.models[name]
        reference = ensure_reference(rt, name, now)
        ingest(rt, name, reference, now, result)  # read -> fold -> store, chunk by chunk
        deadline.check()
        if not result.backfilling:  # history still being read: judge nothing on a partial past
            windows = load_windows(rt, name, now)
            values = compute_values(model, windows, reference, now)
            values = explain_breaches(rt, name, reference, windows, values)
            wanted = judge_values(rt, name, values, now, result)
            evidence_and_notify(rt, name, wanted, now)
    except Exception as exc:
        error = deadline.explain(exc)  # a statement cancelled at the deadline: a timeout
        _record_health(rt, name, now, time.perf_counter() - started, error=error)
        if error is exc:
            raise
        raise error from exc
    result.duration_s = time.perf_counter() - started
    _record_health(
        rt, name, now, result.duration_s, rows=result.predictions_read, intake=result.intake
    )
    return result


def _record_health(
    rt: Runtime,
    name: str,
    now: datetime,
    duration: float,
    rows: int = 0,
    error: Exception | None = None,
    intake: Intake | None = None,
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
            if intake is not None and intake.outcomes:
                totals = dict(health.row_outcomes or {})
                for key, count in intake.outcomes.items():
                    totals[key] = totals.get(key, 0) + count
                health.row_outcomes = totals  # a new dict: the JSON column sees the change
        else:
            health.last_error = rt.redact(f"{type(error).__name__}: {error}")[:2000]
            health.consecutive_failures = (health.consecutive_failures or 0) + 1
