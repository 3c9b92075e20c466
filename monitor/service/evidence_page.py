"""An incident's evidence page at `/incidents/<id>`: what broke, how sure, since when, where.

The alert is one message; this page is the rest of the story, read from the store alone: the
incident's model, SLO, value against its threshold (and interval), the rule that decided the
breach (point, interval or sequential, as stored with the evaluation that opened it), every
event of its timeline, the root-cause lines and the full attribution table (every slice with
its share of traffic and its metric in the reference and now, its contribution to the change
and the mix/performance split), and the runbook. Server-rendered with the status page's
jinja2 setup (autoescaped: slice names are data, never markup), no JavaScript, one column on
a phone with the wide table scrolling inside its card. Read-only, like every page here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from detectors.root_cause_cells import CauseRow, cause_rows
from monitor.engine.runtime import Runtime
from monitor.service.status_page import PAGE_CSS, environment
from monitor.store.tables import Incident, IncidentEvent, SLOEvaluation

RULES = {
    "point": "point: the window's value is past the threshold",
    "interval": "interval: the whole confidence interval is past the threshold",
    "sequential": "sequential: evidence accumulated over consecutive blocks (CUSUM)",
    "min_samples": "min_samples: too few rows to judge",
    "reference": "reference: judged against the reference",
}


@dataclass
class EventRow:
    at: datetime
    kind: str
    actor: str
    reason: str
    value: str


@dataclass
class EvidencePage:
    id: int
    model: str
    slo_id: str
    metric: str
    kind: str
    feature: str
    severity: str
    status: str
    objective: str
    window: str
    value: str
    threshold: str
    ci: str
    n: int
    rule: str
    opened_at: datetime
    acknowledged: str
    resolved_at: datetime | None
    muted: str | None
    runbook_url: str | None
    report_url: str | None
    now: datetime
    root_cause: list[str] = field(default_factory=list)
    table: list[CauseRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)


def _num(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, int | float) else "—"


def _rule(session: Any, incident: Incident) -> tuple[str, float | None]:
    """The rule and threshold of the evaluation that opened the incident (the newest at or
    before its opening); "unknown" for an incident with no stored evaluation (burn-rate and
    meta alerts have none)."""
    row = session.execute(
        select(SLOEvaluation.rule, SLOEvaluation.threshold)
        .where(
            SLOEvaluation.model == incident.model,
            SLOEvaluation.slo_id == incident.slo_id,
            SLOEvaluation.feature == incident.feature,
            SLOEvaluation.at <= incident.opened_at,
        )
        .order_by(SLOEvaluation.at.desc(), SLOEvaluation.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return "unknown (no stored evaluation)", None
    rule, threshold = row
    return RULES.get(rule or "", rule or "unknown"), threshold


def collect_incident(rt: Runtime, incident_id: int, now: datetime) -> EvidencePage | None:
    """The page's data, or None when the store holds no such incident."""
    with rt.sessions() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return None
        alert: dict[str, Any] = dict(incident.alert or {})
        rule, threshold = _rule(session, incident)
        events = [
            EventRow(e.at, e.kind, e.actor, e.reason, _num(e.value))
            for e in session.scalars(
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident_id)
                .order_by(IncidentEvent.at, IncidentEvent.id)
            )
        ]
        if threshold is None:
            threshold = alert.get("threshold")
        ci = alert.get("ci")
        causes = alert.get("root_cause") or []
        table = alert.get("root_cause_table") or []
        acknowledged = ""
        if incident.acknowledged_at is not None:
            acknowledged = f"{incident.acknowledged_by or '?'}"
        return EvidencePage(
            id=incident.id,
            model=incident.model,
            slo_id=incident.slo_id,
            metric=incident.metric,
            kind=incident.kind,
            feature=incident.feature,
            severity=incident.severity,
            status=incident.status,
            objective=str(alert.get("objective") or ""),
            window=str(alert.get("window") or ""),
            value=_num(alert.get("value")),
            threshold=_num(threshold),
            ci=f"[{_num(ci[0])}, {_num(ci[1])}]" if isinstance(ci, list) and len(ci) == 2 else "",
            n=int(alert.get("n") or 0),
            rule=rule,
            opened_at=incident.opened_at,
            acknowledged=acknowledged,
            resolved_at=incident.resolved_at,
            muted=incident.suppressed_by,
            runbook_url=alert.get("runbook_url"),
            report_url=alert.get("report_url"),
            now=now,
            root_cause=[str(c) for c in causes] if isinstance(causes, list) else [str(causes)],
            table=cause_rows(table if isinstance(table, list) else []),
            events=events,
        )


TEMPLATE = (
    r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Incident {{ p.id }} — {{ p.model }} {{ p.metric }}</title>
<style>
"""
    + PAGE_CSS
    + r"""
  h1 { font-size: 1.35em; margin: .2em 0; } h2 { font-size: 1.1em; margin: 1.3em 0 .4em; }
  th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line);
           vertical-align: top; }
  td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
  dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 0; }
  dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
  .st { font-weight: 600; } .firing, .bad { color: var(--bad); }
  .acknowledged { color: var(--warn); } .resolved { color: var(--ok); }
  ul.cause { margin: 0; padding-left: 18px; }
  @media (max-width: 640px) {
    body { font-size: 14px; } main { padding: 8px; }
    dl.facts { grid-template-columns: 1fr; gap: 0; } dl.facts dd { margin-bottom: 6px; }
    table.attribution thead { display: none; }
    table.attribution tr { display: grid; grid-template-columns: 1fr 1fr; gap: 0 10px;
                           padding: 6px 0; border-bottom: 1px solid var(--line); }
    table.attribution td { border: 0; padding: 1px 0; text-align: left; }
    table.attribution td.slice { grid-column: 1 / -1; font-weight: 600; }
    table.attribution td[data-label]::before { content: attr(data-label) " "; color: var(--muted);
                                               font-size: .85em; }
  }
