"""What the duplicate-id store costs: the `seen_ids` phase of a whole tick, and its rows.

A tick on SQLite (tickkit: 20 features, a 24h window with 23 stored buckets) reads `--rows`
new predictions; every id is hashed and recorded in `seen_rows` (one
`INSERT ... ON CONFLICT DO NOTHING RETURNING` per 5,000 ids) in the chunk's transaction. The
phase is reported as a share of the tick measured in the same run. Beside it, the same
`claim` of `--rows` fresh keys straight into a SQLite and a PostgreSQL store, and the bytes a
row of `seen_rows` takes in each (table and index).

    .venv/bin/python bench/seen_rows_bench.py               # 50k rows, 3 repeats
    .venv/bin/python bench/seen_rows_bench.py --rows 10000 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, fmt, machine_info, median, table, write_json

sys.path.insert(0, str(ROOT))
import numpy as np
import sqlalchemy as sa
import tickkit

PG_ADMIN = os.environ.get(
    "VIGIL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def tick_share(rows: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vigil-seen-") as tmp:
        prepared = tickkit.prepare(Path(tmp) / "p", 20, timedelta(hours=24), rows, 23)
        tickkit.measure_tick(prepared)  # warm-up: imports, first-use caches
        samples = [tickkit.measure_tick(prepared) for _ in range(repeats)]
    tick_s = median([s["tick_s"] for s in samples]) or 0.0
    seen_s = median([s["phases_s"]["seen_ids"] for s in samples]) or 0.0
    ingest_s = median([s["phases_s"]["ingest"] for s in samples]) or 0.0
    return {
        "rows": rows,
        "tick_s": tick_s,
        "ingest_s": ingest_s,
        "seen_ids_s": seen_s,
        "seen_share_of_tick": seen_s / tick_s if tick_s else None,
        "seen_share_of_ingest": seen_s / ingest_s if ingest_s else None,
        "seen_us_per_row": seen_s / rows * 1e6,
    }


def direct_claims(url: str, rows: int, repeats: int) -> dict[str, Any]:
    """`claim` of fresh keys into an empty store, then the same keys again (all repeats)."""
    from monitor.store.db import make_engine, session_factory, upgrade
    from monitor.store.seen import claim

    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    rng = np.random.default_rng(5)
    now = datetime(2026, 11, 10, tzinfo=UTC)
    fresh, again = [], []
    for r in range(repeats):
        keys = rng.integers(-(2**63), 2**63 - 1, size=rows, dtype=np.int64)
        times = [now] * rows
        with sessions.begin() as session:
            t0 = time.perf_counter()
            new = claim(session, f"m{r}", "pred", keys, times)
            fresh.append(time.perf_counter() - t0)
        assert new.all()
        with sessions.begin() as session:
            t0 = time.perf_counter()
            new = claim(session, f"m{r}", "pred", keys, times)
            again.append(time.perf_counter() - t0)
        assert not new.any()
    size = _bytes_per_row(engine, rows * repeats)
    engine.dispose()
    return {
        "fresh_s": median(fresh),
        "repeat_s": median(again),
        "fresh_us_per_row": (median(fresh) or 0) / rows * 1e6,
        "bytes_per_row": size,
    }


def _bytes_per_row(engine: sa.Engine, total_rows: int) -> float | None:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            size = conn.execute(sa.text("SELECT pg_total_relation_size('seen_rows')")).scalar()
        else:
            try:
                size = conn.execute(
                    sa.text("SELECT sum(pgsize) FROM dbstat WHERE name LIKE '%seen_rows%'")
                ).scalar()
            except sa.exc.OperationalError:  # SQLite built without the dbstat table
                return None
    return float(size) / total_rows if size else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    share = tick_share(args.rows, args.repeats)
    with tempfile.TemporaryDirectory(prefix="vigil-seen-") as tmp:
        sqlite = direct_claims(f"sqlite:///{tmp}/store.db", args.rows, args.repeats)
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"vigil_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        pg = direct_claims(
            sa.make_url(PG_ADMIN).set(database=name).render_as_string(False),
            args.rows,
            args.repeats,
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(
        table(
            ["rows", "tick (s)", "seen ids (s)", "share of tick", "share of ingest", "µs/row"],
            [
                [
                    share["rows"],
                    fmt(share["tick_s"]),
                    fmt(share["seen_ids_s"]),
                    fmt(share["seen_share_of_tick"]),
                    fmt(share["seen_share_of_ingest"]),
                    fmt(share["seen_us_per_row"]),
                ]
            ],
        )
    )
    print(
        table(
            ["store", "claim fresh (s)", "claim repeats (s)", "µs/row", "bytes/row"],
            [
                [
                    k,
                    fmt(v["fresh_s"]),
                    fmt(v["repeat_s"]),
                    fmt(v["fresh_us_per_row"]),
                    fmt(v["bytes_per_row"]),
                ]
                for k, v in (("sqlite", sqlite), ("postgresql", pg))
            ],
        )
    )
    write_json(
        "seen_rows", {"machine": machine_info(), "tick": share, "sqlite": sqlite, "postgresql": pg}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
