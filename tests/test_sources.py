"""Reading a model's source: incremental, chunked, settled, and robust to bad rows and outages.

Every test runs with the store and the source on SQLite, then both on PostgreSQL
(`two_db_urls`), except the unparsable-timestamp test, which only SQLite can express.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.core.summaries import BucketSummary, merge_all
from monitor.core.watermark import Watermark
from monitor.engine.runtime import Runtime, open_runtime
from monitor.engine.tick import TickResult, tick
from monitor.ingest.bucketing import bucket_start
from monitor.ingest.sources import SqlSource
from monitor.store.db import make_engine
from monitor.store.state import get_watermark, load_buckets
from monitor.store.tables import ModelHealth
from tests.builders import (
    T0,
    add_labels,
    add_predictions,
    build_config,
    config_dict,
    create_source,
    hourly,
)

NAN = float("nan")


@pytest.fixture
def source(two_db_urls: tuple[str, str]) -> Iterator[sa.Engine]:
    engine = create_source(two_db_urls[1], n_reference=300)
    yield engine
    engine.dispose()


def _runtime(
    two_db_urls: tuple[str, str], tmp_path: Path, source_url: str | None = None, **model: Any
) -> Runtime:
    store_url, default_source = two_db_urls
    config = build_config(config_dict(store_url, source_url or default_source, **model))
    return open_runtime(config, tmp_path)


@pytest.fixture
def rt(two_db_urls: tuple[str, str], tmp_path: Path, source: sa.Engine) -> Iterator[Runtime]:
    runtime = _runtime(two_db_urls, tmp_path)
    yield runtime
    runtime.close()


def _buckets(rt: Runtime) -> dict[datetime, BucketSummary]:
    with rt.sessions() as session:
        rows = load_buckets(session, "m", T0 - timedelta(days=30), T0 + timedelta(days=30))
    return dict(rows)


def _total(rt: Runtime) -> BucketSummary:
    return merge_all(_buckets(rt).values())


def test_second_tick_reads_only_new_rows(rt: Runtime, source: sa.Engine) -> None:
    """Each tick reads the rows added since the previous one, never the old ones again."""
    add_predictions(source, 1, hourly(T0 + timedelta(hours=1), 50))
    first = tick(rt, "m", T0 + timedelta(hours=2))
    assert first.predictions_read == 50

    add_predictions(source, 51, hourly(T0 + timedelta(hours=2), 30))
    second = tick(rt, "m", T0 + timedelta(hours=3))
    assert second.predictions_read == 30

    third = tick(rt, "m", T0 + timedelta(hours=3, minutes=5))
    assert third.predictions_read == 0

    buckets = _buckets(rt)
    assert buckets[T0 + timedelta(hours=1)].n == 50
    assert buckets[T0 + timedelta(hours=2)].n == 30
    assert _total(rt).n == 80
    with rt.sessions() as session:
        mark = get_watermark(session, "m", "predictions")
    assert mark is not None and mark.row_id == 80
    assert mark.ts == T0 + timedelta(hours=2, minutes=29)


def test_shared_timestamp_across_chunk_boundaries(rt: Runtime, source: sa.Engine) -> None:
    """250 rows with one timestamp span three chunks of 100; later rows with the same timestamp
    and higher ids are read on the next tick: every row is counted exactly once."""
    ts = T0 + timedelta(hours=1, minutes=10)
    add_predictions(source, 1, [ts] * 250)
    first = tick(rt, "m", T0 + timedelta(hours=2))
    assert first.predictions_read == 250
    assert _total(rt).n == 250

    add_predictions(source, 251, [ts] * 40)
    second = tick(rt, "m", T0 + timedelta(hours=2, minutes=5))
    assert second.predictions_read == 40

    # Exactly a chunk's worth (100) at the same timestamp again: the full last chunk must not
    # make the reader loop or re-read.
    add_predictions(source, 291, [ts] * 100)
    third = tick(rt, "m", T0 + timedelta(hours=2, minutes=10))
    assert third.predictions_read == 100

    fourth = tick(rt, "m", T0 + timedelta(hours=2, minutes=15))
    assert fourth.predictions_read == 0

    buckets = _buckets(rt)
    assert list(buckets) == [T0 + timedelta(hours=1)]
    assert buckets[T0 + timedelta(hours=1)].n == 390
    assert buckets[T0 + timedelta(hours=1)].bad.get("duplicate_id", 0) == 0


def test_settle_delay_leaves_recent_rows_for_the_next_tick(
    two_db_urls: tuple[str, str], tmp_path: Path, source: sa.Engine
) -> None:
    """With `settle_delay: 10m`, rows newer than now-10m are read only by a later tick."""
    runtime = _runtime(two_db_urls, tmp_path, settle_delay="10m")
    try:
        times = hourly(T0 + timedelta(hours=1), 60)  # 01:00 .. 01:59
        add_predictions(source, 1, times)
        add_labels(source, [(i, times[i - 1] + timedelta(minutes=1), 1) for i in (1, 50)])
        now = T0 + timedelta(hours=1, minutes=55)
        first = tick(runtime, "m", now)
        # until = 01:45 inclusive: rows 01:00 .. 01:45; label for row 1 (01:01) but not row 50.
        assert first.predictions_read == 46
        assert first.labels_read == 1
        with runtime.sessions() as session:
            mark = get_watermark(session, "m", "predictions")
        assert mark is not None and mark.ts <= now - timedelta(minutes=10)

        second = tick(runtime, "m", T0 + timedelta(hours=2, minutes=15))
        assert second.predictions_read == 14
        assert second.labels_read == 1
        total = _total(runtime)
        assert total.n == 60
        assert total.n_labelled == 2
    finally:
        runtime.close()


def test_chunked_reading_yields_several_batches(
    two_db_urls: tuple[str, str], source: sa.Engine
) -> None:
    """`SqlSource` pages through the rows in (timestamp, id) order, chunk_size rows at a time,
    each batch paired with the watermark that covers it."""
    times = hourly(T0, 130) + hourly(T0, 120)  # two rows per minute for the first 2 hours
    add_predictions(source, 1, times)
    config = build_config(config_dict(*two_db_urls))
    engine = make_engine(two_db_urls[1])
    try:
        reader = SqlSource(engine, config.models["m"], chunk_size=100)
        batches = list(reader.predictions_since(None, T0 + timedelta(days=1)))
        assert [len(b) for b, _ in batches] == [100, 100, 50]
        ids = [int(i) for b, _ in batches for i in b.ids]
        assert sorted(ids) == list(range(1, 251))
        keys = [(ts, i) for b, _ in batches for ts, i in zip(b.ts, b.ids.astype(int), strict=True)]
        assert keys == sorted(keys)
        marks = [m for _, m in batches]
        for batch, mark in batches:
            assert mark.ts == batch.ts.iloc[-1].to_pydatetime()
            assert mark.row_id == int(batch.ids.iloc[-1])
        # Resuming from the middle watermark reads exactly what came after it.
        rest = list(reader.predictions_since(marks[0], T0 + timedelta(days=1)))
        assert sum(len(b) for b, _ in rest) == 150
        assert {int(i) for b, _ in rest for i in b.ids} == set(ids[100:])
        # An inclusive start (row_id None) from a timestamp reads that timestamp's rows too.
        from_ts = list(
            reader.predictions_since(
                Watermark(T0 + timedelta(hours=2), None), T0 + timedelta(days=1)
            )
        )
        assert sum(len(b) for b, _ in from_ts) == 10  # 02:00..02:09, from the first list
    finally:
        engine.dispose()


def test_query_source_reads_like_a_table(
    two_db_urls: tuple[str, str], tmp_path: Path, source: sa.Engine
) -> None:
    """A `query:` prediction source is read incrementally and in chunks, like a table,
    and the query's own WHERE clause is honoured."""
    query = (
        "SELECT request_id, predicted_at, score, decision, amount, country "
        "FROM predictions WHERE country <> 'NL'"
    )
    predictions = {
        "query": query,
        "id": "request_id",
        "timestamp": "predicted_at",
        "score": "score",
        "prediction": "decision",
        "features": ["amount", "country"],
    }
    runtime = _runtime(two_db_urls, tmp_path, predictions=predictions)
    try:
        # Countries cycle DE, FR, NL: 2 of every 3 rows pass the query (more than 2 chunks).
        add_predictions(source, 1, hourly(T0 + timedelta(hours=1), 300, timedelta(seconds=10)))
        first = tick(runtime, "m", T0 + timedelta(hours=3))
        assert first.predictions_read == 200
        add_predictions(source, 301, hourly(T0 + timedelta(hours=2), 30))
        second = tick(runtime, "m", T0 + timedelta(hours=4))
        assert second.predictions_read == 20
        total = _total(runtime)
        assert total.n == 220
        assert set(total.categorical["country"]) == {"DE", "FR"}
        assert total.categorical["country"] == {"DE": 110, "FR": 110}
    finally:
        runtime.close()


