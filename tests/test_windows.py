"""Rolling windows are merges of stored bucket summaries, never rescans of rows."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import reduce
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.base import DetectorSettings, WindowContext
from monitor.core.durations import format_duration
from monitor.core.summaries import BucketSummary, merge_all
from monitor.engine.runtime import Runtime, open_runtime
from monitor.engine.tick import detector_settings, tick
from monitor.engine.windows import build_window, window_bounds
from monitor.ingest.batches import LabelBatch, PredictionBatch
from monitor.ingest.fit import fit_reference
from monitor.ingest.summarize import summarize_labels, summarize_predictions
from tests.builders import (
    T0,
    add_labels,
    add_predictions,
    build_config,
    config_dict,
    create_source,
)

HOUR = timedelta(hours=1)
DAYS_7 = timedelta(days=7)


@pytest.fixture
def seven_day_rt(
    two_db_urls: tuple[str, str], tmp_path: Path
) -> Iterator[tuple[Runtime, sa.Engine]]:
    store_url, source_url = two_db_urls
    source = create_source(source_url, n_reference=300)
    slos = [
        {
            "metric": "accuracy",
            "window": "7d",
            "objective": ">= 0.5",
            "severity": "ticket",
            "min_samples": 20,
        }
    ]
    rt = open_runtime(build_config(config_dict(store_url, source_url, slos=slos)), tmp_path)
    yield rt, source
    rt.close()
    source.dispose()


def test_seven_day_window_is_recomputed_from_buckets(
    seven_day_rt: tuple[Runtime, sa.Engine],
) -> None:
    """After 7 days of data, a tick that reads no new rows still computes accuracy over all
    7 days: the window is rebuilt from stored buckets, not by re-reading the source."""
    rt, source = seven_day_rt
    # One prediction per hour from 01:10 on day 0 to 00:10 on day 7: 168 rows in 168 buckets.
    times = [T0 + HOUR + i * HOUR + timedelta(minutes=10) for i in range(168)]
    add_predictions(source, 1, times, score=0.9)  # every decision is 1
    labelled = [i for i in range(1, 169) if i % 3 != 0]  # 112 labelled rows
    wrong = set(labelled[::8])  # 14 of them are truly 0: the model is wrong there
    add_labels(
        source,
        [(i, times[i - 1] + timedelta(minutes=5), 0 if i in wrong else 1) for i in labelled],
    )
    now = T0 + DAYS_7 + timedelta(minutes=30)
    start, end = window_bounds(now, DAYS_7, HOUR)
    assert (start, end) == (T0 + HOUR, T0 + DAYS_7 + HOUR)
    assert all(start <= t < end for t in times)

    first = tick(rt, "m", now)
    assert first.predictions_read == 168
    assert first.labels_read == 112
    [value] = [v for v in first.values if v.metric == "accuracy"]
    assert value.window == format_duration(DAYS_7)
    assert value.n == 112
    assert value.value == pytest.approx((112 - 14) / 112)

    second = tick(rt, "m", now + timedelta(minutes=20))  # same hour: the same window
    assert second.predictions_read == 0
    assert second.labels_read == 0
    [again] = [v for v in second.values if v.metric == "accuracy"]
    assert again.n == 112
    assert again.value == value.value
    assert again.ci == value.ci


def _unit_buckets(
    first: datetime, count: int, width: timedelta
) -> list[tuple[datetime, BucketSummary]]:
    """`count` buckets of `width` from `first`, each with n=1 and its newest prediction inside."""
    return [
        (
            first + k * width,
            BucketSummary(n=1, newest_prediction=first + k * width + width / 2),
        )
        for k in range(count)
    ]


@pytest.mark.parametrize(
    ("now", "length", "width", "expected_start", "expected_end"),
    [
        # `now` in the middle of a bucket: that bucket is the last one of the window.
        (T0 + timedelta(hours=12, minutes=30), timedelta(hours=24), HOUR,
         T0 - timedelta(hours=11), T0 + timedelta(hours=13)),
        # `now` exactly on a bucket boundary: the bucket starting at `now` is the last one.
        (T0 + timedelta(hours=12), timedelta(hours=24), HOUR,
         T0 - timedelta(hours=11), T0 + timedelta(hours=13)),
        # `now` one microsecond before a boundary.
        (T0 + timedelta(hours=13) - timedelta(microseconds=1), timedelta(hours=24), HOUR,
         T0 - timedelta(hours=11), T0 + timedelta(hours=13)),
        # Small buckets.
        (T0 + timedelta(hours=1, minutes=7), timedelta(hours=1), timedelta(minutes=5),
         T0 + timedelta(minutes=10), T0 + timedelta(hours=1, minutes=10)),
        # A window of one bucket.
        (T0 + timedelta(minutes=59), HOUR, HOUR, T0, T0 + HOUR),
        # Daily buckets, 7-day window.
        (T0 + timedelta(days=3, hours=5), DAYS_7, timedelta(days=1),
         T0 - timedelta(days=3), T0 + timedelta(days=4)),
    ],
)  # fmt: skip
def test_window_includes_exactly_its_buckets(
    now: datetime,
    length: timedelta,
    width: timedelta,
    expected_start: datetime,
    expected_end: datetime,
) -> None:
    """A window holds the `length / width` buckets ending with the one containing `now`:
    the bucket at `start` is in, the bucket just before it and the one at `end` are out."""
    assert window_bounds(now, length, width) == (expected_start, expected_end)
    count = length // width
    # Buckets from well before to well after the window.
    buckets = _unit_buckets(expected_start - 3 * width, count + 6, width)
    window = build_window(buckets, now, length, width)
    assert (window.start, window.end) == (expected_start, expected_end)
    assert window.summary.n == count
    assert window.summary.newest_prediction == expected_end - width + width / 2
    # Only the edge buckets, each alone: the first one counts, its neighbours outside do not.
    edges = dict(buckets)
    for at, inside in [
        (expected_start - width, False),
        (expected_start, True),
        (expected_end - width, True),
        (expected_end, False),
    ]:
        alone = build_window([(at, edges[at])], now, length, width)
        assert alone.summary.n == (1 if inside else 0), at


def test_window_label_and_freshness_pass_through() -> None:
    """The window carries its label and the newest prediction given to it, even when empty."""
    newest = T0 - timedelta(days=2)
    window = build_window([], T0, timedelta(hours=6), HOUR, WindowContext(newest_prediction=newest))
    assert window.label == "6h"
    assert window.summary.n == 0
    assert window.newest_prediction == newest


# --- merge order does not matter ----------------------------------------------------------

NOW = T0 + timedelta(hours=6)
_rng = np.random.default_rng(7)
REFERENCE = fit_reference(
    pd.DataFrame(
        {
            "amount": _rng.lognormal(3, 1, 500),
            "country": _rng.choice(["DE", "FR", "NL"], 500),
        }
    ),
    ["amount", "country"],
    [],
    "fp",
)

row_strategy = st.tuples(
    st.integers(min_value=0, max_value=6 * 3600 - 1),  # seconds after T0: six 1h buckets
    st.one_of(st.floats(min_value=0, max_value=1), st.just(float("nan"))),  # score
    st.one_of(st.floats(min_value=0, max_value=1e4), st.just(float("nan"))),  # amount
    st.sampled_from(["DE", "FR", "NL", "US", None]),  # country, unseen and missing included
    st.sampled_from([0, 1, None]),  # label: None means no label yet
)


def _prediction_batch(rows: list[tuple], ids: list[int]) -> PredictionBatch:
    return PredictionBatch(
        ids=pd.Series(ids),
        ts=pd.Series(pd.to_datetime([T0 + timedelta(seconds=r[0]) for r in rows], utc=True)),
        score=pd.Series([r[1] for r in rows], dtype=float),
        decision=None,
        features=pd.DataFrame(
            {
                "amount": pd.Series([r[2] for r in rows], dtype=float),
                "country": pd.Series([r[3] for r in rows], dtype=object),
            }
        ),
        segments=pd.DataFrame({"country": pd.Series([r[3] for r in rows], dtype=object)}),
    )


def _label_batch(rows: list[tuple], ids: list[int]) -> LabelBatch:
    chosen = [(r, i) for r, i in zip(rows, ids, strict=True) if r[4] is not None]
    predicted = [T0 + timedelta(seconds=r[0]) for r, _ in chosen]
    return LabelBatch(
        ids=pd.Series([i for _, i in chosen], dtype="int64"),
        labeled_at=pd.Series(
            pd.to_datetime([p + timedelta(minutes=3) for p in predicted], utc=True)
        ),
        label=pd.Series([r[4] for r, _ in chosen], dtype="int64"),
        predicted_at=pd.Series(pd.to_datetime(predicted, utc=True)),
        score=pd.Series([r[1] for r, _ in chosen], dtype=float),
        decision=None,
        segments=pd.DataFrame({"country": pd.Series([r[3] for r, _ in chosen], dtype=object)}),
    )


Buckets = dict[datetime, BucketSummary]


def _summaries(rows: list[tuple], ids: list[int]) -> tuple[Buckets, Buckets]:
    """Per-bucket summaries of the rows as predictions, and of their labels."""
    preds = summarize_predictions(
        _prediction_batch(rows, ids), REFERENCE, "binary_classification", 0.5, HOUR, NOW
    )
    labels = summarize_labels(_label_batch(rows, ids), "binary_classification", 0.5, HOUR, NOW)
    return preds, labels


def _assert_same(got: Any, want: Any, path: str = "") -> None:
    """Equal JSON, except floats (sums of scores, log losses) which may differ in the last
    bits when added in another order."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), (path, got, want)
        for key in want:
            _assert_same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), (path, got, want)
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9), path
    else:
        assert got == want, path


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    rows=st.lists(row_strategy, min_size=1, max_size=80),
    cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=6),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_bucket_merge_order_does_not_matter(rows: list[tuple], cuts: list[int], seed: int) -> None:
    """Rows summarised in random chunks, then merged bucket by bucket in any order (with
    `merge_all` or pairwise `merge`), give the summaries of all rows summarised at once;
    and the whole window merged from either gives the same summary."""
    rng = random.Random(seed)
    ids = list(range(1, len(rows) + 1))
    whole = _summaries(rows, ids)
    bounds = sorted({0, len(rows), *(c for c in cuts if c < len(rows))})
    chunks = [_summaries(rows[lo:hi], ids[lo:hi]) for lo, hi in pairwise(bounds)]

    all_pieces: list[BucketSummary] = []
    for stream in (0, 1):  # predictions, labels: compared with no merge on the "whole" side
        pieces = [(start, s) for chunk in chunks for start, s in chunk[stream].items()]
        rng.shuffle(pieces)
        all_pieces.extend(s for _, s in pieces)
        assert {start for start, _ in pieces} == set(whole[stream])
        for start, want in whole[stream].items():
            mine = [s for b, s in pieces if b == start]
            _assert_same(merge_all(mine).to_json(), want.to_json())
            rng.shuffle(mine)
            folded = reduce(BucketSummary.merge, mine, BucketSummary())
            _assert_same(folded.to_json(), want.to_json())

    window = merge_all([*whole[0].values(), *whole[1].values()])
    assert window.n == len(rows)
    assert window.n_labelled == sum(1 for r in rows if r[4] is not None)
    rng.shuffle(all_pieces)
    expected = window.to_json()
    _assert_same(merge_all(all_pieces).to_json(), expected)
    # A JSON round trip (how the store keeps buckets) changes nothing.
    assert BucketSummary.from_json(expected).to_json() == expected


def test_a_window_carries_the_models_threshold_and_drift_rules() -> None:
    """Every model setting reaches the detectors with the window. With the defaults a dropped
    setting reads the same (mutation testing found five such survivors), so none is default."""
    drift = {"alpha": 0.01, "correction": "bonferroni", "min_psi": 0.1, "min_wasserstein": 0.2}
    config = build_config(config_dict("sqlite://", "sqlite://", threshold=0.3, drift=drift))
    assert detector_settings(config.models["m"]) == DetectorSettings(
        threshold=0.3,
        drift_alpha=0.01,
        drift_correction="bonferroni",
        drift_min_psi=0.1,
        drift_min_wasserstein=0.2,
    )
