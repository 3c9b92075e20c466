"""Error budgets and burn rates from each SLI's good/bad history (the SRE workbook's method).

An evaluation is bad when it breached, good when it was ok or uncertain (not proven bad);
evaluations without enough data do not count either way. With a target of 99%, 1% of the
period's evaluations may be bad: that is the budget. A burn rate of 1 spends it exactly over
the period; 14.4 spends 2% of a 30-day budget in one hour.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from monitor.config.models import SLOConfig, burn_alerts
from monitor.core.budget import Budget
from monitor.core.durations import format_duration
from monitor.core.values import BREACH, INSUFFICIENT
from monitor.store.tables import SLOEvaluation


def compute_budget(
    session: Session, model: str, slo_id: str, feature: str, slo: SLOConfig, now: datetime
) -> Budget:
    """One query: good and bad counts over the period and over every burn-alert window."""
    windows = sorted(
        {rule.long for rule in burn_alerts(slo)} | {rule.short for rule in burn_alerts(slo)}
    )
    counted = SLOEvaluation.status != INSUFFICIENT
    bad = SLOEvaluation.status == BREACH

    def count(since: datetime, only_bad: bool) -> object:
        condition = (SLOEvaluation.at > since) & counted
        if only_bad:
            condition = condition & bad
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    columns = [count(now - slo.period, False), count(now - slo.period, True)]
    for window in windows:
        columns += [count(now - window, False), count(now - window, True)]
    row = session.execute(
        select(*columns).where(  # type: ignore[call-overload]
            SLOEvaluation.model == model,
            SLOEvaluation.slo_id == slo_id,
            SLOEvaluation.feature == feature,
            SLOEvaluation.at > now - max([slo.period, *windows]),
        )
    ).one()
    total, bad_total = int(row[0]), int(row[1])
    allowed = 1 - slo.target
    rates: dict[str, float] = {}
    bad_in: dict[str, int] = {}
    for i, window in enumerate(windows):
        n, b = int(row[2 + 2 * i]), int(row[3 + 2 * i])
        rates[format_duration(window)] = (b / n) / allowed if n else 0.0
        bad_in[format_duration(window)] = b
    return Budget(slo.target, slo.period, total - bad_total, bad_total, rates, bad_in)