def test_late_labels_update_their_predictions_bucket(rt: Runtime, source: sa.Engine) -> None:
    """Labels arriving hours later are counted in the bucket of their prediction's time."""
    pred_hour = T0 + timedelta(hours=1)
    add_predictions(source, 1, hourly(pred_hour, 20), score=[0.9] * 15 + [0.1] * 5)
    tick(rt, "m", T0 + timedelta(hours=3))
    before = _buckets(rt)[pred_hour]
    assert before.n == 20 and before.n_labelled == 0 and before.confusion == {}

    label_time = T0 + timedelta(hours=5)
    # ids 1..15 predicted 1, ids 16..20 predicted 0
    add_labels(
        source,
        [(i, label_time, 1) for i in range(1, 7)]  # 6 true positives
        + [(i, label_time, 0) for i in range(7, 11)]  # 4 false positives
        + [(i, label_time, 0) for i in (16, 17)]  # 2 true negatives
        + [(18, label_time, 1)],  # 1 false negative
    )
    result = tick(rt, "m", T0 + timedelta(hours=6))
    assert result.labels_read == 13
    assert result.predictions_read == 0

    buckets = _buckets(rt)
    after = buckets[pred_hour]
    assert after.n == 20
    assert after.n_labelled == 13
    assert after.confusion == {"1|1": 6, "0|1": 4, "0|0": 2, "1|0": 1}
    assert after.newest_label == label_time
    assert sum(after.class_score_hist["1"]) == 7
    assert sum(after.class_score_hist["0"]) == 6
    # Nothing was attributed to the hour the labels arrived in.
    assert buckets.get(T0 + timedelta(hours=5), BucketSummary()).n_labelled == 0
    assert sum(b.n_labelled for b in buckets.values()) == 13

    again = tick(rt, "m", T0 + timedelta(hours=6, minutes=5))
    assert again.labels_read == 0
    assert _buckets(rt)[pred_hour].n_labelled == 13