</style></head>
<body><main>
<header>
  <p class="muted"><a href="/">← status</a> · read-only · as of {{ p.now | when }} UTC</p>
  <h1>Incident {{ p.id }}: {{ p.model }} · {{ p.metric }}
    {%- if p.feature %} / {{ p.feature }}{% endif %}</h1>
  <p class="st {{ p.status }}">{{ p.status }}{% if p.acknowledged %} by
    {{ p.acknowledged }}{% endif %} · {{ p.severity }}{% if p.muted %} ·
    <small>muted by {{ p.muted }}</small>{% endif %}</p>
</header>

<section class="card"><dl class="facts">
  <dt>Model</dt><dd>{{ p.model }}</dd>
  <dt>SLO</dt><dd><code>{{ p.slo_id }}</code> <small>({{ p.kind | replace("_", " ") }})</small></dd>
  <dt>Value</dt><dd class="st">{{ p.value }}{% if p.ci %} <small>interval {{ p.ci }}</small>
    {%- endif %}{% if p.n %} <small>n={{ p.n }}</small>{% endif %}</dd>
  <dt>Threshold</dt><dd>{{ p.threshold }} <small>(objective {{ p.objective }}
    {%- if p.window %}, window {{ p.window }}{% endif %})</small></dd>
  <dt>Decided by</dt><dd>{{ p.rule }}</dd>
  <dt>Opened</dt><dd>{{ p.opened_at | when }} UTC
    <small>({{ p.opened_at | ago(p.now) }})</small></dd>
  {% if p.resolved_at %}<dt>Resolved</dt><dd>{{ p.resolved_at | when }} UTC</dd>{% endif %}
  <dt>Runbook</dt><dd>{% if p.runbook_url %}<a href="{{ p.runbook_url }}">{{ p.runbook_url }}</a>
    {%- else %}—{% endif %}</dd>
  {% if p.report_url %}<dt>Drift report</dt><dd><a href="{{ p.report_url }}">{{ p.report_url }}</a>
  </dd>{% endif %}
</dl></section>

<h2>Where the change comes from</h2>
{% if p.root_cause %}<div class="card"><ul class="cause">
{% for line in p.root_cause %}<li>{{ line }}</li>
{% endfor %}</ul></div>{% else %}<p class="card muted">No root-cause hints on this incident
(only quality alerts with labelled slices, and drift of the score, carry them).</p>{% endif %}
{% if p.table %}<div class="card"><table class="attribution">
<thead><tr><th>Slice</th><th class="num">Share ref.</th><th class="num">Share now</th>
<th class="num">{{ p.table[0].metric }} ref.</th><th class="num">Now</th>
<th class="num">Of the change</th><th class="num">Mix</th><th class="num">Performance</th>
</tr></thead>
{% for r in p.table %}<tr><td class="slice">{{ r.slice }}</td>
<td class="num" data-label="share ref.">{{ r.share_before }}</td>
<td class="num" data-label="now">{{ r.share_now }}</td>
<td class="num" data-label="{{ r.metric }} ref.">{{ r.metric_before }}</td>
<td class="num" data-label="now">{{ r.metric_now }}</td>
<td class="num" data-label="of the change">{{ r.contribution }}</td>
<td class="num" data-label="mix">{{ r.mix }}</td>
<td class="num" data-label="performance">{{ r.performance }}</td></tr>
{% endfor %}</table>
<p><small>Mix: the slice's share of traffic moved; performance: the metric moved inside the
slice. Mix and performance over all slices add up to the whole change; slices with too few
labelled rows are pooled as (other).</small></p></div>{% endif %}

<h2>Timeline</h2>
<div class="card"><table class="events">
<thead><tr><th>When (UTC)</th><th>What</th><th>Who</th><th>Why</th></tr></thead>
{% for e in p.events %}<tr><td>{{ e.at | when }}</td><td>{{ e.kind }}</td><td>{{ e.actor }}</td>
<td>{{ e.reason }}{% if e.value != "—" %} <small>(value {{ e.value }})</small>{% endif %}</td></tr>
{% else %}<tr><td colspan="4" class="muted">No events.</td></tr>{% endfor %}
</table></div>
<p class="muted"><small>Change it with <code>vigil incidents ack|resolve {{ p.id }}</code>;
<code>vigil incidents show {{ p.id }}</code> prints the same table.</small></p>
</main></body></html>
"""
)


def render(page: EvidencePage) -> str:
    return str(environment().from_string(TEMPLATE).render(p=page))


def render_incident(rt: Runtime, incident_id: int, now: datetime) -> str | None:
    """The page for one incident, None when there is no such incident (the server's 404)."""
    page = collect_incident(rt, incident_id, now)
    return None if page is None else render(page)
