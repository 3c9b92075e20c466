"""The report's charts as PNG data URIs, so the HTML is one self-contained file.

matplotlib is imported only when a chart is drawn (the daemon must not pay for it at start),
and through `Figure` with the Agg canvas rather than pyplot: no global figure state, no GUI
backend, safe in the scheduler's worker thread.
"""

from __future__ import annotations

import base64
import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from monitor.core.durations import format_duration
from monitor.report.business import BusinessLine
from monitor.report.health import Volume
from monitor.report.names import PERCENT_METRICS, unit_of
from monitor.report.slos import SLOLine, tick_spacing
from monitor.report.weeks import Week

BLUE, RED, GREY, GREEN = "#2563eb", "#dc2626", "#6b7280", "#16a34a"
PALETTE = ["#2563eb", "#9333ea", "#0891b2", "#ca8a04", "#db2777"]
DPI = 130
WIDTH, HEIGHT = 5.0, 2.5
"""Inches: two charts side by side fill an A4 or Letter page (about 3.6 in each, so
8 pt text prints at 6 pt) and a 980 px screen; on a phone they stack."""


def _figure(width: float = WIDTH, height: float = HEIGHT) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _encode(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _mdates() -> Any:
    """matplotlib.dates, untyped: its locators and formatters carry no annotations."""
    import matplotlib.dates

    return matplotlib.dates


def _days_axis(ax: Any, tz: ZoneInfo, start: datetime, end: datetime) -> None:
    mdates = _mdates()
    ax.set_xlim(start.astimezone(tz), end.astimezone(tz))
    ax.xaxis.set_major_locator(mdates.DayLocator(tz=tz))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %d", tz=tz))
    ax.grid(True, axis="y", color="#e5e7eb")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _scale(metric: str, values: list[float]) -> tuple[float, str]:
    """Divide values by the factor and label the axis with the unit people read."""
    if unit_of(metric) == "s":
        peak = max(values, default=0.0)
        return (3600.0, "hours") if peak >= 2 * 3600 else (60.0, "minutes")
    if metric in PERCENT_METRICS:
        return 0.01, "%"
    return 1.0, ""


def _spans(times: list[datetime], half: timedelta) -> list[tuple[datetime, datetime]]:
    """Breach times merged into shaded intervals, each point widened by half a tick."""
    spans: list[tuple[datetime, datetime]] = []
    for at in sorted(times):
        lo, hi = at - half, at + half
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], hi)
        else:
            spans.append((lo, hi))
    return spans


def sli_chart(line: SLOLine, week: Week) -> str:
    """The SLI over the week, its objective as a dashed line and breaches shaded red."""
    tz = week.tz
    fig = _figure()
    ax = fig.add_subplot()
    values = [p.value for p in line.series if p.value is not None]
    relative = line.slo.objective.relative
    steps = [(p.at, p.threshold) for p in line.series if p.threshold is not None]
    thresholds = steps if relative else []
    fixed = [] if relative else [line.slo.objective.threshold]
    factor, unit = _scale(line.slo.metric, [*values, *fixed, *(t for _, t in thresholds)])
    features = list(dict.fromkeys(p.feature for p in line.series))
    for i, feature in enumerate(features):
        points = [p for p in line.series if p.feature == feature]
        ax.plot(
            [p.at.astimezone(tz) for p in points],
            [float("nan") if p.value is None else p.value / factor for p in points],
            color=PALETTE[i % len(PALETTE)],
            linewidth=1.6,
            label=feature or None,
        )
    if relative and thresholds:  # computed at each check, from the reference
        ax.step(
            [at.astimezone(tz) for at, _ in thresholds],
            [t / factor for _, t in thresholds],
            where="post",
            color=RED,
            linestyle="--",
            linewidth=1.2,
            label="objective (relative to the reference)",
        )
    elif not relative:
        ax.axhline(fixed[0] / factor, color=RED, linestyle="--", linewidth=1.2, label="objective")
    half = tick_spacing(line.series) / 2
    breaches = [p.at for p in line.series if p.status == "breach"]
    for lo, hi in _spans(breaches, half):
        ax.axvspan(lo.astimezone(tz), hi.astimezone(tz), color=RED, alpha=0.15, linewidth=0)
    _days_axis(ax, tz, week.start, week.end)
    ax.set_ylabel(unit)
    ax.set_title(line.name, loc="left", fontsize=9, wrap=True)
    ax.tick_params(labelsize=8)
    ncols = min(len(features) + 1, 3)
    fig.legend(loc="outside lower center", fontsize=7.5, frameon=False, ncols=ncols)
    return _encode(fig)


