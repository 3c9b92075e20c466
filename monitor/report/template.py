"""The report's Jinja2 template, kept as a module so it ships with the package without
package-data settings; CSS is inline so the HTML stays one file that phones and printers read.

The print rules carry the paper size (`paper`: A4 or Letter) so WeasyPrint and a browser's
"print" lay it out alike; tests/test_report_print.py checks that nothing crosses the page box.
"""

TEMPLATE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SLO report {{ r.week.label }}</title>
<style>
  :root { --ok: #15803d; --bad: #b91c1c; --muted: #6b7280; --line: #e5e7eb; }
  * { box-sizing: border-box; }
  body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         color: #111827; margin: 0; background: #f9fafb; }
  main { max-width: 980px; margin: 0 auto; padding: 16px; background: #fff; }
  h1 { font-size: 1.6em; margin: .2em 0; }
  h2 { font-size: 1.3em; margin-top: 1.6em; border-bottom: 2px solid var(--line); }
  h3 { font-size: 1.05em; margin: 1.4em 0 .4em; }
  .sub, .note, small { color: var(--muted); }
  .verdict { font-size: 1.15em; font-weight: 600; }
  .cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
  .card { flex: 1 1 140px; border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
  .card b { display: block; font-size: 1.4em; }
  .scroll { overflow-x: auto; }
  table { border-collapse: collapse; width: 100%; font-size: .92em; }
  th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line);
           vertical-align: top; }
  th { background: #f3f4f6; font-weight: 600; }
  td.num { text-align: right; white-space: nowrap; }
  .met { color: var(--ok); font-weight: 600; } .missed { color: var(--bad); font-weight: 600; }
  .badge { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: .85em;
           background: #f3f4f6; } .badge.page { background: #fee2e2; color: var(--bad); }
  img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
  .biz { display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 12px; }
  .biz div { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
  .big { font-size: 1.3em; }
  footer { margin-top: 2em; font-size: .88em; color: var(--muted); }
  @media (max-width: 600px) { body { font-size: 14px; } main { padding: 10px; } }
  .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr));
            gap: 8px; margin: 8px 0; }
  .charts img { width: 100%; height: auto; margin: 0; align-self: start; }
  @page { size: {{ paper }}; margin: 12mm 12mm 13mm;
    @bottom-left { content: "Weekly SLO report {{ r.week.label }}"; font: 7.5pt sans-serif;
                   color: #6b7280; }
    @bottom-right { content: "page " counter(page) " of " counter(pages);
                    font: 7.5pt sans-serif; color: #6b7280; } }
  @media print {
    /* Paper: every table wraps inside the page box (fixed column widths, long words broken),
       charts sit two to a row, and a model starts a page only when it is not the first. */
    body { background: #fff; font-size: 8.6pt; line-height: 1.32; }
    main { max-width: none; padding: 0; }
    h1 { font-size: 15pt; } h2 { font-size: 12pt; margin: 9pt 0 3pt; }
    h3 { font-size: 10pt; margin: 8pt 0 3pt; } h2, h3 { break-after: avoid; }
    p { margin: 3pt 0; }
    * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
    .cards { flex-wrap: nowrap; gap: 6pt; margin: 5pt 0; }
    .card { flex: 1 1 0; padding: 3pt 7pt; } .card b { font-size: 12pt; }
    section.model + section.model { break-before: page; }
    .scroll { overflow: visible; }
    table { table-layout: fixed; font-size: 8pt; }
    th, td { padding: 2.5pt 4pt; overflow-wrap: anywhere; }
    td.num { white-space: normal; }
    table.headline th:nth-child(1) { width: 31%; } table.headline th:nth-child(2) { width: 17%; }
    table.headline th:nth-child(3) { width: 9%; } table.headline th:nth-child(4) { width: 11%; }
    table.headline th:nth-child(5) { width: 11%; }
    table.incidents th:nth-child(1) { width: 5%; } table.incidents th:nth-child(2) { width: 29%; }
    table.incidents th:nth-child(3) { width: 9%; } table.incidents th:nth-child(4) { width: 10%; }
    table.incidents th:nth-child(5) { width: 9%; } table.incidents th:nth-child(6) { width: 14%; }
    table.incidents th:nth-child(7) { width: 12%; }
    table.health th:nth-child(1) { width: 32%; } table.health th:nth-child(2) { width: 20%; }
    .charts { grid-template-columns: 1fr 1fr; gap: 4pt 8pt; margin: 4pt 0; }
    .biz { grid-template-columns: 1fr 1fr; gap: 6pt; }
    table, tr, img, .card, .biz div { break-inside: avoid; }
    footer { margin-top: 8pt; font-size: 7.5pt; }
    a { color: inherit; }
  }
</style>
</head>
<body><main>
<header>
  <h1>Weekly SLO report</h1>
  <p class="sub">{{ r.week.title() }} · times in {{ r.timezone }} ·
    generated {{ r.generated_at | when }}</p>
  <p class="verdict">{{ r.verdict }}</p>
  <div class="cards">
    <div class="card"><small>SLOs met</small><b>{{ r.met }} / {{ r.slos | length }}</b></div>
    <div class="card"><small>Incidents</small><b>{{ r.incidents | length }}</b></div>
    <div class="card"><small>Mean time to acknowledge</small><b>{{ r.mtta | dur }}</b></div>
    <div class="card"><small>Mean time to resolve</small><b>{{ r.mttr | dur }}</b></div>
  </div>
</header>

{% if r.models | length > 1 %}
<h2>All models</h2>
<div class="scroll"><table>
<thead><tr><th>Model</th><th>SLOs met</th><th>Missed</th><th>Incidents</th>
<th>Predictions</th></tr></thead>
{% for m in r.models %}<tr><td>{{ m.name }}</td>
<td class="num">{{ m.slos | selectattr("met") | list | length }} / {{ m.slos | length }}</td>
<td class="num">{{ m.missed | length }}</td><td class="num">{{ m.incidents | length }}</td>
<td class="num">{{ m.volume.predictions | thousands }}</td></tr>{% endfor %}
</table></div>
{% endif %}

{% for m in r.models %}
<section class="model" id="model-{{ m.name }}">
<h2>{{ m.name }}{% if m.team %} <small>team {{ m.team }}</small>{% endif %}</h2>

<h3>Objectives this week</h3>
<div class="scroll"><table class="headline">
<thead><tr><th>Objective</th><th>Good this week</th><th>Target</th><th>Result</th>
<th>vs last week</th><th>Error budget left</th><th>Failed checks decided by</th></tr></thead>
{% for s in m.slos %}<tr>
<td>{{ s.name }}{% if s.feature and s.features > 1 and s.counts.bad %}
<br><small>worst input: {{ s.feature }}</small>{% endif %}</td>
<td class="num">{{ s.attainment | pct }}<br>
<small>{{ s.counts.bad }} of {{ s.counts.good + s.counts.bad }} checks failed</small></td>
<td class="num">{{ s.slo.target | pct }}</td>
<td>{% if s.met is none %}<span class="note">not enough data</span>
{% elif s.met %}<span class="met">✓ met</span>
{% else %}<span class="missed">✗ missed</span>{% endif %}</td>
<td class="num">{{ s.change | pp }}</td>
<td class="num">{{ s.budget_left | budget }}<br><small>of {{ s.slo.period | period }}</small></td>
<td>{{ s.decided_by or "–" }}</td>
</tr>{% endfor %}
</table></div>
<p class="note">A check fails on its <i>interval</i> (the whole interval beyond the objective),
on the <i>sequential</i> rule (evidence accumulated over consecutive days) or on its
<i>point</i> estimate (wrong side for a whole window, or a value without an interval).
{% if m.references %}Judged against the reference
{% for ref in m.references %}{{ ref.words }}{% if not loop.first %} from
{{ ref.applies_from | when }}{% endif %}{% if not loop.last %};
then {% endif %}{% endfor %}.{% endif %}</p>

<h3>Charts</h3>
<div class="charts">
{% for s in m.slos %}<img alt="{{ s.name }}: the measured value over the week, its objective
 and breaches" src="{{ charts[m.name]['sli'][loop.index0] }}">{% endfor %}
{% if charts[m.name]['budget'] %}
<img alt="Error budget left over the period" src="{{ charts[m.name]['budget'] }}">{% endif %}
<img alt="Prediction volume and label coverage" src="{{ charts[m.name]['volume'] }}">
</div>

<h3>Incidents</h3>
{% if m.incidents %}
<div class="scroll"><table class="incidents">
<thead><tr><th>#</th><th>What</th><th>Severity</th><th>Opened</th><th>Lasted</th>
<th>Acknowledged after</th><th>Resolved after</th><th>Bugs</th></tr></thead>
{% for i in m.incidents %}<tr>
<td>{{ i.id }}</td>
<td>{{ i.name }}{% if i.feature %} — <b>{{ i.feature }}</b>{% endif %}
<br><small>worst value {{ i.worst }} (objective {{ i.objective }})
{%- if i.carried_over %} · carried over from an earlier week{% endif %}
{%- if i.muted %} · muted ({{ i.muted }}){% endif %}</small>
{% if i.runbook_url %}<br><small><a href="{{ i.runbook_url }}">runbook</a>
{%- if i.report_url %} · <a href="{{ i.report_url }}">drift report</a>{% endif %}</small>
{% endif %}</td>
<td><span class="badge {{ i.severity }}">{{ i.severity }}</span></td>
<td>{{ i.opened_at | when }}</td>
<td>{{ i.duration | dur }}
{%- if not i.resolved_at %}<br><small>still open at week's end</small>{% endif %}</td>
<td>{{ i.time_to_acknowledge | dur("not acknowledged") }}</td>
<td>{{ i.time_to_resolve | dur("not resolved") }}</td>
<td>{% for b in i.bugs %}
{%- if b.url %}<a href="{{ b.url }}">#{{ b.id }}</a>{% else %}#{{ b.id }}{% endif %}
 {{ b.status }}{% if b.assignee %} ({{ b.assignee }}){% endif %}<br>
{%- else %}<small>none filed</small>{% endfor %}</td>
</tr>{% endfor %}
</table></div>
{% else %}<p>No incidents this week.</p>{% endif %}

<h3>Did the inputs change?</h3>
{% for d in m.drift %}
{% if d.findings %}{% for f in d.findings %}
<p class="drift"><b>{{ f.feature }}</b>
{% if loop.first %}changed the most{% else %}also changed{% endif %}:
from {{ f.since | when }} it no longer looked like the data the model was built on
({{ d.measure }} up to {{ f.peak }}{% if f.peak_at %} on {{ f.peak_at | when }}{% endif %};
the limit is {{ d.limit }}){% if f.until %}, and was back to normal on {{ f.until | when }}
{%- else %}, and was still changed at the end of the week{% endif %}.
{% for u in f.report_urls %}<a href="{{ u }}">Detailed drift report</a>
{%- if not loop.last %} · {% endif %}{% endfor %}</p>
{% endfor %}
{% if d.calm %}<p>The other inputs stayed close to normal:
{% for name, peak in d.calm %}{{ name }} (at most {{ peak }})
{%- if not loop.last %}, {% endif %}{% endfor %}.</p>{% endif %}
{% else %}
<p class="drift">No input changed notably:
{% for name, peak in d.calm %}{{ name }} (at most {{ peak }})
{%- if not loop.last %}, {% endif %}{% endfor %} — all stayed {{ d.limit }}.</p>
{% endif %}
{% else %}<p class="note">No drift objective is configured for this model.</p>{% endfor %}

<h3>Data health</h3>
<div class="scroll"><table class="health">
<thead><tr><th>What</th><th>Objective</th><th>Typical</th><th>Worst</th>
<th>Within objective</th></tr></thead>
{% for h in m.health %}<tr><td>{{ h.what }}</td><td>{{ h.objective }}</td>
<td class="num">{{ h.typical }}</td><td class="num">{{ h.worst }}</td>
<td class="num">{{ h.within | pct }}</td></tr>{% endfor %}
<tr><td>Predictions this week</td><td>—</td>
<td class="num">{{ m.volume.predictions | thousands }}</td>
<td class="num">{% if m.volume.silent %}{{ m.volume.silent | dur }} without any
{%- else %}no gaps{% endif %}</td>
<td class="num">{{ (m.volume.predictions - m.volume.previous) | signed }} vs last week</td></tr>
<tr><td>Rows Vigil could not use</td><td>—</td>
<td class="num">{{ m.volume.unusable | thousands }}</td><td></td><td></td></tr>
</table></div>

{% if m.business %}
<h3>Business metrics</h3>
<div class="biz">
{% for b in m.business %}<div class="metric"><b>{{ b.metric.name }}</b>
{% if b.metric.description %}<br><small>{{ b.metric.description }}</small>{% endif %}
{% if b.error %}<p class="missed">Could not be computed: {{ b.error }}</p>{% else %}
<p><b class="big">{{ b.fmt(b.value) }}</b> this week ·
<span class="{{ {'good': 'met', 'bad': 'missed'}.get(b.trend, '') }}">
{{- b.fmt(b.previous) }} the week before</span></p>
{% if charts[m.name]['business'][loop.index0] %}<img alt="{{ b.metric.name }} per day"
 src="{{ charts[m.name]['business'][loop.index0] }}">{% endif %}{% endif %}
</div>{% endfor %}
</div>
{% endif %}
</section>
{% endfor %}

<footer>
<p><b>How to read this.</b> Vigil checks each objective every few minutes. "Good this week" is
the share of those checks that passed (checks without enough data count neither way); an
objective is met when that share reaches its target. The error budget is how many failed checks
the target allows over its period: 100% means none were used, overspent means the target is
missed for the period. "Inputs changed" means the distribution of an input moved away from the
reference data the model was built on; the population stability index (PSI) measures how far,
where below 0.1 is no real change and above 0.2 is a significant one. Label figures count the
labels received so far.</p>
<p>Every number comes from Vigil's store{% if r.models | selectattr("business") | list %}
(business metrics from each model's source){% endif %}; render any week again with
<code>vigil report weekly --week {{ r.week.label }}</code>.</p>
</footer>
</main></body>
</html>
"""
