"""Judges metric values against objectives and keeps each SLI's state and good/bad history.

How a status is decided lives in monitor/engine/judging.py; this module stores it, with the
rule that decided it and the evidence the sequential and persistence rules carry forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from monitor.config.models import SLOConfig
from monitor.core.durations import format_duration
from monitor.core.values import MetricValue
from monitor.store.tables import SLOEvaluation, SLOState


def slo_id(slo: SLOConfig) -> str:
    """A stable name for an SLO: its own name, or metric, objective and window."""
    if slo.name:
        return slo.name
    objective = slo.objective.text.replace(" ", "")
    return f"{slo.metric}{objective}@{format_duration(slo.window)}"


@dataclass(frozen=True)
class Evidence:
    """What the sequential and persistence rules carry from one evaluation to the next."""

    cusum: float | None = None
    cusum_block: datetime | None = None
    wrong_since: datetime | None = None


def stored_evidence(session: Session, model: str, sid: str, feature: str) -> Evidence:
    state = session.get(SLOState, (model, sid, feature))
    if state is None:
        return Evidence()
    return Evidence(state.cusum, state.cusum_block, state.wrong_since)


@dataclass(frozen=True)
class Verdict:
    """The judged value plus how long its status has held (for `for:` and hysteresis)."""

    slo: SLOConfig
    slo_id: str
    value: MetricValue
    status: str
    since: datetime
    streak: int
    rule: str = "point"
    """Which rule decided the status: point, interval, sequential or min_samples."""

    @property
    def feature(self) -> str:
        return self.value.feature or ""

    @property
    def threshold(self) -> float:
        """The threshold that applied (a relative objective's, resolved for this value)."""
        return self.slo.objective.threshold

    @property
    def derived(self) -> str:
        """How the threshold was derived, in words; empty for a fixed objective."""
        return self.slo.objective.derived


def record(
    session: Session,
    model: str,
    slo: SLOConfig,
    value: MetricValue,
    status: str,
    now: datetime,
    rule: str = "point",
    evidence: Evidence | None = None,
) -> Verdict:
    """Update the SLI's state (status, since, streak) and append to its history."""
    sid = slo_id(slo)
    feature = value.feature or ""
    threshold = slo.objective.threshold
    ci_low, ci_high = value.ci if value.ci else (None, None)
    state = session.get(SLOState, (model, sid, feature))
    if state is None:
        state = SLOState(
            model=model, slo_id=sid, feature=feature, status=status, since=now, streak=0
        )
        session.add(state)
    if state.status != status:
        state.status, state.since, state.streak = status, now, 0
    state.streak = (state.streak or 0) + 1
    state.evaluated_at = now
    state.value, state.n, state.ci_low, state.ci_high = value.value, value.n, ci_low, ci_high
    state.rule = rule
    if evidence is not None:
        state.cusum, state.cusum_block = evidence.cusum, evidence.cusum_block
        state.wrong_since = evidence.wrong_since
    session.add(
        SLOEvaluation(
            ci_low=ci_low,
            ci_high=ci_high,
            model=model,
            slo_id=sid,
            feature=feature,
            at=now,
            status=status,
            value=value.value,
            n=value.n,
            rule=rule,
            threshold=threshold if math.isfinite(threshold) else None,
        )
    )
    return Verdict(
        slo=slo,
        slo_id=sid,
        value=value,
        status=status,
        since=state.since,
        streak=state.streak,
        rule=rule,
    )
