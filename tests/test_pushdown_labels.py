"""Label push-down summaries equal the local fold's, bucket by bucket, on the real engines.

Random predictions (as in tests/test_pushdown.py) and random labels (late ones, labels whose
prediction is not in the source, labels with no id, bad labels, several buckets) are written
to a source; the pull path reads the labels joined to their predictions and folds them
locally (`summarize_labels`, with the unmatched labels held as `read_labels` holds them), the
push-down path has the engine compute them in one query. Every count must be equal and every
sum equal to rounding: labelled counts, lag histograms, confusion, score histograms, log loss
and Brier sums, regression sums, per-segment parts and the root-cause slice counts.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.summaries import BucketSummary
from monitor.engine.reading import take
from monitor.ingest.pushdown_label_source import (
    UNMATCHED,
    check_labels,
    label_summaries_since,
)
from monitor.ingest.sources import SqlSource
from monitor.ingest.summarize import summarize_labels
from tests import builders
from tests.test_pushdown import (
    CATEGORICAL,
    FEATURES,
    NOW,
    PROPERTY,
    T0,
    _create,
    _insert,
    _model_yaml,
    _reference,
    assert_same,
    duck,
    pg,
    rows_strategy,
)

__all__ = ["duck", "pg"]  # fixtures used by name

LABEL_TYPES = {
    "binary_classification": "double precision",
    "regression": "double precision",
    "multiclass_classification": "varchar",
}
label_values = {
    "binary_classification": st.one_of(
        st.sampled_from([0.0, 1.0, 1.0, 0.0, 2.0, math.nan]), st.none()
    ),
    "regression": st.one_of(
        st.floats(-5, 5, allow_nan=False), st.sampled_from([0.0, math.nan, math.inf]), st.none()
    ),
    "multiclass_classification": st.one_of(st.sampled_from(["0", "1", "2", "x"]), st.none()),
}


def labels_strategy(task: str) -> Any:
    return st.lists(
        st.fixed_dictionaries(
            {
                "id": st.one_of(st.integers(1, 70), st.none()),
                "after": st.integers(0, 3 * 24 * 60),
                "label": label_values[task],
            }
        ),
        max_size=60,
        unique_by=lambda r: r["id"] if r["id"] is not None else object(),
    )


def _config(url: str, task: str) -> Any:
    model = {
        **_model_yaml(url),
        "task": task,
        "bucket": "1h",
        "labels": builders.labels_spec(),
    }
    return builders.one_model_config(url, model)


def _write_labels(engine: sa.Engine, task: str, labels: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS labels"))
        conn.execute(
            sa.text(
                "CREATE TABLE labels (request_id bigint, labeled_at timestamp, "
                f"is_fraud {LABEL_TYPES[task]})"
            )
        )
        if labels:
            conn.execute(
                sa.text("INSERT INTO labels VALUES (:id, :at, :label)"),
                [
                    {
                        "id": r["id"],
                        "at": (T0 + timedelta(minutes=r["after"], seconds=3)).replace(tzinfo=None),
                        "label": r["label"],
                    }
                    for r in labels
                ],
            )


def _local(source: SqlSource, reference: Any, now: datetime) -> tuple[dict[Any, Any], int]:
    """As `read_labels` folds them: unmatched labels (with an id) held, the rest summarised."""
    model = source.model
    out: dict[datetime, BucketSummary] = {}
    held = 0
    for batch, _ in source.labels_since(None, now):
        assert batch.matched is not None
        waiting = batch.ids.notna().to_numpy() & ~batch.matched.to_numpy(dtype=bool)
        held += int(waiting.sum())
        for start, summary in summarize_labels(
            take(batch, ~waiting),
            model.task,
            model.threshold,
            model.bucket,
            now,
            reference.segment_values,
            reference,
        ).items():
            out.setdefault(start, BucketSummary()).merge_into(summary)
    return out, held


def check_equal(engine: sa.Engine, url: str, task: str, rows: Any, labels: Any) -> None:
    _create(engine)
    _insert(engine, rows)
    _write_labels(engine, task, labels)
    config = _config(url, task)
    reference = _reference(config)
    source = SqlSource(engine, config.models["m"], chunk_size=1000)
    assert check_labels(source) == []
    now = NOW + timedelta(days=3)
    local, held = _local(source, reference, now)
    pushed = label_summaries_since(source, None, now, reference, now)
    assert pushed is not None
    assert len(pushed.held) == held
    assert pushed.read == len(labels)
    if labels:
        assert pushed.mark is not None
    assert sorted(local) == sorted(pushed.buckets)
    for start in local:
        assert_same(local[start].to_json(), pushed.buckets[start].to_json(), start.isoformat())
    assert UNMATCHED not in {k for b in pushed.buckets.values() for k in b.bad}


TASKS = list(LABEL_TYPES)


@pytest.mark.parametrize("task", TASKS)
def test_duckdb_label_pushdown_equals_local(duck: Any, task: str) -> None:
    @PROPERTY
    @given(rows=rows_strategy, labels=labels_strategy(task))
    def run(rows: Any, labels: Any) -> None:
        check_equal(*duck, task, rows, labels)

    run()


@pytest.mark.parametrize("task", TASKS)
def test_postgres_label_pushdown_equals_local(pg: Any, task: str) -> None:
    @PROPERTY
    @given(rows=rows_strategy, labels=labels_strategy(task))
    def run(rows: Any, labels: Any) -> None:
        check_equal(*pg, task, rows, labels)

    run()


def test_unused() -> None:
    assert FEATURES and CATEGORICAL and np is not None
