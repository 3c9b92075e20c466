"""Push-down summaries equal the local fold's, bucket by bucket, on the real engines.

Random predictions (NaN, infinities, NULLs, out-of-range scores, unseen categories, segments,
several buckets) are written to a source; the pull path reads them and folds them locally
(`summarize_predictions`), the push-down path has the engine compute them in one query; every
count must be equal and every sum equal to rounding. DuckDB and PostgreSQL run the property
test; the reference is fitted from the same kind of data, so bins and pooled segments are real.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import VigilConfig
from monitor.core.summaries import BucketSummary
from monitor.engine.runtime import open_runtime
from monitor.engine.tick import tick
from monitor.ingest.fit import fit_reference
from monitor.ingest.pushdown_source import summaries_since
from monitor.ingest.sources import SqlSource
from monitor.ingest.summarize import summarize_predictions
from monitor.store.db import make_engine
from monitor.store.state import get_watermark, load_buckets
from tests import builders
from tests.builders import build_config

T0 = datetime(2026, 10, 5, tzinfo=UTC)
NOW = T0 + timedelta(days=1)
FEATURES = ["amount", "age", "country", "plan"]
CATEGORICAL = ["country", "plan"]


def _config(url: str, task: str = "binary_classification") -> VigilConfig:
    return builders.one_model_config(url, {**_model_yaml(url), "task": task, "bucket": "1h"})


def _create(engine: sa.Engine) -> None:
    ts_type = "timestamptz" if engine.dialect.name == "postgresql" else "timestamp"
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS predictions"))
        conn.execute(
            sa.text(
                f"CREATE TABLE predictions (request_id bigint, predicted_at {ts_type}, "
                "score double precision, decision integer, amount double precision, "
                "age integer, country varchar, plan varchar, region varchar)"
            )
        )


REGIONS = ["north", "south", "east", "west", "x1", "x2"]
COUNTRIES = ["DE", "FR", "NL", "PL", "ZZ"]
floats = st.one_of(
    st.floats(-50, 50, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.none(),
)
rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "minute": st.integers(0, 4 * 60 - 1),
            "score": st.one_of(st.floats(0, 1), st.sampled_from([math.nan, 1.5, -0.2]), st.none()),
            "decision": st.one_of(st.sampled_from([0, 1, 2]), st.none()),
            "amount": floats,
            "age": st.one_of(st.integers(0, 90), st.none()),
            "country": st.one_of(st.sampled_from(COUNTRIES), st.none()),
            "plan": st.one_of(st.sampled_from(["free", "pro"]), st.none()),
            "region": st.one_of(st.sampled_from(REGIONS), st.none()),
        }
    ),
    min_size=1,
    max_size=60,
)


def _reference(config: VigilConfig) -> Any:
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame(
        {
            "amount": rng.normal(0, 20, n),
            "age": rng.integers(0, 90, n).astype(float),
            "country": rng.choice(COUNTRIES[:3], n),
            "plan": rng.choice(["free", "pro"], n),
            "region": rng.choice(REGIONS[:4], n, p=[0.4, 0.3, 0.2, 0.1]),
            "@score": rng.random(n),
            "@prediction": rng.integers(0, 2, n),
        }
    )
    return fit_reference(frame, FEATURES, CATEGORICAL, "fp", pooled_segments=("region",))


def _insert(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    records = [
        {
            "request_id": i + 1,
            "predicted_at": (T0 + timedelta(minutes=r["minute"], seconds=i % 7)).replace(
                tzinfo=None
            ),
            **{k: v for k, v in r.items() if k != "minute"},
        }
        for i, r in enumerate(rows)
    ]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO predictions VALUES (:request_id, :predicted_at, :score, :decision, "
                ":amount, :age, :country, :plan, :region)"
            ),
            records,
        )


def _local(source: SqlSource, reference: Any) -> dict[datetime, BucketSummary]:
    model = source.model
    out: dict[datetime, BucketSummary] = {}
    for batch, _ in source.predictions_since(None, NOW):
        for start, summary in summarize_predictions(
            batch, reference, model.task, model.threshold, model.bucket, NOW
        ).items():
            out.setdefault(start, BucketSummary()).merge_into(summary)
    return out


def _pushed(source: SqlSource, reference: Any) -> dict[datetime, BucketSummary]:
    out: dict[datetime, BucketSummary] = {}
    for result in summaries_since(source, None, NOW, reference):
        for start, summary in result.buckets.items():
            out.setdefault(start, BucketSummary()).merge_into(summary)
    return out


def assert_same(local: Any, pushed: Any, path: str = "") -> None:
    """Equal structure and counts; floats equal to rounding (sums added in another order)."""
    if isinstance(local, dict):
        assert isinstance(pushed, dict), path
        assert set(local) == set(pushed), f"{path}: {sorted(local)} != {sorted(pushed)}"
        for key in local:
            assert_same(local[key], pushed[key], f"{path}.{key}")
    elif isinstance(local, list):
        assert isinstance(pushed, list) and len(local) == len(pushed), path
        for i, (a, b) in enumerate(zip(local, pushed, strict=True)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(local, float):
        assert math.isclose(local, float(pushed), rel_tol=1e-9, abs_tol=1e-9), path
    else:
        assert local == pushed, f"{path}: {local!r} != {pushed!r}"


def check_equal(engine: sa.Engine, url: str, rows: list[dict[str, Any]]) -> None:
    _create(engine)
    _insert(engine, rows)
    config = _config(url)
    reference = _reference(config)
    source = SqlSource(engine, config.models["m"], chunk_size=25)
    local, pushed = _local(source, reference), _pushed(source, reference)
    assert sorted(local) == sorted(pushed)
    assert sum(s.n for s in pushed.values()) == len(rows)
    for start in local:
        assert_same(local[start].to_json(), pushed[start].to_json(), start.isoformat())


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[tuple[sa.Engine, str]]:
    url = f"duckdb:///{tmp_path / 'source.duckdb'}"
    engine = make_engine(url)
    yield engine, url
    engine.dispose()


@pytest.fixture
def pg(pg_url: str) -> Iterator[tuple[sa.Engine, str]]:
    engine = make_engine(pg_url)
    yield engine, pg_url
    engine.dispose()


PROPERTY = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(rows=rows_strategy)
def test_duckdb_pushdown_equals_local(duck: tuple[sa.Engine, str], rows: list[Any]) -> None:
    check_equal(*duck, rows)


@PROPERTY
@given(rows=rows_strategy)
def test_postgres_pushdown_equals_local(pg: tuple[sa.Engine, str], rows: list[Any]) -> None:
    check_equal(*pg, rows)


def _write(path: Path, url: str, **model: Any) -> Path:
    data = {
        "store": f"sqlite:///{path.parent / 'store.db'}",
        "sources": {"src": {"url": url}},
        "models": {"m": {**_model_yaml(url), **model}},
        "routing": {"default": ["chat"]},
        "receivers": {"chat": {"slack": {"channel": "#c"}}},
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _model_yaml(url: str) -> dict[str, Any]:
    return {
        "source": "src",
        "task": "binary_classification",
        "compute": "pushdown",
        "predictions": builders.predictions_spec(
            FEATURES, categorical=CATEGORICAL, segments=["region"]
        ),
        "reference": {"table": "reference_rows"},
    }


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    vigil = Path(sys.executable).parent / "vigil"
    return subprocess.run(
        [str(vigil), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def test_config_check_refuses_pushdown_an_engine_cannot_run(
    tmp_path: Path, duck: tuple[sa.Engine, str]
) -> None:
    """SQLite has no push-down; a REAL column declared categorical has engine-dependent
    category text: both are named at `vigil config check` (exit 2), a clean one passes."""
    sqlite_url = f"sqlite:///{tmp_path / 'src.db'}"
    sa.create_engine(sqlite_url).dispose()
    bad = _cli("config", "check", _write(tmp_path / "a.yaml", sqlite_url))
    assert bad.returncode == 2
    assert "engine 'sqlite' has no push-down" in bad.stderr

    engine, url = duck
    _create(engine)
    _insert(
        engine,
        [
            {
                "minute": 1,
                "score": 0.5,
                "decision": 1,
                "amount": 1.5,
                "age": 3,
                "country": "DE",
                "plan": "pro",
                "region": "north",
            }
        ],
    )
    engine.dispose()  # the CLI opens the file in its own process
    features = {**_model_yaml(url)["predictions"], "categorical": ["country", "plan", "amount"]}
    float_cat = _cli("config", "check", _write(tmp_path / "b.yaml", url, predictions=features))
    assert float_cat.returncode == 2, float_cat.stdout
    assert "categorical feature 'amount' is float" in float_cat.stderr

    good = _cli("config", "check", _write(tmp_path / "c.yaml", url))
    assert good.returncode == 0, good.stderr
    assert "summaries pushed down" in good.stdout


@pytest.mark.parametrize("engine_name", ["duckdb", "postgresql"])
def test_tick_with_pushdown_stores_what_pull_stores(
    engine_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two ticks (the second reads only the new rows) through `compute: pushdown` store the
    same prediction buckets and watermark as through `pull`; labels still arrive (pulled)."""
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
    source = builders.create_source(url, n_reference=300)
    stores = {}
    try:
        builders.add_predictions(source, 1, builders.hourly(T0 + timedelta(hours=1), 90))
        builders.add_labels(source, [(i, T0 + timedelta(hours=2), i % 2) for i in (1, 5, 9)])
        for compute in ("pull", "pushdown"):
            store = f"sqlite:///{tmp_path / compute}.db"
            config = build_config(builders.config_dict(store, url, compute=compute))
            rt = open_runtime(config, tmp_path)
            try:
                first = tick(rt, "m", T0 + timedelta(hours=3))
                assert first.predictions_read == 90
                second = tick(rt, "m", T0 + timedelta(hours=3, minutes=5))
                assert second.predictions_read == 0
                with rt.sessions() as session:
                    buckets = load_buckets(session, "m", T0, T0 + timedelta(days=1))
                    mark = get_watermark(session, "m", "predictions")
                stores[compute] = ({s: b.to_json() for s, b in buckets}, mark)
            finally:
                rt.close()
    finally:
        source.dispose()
    pulled, pushed = stores["pull"], stores["pushdown"]
    assert pulled[1] == pushed[1]
    assert sorted(pulled[0]) == sorted(pushed[0])
    for start in pulled[0]:
        assert_same(pulled[0][start], pushed[0][start], start.isoformat())
    assert sum(b["n"] for b in pushed[0].values()) == 90
    assert sum(b.get("n_labelled", 0) for b in pushed[0].values()) == 3
