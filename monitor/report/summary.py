"""The short version of the report for Slack and email: the verdict, what missed, incidents.

Kept to a few lines because it is read in a notification; the attached HTML has the rest.
"""

from __future__ import annotations

from typing import Any

from monitor.core.durations import humanize
from monitor.report.data import WeeklyReport
from monitor.report.names import fmt_pct

MAX_SECTION = 2900  # Slack allows 3000 characters per section text; keep a margin


def summary_lines(report: WeeklyReport) -> list[str]:
    tz = report.week.tz
    lines = [report.verdict]
    for model in report.models:
        for line in model.missed:
            lines.append(
                f"• {model.name}: missed “{line.name}” — {fmt_pct(line.attainment)} good, "
                f"target {fmt_pct(line.slo.target)}"
            )
    for inc in report.incidents:
        what = inc.name + (f" ({inc.feature})" if inc.feature else "")
        resolved = inc.time_to_resolve
        after = f"resolved after {humanize(resolved.total_seconds())}" if resolved else "open"
        lines.append(
            f"• incident #{inc.id} [{inc.severity}] {inc.model}: {what}; opened "
            f"{inc.opened_at.astimezone(tz):%a %d %b %H:%M}, {after}"
        )
    if report.mttr is not None:
        lines.append(f"Mean time to resolve: {humanize(report.mttr.total_seconds())}.")
    return lines


def summary_text(report: WeeklyReport) -> str:
    head = f"Weekly SLO report {report.week.title()}"
    return "\n".join([head, *summary_lines(report)])


def slack_blocks(report: WeeklyReport, filename: str) -> list[dict[str, Any]]:
    body = "\n".join(summary_lines(report))
    body = body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if len(body) > MAX_SECTION:
        body = body[: MAX_SECTION - 1] + "…"
    return [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"Weekly SLO report · {report.week.label}"},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": body}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"{report.week.title()} · full report in the thread: {filename}",
                }
            ],
        },
    ]
