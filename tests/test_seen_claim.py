"""`claim`, the store's memory of row ids, fed a column of times at once (as a tick does):
which keys are new, the times it stores, and pruning by those times, on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import text

from monitor.store.db import make_engine, session_factory, upgrade
from monitor.store.seen import claim, prune_seen

T0 = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)


def test_claim_takes_a_time_column_and_prunes_by_it(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    sessions = session_factory(engine)
    keys = np.array([5, -(2**63), 2**63 - 1, 17, 99], dtype=np.int64)
    offsets = [0, 1, 2, 3, 4]  # minutes; the fourth has no time
    times = pd.Series(
        [T0 + timedelta(minutes=m, microseconds=250) for m in offsets], dtype="datetime64[ns, UTC]"
    )
    times.iloc[3] = pd.NaT
    try:
        with sessions.begin() as session:
            assert claim(session, "m", "pred", keys, times).all()
        with sessions.begin() as session:
            again = claim(session, "m", "pred", np.array([17, 5, 6], dtype=np.int64), None)
            assert again.tolist() == [False, False, True]
            stored = dict(
                session.execute(
                    text("SELECT key, ts FROM seen_rows WHERE model = 'm' AND kind = 'pred'")
                ).all()
            )
        assert stored[17] is None and stored[6] is None
        first = stored[5]
        if isinstance(first, str):  # SQLite: SQLAlchemy's DateTime text, which prune compares
            assert first == "2026-03-09 12:00:00.000250"
        else:
            assert first == datetime(2026, 3, 9, 12, 0, 0, 250)
        with sessions.begin() as session:  # older than 12:02: the first two keys go
            assert prune_seen(session, "m", "pred", T0 + timedelta(minutes=2)) == 2
        with sessions.begin() as session:
            fresh = claim(session, "m", "pred", keys, [T0] * len(keys))
        assert fresh.tolist() == [True, True, False, False, False]
    finally:
        engine.dispose()
