"""Reads and writes of Vigil's own state that more than one stage needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from monitor.core.reference import ReferenceSummary
from monitor.core.summaries import BucketSummary, merge_all
from monitor.core.watermark import Watermark
from monitor.store.tables import BucketSummaryRow, Reference, ReferenceVersion
from monitor.store.tables import Watermark as WatermarkRow


def get_watermark(session: Session, model: str, stream: str) -> Watermark | None:
    row = session.get(WatermarkRow, (model, stream))
    return Watermark(row.ts, row.row_id, row.raw_ts) if row else None


def set_watermark(
    session: Session, model: str, stream: str, mark: Watermark, now: datetime
) -> None:
    row = session.get(WatermarkRow, (model, stream))
    if row is None:
        row = WatermarkRow(model=model, stream=stream)
        session.add(row)
    row.ts, row.row_id, row.raw_ts, row.updated_at = mark.ts, mark.row_id, mark.raw_ts, now


def upsert_buckets(
    session: Session,
    model: str,
    summaries: dict[datetime, BucketSummary],
    now: datetime,
    part: str = "predictions",
) -> None:
    """Merge new counts into stored buckets; rows are locked on PostgreSQL while merged.

    Each stream (predictions, labels) keeps its own row per bucket: late labels rewrite only
    the small labelled part, not the feature histograms, which is most of a bucket's size.
    """
    if not summaries:
        return
    rows = session.execute(
        select(BucketSummaryRow.start, BucketSummaryRow.payload)
        .where(
            BucketSummaryRow.model == model,
            BucketSummaryRow.part == part,
            BucketSummaryRow.start.in_(list(summaries)),
        )
        .with_for_update()
    )
    existing = {start: payload for start, payload in rows}
    inserts, updates = [], []
    for start, summary in summaries.items():
        key = {"model": model, "start": start, "part": part, "updated_at": now}
        if start in existing:
            merged = BucketSummary.from_json(existing[start])
            merged.merge_into(summary)
            updates.append({**key, "payload": merged.to_json()})
        else:
            inserts.append({**key, "payload": summary.to_json()})
    # Bulk statements by primary key: one round trip each, not one unit-of-work per bucket.
    if inserts:
        session.execute(insert(BucketSummaryRow), inserts)
    if updates:
        session.execute(update(BucketSummaryRow), updates)


BucketCache = dict[tuple[str, datetime, str], tuple[datetime, BucketSummary]]
"""(model, start, part) -> (updated_at, parsed summary): a long-running process re-reads
only the buckets that changed since the last tick instead of parsing a 7-day window anew."""


def load_buckets(
    session: Session,
    model: str,
    start: datetime,
    end: datetime,
    cache: BucketCache | None = None,
    only: list[datetime] | None = None,
) -> list[tuple[datetime, BucketSummary]]:
    """The window's buckets (both parts merged), oldest first; `only` picks exact starts."""
    where = [BucketSummaryRow.model == model]
    if only is not None:
        where.append(BucketSummaryRow.start.in_(only))
    else:
        where += [BucketSummaryRow.start >= start, BucketSummaryRow.start < end]
    parts: list[tuple[datetime, BucketSummary]]
    if cache is None:
        rows = session.execute(
            select(BucketSummaryRow.start, BucketSummaryRow.payload).where(*where)
        )
        parts = [(row_start, BucketSummary.from_json(payload)) for row_start, payload in rows]
    else:
        parts = _cached_parts(session, model, where, cache)
    by_start: dict[datetime, list[BucketSummary]] = {}
    for row_start, summary in parts:
        by_start.setdefault(row_start, []).append(summary)
    # Summaries may be the cache's own objects: read them, merge into new ones, never mutate.
    return [
        (row_start, found[0] if len(found) == 1 else merge_all(found))
        for row_start, found in sorted(by_start.items())
    ]


def _cached_parts(
    session: Session, model: str, where: list[Any], cache: BucketCache
) -> list[tuple[datetime, BucketSummary]]:
    stamps = session.execute(
        select(BucketSummaryRow.start, BucketSummaryRow.part, BucketSummaryRow.updated_at).where(
            *where
        )
    ).all()
    stale = [
        (s, p)
        for s, p, updated in stamps
        if (model, s, p) not in cache or cache[(model, s, p)][0] != updated
    ]
    if stale:
        rows = session.execute(
            select(
                BucketSummaryRow.start,
                BucketSummaryRow.part,
                BucketSummaryRow.updated_at,
                BucketSummaryRow.payload,
            ).where(
                BucketSummaryRow.model == model,
                BucketSummaryRow.start.in_(sorted({s for s, _ in stale})),
            )
        )
        for s, p, updated, payload in rows:
            cache[(model, s, p)] = (updated, BucketSummary.from_json(payload))
    return [(s, cache[(model, s, p)][1]) for s, p, _ in stamps]


def get_reference(session: Session, model: str) -> ReferenceSummary | None:
    row = session.get(Reference, model)
    return ReferenceSummary.from_json(row.payload) if row else None


def save_reference(
    session: Session,
    model: str,
    reference: ReferenceSummary,
    now: datetime,
    version: VersionNote | None = None,
) -> int:
    """Make `reference` the model's current one and keep it as a new version (who, why,
    from when); returns the version number."""
    note = version or VersionNote()
    latest = session.scalar(
        select(func.max(ReferenceVersion.version)).where(ReferenceVersion.model == model)
    )
    number = int(latest or 0) + 1
    session.add(
        ReferenceVersion(
            model=model,
            version=number,
            fingerprint=reference.fingerprint,
            payload=reference.to_json(),
            applies_from=now,
            origin=note.origin,
            period_start=note.period_start,
            period_end=note.period_end,
            accepted=note.accepted,
            created_by=note.by,
            reason=note.reason,
        )
    )
    _save_current(session, model, reference, now)
    return number


@dataclass(frozen=True)
class VersionNote:
    """Where a reference version came from: the config, a period, or accepted categories."""

    origin: str = "config"
    by: str = "vigil"
    reason: str = "fitted from the config's reference"
    period_start: datetime | None = None
    period_end: datetime | None = None
    accepted: dict[str, list[str]] | None = None


def reference_versions(session: Session, model: str) -> list[ReferenceVersion]:
    """Every reference the model has had, oldest first: which one applied when."""
    query = (
        select(ReferenceVersion)
        .where(ReferenceVersion.model == model)
        .order_by(ReferenceVersion.version)
    )
    return list(session.scalars(query))


def _save_current(session: Session, model: str, reference: ReferenceSummary, now: datetime) -> None:
    payload: dict[str, Any] = reference.to_json()
    row = session.get(Reference, model)
    if row is None:
        session.add(
            Reference(
                model=model, fingerprint=reference.fingerprint, payload=payload, created_at=now
            )
        )
    else:
        row.fingerprint, row.payload, row.created_at = reference.fingerprint, payload, now
