"""The `Source` contract, run against every registered kind on its real engine.

The same rows are written to SQLite, PostgreSQL, DuckDB and (as Parquet files) Spark; each
source is built through the registry the runtime uses and must: page predictions in
(timestamp, id) order in chunks, each paired with the watermark that covers it, and resume
from any watermark; join labels to their predictions (an unknown id has no prediction time);
read the reference and a bounded newest-first window; and either push its summaries down,
equal to the local fold's, or say why it cannot.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from monitor.config.models import SourceConfig
from monitor.core.summaries import BucketSummary
from monitor.engine.label_rows import take
from monitor.ingest.fit import fit_reference
from monitor.ingest.registry import SOURCES, Source, kind_of
from monitor.ingest.summarize import summarize_labels, summarize_predictions
from tests.builders import labels_spec, one_model_config, predictions_spec
from tests.test_pushdown import assert_same

T0 = datetime(2026, 10, 5, tzinfo=UTC)
NOW = T0 + timedelta(days=1)
N = 30


def _frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(5)
    ts = [T0 + timedelta(minutes=7 * i) for i in range(N)]
    ts[4] = ts[3]  # a shared timestamp: the id breaks the tie
    predictions = pd.DataFrame(
        {
            "request_id": np.arange(1, N + 1),
            "predicted_at": pd.to_datetime(ts, utc=True),
            "score": rng.random(N),
            "decision": rng.integers(0, 2, N),
            "amount": rng.normal(10, 3, N),
            "country": rng.choice(["DE", "FR", "NL"], N),
        }
    )
    labels = pd.DataFrame(
        {
            "request_id": [2, 5, 9, 11, 999],
            "labeled_at": pd.to_datetime(
                [T0 + timedelta(hours=5, minutes=i) for i in range(5)], utc=True
            ),
            "is_fraud": [1, 0, 1, 0, 1],
        }
    )
    reference = pd.DataFrame(
        {"amount": rng.normal(10, 3, 80), "country": rng.choice(["DE", "FR"], 80)}
    )
    return {"predictions": predictions, "labels": labels, "reference_rows": reference}


def _sql_tables(url: str, frames: dict[str, pd.DataFrame]) -> None:
    engine = sa.create_engine(url)
    ts = "timestamptz" if engine.dialect.name == "postgresql" else "timestamp"
    ddl = {
        "predictions": f"request_id bigint, predicted_at {ts}, score double precision, "
        "decision integer, amount double precision, country varchar(10)",
        "labels": f"request_id bigint, labeled_at {ts}, is_fraud integer",
        "reference_rows": "amount double precision, country varchar(10)",
    }
    with engine.begin() as conn:
        for table, columns in ddl.items():
            conn.execute(sa.text(f"CREATE TABLE {table} ({columns})"))
            frame = frames[table].copy()
            for col in frame.columns:
                if isinstance(frame[col].dtype, pd.DatetimeTZDtype):
                    naive = frame[col].dt.tz_localize(None)
                    # SQLite keeps times as SQLAlchemy writes them: text, to the microsecond.
                    frame[col] = (
                        naive.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
                        if engine.dialect.name == "sqlite"
                        else naive.astype(object)
                    )
            records = frame.astype(object).to_dict("records")
            names = ", ".join(frame.columns)
            marks = ", ".join(f":{c}" for c in frame.columns)
            conn.execute(sa.text(f"INSERT INTO {table} ({names}) VALUES ({marks})"), records)
    engine.dispose()


def _model(tables: dict[str, dict[str, str]], url: str) -> Any:
    model = {
        "source": "src",
        "task": "binary_classification",
        "compute": "pushdown",
        "predictions": predictions_spec(["amount", "country"], tables["predictions"]),
        "labels": labels_spec(tables["labels"]),
        "reference": tables["reference_rows"],
    }
    return one_model_config(url, model).models["m"]


@pytest.fixture(params=["sqlite", "postgresql", "duckdb", "spark"])
def named_source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Source]]:
    frames = _frames()
    names = ("predictions", "labels", "reference_rows")
    if request.param == "spark":
        handle = request.getfixturevalue("spark_engine")
        tables = {}
        for name in names:
            path = tmp_path / f"{name}.parquet"
            frames[name].to_parquet(path, coerce_timestamps="us")
            tables[name] = {"query": f"SELECT * FROM parquet.`{path}`"}
        yield "spark", SOURCES["spark"].build(handle, _model(tables, "spark:local[2]"), 10)
        return
    url = {
        "sqlite": f"sqlite:///{tmp_path / 'src.db'}",
        "duckdb": f"duckdb:///{tmp_path / 'src.duckdb'}",
    }.get(request.param) or str(request.getfixturevalue("pg_url"))
    _sql_tables(url, frames)
    kind = SOURCES[kind_of(url)]
    handle = kind.connect(url, SourceConfig(url=url))  # type: ignore[arg-type]
    yield request.param, kind.build(handle, _model({n: {"table": n} for n in names}, url), 10)
    handle.dispose()


def test_every_url_selects_a_registered_kind() -> None:
    assert kind_of("spark:local[2]") == "spark"
    assert kind_of("duckdb:///x.duckdb") == "duckdb"
    assert kind_of("postgresql+psycopg://h/db") == "sql"
    assert kind_of("sqlite:///x.db") == "sql"
    assert set(SOURCES) == {"sql", "duckdb", "spark"}


def test_source_contract(named_source: tuple[str, Source]) -> None:
    engine, source = named_source
    until = NOW
    batches = list(source.predictions_since(None, until))
    assert [len(b) for b, _ in batches] == [10, 10, 10]
    ids = [int(i) for b, _ in batches for i in b.ids]
    assert ids == sorted(ids) and sorted(ids) == list(range(1, N + 1))
    for batch, mark in batches:
        assert mark.row_id == int(batch.ids.iloc[-1])
        assert mark.ts == batch.ts.iloc[-1].to_pydatetime()
    assert batches[0][0].ts.iloc[3] == batches[0][0].ts.iloc[4]  # the tie, both read
    rest = list(source.predictions_since(batches[0][1], until))
    assert [int(i) for b, _ in rest for i in b.ids] == list(range(11, N + 1))
    # The settle time bounds the read: rows after `until` wait for a later tick.
    early = list(source.predictions_since(None, T0 + timedelta(minutes=7 * 5)))
    assert sum(len(b) for b, _ in early) == 6

    labels = pd.concat([b.predicted_at for b, _ in source.labels_since(None, until)])
    assert len(labels) == 5
    assert int(labels.isna().sum()) == 1  # id 999 has no prediction

    reference = source.reference_frame()
    assert len(reference) == 80 and {"amount", "country"} <= set(reference.columns)
    window = source.window_frame(T0, T0 + timedelta(hours=1), 4)
    assert len(window) == 4 and {"amount", "country", "@score"} <= set(window.columns)

    problems = source.pushdown_problems()
    model = source.model  # type: ignore[attr-defined]
    if engine == "sqlite":  # no push-down: said, not attempted
        assert problems and "engine 'sqlite' has no push-down" in problems[0]
        return
    assert problems == []
    ref = fit_reference(reference, ["amount", "country"], [], "fp")
    local: dict[datetime, BucketSummary] = {}
    for batch, _ in source.predictions_since(None, until):
        for start, s in summarize_predictions(
            batch, ref, model.task, 0.5, model.bucket, NOW
        ).items():
            local.setdefault(start, BucketSummary()).merge_into(s)
    pushed = [r for r in source.summaries_since(None, until, ref)]
    assert len(pushed) == 1 and pushed[0].rows == N and pushed[0].mark == batches[-1][1]
    assert sorted(pushed[0].buckets) == sorted(local)
    for start, s in local.items():
        assert_same(s.to_json(), pushed[0].buckets[start].to_json(), start.isoformat())

    # Labels pushed down: the same labelled parts; id 999 (no prediction yet) comes back as a
    # row, to be held as the local path holds it.
    local_labels: dict[datetime, BucketSummary] = {}
    for batch, _ in source.labels_since(None, until):
        waiting = batch.ids.notna().to_numpy() & ~batch.matched.to_numpy(dtype=bool)
        for start, s in summarize_labels(
            take(batch, ~waiting), model.task, 0.5, model.bucket, NOW, ref.segment_values, ref
        ).items():
            local_labels.setdefault(start, BucketSummary()).merge_into(s)
    labelled = source.label_summaries_since(None, until, ref, NOW)  # type: ignore[attr-defined]
    assert labelled is not None and labelled.read == 5
    assert [int(i) for i in labelled.held["v_id"]] == [999]
    assert sorted(labelled.buckets) == sorted(local_labels)
    for start, s in local_labels.items():
        assert_same(s.to_json(), labelled.buckets[start].to_json(), start.isoformat())
    assert sum(s.n_labelled for s in labelled.buckets.values()) == 4
