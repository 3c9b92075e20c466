"""The compose demo's model: the simulated fraud model of `vigil demo`, logged in real time.

`vigil demo` replays six simulated weeks in seconds. Here the same simulation
(`monitor.demo.simulate`) is shifted so that its day `DEMO_START_DAY` is the moment the feeder
first starts: the rows before it are written at once (the windows get their history), and each
later prediction or chargeback is written when the wall clock reaches its time. Vigil sees a
live model, and the injected faults (feature drift, a quality drop, a logging gap) arrive on
their own. The shift is stored in the database, so a restarted feeder carries on.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from monitor.demo.simulate import START, simulate

POLL = timedelta(seconds=20)


def naive_utc(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(tzinfo=None)


def offset_for(engine: sa.Engine, now: datetime, start_day: float) -> timedelta:
    """The shift from simulated to wall-clock time: stored on first start, read after."""
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS demo_clock (offset_seconds FLOAT)"))
        stored = conn.execute(sa.text("SELECT offset_seconds FROM demo_clock")).scalar()
        if stored is not None:
            return timedelta(seconds=float(stored))
        offset = now - (START + timedelta(days=start_day))
        conn.execute(sa.text("INSERT INTO demo_clock VALUES (:s)"), {"s": offset.total_seconds()})
        return offset


def written_until(engine: sa.Engine, table: str, column: str) -> datetime | None:
    if not sa.inspect(engine).has_table(table):
        return None
    with engine.connect() as conn:
        newest = conn.execute(sa.text(f"SELECT max({column}) FROM {table}")).scalar()
    if newest is None:
        return None
    return pd.Timestamp(newest).to_pydatetime().replace(tzinfo=UTC)


def feed(
    engine: sa.Engine,
    frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
    offset: timedelta,
    until: datetime,
) -> tuple[int, int]:
    """Write every prediction and chargeback whose shifted time is after what the tables
    already hold and not after `until`; returns how many of each were written."""
    predictions, labels, reference = frames
    if not sa.inspect(engine).has_table("reference_sample"):
        reference.to_sql("reference_sample", engine, index=False)
    written = []
    for frame, table, column in (
        (predictions, "predictions", "predicted_at"),
        (labels, "chargebacks", "labeled_at"),
    ):
        shifted = frame.copy()
        shifted[column] = shifted[column] + pd.Timedelta(offset)
        since = written_until(engine, table, column)
        due = shifted[column] <= pd.Timestamp(naive_utc(until))
        if since is not None:
            due &= shifted[column] > pd.Timestamp(naive_utc(since))
        batch = shifted.loc[due]
        batch.to_sql(table, engine, if_exists="append", index=False, chunksize=5000)
        written.append(len(batch))
    return written[0], written[1]


def main() -> None:
    engine = sa.create_engine(os.environ["SHOP_DB_URL"])
    frames = simulate()
    offset = offset_for(engine, datetime.now(UTC), float(os.environ.get("DEMO_START_DAY", "16.4")))
    while True:
        preds, labels = feed(engine, frames, offset, datetime.now(UTC))
        if preds or labels:
            print(f"demo feeder: wrote {preds} predictions, {labels} chargebacks", flush=True)
        time.sleep(POLL.total_seconds())


if __name__ == "__main__":
    main()
