"""Error budgets and burn rates from each SLI's good/bad history (the SRE workbook's method).

An evaluation is bad when it breached, good when it was ok or uncertain (not proven bad);
evaluations without enough data do not count either way. With a target of 99%, 1% of the
period's evaluations may be bad: that is the budget. A burn rate of 1 spends it exactly over
the period; 14.4 spends 2% of a 30-day budget in one hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from monitor.config.models import SLOConfig, burn_alerts
from monitor.core.budget import Budget
from monitor.core.durations import format_duration
from monitor.core.values import BREACH, INSUFFICIENT
from monitor.store.slis import slo_id
from monitor.store.tables import SLOEvaluation


def compute_budget(
    session: Session, model: str, slo_id: str, feature: str, slo: SLOConfig, now: datetime
) -> Budget:
    """One query: good and bad counts over the period and over every burn-alert window."""
    windows, columns, since = _count_columns(slo, now)
    row = session.execute(
        select(*columns).where(
            SLOEvaluation.model == model,
            SLOEvaluation.slo_id == slo_id,
            SLOEvaluation.feature == feature,
            SLOEvaluation.at > since,
        )
    ).one()
    return _budget(slo, windows, [int(v) for v in row])


class BudgetHistory:
    """Every SLI's good and bad counts from before this tick, read once per SLO (grouped by
    feature) instead of once per value: a tick judges one value per SLO and feature, 400 at
    200 features. Each verdict then adds its own evaluation, as `compute_budget` would count
    it once flushed, so the budgets are the same (tests/test_budget_history.py)."""

    def __init__(self, session: Session, model: str, now: datetime, slos: list[SLOConfig]):
        self.now = now
        self._counts: dict[tuple[str, str], list[int]] = {}
        self._read: dict[str, tuple[timedelta, list[timedelta]]] = {}
        for slo in slos:
            sid = slo_id(slo)
            if sid in self._read:
                continue
            windows, columns, since = _count_columns(slo, now)
            self._read[sid] = (slo.period, windows)
            rows = session.execute(
                select(SLOEvaluation.feature, *columns)
                .where(
                    SLOEvaluation.model == model,
                    SLOEvaluation.slo_id == sid,
                    SLOEvaluation.at > since,
                )
                .group_by(SLOEvaluation.feature)
            )
            for feature, *counts in rows:
                self._counts[(sid, feature)] = [int(v) for v in counts]

    def budget(self, sid: str, feature: str, slo: SLOConfig, status: str) -> Budget | None:
        """The budget with this verdict counted; None for an SLO not read at the start, or
        read with other windows (the caller then queries, as `compute_budget`)."""
        windows = _windows_of(slo)
        if self._read.get(sid) != (slo.period, windows):
            return None
        counts = self._counts.setdefault((sid, feature), [0] * (2 + 2 * len(windows)))
        counted = int(status != INSUFFICIENT)
        bad = int(status == BREACH)
        for i in range(0, len(counts), 2):  # at `now`: inside the period and every window
            counts[i] += counted
            counts[i + 1] += bad
        return _budget(slo, windows, counts)


def _windows_of(slo: SLOConfig) -> list[timedelta]:
    return sorted(
        {rule.long for rule in burn_alerts(slo)} | {rule.short for rule in burn_alerts(slo)}
    )


def _count_columns(slo: SLOConfig, now: datetime) -> tuple[list[timedelta], list[Any], datetime]:
    """The windows, the count columns (all, bad; for the period then each window) and the
    oldest time any of them reads."""
    windows = _windows_of(slo)
    counted = SLOEvaluation.status != INSUFFICIENT
    bad = SLOEvaluation.status == BREACH

    def count(since: datetime, only_bad: bool) -> Any:
        condition = (SLOEvaluation.at > since) & counted
        if only_bad:
            condition = condition & bad
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    columns = [count(now - slo.period, False), count(now - slo.period, True)]
    for window in windows:
        columns += [count(now - window, False), count(now - window, True)]
    return windows, columns, now - max([slo.period, *windows])


def _budget(slo: SLOConfig, windows: list[timedelta], row: list[int]) -> Budget:
    total, bad_total = row[0], row[1]
    allowed = 1 - slo.target
    rates: dict[str, float] = {}
    bad_in: dict[str, int] = {}
    for i, window in enumerate(windows):
        n, b = row[2 + 2 * i], row[3 + 2 * i]
        rates[format_duration(window)] = (b / n) / allowed if n else 0.0
        bad_in[format_duration(window)] = b
    return Budget(slo.target, slo.period, total - bad_total, bad_total, rates, bad_in)
