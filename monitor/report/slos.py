"""Each SLO's week from its stored good/bad history: attainment, budget, series and burn-down.

Attainment uses the rule of `monitor.engine.budgets`: good = ok or uncertain, bad = breach, and
insufficient data counts neither way. An SLO over many features (drift per input) is as good as
its worst feature, so the headline names that feature instead of averaging it away.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.config.models import SLOConfig
from monitor.core.budget import Budget
from monitor.core.values import BREACH, INSUFFICIENT, OK, UNCERTAIN
from monitor.report.names import slo_sentence
from monitor.report.weeks import Week
from monitor.store.slis import slo_id
from monitor.store.tables import SLOEvaluation

CHART_FEATURES = 5
"""An SLO over many inputs charts only its worst few; the rest would be an unreadable tangle."""


@dataclass(frozen=True)
class Counts:
    good: int = 0
    bad: int = 0
    insufficient: int = 0

    @property
    def attainment(self) -> float | None:
        counted = self.good + self.bad
        return self.good / counted if counted else None


@dataclass(frozen=True)
class Point:
    at: datetime
    feature: str
    value: float | None
    status: str
    threshold: float | None = None
    """The threshold that applied (a relative objective's, as resolved at that check)."""


@dataclass
class SLOLine:
    """One SLO of one model over one week, ready for the headline table and its charts."""

    model: str
    slo_id: str
    slo: SLOConfig
    name: str
    counts: Counts
    feature: str | None
    """The worst feature, for an SLO judged per feature."""
    features: int
    previous: float | None
    budget_left: float | None
    series: list[Point] = field(default_factory=list)
    burn: list[tuple[datetime, float]] = field(default_factory=list)
    rules: dict[str, int] = field(default_factory=dict)
    """Failed checks this week by the rule that decided them (interval, sequential, point)."""

    @property
    def thresholds(self) -> tuple[float, float] | None:
        """The lowest and highest threshold that applied this week (relative objectives)."""
        known = [p.threshold for p in self.series if p.threshold is not None]
        return (min(known), max(known)) if known else None

    @property
    def decided_by(self) -> str:
        """`sequential 5, interval 2`: which rule failed the week's checks, most first."""
        ranked = sorted(self.rules.items(), key=lambda item: (-item[1], item[0]))
        return ", ".join(f"{rule} {count}" for rule, count in ranked)

    @property
    def attainment(self) -> float | None:
        return self.counts.attainment

    @property
    def met(self) -> bool | None:
        value = self.attainment
        return None if value is None else value >= self.slo.target

    @property
    def change(self) -> float | None:
        if self.attainment is None or self.previous is None:
            return None
        return self.attainment - self.previous

    @property
    def breaches(self) -> int:
        return self.counts.bad


def counts_by_feature(
    session: Session, model: str, sid: str, start: datetime, end: datetime
) -> dict[str, Counts]:
    """Good, bad and insufficient evaluations per feature with start < at <= end."""
    rows = session.execute(
        select(SLOEvaluation.feature, SLOEvaluation.status, func.count())
        .where(
            SLOEvaluation.model == model,
            SLOEvaluation.slo_id == sid,
            SLOEvaluation.at > start,
            SLOEvaluation.at <= end,
        )
        .group_by(SLOEvaluation.feature, SLOEvaluation.status)
    )
    tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for feature, status, n in rows:
        tally[feature][status] += int(n)
    return {
        feature: Counts(good=by[OK] + by[UNCERTAIN], bad=by[BREACH], insufficient=by[INSUFFICIENT])
        for feature, by in tally.items()
    }


def _rank(item: tuple[str, Counts]) -> tuple[float, int, str]:
    """Lowest attainment first, most breaches on a tie; features without data sort last."""
    attainment = item[1].attainment
    return (2.0 if attainment is None else attainment, -item[1].bad, item[0])


def _worst(counts: dict[str, Counts]) -> tuple[str | None, Counts]:
    if not counts:
        return None, Counts()
    return min(counts.items(), key=_rank)


def budget_left_by_feature(
    session: Session, model: str, slo: SLOConfig, sid: str, end: datetime
) -> dict[str, float | None]:
    """Each feature's error budget left over the SLO's period ending at the week's end."""
    counts = counts_by_feature(session, model, sid, end - slo.period, end)
    return {
        feature: Budget(slo.target, slo.period, c.good, c.bad, {}).budget_left
        for feature, c in counts.items()
    }


def breaches_by_rule(session: Session, model: str, sid: str, week: Week) -> dict[str, int]:
    """The week's failed checks by the rule that decided them (`unrecorded` before rules were
    kept)."""
    rows = session.execute(
        select(SLOEvaluation.rule, func.count())
        .where(
            SLOEvaluation.model == model,
            SLOEvaluation.slo_id == sid,
            SLOEvaluation.status == BREACH,
            SLOEvaluation.at > week.start,
            SLOEvaluation.at <= week.end,
        )
        .group_by(SLOEvaluation.rule)
    )
    return {rule or "unrecorded": int(n) for rule, n in rows}


def _series(session: Session, model: str, sid: str, week: Week, features: list[str]) -> list[Point]:
    rows = session.execute(
        select(
            SLOEvaluation.at,
            SLOEvaluation.feature,
            SLOEvaluation.value,
            SLOEvaluation.status,
            SLOEvaluation.threshold,
        )
        .where(
            SLOEvaluation.model == model,
            SLOEvaluation.slo_id == sid,
            SLOEvaluation.feature.in_(features),
            SLOEvaluation.at > week.start,
            SLOEvaluation.at <= week.end,
        )
        .order_by(SLOEvaluation.at)
    )
    return [Point(*row) for row in rows]


def burn_down(
    session: Session, model: str, slo: SLOConfig, sid: str, feature: str, end: datetime
) -> list[tuple[datetime, float]]:
    """Budget left through the period ending at `end`: 1 at its first evaluation, then one step
    down per bad evaluation; the last point equals the headline's budget left."""
    start = end - slo.period
    base = (
        SLOEvaluation.model == model,
        SLOEvaluation.slo_id == sid,
        SLOEvaluation.feature == feature,
        SLOEvaluation.at > start,
        SLOEvaluation.at <= end,
        SLOEvaluation.status != INSUFFICIENT,
    )
    total, first = session.execute(
        select(func.count(), func.min(SLOEvaluation.at)).where(*base)
    ).one()
    if not total:
        return []
    allowed = total * (1 - slo.target)
    bad_times = session.scalars(
        select(SLOEvaluation.at)
        .where(*base, SLOEvaluation.status == BREACH)
        .order_by(SLOEvaluation.at)
    ).all()
    points = [(first, 1.0)]  # from the first evaluation: no flat line before history began
    for i, at in enumerate(bad_times, start=1):
        points.append((at, 1 - i / allowed))
    points.append((end, 1 - len(bad_times) / allowed))
    return points


def slo_lines(session: Session, model: str, slos: list[SLOConfig], week: Week) -> list[SLOLine]:
    previous = week.previous()
    lines = []
    for slo in slos:
        sid = slo_id(slo)
        this_week = counts_by_feature(session, model, sid, week.start, week.end)
        last_week = counts_by_feature(session, model, sid, previous.start, previous.end)
        feature, counts = _worst(this_week)
        budgets = budget_left_by_feature(session, model, slo, sid, week.end)
        known = [(b, f) for f, b in budgets.items() if b is not None]
        budget_left, budget_feature = min(known) if known else (None, None)
        ranked = [f for f, _ in sorted(this_week.items(), key=_rank)][:CHART_FEATURES]
        series = _series(session, model, sid, week, ranked)
        line = SLOLine(
            model=model,
            slo_id=sid,
            slo=slo,
            name="",
            counts=counts,
            feature=feature if slo.features is not None or slo.segment_by else None,
            features=len(this_week),
            previous=_worst(last_week)[1].attainment,
            budget_left=budget_left,
            series=series,
            rules=breaches_by_rule(session, model, sid, week),
        )
        line.name = slo_sentence(slo, line.thresholds)
        if budget_feature is not None:
            line.burn = burn_down(session, model, slo, sid, budget_feature, week.end)
        lines.append(line)
    return lines


def tick_spacing(points: list[Point]) -> timedelta:
    """The usual time between evaluations, to give a single breach a visible width."""
    times = sorted({p.at for p in points})
    if len(times) < 2:
        return timedelta(hours=1)
    gaps = sorted(b - a for a, b in pairwise(times))
    return gaps[len(gaps) // 2]
