"""Retention: fine buckets roll up into daily ones without changing any value a window,
baseline, budget or report reads, and old history goes in small batches (SQLite, PostgreSQL).

The reference for "unchanged" is a twin store holding the same buckets, never rolled up.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import func, select

from monitor.config.horizons import resolve_retention
from monitor.core.summaries import BucketSummary
from monitor.engine.budgets import compute_budget
from monitor.engine.retention import day_bounds, run_retention
from monitor.engine.runtime import Runtime, open_runtime
from monitor.engine.tick import load_windows, volume_baseline
from monitor.engine.windows import build_window
from monitor.service.retention_job import JOB_ID, retention_once, schedule_retention
from monitor.store.retention import daily_part, is_daily, roll_up_batch
from monitor.store.slis import slo_id
from monitor.store.state import load_buckets, upsert_buckets
from monitor.store.tables import BucketSummaryRow, MetricPoint, SLOEvaluation
from tests.builders import build_config, config_dict

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
NOW = datetime(2026, 11, 30, 10, 17, tzinfo=UTC)
DAYS = 36
SLOS = [
    {"metric": "accuracy", "window": "30d", "objective": ">= 0.9", "min_samples": 20},
    {"metric": "volume.ratio", "window": "1h", "objective": "> 0.5"},
]


class FixedClock:
    def __init__(self, now: datetime):
        self.current = now

    def now(self) -> datetime:
        return self.current


def summary(rng: np.random.Generator, labelled: bool) -> BucketSummary:
    """A bucket with every kind of counter the detectors read, floats included."""
    n = int(rng.integers(50, 150))
    if labelled:
        k = int(rng.integers(10, 40))
        tp = int(rng.integers(0, k))
        return BucketSummary(
            n_labelled=k,
            confusion={"tp": tp, "fp": 1, "fn": 2, "tn": k - tp},
            lag_hist=[int(x) for x in rng.integers(0, 5, 20)],
            class_score_hist={"1": [int(x) for x in rng.integers(0, 3, 20)]},
        )
    return BucketSummary(
        n=n,
        score_hist=[int(x) for x in rng.integers(0, 4, 20)],
        numeric={"amount": [int(x) for x in rng.integers(0, 20, 10)]},
        numeric_sums={"amount": [float(x) for x in rng.normal(50, 20, 10)]},
        numeric_stats={"amount": [n, float(rng.normal(3000)), float(rng.normal(9e5)), 0.5, 99.0]},
        categorical={"country": {"DE": n // 2, "FR": n - n // 2}},
        missing={"amount": int(rng.integers(0, 3))},
    )


def same(a: Any, b: Any, where: str = "") -> None:
    """Counts equal exactly; float sums equal to 1e-12 (their addition order differs)."""
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9), where
    else:
        assert a == b, where


class Stores:
    """Two stores with the same buckets: `rt` is rolled up, `twin` never is."""

    def __init__(self, db_url: str, tmp_path: Path, **retention: Any):
        data = config_dict(db_url, f"sqlite:///{tmp_path / 'unused.db'}", slos=SLOS)
        data["retention"] = {"batch_rows": 20, **retention}
        self.rt: Runtime = open_runtime(build_config(data), tmp_path)
        twin = config_dict(f"sqlite:///{tmp_path / 'twin.db'}", "sqlite:///unused", slos=SLOS)
        self.twin: Runtime = open_runtime(build_config(twin), tmp_path)
        rng = np.random.default_rng(7)
        start = NOW.replace(minute=0) - DAYS * DAY
        buckets = {
            part: {start + i * HOUR: summary(rng, part == "labels") for i in range(DAYS * 24)}
            for part in ("predictions", "labels")
        }
        for rt in (self.rt, self.twin):
            with rt.sessions.begin() as session:
                for part, found in buckets.items():
                    upsert_buckets(session, "m", found, NOW, part=part)

    def close(self) -> None:
        self.rt.close()
        self.twin.close()


@pytest.fixture
def stores(db_url: str, tmp_path: Path) -> Iterator[Any]:
    made: list[Stores] = []

    def make(**retention: Any) -> Stores:
        made.append(Stores(db_url, tmp_path, **retention))
        return made[-1]

    yield make
    for s in made:
        s.close()


def parts(rt: Runtime) -> dict[str, int]:
    with rt.sessions() as session:
        rows = session.execute(
            select(BucketSummaryRow.part, func.count()).group_by(BucketSummaryRow.part)
        )
        return {part: count for part, count in rows}


def test_a_window_over_daily_and_hourly_buckets_equals_the_hourly_one(stores: Any) -> None:
    """A day-aligned 30-day window whose older half is daily buckets merges to the same
    summary as over hourly buckets: the roll-up merges summaries exactly."""
    s = stores()
    # The volume baseline needs 28 days of hourly buckets, so `hourly_for: 15d` is refused by
    # the config check: this test rolls up with the store function the job uses, at 15 days.
    day_of = day_bounds(ZoneInfo("UTC"))
    before = day_of(NOW - 15 * DAY)[0]
    with s.rt.sessions.begin() as session:
        while roll_up_batch(session, "m", before, day_of, 30, NOW):
            pass
    counts = parts(s.rt)
    assert counts[daily_part("predictions")] >= DAYS - 16 and counts["predictions"] < 16 * 24
    end = NOW.replace(hour=0, minute=0)
    with s.rt.sessions() as a, s.twin.sessions() as b:
        rolled = load_buckets(a, "m", end - 30 * DAY, end)
        hourly = load_buckets(b, "m", end - 30 * DAY, end)
    assert len(rolled) < len(hourly)
    win_a = build_window(rolled, end - HOUR, 30 * DAY, HOUR)
    win_b = build_window(hourly, end - HOUR, 30 * DAY, HOUR)
    assert win_b.summary.n > 0 and win_b.summary.n_labelled > 0
    same(win_a.summary.to_json(), win_b.summary.to_json())


def test_every_slo_window_and_the_volume_baseline_unchanged_after_retention(
    stores: Any,
) -> None:
    """With the computed retention, ticks at hours across the next two days read the same
    windows and the same volume baseline from the rolled-up store as from the twin."""
    s = stores()
    lengths = resolve_retention(s.rt.config)
    assert lengths.fine_for == 30 * DAY + HOUR + DAY  # the 30d window, a bucket and a day
    run = run_retention(s.rt, NOW)
    assert run.rolled_up > 0 and run.finished
    assert parts(s.rt)[daily_part("labels")] >= DAYS - 32
    for k in (0, 7, 14, 23, 37):
        now = NOW + k * HOUR
        a, b = load_windows(s.rt, "m", now), load_windows(s.twin, "m", now)
        assert set(a.by_length) == set(b.by_length)
        for length, window in a.by_length.items():
            same(window.summary.to_json(), b.by_length[length].summary.to_json(), str(length))
        with s.rt.sessions() as sa, s.twin.sessions() as sb:
            assert volume_baseline(sa, "m", now, HOUR) == volume_baseline(sb, "m", now, HOUR)
    with s.twin.sessions() as session:  # a process that once read the whole history
        load_buckets(session, "m", NOW - DAYS * DAY, NOW, cache=s.twin.bucket_cache)
    assert any(start < NOW - lengths.fine_for for _, start, _ in s.twin.bucket_cache)
    run_retention(s.twin, NOW)  # the twin's cache held every hour it read; now only live ones
    assert all(start >= NOW - lengths.fine_for - DAY for _, start, _ in s.twin.bucket_cache)


def test_a_late_label_in_a_rolled_up_day_is_merged_at_the_next_run(stores: Any) -> None:
    """A label landing in an hour already rolled up is a fine row, then joins its day."""
    s = stores()
    run_retention(s.rt, NOW)
    old = NOW.replace(hour=3, minute=0) - 40 * DAY
    late = {old: BucketSummary(n_labelled=5, confusion={"tp": 5})}
    with s.rt.sessions.begin() as session:
        upsert_buckets(session, "m", late, NOW, part="labels")
    day = old.replace(hour=0)

    def labelled(rt: Runtime) -> int:
        with rt.sessions() as session:
            return sum(b.n_labelled for _, b in load_buckets(session, "m", day, day + DAY))

    before = labelled(s.rt)
    run = run_retention(s.rt, NOW)
    assert run.rolled_up == 1
    assert labelled(s.rt) == before
    assert labelled(s.rt) == labelled(s.twin) + 5


def add_history(rt: Runtime, days: int) -> None:
    slo = rt.config.models["m"].slos[0]
    rows = []
    for h in range(days * 24):
        at = NOW - h * HOUR
        status = "breach" if h % 7 == 0 else "ok"
        rows.append(
            SLOEvaluation(
                model="m", slo_id=slo_id(slo), feature="", at=at, status=status, value=0.9, n=100
            )
        )
        rows.append(
            MetricPoint(
                model="m", metric="accuracy", feature="", window="30d", at=at, value=0.9, n=100
            )
        )
    with rt.sessions.begin() as session:
        session.add_all(rows)


def test_history_is_pruned_past_what_budgets_and_reports_read_in_bounded_batches(
    stores: Any,
) -> None:
    """Evaluations and points older than the longest budget period (+ a day) go, a batch of
    at most `batch_rows` per transaction and `max_batches` per run; the budget an SLO shows
    is the same before and after, and buckets past `buckets_for` go too."""
    s = stores(max_batches=4, buckets_for="40d")
    add_history(s.rt, 40)
    slo = s.rt.config.models["m"].slos[0]
    with s.rt.sessions() as session:
        budget = compute_budget(session, "m", slo_id(slo), "", slo, NOW)
    keep = resolve_retention(s.rt.config).history_for
    assert keep == timedelta(days=31)  # the 30d window is longer than the 28d period
    first = run_retention(s.rt, NOW)
    assert first.batches == 4 and not first.finished
    runs = 1
    while not run_retention(s.rt, NOW).finished:
        runs += 1
    assert runs > 3  # bounded: the work spreads over runs of at most 4 * 20 rows
    with s.rt.sessions() as session:
        oldest = session.scalar(select(func.min(SLOEvaluation.at)))
        points = session.scalar(select(func.min(MetricPoint.at)))
        assert oldest is not None and points is not None
        assert oldest >= NOW - keep and points >= NOW - keep
        assert session.scalar(select(func.count()).select_from(SLOEvaluation)) == 31 * 24 + 1
        after = compute_budget(session, "m", slo_id(slo), "", slo, NOW)
        first_bucket = session.scalar(select(func.min(BucketSummaryRow.start)))
    assert after == budget
    assert first_bucket is not None and first_bucket >= (NOW - 40 * DAY).replace(hour=0, minute=0)
    assert all(not is_daily(p) or n <= 40 for p, n in parts(s.rt).items())


def test_the_job_runs_only_under_its_lease_and_is_scheduled(stores: Any) -> None:
    """Another replica holding the lease: this one deletes nothing. Off: nothing at all."""
    from apscheduler.schedulers.background import BackgroundScheduler

    s = stores()
    before = parts(s.rt)
    assert retention_once(s.rt, FixedClock(NOW), lambda: False) is None
    assert parts(s.rt) == before
    run = retention_once(s.rt, FixedClock(NOW), lambda: True)
    assert run is not None and run.rolled_up > 0
    scheduler = BackgroundScheduler(timezone=UTC)
    schedule_retention(scheduler, s.rt, FixedClock(NOW))
    job = scheduler.get_job(JOB_ID)
    assert job is not None and job.trigger.interval == timedelta(hours=1)


def test_db_stats_shows_rows_bytes_and_hourly_and_daily_buckets_per_model(
    stores: Any, tmp_path: Path
) -> None:
    """`vigil db stats --json` after a roll-up: each table's rows and bytes (pg or dbstat),
    and the model's hourly and daily buckets with their time range; the text form renders
    the shared table."""
    import json

    from typer.testing import CliRunner

    from monitor.cli.main import app
    from tests.builders import write_config

    s = stores()
    run_retention(s.rt, NOW)
    counts = parts(s.rt)
    data = config_dict(str(s.rt.store.url.render_as_string(hide_password=False)), "sqlite:///x")
    path = write_config(tmp_path / "vigil.yaml", data)
    result = CliRunner().invoke(app, ["db", "stats", "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["bytes_from"] in {"pg_total_relation_size", "dbstat"}
    tables = {t["table"]: t for t in found["tables"]}
    assert tables["bucket_summaries"]["rows"] == sum(counts.values())
    assert tables["bucket_summaries"]["bytes"] > 0
    (model,) = found["models"]
    assert (
        model["daily_buckets"] == counts[daily_part("predictions")] + counts[daily_part("labels")]
    )
    assert model["fine_buckets"] == counts["predictions"] + counts["labels"]
    oldest = datetime.fromisoformat(model["oldest_bucket"])
    assert oldest == (NOW.replace(minute=0) - DAYS * DAY).replace(hour=0)
    text = CliRunner().invoke(app, ["db", "stats", "--config", str(path)])
    assert text.exit_code == 0 and "HOURLY  DAILY" in text.output


def _vacuums(rt: Runtime) -> dict[str, int]:
    with rt.store.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE relname IN "
            "('bucket_summaries', 'slo_evaluations', 'metric_points')"
        )
        return {name: int(count) for name, count in rows}


@pytest.mark.parametrize("vacuum", [True, False])
def test_a_run_that_deleted_rows_vacuums_those_tables_on_postgresql(
    stores: Any, vacuum: bool
) -> None:
    """On PostgreSQL the run VACUUMs exactly the tables it deleted from (so their files stop
    growing with the rows without waiting for autovacuum); `vacuum: false` leaves it to
    autovacuum; SQLite, which reuses freed pages by itself, is never vacuumed."""
    s = stores(vacuum=vacuum, buckets_for="400d")
    add_history(s.rt, 40)
    postgres = s.rt.store.dialect.name == "postgresql"
    before = _vacuums(s.rt) if postgres else {}
    run = run_retention(s.rt, NOW)
    assert run.finished and run.evaluations_deleted > 0 and run.points_deleted > 0
    if not postgres or not vacuum:
        assert run.vacuumed == []
    else:
        assert {"slo_evaluations", "metric_points"} <= set(run.vacuumed)
    if postgres:
        # pg_stat counters are flushed at transaction end; poll briefly for the report
        after = _vacuums(s.rt)
        for _ in range(50):
            if not vacuum or all(after[t] > before.get(t, 0) for t in run.vacuumed):
                break
            time.sleep(0.1)
            after = _vacuums(s.rt)
        vacuumed = {t for t in after if after[t] > before.get(t, 0)}
        assert vacuumed == (set(run.vacuumed) if vacuum else set())