def test_label_for_unknown_id_is_held_then_counted_not_fatal(
    rt: Runtime, source: sa.Engine
) -> None:
    """A label whose prediction does not exist is held for the label horizon (the longest
    window, 24h here), then counted once as `unknown_label_id`; the others are used and the
    tick succeeds."""
    add_predictions(source, 1, hourly(T0 + timedelta(hours=1), 10))
    add_labels(
        source,
        [(1, T0 + timedelta(hours=2), 1), (9999, T0 + timedelta(hours=2), 1)],
    )
    now = T0 + timedelta(hours=3)
    result = tick(rt, "m", now)
    assert result.labels_read == 2
    assert result.bad_rows == 0
    assert result.intake.outcomes["labels.held"] == 1
    assert _total(rt).n_labelled == 1
    still = tick(rt, "m", now + timedelta(hours=23))  # inside the horizon: still waiting
    assert still.bad_rows == 0 and "held_labels" not in still.intake.read
    later = now + timedelta(hours=24, minutes=5)
    expired = tick(rt, "m", later)
    assert expired.intake.read == {"held_labels": 1}
    assert expired.intake.outcomes == {"held_labels.bad.unknown_label_id": 1}
    total = _total(rt)
    assert total.bad == {"unknown_label_id": 1}
    assert total.n_labelled == 1
    assert _buckets(rt)[bucket_start(later, timedelta(hours=1))].bad == {"unknown_label_id": 1}
    assert tick(rt, "m", later + timedelta(hours=1)).bad_rows == 0  # counted once
    with rt.sessions() as session:
        health = session.get(ModelHealth, "m")
    assert health is not None and health.consecutive_failures == 0 and health.last_error is None
    assert health.row_outcomes == {
        "predictions.summarised": 10,
        "labels.summarised": 1,
        "labels.held": 1,
        "held_labels.bad.unknown_label_id": 1,
    }


