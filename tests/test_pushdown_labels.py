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
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.summaries import BucketSummary
from monitor.engine.label_rows import take
from monitor.engine.runtime import open_runtime
from monitor.engine.tick import tick
from monitor.ingest import pushdown_source
from monitor.ingest.pushdown_label_source import (
    UNMATCHED,
    check_labels,
    label_summaries_since,
)
from monitor.ingest.sources import SqlSource
from monitor.ingest.summarize import summarize_labels
from monitor.store.state import get_watermark, load_buckets
from tests import builders
from tests.builders import build_config
from tests.test_pushdown import (
    NOW,
    PROPERTY,
    T0,
    _cli,
    _create,
    _insert,
    _model_yaml,
    _reference,
    _write,
    assert_same,
    duck,
    pg,
    rows_strategy,
)

__all__ = ["duck", "pg"]  # fixtures used by name

CASES = {
    "binary": ("binary_classification", "double precision"),
    "binary-text": ("binary_classification", "varchar"),
    "regression": ("regression", "double precision"),
    "multiclass": ("multiclass_classification", "varchar"),
}
"""Per case: the task and the label column's type."""
label_values = {
    "binary": st.one_of(st.sampled_from([0.0, 1.0, 1.0, 0.0, 2.0, math.nan]), st.none()),
    "binary-text": st.one_of(st.sampled_from(["1", "0", " yes", "No", "T", "maybe"]), st.none()),
    "regression": st.one_of(
        st.floats(-5, 5, allow_nan=False),
        st.sampled_from([0.0, math.nan, math.inf, 1e200, -1e-200]),
        st.none(),
    ),
    "multiclass": st.one_of(st.sampled_from(["0", "1", "2", "x"]), st.none()),
}


