"""The status page at `/`: server-rendered HTML with inline SVG sparklines, no JavaScript and
no build step, one column on a phone. It refreshes itself every 60 s (a meta tag) and is
read-only: it links the runbooks and says which command changes what it shows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from markupsafe import Markup

from monitor.core.durations import humanize
from monitor.engine.runtime import Runtime
from monitor.service.status import Status, collect

WIDTH, HEIGHT, PAD = 160, 36, 3
COLORS = {"breach": "#b91c1c", "uncertain": "#b45309", "ok": "#15803d"}


def sparkline(points: list[tuple[datetime, float | None, str]], threshold: float) -> Markup:
    """An inline SVG: the values as a line, the objective's threshold dashed, breaches as red
    dots; the vertical scale spans the values and the threshold so the gap between them shows."""
    values = [v for _, v, _ in points if v is not None]
    if len(values) < 2:
        return Markup('<span class="none">not enough history</span>')
    lo, hi = min([*values, threshold]), max([*values, threshold])
    span = (hi - lo) or abs(hi) or 1.0
    first, last = points[0][0], points[-1][0]
    seconds = (last - first).total_seconds() or 1.0

    def x(at: datetime) -> float:
        return PAD + (WIDTH - 2 * PAD) * (at - first).total_seconds() / seconds

    def y(value: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value - lo) / span

    path = " ".join(
        f"{'M' if i == 0 or points[i - 1][1] is None else 'L'}{x(at):.1f},{y(v):.1f}"
        for i, (at, v, _) in enumerate(points)
        if v is not None
    )
    dots = "".join(
        f'<circle cx="{x(at):.1f}" cy="{y(v):.1f}" r="1.6" fill="{COLORS["breach"]}"/>'
        for at, v, status in points
        if v is not None and status == "breach"
    )
    ty = y(threshold)
    return Markup(
        f'<svg class="spark" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{len(values)} recent values against the objective">'
        f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#9ca3af" '
        f'stroke-dasharray="3 2" stroke-width="1"/>'
        f'<path d="{path}" fill="none" stroke="#2563eb" stroke-width="1.5"/>{dots}</svg>'
    )


PAGE_CSS = """\
  :root { --ok: #15803d; --bad: #b91c1c; --warn: #b45309; --muted: #6b7280; --line: #e5e7eb; }
  * { box-sizing: border-box; }
  body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
         color: #111827; background: #f9fafb; }
  main { max-width: 1100px; margin: 0 auto; padding: 14px; }
  .muted, small { color: var(--muted); }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px;
          margin: 10px 0; overflow-x: auto; }
  table { border-collapse: collapse; width: 100%; }
  th { font-weight: 600; font-size: .9em; color: #374151; }
"""
"""The look the status page and the incident evidence pages share (each adds its own rules)."""

TEMPLATE = (
    r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="60">
<title>Vigil status{% if not s.healthy %} — attention{% endif %}</title>
<style>
"""
    + PAGE_CSS
    + r"""
  h1 { font-size: 1.4em; margin: .2em 0; } h2 { font-size: 1.15em; margin: 1.4em 0 .4em; }
  th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line);
           vertical-align: middle; }
  .st { font-weight: 600; white-space: nowrap; }
  .breach, .bad { color: var(--bad); } .uncertain, .warn { color: var(--warn); }
  .ok, .good { color: var(--ok); } .insufficient_data { color: var(--muted); }
  .badge { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: .85em;
           background: #f3f4f6; } .badge.page { background: #fee2e2; color: var(--bad); }
  .spark { display: block; max-width: 100%; height: auto; }
  ul.cause { margin: 4px 0 0; padding-left: 18px; font-size: .92em; }
  .none { color: var(--muted); font-size: .85em; }
  .head { display: flex; flex-wrap: wrap; gap: 6px 16px; align-items: baseline; }
  @media (max-width: 640px) {
    body { font-size: 14px; } main { padding: 8px; }
    table.slos thead { display: none; }
    table.slos tr { display: grid; grid-template-columns: 1fr auto; gap: 2px 8px;
                    padding: 6px 0; border-bottom: 1px solid var(--line); }
    table.slos td { border: 0; padding: 1px 0; }
    table.slos td.spark-cell { grid-column: 1 / -1; }
  }
</style></head>
<body><main>
<header>
  <h1>Vigil status</h1>
  <p class="muted">as of {{ s.now | when }} UTC · read-only, refreshes every minute ·
    <a href="/metrics">metrics</a> · <a href="/readyz">readiness</a></p>
  {% if s.store_error %}<p class="st bad">The store does not answer: {{ s.store_error }}</p>
  {% elif s.healthy %}<p class="st good">Every model is ticking.</p>
  {% else %}<p class="st bad">{{ s.models | rejectattr("healthy") | list | length }} model(s)
    failing their ticks.</p>{% endif %}
</header>

<h2>Models</h2>
{% for m in s.models %}
<section class="card model" id="model-{{ m.name }}">
  <div class="head"><b>{{ m.name }}</b>{% if m.team %}<small>team {{ m.team }}</small>{% endif %}
  <span class="{{ 'good' if m.healthy else 'bad' }}">last tick {{ m.last_tick_at | ago(s.now) }}
  {%- if m.failures %} · {{ m.failures }} failed in a row{% else %} · succeeded{% endif %}</span>
  {% if m.last_error %}<small class="bad">{{ m.last_error }}</small>{% endif %}</div>
  <table class="slos">
  <thead><tr><th>SLO</th><th>Now</th><th>Objective</th><th>Status</th><th>Recent</th></tr></thead>
  {% for o in m.slos %}<tr>
    <td>{{ o.name }}{% if o.feature %}<br><small>worst: {{ o.feature }}</small>{% endif %}</td>
    <td class="st">{{ o.value }}{% if o.n %} <small>n={{ o.n }}</small>{% endif %}</td>
    <td>{{ o.objective }}</td>
    <td class="st {{ o.status }}">{{ o.status | replace("_", " ") }}</td>
    <td class="spark-cell">{{ sparkline(o.points, o.threshold) }}</td>
  </tr>{% endfor %}
  </table>
</section>
{% endfor %}

<h2>Open incidents ({{ s.incidents | length }})</h2>
{% if s.incidents %}<div class="card"><table class="incidents">
<thead><tr><th>#</th><th>What</th><th>Severity</th><th>Since</th></tr></thead>
{% for i in s.incidents %}<tr><td><a href="/incidents/{{ i.id }}">{{ i.id }}</a></td>
<td><b>{{ i.model }}</b> · {{ i.what }} <small>(value {{ i.value }})</small>
{%- if i.status == "acknowledged" %} <small>acknowledged</small>{% endif %}
{%- if i.muted %} <small>muted by {{ i.muted }}</small>{% endif %}
{% if i.root_cause %}<ul class="cause">{% for line in i.root_cause %}<li>{{ line }}</li>
{% endfor %}</ul>{% endif %}
<br><small><a href="/incidents/{{ i.id }}">evidence</a>
{%- if i.runbook_url %} · <a href="{{ i.runbook_url }}">runbook</a>{% endif %}</small></td>
<td><span class="badge {{ i.severity }}">{{ i.severity }}</span></td>
<td>{{ i.opened_at | ago(s.now) }}</td></tr>{% endfor %}
</table></div>
{% else %}<p class="card good">No open incidents.</p>{% endif %}

<h2>Silences ({{ s.silences | length }})</h2>
{% if s.silences %}<div class="card"><table class="silences">
<thead><tr><th>Matches</th><th>Until</th><th>By, why</th></tr></thead>
{% for x in s.silences %}<tr>
<td>{% for k, v in x.matchers.items() %}<code>{{ k }}={{ v }}</code> {% endfor %}</td>
<td>{{ x.ends_at | when }}</td><td>{{ x.created_by }}: {{ x.comment }}</td></tr>{% endfor %}
</table></div>
{% else %}<p class="card muted">No active silences.</p>{% endif %}

<h2>Outbox</h2>
<div class="card"><table class="receivers">
<thead><tr><th>Receiver</th><th>Last delivery</th><th>Waiting</th><th>Failed</th></tr></thead>
{% for r in s.receivers %}<tr><td>{{ r.name }}</td>
<td>{{ r.last_sent_at | ago(s.now) }}</td>
<td class="{{ 'warn' if r.pending else '' }}">{{ r.pending }}
{%- if r.oldest_pending_at %} <small>oldest {{ r.oldest_pending_at | ago(s.now) }}</small>
{%- endif %}</td>
<td class="{{ 'bad' if r.failed or r.expired else '' }}">{{ r.failed }}
{%- if r.expired %} <small>+{{ r.expired }} expired</small>{% endif %}
{%- if r.last_error %}<br><small>{{ r.last_error }}</small>{% endif %}</td></tr>
{% else %}<tr><td colspan="4" class="muted">No receivers configured.</td></tr>{% endfor %}
</table></div>
<p class="muted"><small>Change things with <code>vigil incidents ack|resolve</code>,
<code>vigil silence add|expire</code>, <code>vigil outbox retry</code>.</small></p>
</main></body></html>
"""
)


def environment() -> Any:
    """The pages' jinja2 setup: autoescaped, strict about unknown names, with the `when` and
    `ago` filters and `sparkline`; the evidence page (`monitor.service.evidence_page`) uses it
    too."""
    from jinja2 import Environment, StrictUndefined

    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True)

    def when(value: datetime | None) -> str:
        return "—" if value is None else value.strftime("%Y-%m-%d %H:%M")

    def ago(value: datetime | None, now: datetime) -> str:
        if value is None:
            return "never"
        seconds = (now - value).total_seconds()
        return "just now" if seconds < 1 else f"{humanize(seconds)} ago"

    env.filters.update(when=when, ago=ago)
    env.globals["sparkline"] = sparkline
    return env


def _env() -> Any:
    return environment().from_string(TEMPLATE)


def render(status: Status) -> str:
    return str(_env().render(s=status))


def render_status(rt: Runtime, now: datetime, unready_after: int) -> str:
    """The page for `rt` at `now`; a store outage renders as a page that says so."""
    return render(collect(rt, now, unready_after))