def test_nan_score_is_counted(rt: Runtime, source: sa.Engine) -> None:
    """NaN scores are counted as `nan_score` in their bucket and left out of the histogram."""
    scores = [0.9, NAN, 0.2, NAN, NAN, 0.7]
    add_predictions(source, 1, hourly(T0 + timedelta(hours=1), 6), score=scores)
    result = tick(rt, "m", T0 + timedelta(hours=2))
    assert result.predictions_read == 6
    assert result.bad_rows == 3
    bucket = _buckets(rt)[T0 + timedelta(hours=1)]
    assert bucket.n == 6
    assert bucket.bad == {"nan_score": 3}
    assert sum(bucket.score_hist) == 3


def test_unparsable_timestamp_is_counted_on_sqlite(tmp_path: Path) -> None:
    """SQLite lets a source hold '2026-10-05 25:99:00' in a DATETIME column: the row is counted
    as `bad_timestamp`, the good rows are read, and later ticks read nothing twice.

    SQLite only: PostgreSQL cannot store such a value in a timestamp column.
    """
    two_db_urls = (f"sqlite:///{tmp_path / 'store.db'}", f"sqlite:///{tmp_path / 'source.db'}")
    source = create_source(two_db_urls[1], n_reference=300)
    good = hourly(T0 + timedelta(hours=3), 10)
    add_predictions(source, 1, good)
    with source.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO predictions (request_id, predicted_at, amount, country, score, "
                "decision) VALUES (11, '2026-10-05 25:99:00', 3.0, 'DE', 0.9, 1)"
            )
        )
    source.dispose()
    runtime = _runtime(two_db_urls, tmp_path)
    try:
        # The raw text sorts after 2026-10-05 23:59, so read it from the next day.
        now = T0 + timedelta(days=1, hours=2)
        result = tick(runtime, "m", now)
        assert result.predictions_read == 11
        assert result.bad_rows == 1
        total = _total(runtime)
        assert total.n == 10
        assert total.bad == {"bad_timestamp": 1}
        again = tick(runtime, "m", now + timedelta(minutes=5))
        assert again.predictions_read == 0
        assert _total(runtime).n == 10
    finally:
        runtime.close()


UNREACHABLE = {
    # A closed port, and a password in the URL.
    "postgresql_closed_port": ("postgresql+psycopg://u:hunter2-secret@127.0.0.1:1/x", "hunter2"),
    # A password that the driver's own message repeats (as the host): it must be masked.
    "password_in_driver_message": ("postgresql+psycopg://u:127.0.0.1@127.0.0.1:1/x", "127.0.0.1"),
    # A SQLite file whose directory cannot exist (its parent is a regular file).
    "sqlite_in_impossible_dir": ("sqlite:///{tmp}/not-a-dir/sub/source.db", None),
}


@pytest.mark.parametrize("kind", sorted(UNREACHABLE))
def test_unreachable_source_is_recorded_in_health(
    two_db_urls: tuple[str, str], tmp_path: Path, kind: str
) -> None:
    """A source that cannot be reached makes `tick` raise; the failure is counted in
    `ModelHealth` (consecutive_failures, last_error) with the URL's password masked;
    a later good tick resets the count."""
    url_template, password = UNREACHABLE[kind]
    (tmp_path / "not-a-dir").write_text("a file where a directory should be")
    bad_url = url_template.format(tmp=tmp_path)
    runtime = _runtime(two_db_urls, tmp_path, source_url=bad_url)
    try:
        for attempt in (1, 2):
            with pytest.raises(Exception) as info:  # any failure of the source will do
                tick(runtime, "m", T0 + timedelta(hours=attempt))
            with runtime.sessions() as session:
                health = session.get(ModelHealth, "m")
            assert health is not None
            assert health.consecutive_failures == attempt
            assert health.last_error is not None
            assert health.last_error.startswith(type(info.value).__name__)
            if password is not None:
                assert password in bad_url
                assert password not in health.last_error
            if kind == "password_in_driver_message":
                assert password in str(info.value)  # so the masking above did real work
                assert "***" in health.last_error
            assert health.last_tick_at == T0 + timedelta(hours=attempt)
            assert health.last_success_at is None
    finally:
        runtime.close()

    create_source(two_db_urls[1], n_reference=300).dispose()
    healthy = _runtime(two_db_urls, tmp_path)
    try:
        result: TickResult = tick(healthy, "m", T0 + timedelta(hours=3))
        assert result.predictions_read == 0
        with healthy.sessions() as session:
            health = session.get(ModelHealth, "m")
        assert health is not None
        assert health.consecutive_failures == 0
        assert health.last_error is None
        assert health.last_success_at == T0 + timedelta(hours=3)
    finally:
        healthy.close()
