"""Reading the next chunk while the current one is folded (`monitor.ingest.prefetch`).

On PostgreSQL (the Arrow path) a keyset read fetches chunk i+1 on a helper thread while the
caller folds chunk i. These pin that nothing else changes: the same chunks, in the same
order, with the same watermarks as a read without it; a caller that stops early leaves no
thread behind and its connection back in the pool; the helper runs under the tick's
deadline, and its errors reach the caller.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from monitor.core import deadline
from monitor.ingest import sources
from monitor.ingest.columnar import arrow_driver, reads_ahead
from monitor.ingest.prefetch import ReadAhead
from monitor.ingest.sources import SqlSource
from monitor.store.db import make_engine
from tests.builders import T0, add_predictions, build_config, config_dict, create_source, hourly

HELPER = "vigil-read-ahead"
ROW_TIMES = hourly(T0, 130) + hourly(T0, 120)


@pytest.fixture
def pg_source(pg_url: str, tmp_path: Path) -> Iterator[tuple[sa.Engine, SqlSource]]:
    engine = create_source(pg_url, n_reference=50)
    # 250 rows, two per minute: ties on time inside and across the chunk boundaries
    add_predictions(engine, 1, ROW_TIMES)
    engine.dispose()
    config = build_config(config_dict(f"sqlite:///{tmp_path / 'store.db'}", pg_url))
    reader_engine = make_engine(pg_url)
    yield reader_engine, SqlSource(reader_engine, config.models["m"], chunk_size=60)
    reader_engine.dispose()


def _read(reader: SqlSource, threads: list[str]) -> list[tuple[list[int], Any]]:
    real = SqlSource._fetch

    def fetch(self: SqlSource, stmt: Any) -> pd.DataFrame:
        threads.append(threading.current_thread().name)
        return real(self, stmt)

    SqlSource._fetch = fetch  # type: ignore[method-assign]
    try:
        batches = reader.predictions_since(None, T0 + timedelta(days=1))
        return [([int(i) for i in batch.ids], mark) for batch, mark in batches]
    finally:
        SqlSource._fetch = real  # type: ignore[method-assign]


def test_read_ahead_gives_the_same_chunks_and_watermarks(
    pg_source: tuple[sa.Engine, SqlSource], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, reader = pg_source
    assert reads_ahead(engine)
    ahead_threads: list[str] = []
    ahead = _read(reader, ahead_threads)
    monkeypatch.setattr(sources, "reads_ahead", lambda _engine: False)
    plain_threads: list[str] = []
    plain = _read(reader, plain_threads)

    assert [len(ids) for ids, _ in ahead] == [60, 60, 60, 60, 10]
    assert ahead == plain  # same ids in the same chunks, same watermark after each
    in_order = sorted(range(1, 251), key=lambda i: (ROW_TIMES[i - 1], i))
    assert [i for ids, _ in ahead for i in ids] == in_order
    # every chunk after a full one was fetched by the helper, none without read-ahead
    assert ahead_threads.count(HELPER) == 5 and HELPER not in plain_threads


def test_a_reader_that_stops_early_leaves_no_thread_and_returns_its_connection(
    pg_source: tuple[sa.Engine, SqlSource],
) -> None:
    engine, reader = pg_source
    driver = arrow_driver(engine)
    assert driver is not None
    batches = reader.predictions_since(None, T0 + timedelta(days=1))
    first, _ = next(batches)  # the second chunk is now being fetched
    assert len(first) == 60
    batches.close()  # as a caller at its chunk budget does, by leaving its loop
    assert not [t for t in threading.enumerate() if t.name == HELPER]
    assert driver.idle  # the read ahead's connection went back to the pool
    rest = list(reader.predictions_since(None, T0 + timedelta(days=1)))
    assert sum(len(b) for b, _ in rest) == 250


def test_the_helper_runs_under_the_callers_deadline_and_raises_through_take() -> None:
    seen: list[deadline.Deadline | None] = []

    def fetch(stmt: Any) -> pd.DataFrame:
        seen.append(deadline.current())
        if stmt == "fail":
            raise ValueError("driver said no")
        return pd.DataFrame({"x": [stmt]})

    limit = deadline.Deadline(60, "m")
    with deadline.bound(limit):
        ahead = ReadAhead(fetch, enabled=True)
        ahead.start("one")
        assert ahead.take()["x"].tolist() == ["one"]
        ahead.start("fail")
        with pytest.raises(ValueError, match="driver said no"):
            ahead.take()
    assert seen == [limit, limit]

    inline = ReadAhead(fetch, enabled=False)  # no helper: fetched by the caller at take
    inline.start("two")
    assert seen == [limit, limit]
    assert inline.take()["x"].tolist() == ["two"]
    assert seen[-1] is None
