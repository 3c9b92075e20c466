"""History on first start: a new model reads the weeks its SLOs need, in bounded ticks that
judge nothing, and its first judging tick already has a `volume.ratio` baseline (SQLite and
PostgreSQL sources and stores)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor.engine.runtime import open_runtime
from monitor.engine.tick import tick
from monitor.store.state import get_watermark
from monitor.store.tables import Incident, OutboxMessage
from tests.builders import add_labels, add_predictions, build_config, config_dict, create_source

NOW = datetime(2026, 11, 30, 10, 20, tzinfo=UTC)
HOUR, WEEK = timedelta(hours=1), timedelta(days=7)
LAST = NOW.replace(minute=0) - HOUR  # the last complete bucket: volume.ratio judges it
SLOS = [
    {"metric": "volume.ratio", "window": "1h", "objective": "> 0.5", "severity": "page"},
    {
        "metric": "accuracy",
        "window": "24h",
        "objective": ">= 0.9",
        "severity": "page",
        "min_samples": 20,
        "resolve_after": 1,
    },
]


def per_hour(start: datetime) -> int:
    """Rows in the hour starting at `start`: varies with the hour of the week and the week."""
    week = (LAST - start) // WEEK
    return 3 + (start.weekday() * 24 + start.hour) % 4 + (week * week) % 5


def history(source: Any) -> tuple[dict[datetime, int], list[datetime]]:
    """Five weeks of predictions up to now, with a bad past: three weeks ago one day's
    volume fell to a tenth and every label of that day said the model was wrong."""
    counts: dict[datetime, int] = {}
    times: list[datetime] = []
    hour = LAST - 5 * WEEK
    outage = (LAST - 3 * WEEK - 2 * 24 * HOUR).replace(hour=0)
    while hour <= LAST:
        n = per_hour(hour) if not outage <= hour < outage + 24 * HOUR else 0
        counts[hour] = n
        times += [hour + timedelta(minutes=7 * i) for i in range(n)]
        hour += HOUR
    ids = add_predictions(source, 1, times, score=0.9)
    wrong = [
        (i, t + HOUR, 0)
        for i, t in zip(ids, times, strict=True)
        if t >= outage - 24 * HOUR and t < outage
    ]  # scored 0.9, labelled not fraud: every one wrong, in the past
    add_labels(source, wrong)
    return counts, times


def test_first_start_backfills_in_bounded_ticks_then_judges_with_a_volume_baseline(
    two_db_urls: tuple[str, str], tmp_path: Path
) -> None:
    store_url, source_url = two_db_urls
    source = create_source(source_url)
    counts, times = history(source)
    data = config_dict(store_url, source_url, slos=SLOS, backfill_chunks=8)
    rt = open_runtime(build_config(data), tmp_path)
    try:
        results = []
        for i in range(10):
            results.append(tick(rt, "m", NOW + i * timedelta(minutes=1)))
            if not results[-1].backfilling:
                break
            with rt.sessions() as session:
                mark = get_watermark(session, "m", "predictions")
            assert mark is not None and mark.row_id is not None  # resumable from here
        backfilling, final = results[:-1], results[-1]
        assert len(backfilling) >= 2  # 4 weeks and more at 100 rows a chunk, 8 chunks a tick
        assert all(not r.verdicts and not r.changes for r in backfilling)
        depth = 4 * WEEK + 2 * HOUR  # the volume baseline's, not the 24h window's
        assert sum(r.predictions_read for r in results) == sum(t > NOW - depth for t in times)
        ratio = next(v for v in final.verdicts if v.value.metric == "volume.ratio").value
        baseline = [counts[LAST - k * WEEK] for k in range(1, 5)]
        assert ratio.value == pytest.approx(counts[LAST] / (sum(baseline) / 4), rel=1e-12)
        with rt.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Incident)) == 0
            assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    finally:
        rt.close()
        source.dispose()


def test_the_old_depth_leaves_volume_ratio_blind(
    two_db_urls: tuple[str, str], tmp_path: Path
) -> None:
    """The contrast: reading only the longest window back, the first tick has no baseline."""
    store_url, source_url = two_db_urls
    source = create_source(source_url)
    history(source)
    data = config_dict(store_url, source_url, slos=SLOS, backfill="24h")
    rt = open_runtime(build_config(data), tmp_path)
    try:
        result = tick(rt, "m", NOW)
        ratio = next(v for v in result.verdicts if v.value.metric == "volume.ratio").value
        assert not result.backfilling and ratio.value is None
    finally:
        rt.close()
        source.dispose()
