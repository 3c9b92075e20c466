"""Every row accounted for: bad timestamps, missing ids, future-dated rows, ids re-logged
across ticks and labels that arrive before their prediction are each read once and land in
exactly one outcome (summarised, bad by reason, held), never crash a tick, never re-read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from detectors.base import WindowSummary
from detectors.data_quality import DataQuality
from monitor.core.summaries import BucketSummary, merge_all
from monitor.engine.runtime import Runtime
from monitor.engine.tick import TickResult, tick
from monitor.store.state import load_buckets
from monitor.store.tables import SeenRow
from tests.loose_source import NOW, create_loose_source, good_row, insert, loose_runtime, stamp

FAR = timedelta(days=4000)


def buckets(rt: Runtime) -> dict[datetime, BucketSummary]:
    with rt.sessions() as session:
        return dict(load_buckets(session, "m", NOW - FAR, NOW + FAR * 10))


def total(rt: Runtime) -> BucketSummary:
    return merge_all(buckets(rt).values())


def accounted(result: TickResult) -> None:
    """Per stream: rows read == rows with an outcome."""
    assert all(v == 0 for v in result.intake.unaccounted().values()), result.intake


@pytest.fixture
def sqlite_pair(tmp_path: Path) -> tuple[Runtime, sa.Engine]:
    source = create_loose_source(f"sqlite:///{tmp_path / 'source.db'}")
    rt = loose_runtime(f"sqlite:///{tmp_path / 'store.db'}", str(source.url), tmp_path)
    yield rt, source
    rt.close()
    source.dispose()


BAD_TIMES = ["not a time", "", "2026-13-45 99:99:99", 1_700_000_000, None, 3.5]


def test_bad_timestamps_are_read_once_and_counted(
    sqlite_pair: tuple[Runtime, sa.Engine],
) -> None:
    """'not a time', '', an impossible date, an integer, NULL and a float as `predicted_at`:
    each row is counted `bad_timestamp` once, the good rows are summarised, and later ticks
    (also a year later, when the impossible date sorts before "now") count nothing again."""
    rt, source = sqlite_pair
    insert(
        source, "predictions", [good_row(i, NOW - timedelta(hours=2, minutes=i)) for i in range(20)]
    )
    bad = [{**good_row(100 + i, NOW), "predicted_at": value} for i, value in enumerate(BAD_TIMES)]
    insert(source, "predictions", bad)
    first = tick(rt, "m", NOW)
    accounted(first)
    assert first.intake.outcomes == {
        "predictions.summarised": 20,
        "predictions.bad.bad_timestamp": len(BAD_TIMES),
    }
    assert total(rt).n == 20
    assert total(rt).bad == {"bad_timestamp": len(BAD_TIMES)}
    for later in (NOW + timedelta(minutes=5), NOW + timedelta(days=400)):
        again = tick(rt, "m", later)
        accounted(again)
        assert again.intake.outcomes.get("predictions.bad.bad_timestamp", 0) == 0
    assert total(rt).bad == {"bad_timestamp": len(BAD_TIMES)}
    assert total(rt).n == 20


def test_a_null_id_is_not_a_prediction(sqlite_pair: tuple[Runtime, sa.Engine]) -> None:
    rt, source = sqlite_pair
    rows = [good_row(i, NOW - timedelta(hours=1, minutes=i)) for i in range(10)]
    rows[3]["request_id"] = None
    insert(source, "predictions", rows)
    result = tick(rt, "m", NOW)
    accounted(result)
    assert result.intake.outcomes == {"predictions.summarised": 9, "predictions.bad.missing_id": 1}
    assert total(rt).n == 9


def test_future_rows_are_counted_once_and_summarised_when_their_time_comes(
    sqlite_pair: tuple[Runtime, sa.Engine],
) -> None:
    rt, source = sqlite_pair
    insert(
        source, "predictions", [good_row(i, NOW - timedelta(hours=1, minutes=i)) for i in range(18)]
    )
    in_2027 = datetime(2027, 1, 15, 10, 0, tzinfo=UTC)
    in_2099 = datetime(2099, 6, 1, tzinfo=UTC)
    insert(source, "predictions", [good_row(500, in_2027), good_row(501, in_2099)])
    first = tick(rt, "m", NOW)
    accounted(first)
    assert first.intake.outcomes == {"predictions.summarised": 18, "predictions.deferred": 2}
    assert total(rt).bad == {"future_timestamp": 2}
    window = WindowSummary("24h", NOW - timedelta(days=1), NOW, total(rt), None)
    future = [v for v in DataQuality().compute(window, None, NOW) if v.metric == "dq.future_rate"]
    assert future[0].value == pytest.approx(2 / 20)

    second = tick(rt, "m", NOW + timedelta(minutes=10))
    accounted(second)
    assert second.intake.read == {}  # counted already: not read again
    assert total(rt).bad == {"future_timestamp": 2}

    arrived = tick(rt, "m", in_2027 + timedelta(hours=1))
    accounted(arrived)
    assert arrived.intake.outcomes == {"predictions.summarised": 1}
    assert buckets(rt)[in_2027].n == 1  # in its own bucket, once
    assert total(rt).n == 19
    assert total(rt).bad == {"future_timestamp": 2}  # not counted future a second time
    # a window holding both the tick that counted it and the hour it is summarised in has
    # each of the 20 rows once in the denominator
    window = WindowSummary(
        "all", NOW - timedelta(days=1), in_2027 + timedelta(hours=1), total(rt), None
    )
    future = [v for v in DataQuality().compute(window, None, NOW) if v.metric == "dq.future_rate"]
    assert future[0].n == 20 and future[0].value == pytest.approx(2 / 20)


def test_a_row_with_an_offset_is_summarised_in_its_utc_bucket_once(
    sqlite_pair: tuple[Runtime, sa.Engine],
) -> None:
    """'2026-11-10 11:58:00-05:00' sorts before noon as text but is 16:58 UTC: read at noon,
    it is counted future-dated once and summarised in the 16:00 bucket, which windows reach
    when their time comes."""
    rt, source = sqlite_pair
    insert(
        source, "predictions", [good_row(i, NOW - timedelta(hours=1, minutes=i)) for i in range(5)]
    )
    insert(
        source, "predictions", [{**good_row(77, NOW), "predicted_at": "2026-11-10 11:58:00-05:00"}]
    )
    first = tick(rt, "m", NOW)
    accounted(first)
    assert first.intake.outcomes == {"predictions.summarised": 6}
    for minutes in (5, 300, 600):
        accounted(tick(rt, "m", NOW + timedelta(minutes=minutes)))
    assert buckets(rt)[datetime(2026, 11, 10, 16, tzinfo=UTC)].n == 1
    assert total(rt).n == 6
    assert total(rt).bad == {"future_timestamp": 1}


def test_ids_logged_again_in_a_later_tick_are_duplicates_within_the_horizon(
    sqlite_pair: tuple[Runtime, sa.Engine],
) -> None:
    rt, source = sqlite_pair
    insert(source, "predictions", [good_row(i, NOW - timedelta(minutes=30 + i)) for i in range(10)])
    accounted(tick(rt, "m", NOW))
    insert(source, "predictions", [good_row(i, NOW + timedelta(minutes=2)) for i in range(5)])
    second = tick(rt, "m", NOW + timedelta(minutes=10))
    accounted(second)
    assert second.intake.outcomes == {"predictions.bad.duplicate_id": 5}
    assert total(rt).n == 10
    # past the duplicate horizon (1 day by default) the ids are forgotten, and the store
    # keeps only what the horizon needs
    later = NOW + timedelta(days=2)
    insert(source, "predictions", [good_row(i, later - timedelta(minutes=1)) for i in range(3)])
    third = tick(rt, "m", later)
    accounted(third)
    assert third.intake.outcomes == {"predictions.summarised": 3}
    with rt.sessions() as session:
        kept = session.scalars(sa.select(SeenRow.ts).where(SeenRow.kind == "pred")).all()
    assert len(kept) == 3 and all(ts >= later - timedelta(days=1) for ts in kept)


def test_a_label_that_arrives_before_its_prediction_is_held_and_used(
    sqlite_pair: tuple[Runtime, sa.Engine],
) -> None:
    rt, source = sqlite_pair
    insert(
        source, "predictions", [good_row(i, NOW - timedelta(hours=3, minutes=i)) for i in range(5)]
    )
    insert(
        source,
        "labels",
        [{"request_id": 42, "labeled_at": stamp(NOW - timedelta(minutes=30)), "is_fraud": 1}],
    )
    first = tick(rt, "m", NOW)
    accounted(first)
    assert first.intake.outcomes["labels.held"] == 1
    assert total(rt).n_labelled == 0
    # the prediction is logged late, with its own (earlier) time
    predicted = NOW - timedelta(minutes=40)
    insert(source, "predictions", [good_row(42, predicted)])
    second = tick(rt, "m", NOW + timedelta(minutes=5))
    accounted(second)
    assert second.intake.outcomes == {
        "predictions.summarised": 1,
        "held_labels.summarised": 1,
    }
    hour = predicted.replace(minute=0, second=0, microsecond=0)
    assert buckets(rt)[hour].n_labelled == 1
    assert buckets(rt)[hour].confusion == {"1|0": 1}  # row 42 scores 0.2: predicted 0
    assert total(rt).bad == {}
    accounted(tick(rt, "m", NOW + timedelta(days=3)))  # nothing left to resolve
    assert total(rt).n_labelled == 1 and total(rt).bad == {}
