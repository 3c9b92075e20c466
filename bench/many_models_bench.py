"""Many models, one daemon: 200 models x 20 features, 1,000 new rows each per 5-minute tick.

One `Daemon` (not started: its HTTP server and scheduler are not what is measured) runs its
own `run_tick` (lease, deadline, tick, health, blindness) for every model on a pool of
`server.workers` threads, exactly as its scheduler would, against a PostgreSQL store and a
PostgreSQL source. The clock is simulated: a round is one 5-minute period; before it, 1,000
new predictions per model are written to the source (COPY, not timed), then every model is
ticked once. A round that takes longer than 5 minutes of wall time would overrun the
schedule. Round 0 fits every model's reference and is reported apart (a first start).

Figures per model count: tick latency (median, p95, max over the measured rounds), round
wall time against the 300 s period, the daemon process's CPU seconds per round (user + system;
the PostgreSQL server's CPU is not in it), RSS at the end and its peak. The 20 vs 200 ratio is
the issue's target (<= 12x total CPU).

    nice -n 19 .venv/bin/python bench/many_models_bench.py                 # 20 and 200 models
    nice -n 19 .venv/bin/python bench/many_models_bench.py --models 20 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, fmt, machine_info, rss_now, ru_maxrss_bytes, table, write_json

sys.path.insert(0, str(ROOT))
import tickkit

PERIOD = timedelta(minutes=5)
T0 = datetime(2026, 3, 9, 0, 0, tzinfo=UTC)
PG = "postgresql://postgres@127.0.0.1:5432"


def fresh_database(name: str) -> str:
    import sqlalchemy as sa

    admin = sa.create_engine(tickkit.PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{PG}/{name}"


def make_source(url: str, models: int, k: int, seed: int) -> None:
    """One predictions table with a model column, one view per model, a shared reference."""
    import psycopg

    names, categorical = tickkit.feature_names(k)
    cats = set(categorical)
    cols = ", ".join(f'"{n}" {"text" if n in cats else "double precision"}' for n in names)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE predictions (model_id integer NOT NULL, request_id bigint NOT NULL, "
            f"predicted_at timestamptz NOT NULL, score double precision, decision integer, "
            f"{cols}, PRIMARY KEY (model_id, request_id))"
        )
        conn.execute("CREATE INDEX ix_pred ON predictions (model_id, predicted_at, request_id)")
        conn.execute(
            "CREATE TABLE reference_rows (score double precision, decision integer, "
            f"is_fraud integer, {cols})"
        )
        for i in range(models):
            conn.execute(f"CREATE VIEW p_{i:03d} AS SELECT * FROM predictions WHERE model_id = {i}")
    rng = np.random.default_rng(seed)
    tickkit._insert_pg(url, "reference_rows", tickkit._frame(rng, 5000, k))


def add_round(url: str, models: int, k: int, rows: int, start: datetime, seed: int) -> None:
    """`rows` predictions per model, spread over the period that ends at `start + PERIOD`."""
    import psycopg

    rng = np.random.default_rng(seed)
    names, _ = tickkit.feature_names(k)
    frames = []
    for i in range(models):
        frame = tickkit._frame(rng, rows, k).drop(columns=["is_fraud"])
        offsets = np.sort(rng.integers(0, int(PERIOD.total_seconds() * 10**6) - 10**6, rows))
        frame.insert(0, "predicted_at", pd.Timestamp(start) + pd.to_timedelta(offsets, "us"))
        frame.insert(0, "request_id", np.arange(rows, dtype=np.int64) + seed * rows)
        frame.insert(0, "model_id", i)
        frames.append(frame)
    data = pd.concat(frames, ignore_index=True)
    columns = ", ".join(f'"{c}"' for c in data.columns)
    records = data.astype(object).where(data.notna(), None).itertuples(index=False, name=None)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY predictions ({columns}) FROM STDIN") as copy:
            for row in records:
                copy.write_row(row)
        cur.execute("ANALYZE predictions")
    del names


def config_text(store: str, source: str, models: int, k: int, workers: int | None) -> str:
    names, categorical = tickkit.feature_names(k)

    def model(i: int) -> dict[str, Any]:
        return {
            "source": "src",
            "task": "binary_classification",
            "schedule": "5m",
            "bucket": "1h",
            "predictions": {
                "table": f"p_{i:03d}",
                "id": "request_id",
                "timestamp": "predicted_at",
                "score": "score",
                "prediction": "decision",
                "features": names,
                "categorical": categorical,
            },
            "reference": {"table": "reference_rows"},
            "slos": [
                {"metric": "drift.psi", "window": "24h", "objective": "< 0.2", "features": "all"},
                {"metric": "drift.share", "window": "24h", "objective": "< 0.3"},
                {
                    "metric": "dq.missing_rate",
                    "window": "24h",
                    "objective": "< 0.1",
                    "features": "all",
                },
                {"metric": "freshness.prediction_age", "window": "1h", "objective": "< 15m"},
            ],
        }

    data: dict[str, Any] = {
        "store": store,
        "sources": {"src": {"url": source, "chunk_size": 50_000}},
        "models": {f"model_{i:03d}": model(i) for i in range(models)},
        "routing": {"default": ["chat"]},
        "receivers": {"chat": {"slack": {"channel": "#ml-oncall", "outfile": "/dev/null"}}},
        "server": {"port": 0, **({"workers": workers} if workers else {})},
    }
    return yaml.safe_dump(data, sort_keys=False)


def failed_ticks(daemon: Any) -> float:
    """From the counter itself: `registry.get_sample_value` collects every collector, the
    store's included (a scan of every SLO state), once per call."""
    return sum(
        sample.value
        for metric in daemon.metrics.tick_failures.collect()
        for sample in metric.samples
        if sample.name == "vigil_tick_failures_total"
    )


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(models: int, k: int, rows: int, rounds: int, workers: int | None) -> dict[str, Any]:
    from monitor.config import parse_config
    from monitor.config.models import worker_count
    from monitor.core.clock import SimulatedClock
    from monitor.engine.runtime import open_runtime
    from monitor.service.daemon import Daemon

    store = fresh_database(f"vigil_bench_many_store_{models}")
    source = fresh_database(f"vigil_bench_many_src_{models}")
    make_source(source, models, k, seed=1)
    config = parse_config(config_text(store, source, models, k, workers), "bench.yaml", {})
    state = Path(os.environ.get("TMPDIR", "/tmp")) / f"vigil-many-{models}"
    state.mkdir(parents=True, exist_ok=True)
    rt = open_runtime(config, state)
    clock = SimulatedClock(T0)
    daemon = Daemon(rt, clock)
    pool_size = worker_count(config.server)
    names = list(config.models)
    per_round: list[dict[str, Any]] = []
    latencies: list[float] = []
    try:
        with ThreadPoolExecutor(pool_size, thread_name_prefix="tick") as pool:
            for r in range(rounds + 1):
                add_round(source, models, k, rows, T0 + r * PERIOD, seed=r + 2)
                clock.set(T0 + (r + 1) * PERIOD)

                def timed(name: str) -> float:
                    t0 = time.perf_counter()
                    daemon.run_tick(name)
                    return time.perf_counter() - t0

                cpu0, wall0 = cpu_seconds(), time.perf_counter()
                took = list(pool.map(timed, names))
                wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
                failures = failed_ticks(daemon)
                per_round.append(
                    {
                        "round": r,
                        "wall_s": wall,
                        "cpu_s": cpu,
                        "p95_s": float(np.percentile(took, 95)),
                        "failures_so_far": failures,
                    }
                )
                if r > 0 or rounds == 0:  # `--rounds 0`: the first start alone
                    latencies += took
                print(
                    f"  {models} models, round {r}: wall {wall:.1f} s, cpu {cpu:.1f} s, "
                    f"p95 tick {np.percentile(took, 95):.2f} s, failures {failures:.0f}",
                    flush=True,
                )
    finally:
        daemon.close()
        rt.close()
    measured = per_round[1:] or per_round
    return {
        "models": models,
        "features": k,
        "rows_per_model_per_tick": rows,
        "workers": pool_size,
        "first_round": per_round[0],
        "rounds": measured,
        "tick_median_s": float(np.median(latencies)),
        "tick_p95_s": float(np.percentile(latencies, 95)),
        "tick_max_s": float(np.max(latencies)),
        "round_wall_max_s": max(x["wall_s"] for x in measured),
        "cpu_per_round_s": float(np.mean([x["cpu_s"] for x in measured])),
        "overrun": any(x["wall_s"] > PERIOD.total_seconds() for x in measured),
        "failures": per_round[-1]["failures_so_far"],
        "rss_end_mib": rss_now() / 2**20,
        "rss_peak_mib": ru_maxrss_bytes() / 2**20,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import structlog

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(40)
    )  # ticks log per model: keep the warnings and errors only
    machine = machine_info()
    results = [run(n, args.features, args.rows, args.rounds, args.workers) for n in args.models]
    machine["loadavg_end"] = list(os.getloadavg())
    rows = [
        [
            r["models"],
            r["workers"],
            fmt(r["first_round"]["wall_s"]),
            fmt(r["tick_median_s"]),
            fmt(r["tick_p95_s"]),
            fmt(r["tick_max_s"]),
            fmt(r["round_wall_max_s"]),
            "yes" if r["overrun"] else "no",
            fmt(r["cpu_per_round_s"]),
            fmt(r["rss_peak_mib"]),
            int(r["failures"]),
        ]
        for r in results
    ]
    print(
        table(
            [
                "models",
                "workers",
                "first round s",
                "tick median s",
                "tick p95 s",
                "tick max s",
                "round wall max s (of 300)",
                "overrun",
                "CPU s/round",
                "peak RSS MiB",
                "failed ticks",
            ],
            rows,
        )
    )
    if len(results) >= 2:
        small, large = results[0], results[-1]
        ratio = large["cpu_per_round_s"] / small["cpu_per_round_s"]
        print(
            f"CPU {large['models']} vs {small['models']} models: {ratio:.1f}x "
            f"(models x{large['models'] / small['models']:.0f}; target <= 12x)"
        )
    print(f"load average at the end: {machine['loadavg_end']}")
    path = write_json("many_models.json", {"machine": machine, "results": results})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
