"""`vigil baseline`: accept a new normal instead of silencing it.

When a change is intended (a new category, a re-trained model, a new data source), the model's
reference moves to a chosen period of its own predictions, or widens to accept named
categories. The new reference is a new version (the old ones are kept, so reports and
backtests can say which applied when); who and why are recorded as an event on every open
incident the reference decides (drift, new categories, out-of-range values, label-free
estimates), and those incidents resolve. If the new normal still breaches, the next tick says
so with a new incident: accepting a baseline never hides a real problem for long.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.incidents import record_event, resolve
from monitor.config.models import ReferenceSpec
from monitor.core.reference import CategoricalReference, ReferenceSummary, fingerprint
from monitor.engine.runtime import Runtime
from monitor.engine.tick import ensure_reference, fit_model_reference, reference_spec
from monitor.store.state import VersionNote, save_reference
from monitor.store.tables import Incident

REFERENCE_METRICS = ("drift.", "dq.new_categories", "dq.out_of_range_rate", "estimated.")
"""Metrics judged against the reference: their incidents are the ones a new baseline ends."""


class BaselineError(Exception):
    """The baseline cannot be taken as asked (unknown feature, empty period); safe to show."""


@dataclass(frozen=True)
class BaselineResult:
    model: str
    version: int
    rows: int
    resolved: list[int]


def parse_accepted(items: list[str]) -> dict[str, list[str]]:
    """`feature=value` pairs into {feature: [values]}; raises BaselineError on a bad pair."""
    out: dict[str, list[str]] = {}
    for item in items:
        feature, sep, value = item.partition("=")
        if not sep or not feature.strip() or value == "":
            raise BaselineError(f"--accept-category: write feature=value, not {item!r}")
        out.setdefault(feature.strip(), []).append(value)
    return out


def move_to_period(
    rt: Runtime, model: str, start: date, end: date, by: str, reason: str, now: datetime
) -> BaselineResult:
    """Refit the reference on the model's own predictions (and labels) from `start` to `end`
    (whole days, UTC), as a `reference: {between: [start, end]}` would."""
    if end < start:
        raise BaselineError("--to must not be before --from")
    ensure_reference(rt, model, now)  # the config's reference stays on record as a version
    config = rt.config.models[model]
    # Built unchecked: the config insists on two different days; a baseline may be one day.
    spec = ReferenceSpec.model_construct(between=(start, end), table=None, query=None)
    moved = config.model_copy(update={"reference": spec})
    frame = rt.source_for(model, moved).reference_frame()
    if frame.empty:
        raise BaselineError(f"{model}: no predictions from {start} to {end}: nothing to fit")
    # still the config's reference's fingerprint: no refit on the next tick
    reference = fit_model_reference(config, frame, fingerprint(reference_spec(config)))
    note = VersionNote(
        origin="period",
        by=by,
        reason=reason,
        period_start=datetime.combine(start, time(), UTC),
        period_end=datetime.combine(end, time(), UTC) + timedelta(days=1),
    )
    what = f"reference moved to {start} .. {end}"
    return _apply(rt, model, reference, note, None, what, now, rows=len(frame))


def accept_categories(
    rt: Runtime,
    model: str,
    accepted: dict[str, list[str]],
    by: str,
    reason: str,
    now: datetime,
) -> BaselineResult:
    """Add the named categories to the reference (with no weight: they stop being "new",
    the reference's mix is unchanged)."""
    current = ensure_reference(rt, model, now)
    categorical = dict(current.categorical)
    for feature, values in accepted.items():
        if feature not in categorical:
            known = ", ".join(sorted(categorical)) or "none"
            raise BaselineError(
                f"{model}: {feature!r} is not a categorical feature of the reference "
                f"(categorical: {known})"
            )
        ref = categorical[feature]
        counts = dict(ref.counts)
        for value in values:
            counts.setdefault(value, 0)
        categorical[feature] = CategoricalReference(counts=counts, missing=ref.missing)
    reference = replace(current, categorical=categorical)
    note = VersionNote(origin="categories", by=by, reason=reason, accepted=accepted)
    what = "accepted " + ", ".join(f"{f}={v}" for f, vs in accepted.items() for v in vs)
    return _apply(rt, model, reference, note, accepted, what, now, rows=current.n)


def _apply(
    rt: Runtime,
    model: str,
    reference: ReferenceSummary,
    note: VersionNote,
    features: dict[str, list[str]] | None,
    what: str,
    now: datetime,
    rows: int,
) -> BaselineResult:
    with rt.sessions.begin() as session:
        version = save_reference(session, model, reference, now, note)
        resolved = _resolve_affected(session, model, features, note, what, version, now)
    return BaselineResult(model, version, rows, resolved)


def _resolve_affected(
    session: Session,
    model: str,
    features: dict[str, list[str]] | None,
    note: VersionNote,
    what: str,
    version: int,
    now: datetime,
) -> list[int]:
    """Every open incident the reference decides (only the named features' when categories
    were accepted) gets a `baseline` event with who and why, and resolves."""
    open_ = session.scalars(
        select(Incident)
        .where(Incident.model == model, Incident.status != "resolved")
        .order_by(Incident.id)
    ).all()
    done = []
    for incident in open_:
        if not incident.metric.startswith(REFERENCE_METRICS):
            continue
        if features is not None and incident.feature.split("/")[-1] not in features:
            continue
        reason = f"new baseline (reference v{version}): {what}; {note.reason}"
        record_event(session, incident, "baseline", now, reason, actor=note.by)
        resolve(session, incident, now, reason, actor=note.by)
        done.append(incident.id)
    return done
