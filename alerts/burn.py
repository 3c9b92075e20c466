"""Error-budget burn alerts: their own incidents, escalating from ticket to page as the burn
gets faster, resolving once no rule's windows burn too fast any more.

A burn alert is about the budget, not a second alarm for the same breach: while the SLO's own
incident is open at the rule's severity or above, the burn rule neither opens nor escalates
(one page per problem). It also needs evidence: the value judged now must have at least the
SLO's `min_samples`, and the long window at least two bad evaluations (one bad evaluation is
a breach, not a burn)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from alerts.incidents import (
    dedup_key,
    escalate,
    open_incident,
    open_incident_for,
    resolve,
)
from alerts.notifiers.base import Alert
from alerts.runbooks import runbook_url
from detectors.registry import metric_info
from monitor.config.models import BurnAlert, SLOConfig, VigilConfig, burn_alerts
from monitor.core.budget import Budget
from monitor.core.durations import format_duration
from monitor.core.severity import is_worse, severity_rank
from monitor.store.slis import Verdict

KIND = "error_budget_burn"
METRIC = "budget.burn_rate"


def apply_budget(
    session: Session,
    config: VigilConfig,
    model: str,
    verdict: Verdict,
    budget: Budget,
    now: datetime,
) -> str | None:
    """Open, escalate or resolve the SLI's burn incident; returns the change made, if any."""
    key = dedup_key(model, f"{verdict.slo_id}#budget", verdict.feature)
    incident = open_incident_for(session, key)
    rule = burning(verdict.slo, budget)
    if rule is not None and not _enough_evidence(verdict, budget, rule):
        rule = None if incident is None else rule
    if rule is not None and _covered(session, model, verdict, rule):
        return None
    if rule is None:
        if incident is not None:
            resolve(session, incident, now, "no burn-rate window burns too fast any more")
            return "resolve"
        return None
    long_label, short_label = format_duration(rule.long), format_duration(rule.short)
    rate = budget.burn_rates.get(long_label, 0.0)
    if incident is None:
        team = config.models[model].team
        labels = {"team": team} if team else {}
        labels.update(verdict.slo.labels)
        alert = Alert(
            model=model,
            slo=verdict.slo_id,
            metric=METRIC,
            kind=KIND,
            severity=rule.severity,
            objective=f"< {rule.burn:g}x over {long_label} and {short_label}",
            window=long_label,
            value=rate,
            n=budget.good + budget.bad,
            runbook_url=runbook_url(KIND, config.runbook_base_url),
            started_at=now,
            feature=verdict.value.feature,
            labels=labels,
            details={f"burn {k}": v for k, v in sorted(budget.burn_rates.items())},
        )
        reason = f"budget burning {rate:.1f}x over {long_label} (and {short_label})"
        open_incident(session, config, key, alert, now, reason)
        return "open"
    if is_worse(rule.severity, incident.severity):
        escalate(
            session, config, incident, rule.severity, now, f"burn {rate:.1f}x over {long_label}"
        )
        return "escalate"
    return None


def _enough_evidence(verdict: Verdict, budget: Budget, rule: BurnAlert) -> bool:
    gated = metric_info(verdict.slo.metric).sample_gated
    if gated and verdict.value.n < verdict.slo.min_samples:
        return False
    return budget.bad_in.get(format_duration(rule.long), 2) >= 2


def _covered(session: Session, model: str, verdict: Verdict, rule: BurnAlert) -> bool:
    """The SLO's own incident is open at this severity or above: it already says so."""
    own = open_incident_for(session, dedup_key(model, verdict.slo_id, verdict.feature))
    return own is not None and not is_worse(rule.severity, than=own.severity)


def burning(slo: SLOConfig, budget: Budget) -> BurnAlert | None:
    """The most severe burn-rate rule whose long and short windows both burn too fast."""
    firing = [
        rule
        for rule in burn_alerts(slo)
        if budget.burn_rates.get(format_duration(rule.long), 0.0) >= rule.burn
        and budget.burn_rates.get(format_duration(rule.short), 0.0) >= rule.burn
    ]
    return max(firing, key=lambda r: severity_rank(r.severity)) if firing else None