def labels_strategy(case: str) -> Any:
    return st.lists(
        st.fixed_dictionaries(
            {
                "id": st.one_of(st.integers(1, 70), st.none()),
                "after": st.integers(0, 3 * 24 * 60),
                "label": label_values[case],
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


def _write_labels(engine: sa.Engine, label_type: str, labels: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS labels"))
        conn.execute(
            sa.text(
                "CREATE TABLE labels (request_id bigint, labeled_at timestamp, "
                f"is_fraud {label_type})"
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


def check_equal(engine: sa.Engine, url: str, case: str, rows: Any, labels: Any) -> None:
    task, label_type = CASES[case]
    _create(engine)
    _insert(engine, rows)
    _write_labels(engine, label_type, labels)
    config = _config(url, task)
    reference = _reference(config)
    source = SqlSource(engine, config.models["m"], chunk_size=1000)
    assert check_labels(config.models["m"], engine) == []
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


@pytest.mark.parametrize("case", list(CASES))
def test_duckdb_label_pushdown_equals_local(duck: Any, case: str) -> None:
    @PROPERTY
    @given(rows=rows_strategy, labels=labels_strategy(case))
    def run(rows: Any, labels: Any) -> None:
        check_equal(*duck, case, rows, labels)

    run()


@pytest.mark.parametrize("case", list(CASES))
def test_postgres_label_pushdown_equals_local(pg: Any, case: str) -> None:
    @PROPERTY
    @given(rows=rows_strategy, labels=labels_strategy(case))
    def run(rows: Any, labels: Any) -> None:
        check_equal(*pg, case, rows, labels)

    run()


def test_config_check_says_whether_labels_are_pushed_down(tmp_path: Path, duck: Any) -> None:
    """Labels a model can push down are named so, with what is not counted there; a label
    column push-down cannot read (text labels of a regression model) is named with its
    reason, and the check still passes: those labels are read row by row."""
    engine, url = duck
    _create(engine)
    one = {"minute": 1, "score": 0.5, "decision": 1, "amount": 1.5, "age": 3}
    _insert(engine, [{**one, "country": "DE", "plan": "pro", "region": "north"}])
    _write_labels(engine, "varchar", [{"id": 1, "after": 5, "label": "0.5"}])
    engine.dispose()  # the CLI opens the file in its own process
    labels = builders.labels_spec()
    good = _cli("config", "check", _write(tmp_path / "a.yaml", url, labels=labels))
    assert good.returncode == 0, good.stderr
    assert "models.m: labels pushed down; not counted there: a label repeated" in good.stdout
    assert "models.m: not pushed down: the reference fit" in good.stdout
    assert "the retry of labels held for their prediction" in good.stdout
    bad = _cli(
        "config", "check", _write(tmp_path / "b.yaml", url, labels=labels, task="regression")
    )
    assert bad.returncode == 0, bad.stderr
    assert "labels NOT pushed down (read row by row)" in bad.stdout
    assert "label column 'is_fraud' is text, not a number" in bad.stdout


@pytest.mark.parametrize("engine_name", ["duckdb", "postgresql"])
def test_ticks_with_label_pushdown_store_what_pull_stores(
    engine_name: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through ticks, `compute: pushdown` stores the same label buckets and label watermark
    as `pull`: a label whose prediction is not in the source yet is held, then summarised
    once its prediction appears; every label read has one outcome; the second tick's label
    read pushes down only the new label."""
    url = (
        f"duckdb:///{tmp_path / 'src.duckdb'}"
        if engine_name == "duckdb"
        else str(request.getfixturevalue("pg_url"))
    )
    if engine_name == "duckdb":  # DuckDB has no SERIAL: the key column made by hand
        with sa.create_engine(url).begin() as conn:
            conn.execute(
                sa.text(
                    "CREATE TABLE predictions (request_id INTEGER PRIMARY KEY, predicted_at "
                    "TIMESTAMP NOT NULL, amount DOUBLE, country VARCHAR(10), score DOUBLE, "
                    "decision INTEGER)"
                )
            )
    pushed_reads: list[int] = []

    def counted(*args: Any) -> Any:
        result = label_summaries_since(*args)
        pushed_reads.append(result.read if result is not None else -1)
        return result

    monkeypatch.setattr(pushdown_source, "label_summaries_since", counted)
    source = builders.create_source(url, n_reference=300)
    t1, t2 = T0 + timedelta(hours=3), T0 + timedelta(hours=3, minutes=20)
    stores: dict[str, Any] = {}
    try:
        builders.add_predictions(source, 1, builders.hourly(T0 + timedelta(hours=1), 90))
        early = [(i, T0 + timedelta(hours=2), i % 2) for i in (1, 5, 9, 70)]
        builders.add_labels(source, [*early, (500, T0 + timedelta(hours=2), 1)])
        runtimes = {
            compute: open_runtime(
                build_config(
                    builders.config_dict(f"sqlite:///{tmp_path / compute}.db", url, compute=compute)
                ),
                tmp_path,
            )
            for compute in ("pull", "pushdown")
        }
        try:
            firsts = {c: tick(rt, "m", t1) for c, rt in runtimes.items()}
            # the held label's prediction appears, and one new label
            builders.add_predictions(source, 500, [t1 + timedelta(minutes=1)], score=0.2)
            builders.add_labels(source, [(7, t1 + timedelta(minutes=2), 1)])
            seconds = {c: tick(rt, "m", t2) for c, rt in runtimes.items()}
            for compute, rt in runtimes.items():
                with rt.sessions() as session:
                    buckets = load_buckets(session, "m", T0, T0 + timedelta(days=1))
                    mark = get_watermark(session, "m", "labels")
                stores[compute] = ({s: b.to_json() for s, b in buckets}, mark)
        finally:
            for rt in runtimes.values():
                rt.close()
        for first, second in zip(firsts.values(), seconds.values(), strict=True):
            assert first.labels_read == 5, first.intake
            assert first.intake.outcomes.get("labels.held") == 1, first.intake
            assert first.intake.outcomes["labels.summarised"] == 4
            assert second.labels_read == 1
            assert second.intake.outcomes["held_labels.summarised"] == 1
            for result in (first, second):
                assert set(result.intake.unaccounted().values()) <= {0}
    finally:
        source.dispose()
    assert pushed_reads == [5, 1]  # both ticks' labels were summarised by the engine
    pulled, pushed = stores["pull"], stores["pushdown"]
    assert pulled[1] == pushed[1]
    assert sorted(pulled[0]) == sorted(pushed[0])
    for start in pulled[0]:
        assert_same(pulled[0][start], pushed[0][start], start.isoformat())
    assert sum(b.get("n_labelled", 0) for b in pushed[0].values()) == 6
