"""Stage "read -> fold -> store": every new row of a model, each landing in one outcome.

Per stream, the rows a tick reads equal the rows it summarises plus the rows it counts bad
(by reason) plus the labels it holds for later; `Intake.outcomes` says which, and the tick
hands them on to the model's health row and `/metrics`.

- predictions, read incrementally (keyset on time and id), chunk by chunk; each chunk's
  buckets, its ids (for duplicates across ticks) and its watermark commit together;
- predictions the incremental read cannot reach (no time, not a time, a future time), found
  by a probe and each counted once;
- labels, read incrementally; a label whose prediction is not in the source yet is held;
- labels the incremental read cannot reach (no time, not a time), found by a probe and each
  counted once, like predictions;
- held labels, retried each tick until their prediction appears or the label horizon passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from monitor.config.models import ModelConfig
from monitor.core import deadline
from monitor.core.reference import ReferenceSummary
from monitor.core.summaries import BucketSummary
from monitor.core.watermark import Watermark
from monitor.engine.backfill import ChunkBudget
from monitor.engine.label_rows import held_rows, take, to_hold
from monitor.engine.runtime import Runtime
from monitor.ingest.batches import LabelBatch, parse_times
from monitor.ingest.bucketing import bucket_start, count_due
from monitor.ingest.pushdown_label_source import LabelPushdownResult
from monitor.ingest.rowkeys import id_keys
from monitor.ingest.sources import class_scores
from monitor.ingest.summarize import summarize_labels, summarize_predictions
from monitor.ingest.triage import (
    ALREADY_COUNTED,
    FUTURE_TOLERANCE,
    SEEN_FUTURE,
    SEEN_PREDICTION,
    Claim,
    Triage,
    triage_label_times,
    triage_predictions,
    triage_unread,
)
from monitor.store.seen import Held, claim, held_labels, hold_labels, prune_seen, release_labels
from monitor.store.state import set_watermark, upsert_buckets

PREDICTIONS, LABELS, HELD_LABELS = "predictions", "labels", "held_labels"


@runtime_checkable
class RowLookups(Protocol):
    """What a source needs beyond incremental reads for every row to be accounted for: the
    rows an incremental read cannot reach, and predictions by id (for held labels). SQL
    sources have both; a source without them skips the probe and counts a label whose
    prediction is not there yet as unknown at once."""

    def unread_predictions(self, after: datetime, limit: int = ...) -> pd.DataFrame: ...

    def predictions_for_ids(self, ids: list[Any]) -> pd.DataFrame: ...


@runtime_checkable
class LabelPushdown(Protocol):
    """A source whose engine can summarise labels (`compute: pushdown`)."""

    def label_summaries_since(
        self,
        watermark: Watermark | None,
        until: datetime,
        reference: ReferenceSummary,
        now: datetime,
    ) -> LabelPushdownResult | None: ...


@runtime_checkable
class LabelLookups(Protocol):
    """The labels an incremental read cannot reach (no usable `labeled_at`)."""

    def unread_labels(self, limit: int = ...) -> pd.DataFrame: ...


@dataclass
class Intake:
    """Rows read per stream and what became of them (`stream.outcome` -> rows)."""

    read: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    bad_rows: int = 0
    capped: bool = False
    """A stream still catching up stopped at its chunk budget (`monitor.engine.backfill`)."""

    def add(self, stream: str, read: int, outcomes: dict[str, int], bad: int) -> None:
        if read:
            self.read[stream] = self.read.get(stream, 0) + read
        for outcome, count in outcomes.items():
            if count:
                key = f"{stream}.{outcome}"
                self.outcomes[key] = self.outcomes.get(key, 0) + count
        self.bad_rows += bad

    def add_all(self, other: Intake) -> None:
        for stream, read in other.read.items():
            self.read[stream] = self.read.get(stream, 0) + read
        for key, count in other.outcomes.items():
            self.outcomes[key] = self.outcomes.get(key, 0) + count
        self.bad_rows += other.bad_rows
        self.capped |= other.capped

    def unaccounted(self) -> dict[str, int]:
        """Per stream, rows read minus rows with an outcome: zero everywhere, always."""
        out = {}
        for stream in set(self.read) | {k.split(".", 1)[0] for k in self.outcomes}:
            landed = sum(v for k, v in self.outcomes.items() if k.split(".", 1)[0] == stream)
            out[stream] = self.read.get(stream, 0) - landed
        return out


def label_horizon(model: ModelConfig) -> timedelta:
    """How long a label waits for its prediction: as configured, else the longest window."""
    if model.label_horizon is not None:
        return model.label_horizon
    return max([slo.window for slo in model.slos] + [model.bucket])


def _claims(session: Session, name: str) -> Claim:
    def do(kind: str, keys: np.ndarray, ts: Any) -> np.ndarray:
        return claim(session, name, kind, keys, ts)

    return do


def _bad_of(buckets: dict[datetime, BucketSummary]) -> dict[str, int]:
    out: dict[str, int] = {}
    for summary in buckets.values():
        for reason, count in summary.bad.items():
            out[reason] = out.get(reason, 0) + count
    return out


def read_predictions(
    rt: Runtime,
    name: str,
    reference: ReferenceSummary,
    now: datetime,
    mark: Watermark,
    budget: ChunkBudget | None = None,
) -> Intake:
    model = rt.config.models[name]
    source = rt.source_for(name)
    intake = Intake()
    with rt.sessions.begin() as session:  # ids past the horizon are no longer duplicates
        before = now - model.duplicate_horizon
        prune_seen(session, name, SEEN_PREDICTION, before)
        prune_seen(session, name, SEEN_FUTURE, before)
    until = now - model.settle_delay
    if model.compute == "pushdown":  # the source's engine summarised the rows: no row here
        for pushed in source.summaries_since(mark, until, reference):
            with rt.sessions.begin() as session:
                upsert_buckets(session, name, pushed.buckets, now, part=PREDICTIONS)
                set_watermark(session, name, PREDICTIONS, pushed.mark, now)
            pushed_bad = sum(_bad_of(pushed.buckets).values())
            intake.add(PREDICTIONS, pushed.rows, {"summarised": pushed.rows}, pushed_bad)
            deadline.check()  # this chunk is stored; out of time, read no further
            if budget is not None and budget.spent(pushed.mark, pushed.rows):
                intake.capped = True
                break
        return intake
    for batch, new_mark in source.predictions_since(mark, until):
        with rt.sessions.begin() as session:
            triage = triage_predictions(batch, now, _claims(session, name))
            buckets = summarize_predictions(
                batch, reference, model.task, model.threshold, model.bucket, now, triage
            )
            upsert_buckets(session, name, buckets, now, part=PREDICTIONS)
            set_watermark(session, name, PREDICTIONS, new_mark, now)
        bad = sum(_bad_of(buckets).values())
        intake.add(PREDICTIONS, len(batch), triage.outcomes, bad)
        deadline.check()
        if budget is not None and budget.spent(new_mark, len(batch)):
            intake.capped = True
            break
    _read_unreachable(rt, name, now, intake)
    return intake


def _read_unreachable(rt: Runtime, name: str, now: datetime, intake: Intake) -> None:
    """Count, once each, the predictions the incremental read will never reach (no usable
    time) or not yet (future-dated: summarised when their time comes)."""
    model = rt.config.models[name]
    source = rt.source_for(name)
    if not isinstance(source, RowLookups):
        return
    present = max(now, datetime.now(UTC)) if rt.replaying else now
    frame = source.unread_predictions(present + FUTURE_TOLERANCE)
    if frame.empty:
        return
    parsed = parse_times(frame["v_ts"])
    with rt.sessions.begin() as session:
        triage = triage_unread(
            frame["v_id"], frame["v_ts"], parsed, present, _claims(session, name)
        )
        counts = {**triage.bad, **triage.flags}
        if counts:
            buckets = {bucket_start(now, model.bucket): BucketSummary(bad=counts)}
            if triage.future is not None:
                due = parsed[triage.future]
                count_due(buckets, bucket_start(now, model.bucket), due, model.bucket)
            upsert_buckets(session, name, buckets, now, part=PREDICTIONS)
    intake.add(PREDICTIONS, sum(triage.outcomes.values()), triage.outcomes, sum(counts.values()))


def _labelled(buckets: dict[datetime, BucketSummary]) -> int:
    return sum(summary.n_labelled for summary in buckets.values())


def read_labels(
    rt: Runtime,
    name: str,
    reference: ReferenceSummary,
    now: datetime,
    mark: Watermark,
    budget: ChunkBudget | None = None,
) -> Intake:
    """Labels since the watermark; one whose prediction is not in the source yet is held."""
    model = rt.config.models[name]
    source = rt.source_for(name)
    intake = Intake()
    if model.compute == "pushdown" and isinstance(source, LabelPushdown):
        pushed = source.label_summaries_since(mark, now - model.settle_delay, reference, now)
        if pushed is not None:  # else this model's labels cannot be pushed down: read rows
            _store_pushed_labels(rt, name, pushed, now, intake)
            _read_unreachable_labels(rt, name, now, intake)
            return intake
    for read, new_mark in source.labels_since(mark, now - model.settle_delay):
        with rt.sessions.begin() as session:
            timed = triage_label_times(
                read.ids, read.raw_labeled_at, read.labeled_at, _claims(session, name)
            )
            batch = take(read, timed.keep)
            matched = batch.matched if batch.matched is not None else batch.predicted_at.notna()
            waiting = batch.ids.notna().to_numpy() & ~matched.to_numpy(dtype=bool)
            if not isinstance(source, RowLookups):  # cannot look labels up later: unknown now
                waiting[:] = False
            held = hold_labels(session, name, to_hold(take(batch, waiting), now))
            buckets = summarize_labels(
                take(batch, ~waiting),
                model.task,
                model.threshold,
                model.bucket,
                now,
                reference.segment_values,
                reference,
            )
            repeated = int((~held).sum())  # its id is held already: a repeated label
            _count_in_now(buckets, now, model.bucket, {**timed.bad, "duplicate_label": repeated})
            upsert_buckets(session, name, buckets, now, part=LABELS)
            set_watermark(session, name, LABELS, new_mark, now)
        bad = _bad_of(buckets)
        outcomes = {"summarised": _labelled(buckets), "held": int(held.sum())}
        outcomes.update({f"bad.{reason}": count for reason, count in bad.items()})
        outcomes[ALREADY_COUNTED] = timed.outcomes.get(ALREADY_COUNTED, 0)
        intake.add(LABELS, len(read), outcomes, sum(bad.values()))
        deadline.check()
        if budget is not None and budget.spent(new_mark, len(read)):
            intake.capped = True
            break
    _read_unreachable_labels(rt, name, now, intake)
    return intake


def _store_pushed_labels(
    rt: Runtime, name: str, pushed: LabelPushdownResult, now: datetime, intake: Intake
) -> None:
    """The engine's label summaries, stored as the local fold's would be; the labels whose
    prediction is not in the source yet are held (retried by `retry_held_labels`)."""
    if pushed.mark is None:
        return
    model = rt.config.models[name]
    buckets = pushed.buckets
    with rt.sessions.begin() as session:
        held = hold_labels(session, name, held_rows(pushed.held, now))
        _count_in_now(buckets, now, model.bucket, {"duplicate_label": int((~held).sum())})
        upsert_buckets(session, name, buckets, now, part=LABELS)
        set_watermark(session, name, LABELS, pushed.mark, now)
    bad = _bad_of(buckets)
    outcomes = {"summarised": _labelled(buckets), "held": int(held.sum())}
    outcomes.update({f"bad.{reason}": count for reason, count in bad.items()})
    intake.add(LABELS, pushed.read, outcomes, sum(bad.values()))
    deadline.check()


def _count_in_now(
    buckets: dict[datetime, BucketSummary], now: datetime, width: timedelta, bad: dict[str, int]
) -> None:
    """Add rows counted bad (by reason) to the bucket of the tick's time."""
    for reason, count in bad.items():
        if count:
            summary = buckets.setdefault(bucket_start(now, width), BucketSummary())
            summary.bad[reason] = summary.bad.get(reason, 0) + count


