"""Rows whose own time is unusable are counted, once: labels with a NULL or unparsable
`labeled_at`, and on PostgreSQL a TEXT time column holding garbage (as a logging pipeline
writes it), for predictions and labels alike. Both backends: SQLite (any value in any
column) and PostgreSQL with TEXT time columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.core.summaries import BucketSummary, merge_all
from monitor.engine.runtime import Runtime
from monitor.engine.tick import TickResult, tick
from monitor.store.state import load_buckets
from tests.loose_source import NOW, create_loose_source, good_row, insert, loose_runtime, stamp

FAR = timedelta(days=4000)
GARBAGE = ["not a time", "", "2026-13-45 99:99:99", None]
LATER = (timedelta(minutes=5), timedelta(days=400))  # a year on, garbage sorts before "now"


def text_time_tables(url: str) -> sa.Engine:
    """The loose source, with TEXT time columns on PostgreSQL (SQLite keeps text anyway)."""
    engine = create_loose_source(url, table="unused")
    id_type = "BIGINT" if engine.dialect.name == "postgresql" else ""
    time_type = "TEXT" if engine.dialect.name == "postgresql" else "DATETIME"
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE labels"))
        conn.execute(
            sa.text(
                f"CREATE TABLE predictions (request_id {id_type}, predicted_at {time_type}, "
                "amount FLOAT, country VARCHAR(20), score FLOAT, decision INTEGER)"
            )
        )
        conn.execute(
            sa.text(
                f"CREATE TABLE labels (request_id {id_type}, labeled_at {time_type}, "
                "is_fraud INTEGER)"
            )
        )
    return engine


@pytest.fixture
def text_pair(two_db_urls: tuple[str, str], tmp_path: Path) -> Iterator[tuple[Runtime, sa.Engine]]:
    store_url, source_url = two_db_urls
    source = text_time_tables(source_url)
    rt = loose_runtime(store_url, source_url, tmp_path)
    yield rt, source
    rt.close()
    source.dispose()


def total(rt: Runtime) -> BucketSummary:
    with rt.sessions() as session:
        return merge_all(s for _, s in load_buckets(session, "m", NOW - FAR, NOW + FAR))


def accounted(result: TickResult) -> dict[str, int]:
    """Per stream, rows read == rows with an outcome; the outcomes."""
    assert all(v == 0 for v in result.intake.unaccounted().values()), result.intake
    return result.intake.outcomes


def labels(rows: list[tuple[int, Any]]) -> list[dict[str, Any]]:
    return [{"request_id": i, "labeled_at": at, "is_fraud": i % 2} for i, at in rows]


def test_labels_with_no_usable_time_are_counted_once(
    text_pair: tuple[Runtime, sa.Engine],
) -> None:
    """NULL, 'not a time', '' and an impossible date as `labeled_at`: each label is counted
    `label_bad_timestamp` once (whether the incremental read or the probe meets it), never
    summarised, and later ticks count nothing again; the good labels are summarised."""
    rt, source = text_pair
    insert(
        source, "predictions", [good_row(i, NOW - timedelta(hours=2, minutes=i)) for i in range(8)]
    )
    good = [(i, stamp(NOW - timedelta(minutes=30 + i))) for i in range(5)]
    bad = [(5 + i, at) for i, at in enumerate(GARBAGE)]
    insert(source, "labels", labels(good + bad))
    first = accounted(tick(rt, "m", NOW))
    assert first["labels.summarised"] == 5
    assert first["labels.bad.label_bad_timestamp"] == len(GARBAGE)
    assert total(rt).bad == {"label_bad_timestamp": len(GARBAGE)}
    assert total(rt).n_labelled == 5
    for later in LATER:
        again = accounted(tick(rt, "m", NOW + later))
        assert "labels.bad.label_bad_timestamp" not in again
    assert total(rt).bad == {"label_bad_timestamp": len(GARBAGE)}
    # a bad label logged after the watermark has moved on is found by the probe, once
    insert(source, "labels", labels([(20, None), (21, "later garbage")]))
    late = accounted(tick(rt, "m", NOW + LATER[-1] + timedelta(minutes=5)))
    assert late["labels.bad.label_bad_timestamp"] == 2
    assert total(rt).bad == {"label_bad_timestamp": len(GARBAGE) + 2}


def test_garbage_prediction_times_in_a_text_column_are_counted_once(
    text_pair: tuple[Runtime, sa.Engine],
) -> None:
    """Predictions whose TEXT time is garbage: counted `bad_timestamp` once on both
    backends; the good rows are summarised and later ticks read on (PostgreSQL compares
    the column as text, as SQLite does, instead of failing on text <= timestamp)."""
    rt, source = text_pair
    insert(
        source, "predictions", [good_row(i, NOW - timedelta(hours=2, minutes=i)) for i in range(10)]
    )
    bad = [{**good_row(100 + i, NOW), "predicted_at": at} for i, at in enumerate(GARBAGE)]
    insert(source, "predictions", bad)
    first = accounted(tick(rt, "m", NOW))
    assert first == {"predictions.summarised": 10, "predictions.bad.bad_timestamp": len(GARBAGE)}
    newer = NOW + timedelta(minutes=2)
    insert(source, "predictions", [good_row(200 + i, newer) for i in range(3)])
    second = accounted(tick(rt, "m", NOW + timedelta(minutes=10)))
    assert second == {"predictions.summarised": 3}
    accounted(tick(rt, "m", NOW + LATER[-1]))
    assert total(rt).n == 13
    assert total(rt).bad == {"bad_timestamp": len(GARBAGE)}


def test_a_textual_time_column_is_read_with_text_bounds(two_db_urls: tuple[str, str]) -> None:
    """The keyset's bounds on a TEXT column are text in the form SQLite keeps DATETIMEs in,
    so rows compare the same way on both backends."""
    from monitor.ingest.source_times import time_bound, time_is_text

    source = text_time_tables(two_db_urls[1])
    col = sa.literal_column("p.predicted_at")
    textual = time_is_text(source, "predictions AS p", col)
    assert textual is (source.dialect.name == "postgresql")
    assert time_bound(datetime(2026, 11, 10, 12, tzinfo=NOW.tzinfo), True) == (
        "2026-11-10 12:00:00.000000"
    )
    source.dispose()
