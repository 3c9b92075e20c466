"""Rolling windows as merges of bucket summaries: cost grows with buckets, never with rows."""

from __future__ import annotations

from datetime import datetime, timedelta

from detectors.base import WindowContext, WindowSummary
from monitor.core.durations import format_duration
from monitor.core.summaries import BucketSummary, merge_all
from monitor.ingest.bucketing import bucket_start


def window_bounds(now: datetime, length: timedelta, width: timedelta) -> tuple[datetime, datetime]:
    """The buckets ending with the one that holds `now`, covering `length`."""
    end = bucket_start(now, width) + width
    return end - length, end


def build_window(
    buckets: list[tuple[datetime, BucketSummary]],
    now: datetime,
    length: timedelta,
    width: timedelta,
    context: WindowContext | None = None,
) -> WindowSummary:
    context = context or WindowContext()
    start, end = window_bounds(now, length, width)
    merged = merge_all(summary for s, summary in buckets if start <= s < end)
    return WindowSummary(
        label=format_duration(length),
        start=start,
        end=end,
        summary=merged,
        newest_prediction=context.newest_prediction,
        newest_label=context.newest_label,
        last_bucket=context.last_bucket,
        baseline=context.baseline,
        settings=context.settings,
    )
