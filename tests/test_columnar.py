"""The columnar transport: PostgreSQL through ADBC gives the same frame as SQLAlchemy's rows.

The reader tests (tests/test_sources.py) run the whole pull path on both dialects; these pin the
transport itself: which dialects take the Arrow path, that its values equal the row path's
value for value (times, NULLs, NUMERIC, text, booleans, keyset parameters), and that what Arrow
cannot type faithfully (a UUID) still reads, through rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from monitor.ingest.columnar import arrow_driver, arrow_session, compile_positional, fetch_rows
from monitor.store.db import make_engine

BIG_ID = 3_000_000_000  # beyond int32: a parameter typed INTEGER would overflow


@pytest.fixture
def pg(pg_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE t (id bigint, ts timestamptz, naive timestamp, x double precision,"
                " amount numeric(12, 2), s text, b boolean, u uuid)"
            )
        )
        rows = [
            {
                "id": BIG_ID + i,
                "ts": datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=i // 2),
                "naive": datetime(2026, 3, 1) + timedelta(seconds=i),
                "x": None if i % 7 == 0 else i / 3,
                "amount": None if i % 5 == 0 else f"{i}.25",
                "s": None if i % 3 == 0 else f"c{i % 4}",
                "b": None if i % 6 == 0 else i % 2 == 0,
                "u": str(uuid.UUID(int=i)),
            }
            for i in range(40)
        ]
        conn.execute(
            sa.text("INSERT INTO t VALUES (:id, :ts, :naive, :x, :amount, :s, :b, :u)"), rows
        )
    yield engine
    engine.dispose()


def _keyset(after_ts: datetime, after_id: int, columns: str) -> sa.Select[tuple[object, ...]]:
    ts, i = sa.literal_column("t.ts"), sa.literal_column("t.id")
    return (
        sa.select(*(sa.literal_column(f"t.{c}").label(c) for c in columns.split()))
        .select_from(sa.text("t"))
        .where(sa.or_(ts > after_ts, sa.and_(ts == after_ts, i > after_id)))
        .order_by(ts, i)
        .limit(25)
    )


def test_postgres_takes_the_arrow_path_and_sqlite_does_not(pg: sa.Engine, tmp_path: Path) -> None:
    assert arrow_driver(pg) is not None
    sqlite = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    try:
        assert arrow_driver(sqlite) is None
    finally:
        sqlite.dispose()


def test_arrow_frame_equals_the_row_frame(pg: sa.Engine) -> None:
    """Same rows, same values: the keyset (bigint id, naive UTC time) selects the same rows,
    times are the same instants, NULLs stay missing, NUMERIC becomes the same numbers."""
    after = datetime(2026, 3, 1, 0, 5)
    stmt = _keyset(after, BIG_ID + 10, "id ts naive x amount s b")
    with arrow_session(pg) as fetch:
        arrow = fetch(stmt)
    rows = fetch_rows(pg, stmt)
    assert len(arrow) == len(rows) == 25
    assert arrow["id"].dtype == np.int64  # numbers arrive as columns, not objects
    assert arrow["x"].dtype == np.float64
    assert arrow["amount"].dtype == np.float64
    assert arrow["id"].tolist() == rows["id"].tolist()
    assert arrow["id"].iloc[0] == BIG_ID + 11
    assert (arrow["ts"] == pd.to_datetime(rows["ts"], utc=True)).all()
    assert (arrow["naive"] == pd.to_datetime(rows["naive"])).all()
    pd.testing.assert_series_equal(arrow["x"], rows["x"].astype(float), check_names=False)
    expected_amount = pd.to_numeric(rows["amount"]).astype(float)
    pd.testing.assert_series_equal(arrow["amount"], expected_amount, check_names=False)
    assert arrow["s"].isna().tolist() == rows["s"].isna().tolist()
    assert arrow["s"].dropna().tolist() == rows["s"].dropna().tolist()
    assert arrow["b"].isna().tolist() == rows["b"].isna().tolist()
    assert arrow["b"].dropna().tolist() == rows["b"].dropna().tolist()


def test_a_column_arrow_cannot_type_falls_back_to_rows(pg: sa.Engine) -> None:
    """A UUID column has no plain Arrow type pandas reads back as text: the chunk is read as
    rows instead, with the same ids and values."""
    stmt = _keyset(datetime(2026, 3, 1), BIG_ID, "id u")
    with arrow_session(pg) as fetch:
        frame = fetch(stmt)
    assert len(frame) == 25
    assert [str(v) for v in frame["u"]] == [str(uuid.UUID(int=i)) for i in range(1, 26)]


def test_parameters_go_through_the_dialect_bind_processors(tmp_path: Path) -> None:
    """A dialect that stores times as text gets the same text SQLAlchemy would send."""
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    try:
        stmt = _keyset(datetime(2026, 3, 1, 0, 5), 7, "id")
        sql, params = compile_positional(stmt, engine.dialect)
        assert sql.count("?") == len(params) == 5  # SQLite adds OFFSET ?
        assert params[0] == "2026-03-01 00:05:00.000000"
        assert params[2] == 7 and params[3] == 25
    finally:
        engine.dispose()
