"""The store's memory of individual rows: which ids were already counted, and which labels
wait for their prediction.

Both live in the same transaction as the bucket counts and the watermark they belong to,
so a crash never counts a row twice nor forgets one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    String,
    any_,
    bindparam,
    cast,
    column,
    delete,
    select,
    table,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.store.tables import HeldLabel, SeenRow

_SEEN = table(
    "seen_rows",
    column("model", String),
    column("kind", String),
    column("key", BigInteger),
    column("ts", DateTime),
)
"""`seen_rows` without the ORM's per-value types: this table is written a row per id."""

CLAIM_CHUNK = 5_000
"""Keys per DELETE statement: bounded statement size on both backends."""
LOOKUP_CHUNK = 900
"""Keys per lookup: within SQLite's oldest limit of 999 parameters."""
HOLD_CHUNK = 2_000

SEEN_PREDICTION, SEEN_FUTURE, SEEN_BAD_TIME = "pred", "future", "bad_ts"
"""Kinds of seen rows: a prediction id within the duplicate horizon, a future-dated row
already counted as such, a row with an unusable timestamp already counted as bad."""


def claim(
    session: Session,
    model: str,
    kind: str,
    keys: np.ndarray,
    ts: Sequence[datetime | None] | pd.Series | None = None,
) -> np.ndarray:
    """Record `keys` (distinct int64 row keys) as seen; True where a key is new.

    The keys already there are looked up by primary key, then the new ones inserted with
    one plain multi-row INSERT (the cheapest write both backends have: an upsert with
    RETURNING costs several times more per row, see `bench/seen_rows_bench.py`). The model's
    lease makes this transaction the only writer of the model's keys.

    A tick claims every id it reads, so nothing here goes through a Python object per key
    beyond what the driver needs: `ts` may be a Series of times (formatted in one pass), the
    statements are plain driver SQL, not compiled per call (`bench/pg_read_bench.py`).
    """
    if keys.size == 0:
        return np.zeros(0, dtype=bool)
    conn = session.connection()
    keys = np.asarray(keys, dtype=np.int64)
    existing = _existing(conn, model, kind, keys.tolist())
    new = ~np.isin(keys, np.fromiter(existing, dtype=np.int64, count=len(existing)))
    if not new.any():
        return new
    fresh_keys = keys[new].tolist()
    fresh_times = [t for t, fresh in zip(_store_times(ts, keys.size), new, strict=True) if fresh]
    if conn.dialect.name == "postgresql":
        # two array parameters, one statement: a row per parameter set costs several times
        # more through the driver (bench/seen_rows_bench.py)
        conn.execute(
            text(
                "INSERT INTO seen_rows (model, kind, key, ts) "
                "SELECT :model, :kind, unnest(CAST(:keys AS BIGINT[])), "
                "unnest(CAST(:ts AS TIMESTAMP[]))"
            ),
            {
                "model": model,
                "kind": kind,
                "keys": _pg_array(fresh_keys),
                "ts": _pg_text_array(fresh_times),
            },
        )
    else:
        conn.exec_driver_sql(
            "INSERT INTO seen_rows (model, kind, key, ts) VALUES (?, ?, ?, ?)",
            [(model, kind, k, t) for k, t in zip(fresh_keys, fresh_times, strict=True)],
        )
    return new


def _existing(conn: Connection, model: str, kind: str, keys: list[int]) -> set[int]:
    """Which of `keys` are stored. PostgreSQL takes them as one array parameter: an IN list
    of bound parameters costs about a millisecond per key on the client; SQLite gets plain
    `?` lists (nothing for SQLAlchemy to compile per chunk)."""
    mine = (_SEEN.c.model == model, _SEEN.c.kind == kind)
    if conn.dialect.name == "postgresql":
        array = cast(bindparam("keys", _pg_array(keys), type_=String), postgresql.ARRAY(BigInteger))
        return set(
            conn.execute(select(_SEEN.c.key).where(*mine, _SEEN.c.key == any_(array))).scalars()
        )
    found: set[int] = set()
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start : start + LOOKUP_CHUNK]
        marks = ",".join("?" * len(chunk))
        found.update(
            row[0]
            for row in conn.exec_driver_sql(
                f"SELECT key FROM seen_rows WHERE model = ? AND kind = ? AND key IN ({marks})",
                (model, kind, *chunk),
            )
        )
    return found