def budget_chart(lines: list[SLOLine], week: Week) -> str | None:
    """Error budget left through each SLO's period, ending with the week; this week shaded."""
    drawn = [line for line in lines if line.burn]
    if not drawn:
        return None
    tz = week.tz
    fig = _figure(height=HEIGHT + 0.16 * len(drawn))
    ax = fig.add_subplot()
    for i, line in enumerate(drawn):
        ax.step(
            [t.astimezone(tz) for t, _ in line.burn],
            [max(v, -1.0) * 100 for _, v in line.burn],
            where="post",
            color=PALETTE[i % len(PALETTE)],
            linewidth=1.8,
            label=line.name if len(line.name) <= 58 else line.name[:57] + "…",
        )
    ax.axhline(0, color=GREY, linewidth=1)
    ax.axvspan(week.start.astimezone(tz), week.end.astimezone(tz), color=GREY, alpha=0.1)
    start = min(line.burn[0][0] for line in drawn)
    mdates = _mdates()
    ax.set_xlim(start.astimezone(tz), week.end.astimezone(tz))
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(tz=tz, minticks=3, maxticks=8))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b", tz=tz))
    ax.set_ylim(-105, 105)
    ax.set_ylabel("budget left, %")
    ax.grid(True, axis="y", color="#e5e7eb")
    ax.tick_params(labelsize=8)
    ax.set_title("Error budget left (below 0: overspent, clipped at −100%)", loc="left", fontsize=9)
    fig.legend(loc="outside lower center", fontsize=7, frameon=False, ncols=1)
    return _encode(fig)


def volume_chart(vol: Volume, week: Week) -> str:
    """Predictions per bin (bars) and the share of each day's predictions with a label."""
    tz = week.tz
    fig = _figure()
    ax = fig.add_subplot()
    per = format_duration(vol.width)
    ax.bar(
        [t.astimezone(tz) for t, _ in vol.series],
        [n for _, n in vol.series],
        width=vol.width / timedelta(days=1),
        align="edge",
        color=BLUE,
        alpha=0.7,
        label=f"predictions per {per}",
    )
    ax.set_ylabel(f"predictions / {per}")
    _days_axis(ax, tz, week.start, week.end)
    cover = ax.twinx()
    days = [(t + timedelta(hours=12)).astimezone(tz) for t, _ in vol.daily_coverage]
    shares = [float("nan") if c is None else c * 100 for _, c in vol.daily_coverage]
    cover.plot(days, shares, color=GREEN, marker="o", linewidth=1.8, label="labelled, % of day")
    cover.set_ylim(0, 105)
    cover.set_ylabel("labelled, %")
    cover.spines["top"].set_visible(False)
    ax.set_title("Prediction volume and label coverage", loc="left", fontsize=9)
    ax.tick_params(labelsize=8)
    cover.tick_params(labelsize=8)
    handles = ax.get_legend_handles_labels()[0] + cover.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", fontsize=7.5, frameon=False, ncols=2)
    return _encode(fig)


def business_chart(line: BusinessLine, week: Week) -> str | None:
    """A small daily trend of one business metric."""
    if not any(v is not None for _, v in line.daily):
        return None
    fig = _figure(4.2, 1.5)
    ax = fig.add_subplot()
    factor = 100.0 if line.metric.format == "percent" else 1.0
    xs = [day.strftime("%a") for day, _ in line.daily]
    ys = [float("nan") if v is None else v * factor for _, v in line.daily]
    ax.plot(xs, ys, color=BLUE, marker="o", linewidth=1.6)
    ax.grid(True, axis="y", color="#e5e7eb")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)
    return _encode(fig)
