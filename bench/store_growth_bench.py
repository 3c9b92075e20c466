"""Store size over a simulated year of one model at 1h buckets with 30 SLO series, with and
without retention: does growth stop?

Running a year of whole ticks would take hours, so this writes what hourly ticks write
straight through the store API with a simulated clock, a simulated day per transaction: per
hour the bucket summaries (predictions: 20 numeric and 5 categorical features, the score
histogram; labels: confusion counts, per-class score histograms, label lags) stored by
`upsert_buckets`, and one SLO evaluation and one metric point per series. With retention,
the daemon's own job (`monitor.engine.retention.run_retention`, computed lengths,
`buckets_for` as given) runs once per simulated day (the daemon runs it hourly; the end
state of a day is the same, the batches are larger). Sizes are the engine's own (SQLite `dbstat`,
PostgreSQL `pg_total_relation_size`, via `monitor.store.stats`), at months 1, 3, 6, 9 and 12.

    nice -n 19 .venv/bin/python bench/store_growth_bench.py               # SQLite, a year
    nice -n 19 .venv/bin/python bench/store_growth_bench.py --store postgresql --days 120
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ROOT, machine_info, table, write_json

sys.path.insert(0, str(ROOT))
import numpy as np
import sqlalchemy as sa
import yaml
from sqlalchemy import insert

from monitor.config import parse_config
from monitor.core.summaries import BucketSummary
from monitor.engine.retention import run_retention
from monitor.engine.runtime import open_runtime
from monitor.store.state import upsert_buckets
from monitor.store.stats import model_sizes, table_sizes
from monitor.store.tables import MetricPoint, SLOEvaluation

PG_ADMIN = os.environ.get(
    "VIGIL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
START = datetime(2026, 1, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)
SERIES = 30
CHECKPOINTS = (30, 91, 182, 274, 365)


def config(store: str, retention: dict[str, Any] | None) -> Any:
    slos = [
        {"name": f"slo-{i}", "metric": "accuracy", "window": "24h", "objective": ">= 0.9"}
        for i in range(SERIES - 1)
    ]
    slos.append({"name": "volume", "metric": "volume.ratio", "window": "1h", "objective": "> 0.5"})
    data = {
        "store": store,
        "sources": {"src": {"url": "sqlite:///unused.db"}},
        "models": {
            "m": {
                "source": "src",
                "task": "binary_classification",
                "schedule": "1h",
                "predictions": {"table": "p", "id": "id", "timestamp": "ts", "score": "s"},
                "labels": {"table": "l", "id": "id", "timestamp": "ts", "label": "y"},
                "reference": {"table": "r"},
                "slos": slos,
            }
        },
        "retention": retention or {"enabled": False},
    }
    return parse_config(yaml.safe_dump(data), "bench.yaml", {})


def hour_summaries(rng: np.random.Generator) -> dict[str, BucketSummary]:
    n = int(rng.integers(800, 1200))
    numeric = {f"f{i}": [int(x) for x in rng.multinomial(n, [0.1] * 10)] for i in range(20)}
    predictions = BucketSummary(
        n=n,
        score_hist=[int(x) for x in rng.multinomial(n, [0.01] * 100)],
        numeric=numeric,
        numeric_sums={k: [float(c) * 1.5 for c in v] for k, v in numeric.items()},
        numeric_stats={k: [n, n * 3.0, n * 11.0, 0.1, 9.9] for k in numeric},
        categorical={f"c{i}": {f"v{j}": n // 5 for j in range(5)} for i in range(5)},
    )
    k = n // 10
    labels = BucketSummary(
        n_labelled=k,
        confusion={"tp": k // 10, "fp": k // 20, "fn": k // 20, "tn": k - k // 5},
        class_score_hist={c: [int(x) for x in rng.multinomial(k, [0.01] * 100)] for c in "01"},
        lag_hist=[int(x) for x in rng.multinomial(k, [0.05] * 20)],
    )
    return {"predictions": predictions, "labels": labels}


def write_day(session: Any, day_start: datetime, rng: np.random.Generator) -> None:
    """What a day of hourly ticks writes: per hour the past hour's two bucket rows, and per
    series one evaluation and one metric point (batched per day: fewer round trips, the same
    rows)."""
    hours = [day_start + h * HOUR for h in range(24)]
    by_part: dict[str, dict[datetime, BucketSummary]] = {"predictions": {}, "labels": {}}
    for now in hours:
        for part, summary in hour_summaries(rng).items():
            by_part[part][now - HOUR] = summary
    for part, buckets in by_part.items():
        upsert_buckets(session, "m", buckets, hours[-1], part=part)
    evaluations = [
        {
            "model": "m",
            "slo_id": f"slo-{i}",
            "feature": "",
            "at": now,
            "status": "ok",
            "value": 0.95,
            "n": 1000,
            "rule": "interval",
        }
        for now in hours
        for i in range(SERIES)
    ]
    points = [
        {
            "model": "m",
            "metric": "accuracy",
            "feature": "",
            "window": "24h",
            "at": now,
            "value": 0.95,
            "n": 1000,
        }
        for now in hours
        for _ in range(SERIES)
    ]
    session.execute(insert(SLOEvaluation), evaluations)
    session.execute(insert(MetricPoint), points)


def simulate(url: str, days: int, retention: dict[str, Any] | None) -> dict[str, Any]:
    rt = open_runtime(config(url, retention), Path(tempfile.gettempdir()))
    rng = np.random.default_rng(3)
    sizes: list[dict[str, Any]] = []
    started = time.perf_counter()
    retention_s = 0.0
    for day_index in range(days):
        with rt.sessions.begin() as session:  # a simulated day of ticks per transaction
            write_day(session, START + day_index * 24 * HOUR, rng)
        now = START + (day_index + 1) * 24 * HOUR - HOUR
        if retention is not None:  # the daemon runs it hourly; daily here, same end state
            t0 = time.perf_counter()
            run_retention(rt, now)
            retention_s += time.perf_counter() - t0
        day = day_index + 1
        if day in CHECKPOINTS or day == days:
            tables, method = table_sizes(rt.store)
            (model,) = model_sizes(rt.store, tables)
            grown = {t.table: t.bytes for t in tables if t.table in TABLES}
            sizes.append(
                {
                    "day": day,
                    "bytes_from": method,
                    "bytes": sum(v or 0 for v in grown.values()),
                    "tables": grown,
                    "rows": {t.table: t.rows for t in tables if t.table in TABLES},
                    "hourly_buckets": model.fine_buckets,
                    "daily_buckets": model.daily_buckets,
                    "file_bytes": _file_size(url),
                }
            )
            print(f"  day {day:>5.0f}: {sizes[-1]['bytes'] / 2**20:7.1f} MiB", flush=True)
    rt.close()
    return {
        "retention": retention,
        "days": days,
        "elapsed_s": time.perf_counter() - started,
        "retention_s": retention_s,
        "sizes": sizes,
    }


TABLES = ("bucket_summaries", "slo_evaluations", "metric_points")


def _file_size(url: str) -> int | None:
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url.removeprefix("sqlite:///"))
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def with_store(kind: str, run: Any) -> Any:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="vigil-growth-") as tmp:
            return run(f"sqlite:///{tmp}/store.db")
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"vigil_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        return run(sa.make_url(PG_ADMIN).set(database=name).render_as_string(False))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--buckets-for", default="90d")
    parser.add_argument(
        "--only", choices=["with", "without"], help="one side (the other's JSON is read back)"
    )
    args = parser.parse_args()
    settings: dict[str, Any] = {"buckets_for": args.buckets_for}
    name = f"store_growth_{args.store}.json"
    results = {}
    sides = (("without", None), ("with", settings))
    for label, retention in sides:
        if args.only is not None and label != args.only:
            continue
        print(f"{label} retention, {args.days} simulated days on {args.store}", flush=True)
        results[label] = with_store(
            args.store, lambda url, r=retention: simulate(url, args.days, r)
        )
    if args.only is not None:
        write_json(f"store_growth_{args.store}_{args.only}.json", results[args.only])
        other = (
            RESULTS
            / f"store_growth_{args.store}_{'with' if args.only == 'without' else 'without'}.json"
        )
        if not other.exists():
            return 0
        results["with" if args.only == "without" else "without"] = json.loads(other.read_text())
    rows = []
    for a, b in zip(results["without"]["sizes"], results["with"]["sizes"], strict=True):
        rows.append(
            [
                f"{a['day']:.0f}",
                f"{a['bytes'] / 2**20:.1f}",
                f"{b['bytes'] / 2**20:.1f}",
                f"{b['bytes'] / a['bytes']:.2f}",
                b["hourly_buckets"],
                b["daily_buckets"],
            ]
        )
    print(table(["day", "MiB without", "MiB with", "with/without", "hourly", "daily"], rows))
    path = write_json(name, {"machine": machine_info(), "args": vars(args), **results})
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
