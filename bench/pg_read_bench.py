"""The pull path from a PostgreSQL source: a whole tick against bare fetches of the same rows.

One PostgreSQL database per feature count holds the model's source (timestamptz times, an index
on (predicted_at, request_id)); the store is SQLite as in the other tick benchmarks, with 23
hourly buckets already stored. A tick reads the `--rows` new predictions, folds, commits and
judges eight SLOs. Against it, in the same run and on the same rows, columns and order:

- `adbc`: the ADBC driver's Arrow fetch (`fetch_arrow_table`), the floor for any reader;
- `psycopg`: a bare psycopg 3 `fetchall` (Python tuples, nothing built from them);
- `rows`: SQLAlchemy rows into pandas, the transport Vigil used before the columnar reader.

    .venv/bin/python bench/pg_read_bench.py                    # 100k rows, 20 and 200 features
    .venv/bin/python bench/pg_read_bench.py --rows 10000 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, fmt, machine_info, median, table, write_json

sys.path.insert(0, str(ROOT))
import tickkit


def same_rows_sql(k: int) -> str:
    """The rows the tick reads (the current hour up to its settle time), in keyset order."""
    names, _ = tickkit.feature_names(k)
    cols = ", ".join(
        ["request_id", "predicted_at", "score", "decision", *(f'"{n}"' for n in names)]
    )
    start = tickkit.NOW.replace(minute=0, second=0, microsecond=0)
    return (
        f"SELECT {cols} FROM predictions WHERE predicted_at >= '{start.isoformat()}' "
        f"AND predicted_at <= '{tickkit.NOW.isoformat()}' ORDER BY predicted_at, request_id"
    )


def fetch_adbc(url: str, sql: str) -> int:
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return int(cur.fetch_arrow_table().num_rows)


def fetch_psycopg(url: str, sql: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)  # type: ignore[arg-type]
        return len(cur.fetchall())


def fetch_sqlalchemy_rows(url: str, sql: str) -> int:
    import sqlalchemy as sa

    from monitor.ingest.columnar import fetch_rows
    from monitor.store.db import make_engine

    engine = make_engine(url)
    try:
        return len(fetch_rows(engine, sa.text(sql)))
    finally:
        engine.dispose()


def timed(fn: Callable[[str, str], int], url: str, sql: str, expected: int) -> float:
    t0 = time.perf_counter()
    n = fn(url, sql)
    elapsed = time.perf_counter() - t0
    if n != expected:
        raise RuntimeError(f"fetched {n} rows, expected {expected}")
    return elapsed


def run(rows: int, counts: list[int], repeats: int, hours: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="vigil-pg-read-") as tmp:
        for k in counts:
            prepared = tickkit.prepare(
                Path(tmp) / f"f{k}",
                k,
                timedelta(hours=hours),
                rows,
                hours - 1,
                postgres=f"vigil_bench_read_{k}",
            )
            url = prepared.source_url
            assert url is not None
            try:
                sql = same_rows_sql(k)
                tickkit.measure_tick(prepared)  # warm the server's cache and imports
                samples: dict[str, list[Any]] = {"tick": [], "adbc": [], "psycopg": [], "rows": []}
                for _ in range(repeats):
                    samples["tick"].append(tickkit.measure_tick(prepared))
                    samples["adbc"].append(timed(fetch_adbc, url, sql, rows))
                    samples["psycopg"].append(timed(fetch_psycopg, url, sql, rows))
                    samples["rows"].append(timed(fetch_sqlalchemy_rows, url, sql, rows))
            finally:
                tickkit.drop_pg_source(url)
            ticks = samples["tick"]
            entry: dict[str, Any] = {
                "tick_s": median([t["tick_s"] for t in ticks]),
                "tick_s_all": [t["tick_s"] for t in ticks],
                "phases_s": {
                    p: median([t["phases_s"][p] for t in ticks]) for p in ticks[0]["phases_s"]
                },
                "vigil_source": sorted({t["vigil_source"] for t in ticks}),
            }
            for key in ("adbc", "psycopg", "rows"):
                entry[f"{key}_s"] = median(samples[key])
                entry[f"{key}_s_all"] = samples[key]
            entry["tick_over_adbc"] = entry["tick_s"] / entry["adbc_s"]
            entry["tick_over_psycopg"] = entry["tick_s"] / entry["psycopg_s"]
            phases = entry["phases_s"]
            entry["dominant_phase"] = max(
                ("read_source", "summarize", "commit", "evaluate"), key=lambda p: phases[p]
            )
            out[str(k)] = entry
            print(
                f"{k} features: tick {entry['tick_s']:.3f} s, adbc {entry['adbc_s']:.3f} s, "
                f"psycopg {entry['psycopg_s']:.3f} s",
                file=sys.stderr,
            )
    return out


def report(results: dict[str, Any], rows: int) -> str:
    lines = []
    for k, e in results.items():
        ph = e["phases_s"]
        lines.append(
            [
                f"{rows:,}",
                k,
                fmt(e["tick_s"]),
                fmt(ph["read_source"]),
                fmt(ph["summarize"]),
                fmt(ph["evaluate"]),
                fmt(e["adbc_s"]),
                fmt(e["psycopg_s"]),
                fmt(e["rows_s"]),
                f"{e['tick_over_adbc']:.2f}×",
                f"{e['tick_over_psycopg']:.2f}×",
                e["dominant_phase"],
            ]
        )
    return table(
        [
            "new rows",
            "features",
            "tick (s)",
            "read (s)",
            "summarize (s)",
            "evaluate (s)",
            "ADBC fetch (s)",
            "psycopg fetchall (s)",
            "SQLAlchemy rows (s)",
            "tick ÷ ADBC",
            "tick ÷ psycopg",
            "largest phase",
        ],
        lines,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--window-hours", type=int, default=24)
    parser.add_argument("--out", default="pg_read.json")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    machine = machine_info()
    started = time.time()
    results = run(args.rows, sorted(args.features), args.repeats, args.window_hours)
    print(report(results, args.rows))
    machine["loadavg_end"] = list(os.getloadavg())
    path = write_json(
        args.out,
        {
            "benchmark": "pg_read",
            "args": vars(args),
            "machine": machine,
            "elapsed_s": time.time() - started,
            "results": results,
        },
    )
    print(f"results written to {path.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
