"""HTML from a `WeeklyReport`: charts drawn, template filled, one self-contained file.

jinja2 and matplotlib are the optional `report` extra; they are imported here, on first use,
so `vigil run` starts (and ticks) without them and only the weekly job needs them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from monitor.core.durations import format_duration, humanize
from monitor.report import charts
from monitor.report.data import WeeklyReport
from monitor.report.names import fmt_pct
from monitor.report.template import TEMPLATE


def _charts(report: WeeklyReport) -> dict[str, dict[str, Any]]:
    week = report.week
    out: dict[str, dict[str, Any]] = {}
    for model in report.models:
        out[model.name] = {
            "sli": [charts.sli_chart(line, week) for line in model.slos],
            "budget": charts.budget_chart(model.slos, week),
            "volume": charts.volume_chart(model.volume, week),
            "business": [
                None if b.error else charts.business_chart(b, week) for b in model.business
            ],
        }
    return out


def render_html(report: WeeklyReport, paper: str = "A4") -> str:
    """The report as one HTML file; `paper` (A4 or Letter) sets its printed page size."""
    from jinja2 import Environment, StrictUndefined

    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True)
    tz = report.week.tz

    def when(value: datetime | None) -> str:
        return "—" if value is None else value.astimezone(tz).strftime("%a %d %b %H:%M")

    def dur(value: timedelta | None, missing: str = "—") -> str:
        return missing if value is None else humanize(value.total_seconds())

    def pp(change: float | None) -> str:
        if change is None:
            return "—"
        points = change * 100
        return "±0 pp" if abs(points) < 0.05 else f"{points:+.1f} pp".replace("-", "−")

    def budget(left: float | None) -> str:
        if left is None:
            return "n/a"
        if left >= 0:
            return fmt_pct(left, 0)
        return f"overspent: {1 - left:.1f}× the allowed failures"

    def signed(number: int) -> str:
        return f"{number:+,}".replace("-", "−")

    env.filters.update(
        when=when,
        dur=dur,
        pct=fmt_pct,
        pp=pp,
        budget=budget,
        signed=signed,
        thousands="{:,}".format,
        period=format_duration,
    )
    return env.from_string(TEMPLATE).render(r=report, charts=_charts(report), paper=paper)