def _read_unreachable_labels(rt: Runtime, name: str, now: datetime, intake: Intake) -> None:
    """Count, once each, the labels the incremental read will never reach: no `labeled_at`,
    or one that is no time (on SQLite or a textual PostgreSQL column, wherever it sorts)."""
    source = rt.source_for(name)
    if not isinstance(source, LabelLookups):
        return
    frame = source.unread_labels()
    if frame.empty:
        return
    raw = frame["v_labeled_at"]
    with rt.sessions.begin() as session:
        timed: Triage = triage_label_times(
            frame["v_id"], raw, parse_times(raw), _claims(session, name)
        )
        if not timed.bad:
            return
        buckets: dict[datetime, BucketSummary] = {}
        _count_in_now(buckets, now, rt.config.models[name].bucket, timed.bad)
        upsert_buckets(session, name, buckets, now, part=LABELS)
    counted = {k: v for k, v in timed.outcomes.items() if k != ALREADY_COUNTED}
    intake.add(LABELS, sum(counted.values()), counted, sum(timed.bad.values()))


def retry_held_labels(rt: Runtime, name: str, reference: ReferenceSummary, now: datetime) -> Intake:
    """Join the held labels to predictions that appeared since; count as `unknown_label_id`
    those still alone after the label horizon. Each held label is resolved exactly once: its
    summary and its release commit together."""
    model = rt.config.models[name]
    intake = Intake()
    with rt.sessions() as session:
        held = held_labels(session, name)
    if not held:
        return intake
    source = rt.source_for(name)
    if not isinstance(source, RowLookups):
        return intake
    found = source.predictions_for_ids([h.row_id for h in held])
    by_key: dict[int, int] = {}
    for i, key in enumerate(id_keys(found["v_id"])):
        by_key.setdefault(int(key), i)
    matched = [h for h in held if h.key in by_key]
    expired = [h for h in held if h.key not in by_key and h.held_at <= now - label_horizon(model)]
    if not matched and not expired:
        return intake
    buckets: dict[datetime, BucketSummary] = {}
    if matched:
        rows = found.iloc[[by_key[h.key] for h in matched]].reset_index(drop=True)
        batch = _joined(model, matched, rows)
        buckets = summarize_labels(
            batch,
            model.task,
            model.threshold,
            model.bucket,
            now,
            reference.segment_values,
            reference,
        )
    _count_in_now(buckets, now, model.bucket, {"unknown_label_id": len(expired)})
    with rt.sessions.begin() as session:
        upsert_buckets(session, name, buckets, now, part=LABELS)
        release_labels(session, name, [h.key for h in matched + expired])
    bad = _bad_of(buckets)
    outcomes = {"summarised": _labelled(buckets)}
    outcomes.update({f"bad.{reason}": count for reason, count in bad.items()})
    intake.add(HELD_LABELS, len(matched) + len(expired), outcomes, sum(bad.values()))
    return intake


def _joined(model: ModelConfig, held: list[Held], rows: pd.DataFrame) -> LabelBatch:
    """Held labels beside the prediction rows found for them, as the label reader joins."""
    preds = model.predictions
    segments = pd.DataFrame(
        {n: rows[f"v_s{i}"] for i, n in enumerate(preds.segments) if f"v_s{i}" in rows},
        index=rows.index,
    )
    return LabelBatch(
        ids=rows["v_id"],
        labeled_at=parse_times(pd.Series([h.labeled_at for h in held], dtype=object)),
        label=pd.Series([h.label for h in held], dtype=object),
        predicted_at=parse_times(rows["v_predicted_at"]),
        score=pd.to_numeric(rows["v_score"], errors="coerce") if preds.score else None,
        decision=rows["v_decision"] if preds.prediction else None,
        segments=segments,
        matched=pd.Series(True, index=rows.index),
        features=pd.DataFrame(
            {n: rows[f"v_f{i}"] for i, n in enumerate(preds.features) if f"v_f{i}" in rows},
            index=rows.index,
        ),
        class_scores=class_scores(rows, preds),
    )