def _pg_array(keys: list[int]) -> str:
    """An array literal as one text parameter: the driver then adapts one string, not a
    Python object per key (most of the time of a large claim otherwise)."""
    return "{" + ",".join(map(str, keys)) + "}"


def _pg_text_array(values: list[str | None]) -> str:
    """Times (store text, no quotes or backslashes in them) as one array literal."""
    return "{" + ",".join("NULL" if v is None else f'"{v}"' for v in values) + "}"


def _store_times(ts: Sequence[datetime | None] | pd.Series | None, n: int) -> list[str | None]:
    """Times as the store writes them: naive UTC text, `YYYY-MM-DD HH:MM:SS.ffffff` (the
    format of SQLAlchemy's SQLite DateTime, which `prune_seen` compares with; PostgreSQL
    reads it as a TIMESTAMP), formatted for the whole column at once."""
    if ts is None:
        return [None] * n
    series = ts if isinstance(ts, pd.Series) else pd.Series(list(ts), dtype=object)
    if isinstance(series.dtype, pd.DatetimeTZDtype):  # as read: no parsing, no cache probe
        times = series.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(series):
        times = series  # naive: UTC already
    else:
        times = pd.to_datetime(series, utc=True).dt.tz_localize(None)  # naive given: UTC
    values = times.to_numpy(dtype="datetime64[us]")
    text = np.char.replace(np.datetime_as_string(values, unit="us"), "T", " ").astype(object)
    text[np.isnat(values)] = None
    out: list[str | None] = text.tolist()
    return out


def prune_seen(session: Session, model: str, kind: str, before: datetime) -> int:
    """Forget the rows of `kind` older than `before` (their horizon has passed)."""
    result: Any = session.execute(
        delete(SeenRow).where(SeenRow.model == model, SeenRow.kind == kind, SeenRow.ts < before)
    )
    return int(result.rowcount or 0)


@dataclass(frozen=True)
class Held:
    """A label waiting for its prediction."""

    key: int
    row_id: Any
    label: Any
    labeled_at: datetime | None
    held_at: datetime


def hold_labels(session: Session, model: str, held: list[Held]) -> np.ndarray:
    """Hold new labels; True where held, False where the same id is already held (a
    duplicate label)."""
    if not held:
        return np.zeros(0, dtype=bool)
    dialect = session.get_bind().dialect.name
    builder: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    inserted: set[int] = set()
    for start in range(0, len(held), HOLD_CHUNK):
        rows = [
            {
                "model": model,
                "key": h.key,
                "row_id": h.row_id,
                "label": h.label,
                "labeled_at": h.labeled_at,
                "held_at": h.held_at,
            }
            for h in held[start : start + HOLD_CHUNK]
        ]
        stmt = builder(HeldLabel).values(rows).on_conflict_do_nothing().returning(HeldLabel.key)
        inserted.update(int(k) for k in session.scalars(stmt))
    first: set[int] = set()
    out = np.zeros(len(held), dtype=bool)
    for i, h in enumerate(held):  # the same key twice in one batch: the second is a duplicate
        if h.key in inserted and h.key not in first:
            out[i] = True
            first.add(h.key)
    return out


def held_labels(session: Session, model: str) -> list[Held]:
    rows = session.scalars(
        select(HeldLabel).where(HeldLabel.model == model).order_by(HeldLabel.held_at)
    )
    return [Held(r.key, r.row_id, r.label, r.labeled_at, r.held_at) for r in rows]


def release_labels(session: Session, model: str, keys: list[int]) -> None:
    """Drop held labels that were matched or expired."""
    for start in range(0, len(keys), CLAIM_CHUNK):
        chunk = keys[start : start + CLAIM_CHUNK]
        session.execute(delete(HeldLabel).where(HeldLabel.model == model, HeldLabel.key.in_(chunk)))
