"""Push-down against pull on the same rows: bytes returned, Vigil's peak RSS, time.

A source with N predictions (20 features: 15 numeric, 5 categorical; score, decision, one
segment) spread over 24 hourly buckets is generated inside the engine itself (PostgreSQL:
generate_series; DuckDB: range; Spark: Parquet written from DuckDB). One tick's worth of
reading — every row since an empty watermark — is then done twice, each in a fresh child
process so that its peak RSS is its own:

- `pull`: the source's chunked reader (ADBC Arrow for PostgreSQL, SQLAlchemy rows for DuckDB)
  and the local fold (`summarize_predictions`), merged per bucket;
- `pushdown`: one aggregate query; only per-bucket summaries come back.

Bytes returned: for pull, the columns as received (8 bytes per number or time, the text's
length per string); for push-down, the result rows printed as text (an over-estimate).

    .venv/bin/python bench/pushdown_bench.py                           # 1M and 10M, pg + duckdb
    .venv/bin/python bench/pushdown_bench.py --rows 1000000 --engines spark
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
from _common import (
    ROOT,
    child_result,
    fmt,
    machine_info,
    parse_child,
    reset_peak,
    rss_now,
    rss_peak_since_reset,
    write_json,
)

sys.path.insert(0, str(ROOT))

K = 20
START = datetime(2026, 3, 8, tzinfo=UTC)
NOW = START + timedelta(days=1, minutes=5)


def _select_list(dialect: str, n: int) -> str:
    """Row g (0..n-1) as SQL expressions: times spread over 24 h, 20 features."""
    rnd = "random()"
    span = 86_400_000_000 // n  # microseconds between rows
    if dialect == "postgresql":
        ts = f"timestamptz '2026-03-08 00:00:00+00' + (g * {span}) * interval '1 microsecond'"
    else:
        ts = f"TIMESTAMP '2026-03-08 00:00:00' + to_microseconds(g * {span})"
    cols = [
        "g AS request_id",
        f"{ts} AS predicted_at",
        f"{rnd} AS score",
        f"CAST({rnd} > 0.6 AS INTEGER) AS decision",
        f"CASE WHEN {rnd} < 0.5 THEN 'web' ELSE 'app' END AS channel",
    ]
    for i in range(K):
        if i % 4 == 3:
            cols.append(f"'c' || CAST(floor({rnd} * {(3, 10, 50)[i % 3]}) AS INTEGER) AS f{i:03d}")
        else:
            cols.append(f"({rnd} - 0.5) * {i + 1} AS f{i:03d}")
    return ", ".join(cols)


def make_pg(n: int) -> str:
    import sqlalchemy as sa
    import tickkit  # here, not at the top: the measured child processes must not load it

    url = tickkit.fresh_pg_database(f"vigil_bench_push_{n}")
    engine = sa.create_engine(url.replace("postgresql:", "postgresql+psycopg:"))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"CREATE TABLE predictions AS SELECT {_select_list('postgresql', n)} "
                f"FROM generate_series(CAST(0 AS BIGINT), {n - 1}) AS g"
            )
        )
        conn.execute(sa.text("CREATE INDEX ON predictions (predicted_at, request_id)"))
        conn.execute(sa.text("ANALYZE predictions"))
    engine.dispose()
    return url


def make_duckdb(folder: Path, n: int) -> str:
    import duckdb

    path = folder / f"source_{n}.duckdb"
    with duckdb.connect(str(path)) as db:
        db.execute("SELECT setseed(0.5)")
        db.execute(
            f"CREATE TABLE predictions AS SELECT {_select_list('duckdb', n)} "
            f"FROM range({n}) AS t(g)"
        )
    return f"duckdb:///{path}"


def make_parquet(folder: Path, n: int) -> str:
    import duckdb

    path = folder / f"predictions_{n}.parquet"
    with duckdb.connect() as db:
        db.execute(
            f"COPY (SELECT {_select_list('duckdb', n)} FROM range({n}) AS t(g)) "
            f"TO '{path}' (FORMAT parquet)"
        )
    return str(path)


def config(url: str, table: str | None, query: str | None) -> Any:
    import yaml

    from monitor.config import parse_config

    names = [f"f{i:03d}" for i in range(K)]
    where = {"table": table} if table else {"query": query}
    model = {
        "source": "src",
        "task": "binary_classification",
        "bucket": "1h",
        "compute": "pushdown",
        "predictions": {
            **where,
            "id": "request_id",
            "timestamp": "predicted_at",
            "score": "score",
            "prediction": "decision",
            "features": names,
            "categorical": [n for i, n in enumerate(names) if i % 4 == 3],
            "segments": ["channel"],
        },
        "reference": where,
    }
    data = {
        "store": "sqlite://",
        "sources": {"src": {"url": url}},
        "models": {"m": model},
        "routing": {"default": ["chat"]},
        "receivers": {"chat": {"slack": {"channel": "#c"}}},
    }
    return parse_config(yaml.safe_dump(data), "bench.yaml", {})


def _frame_bytes(frame: Any) -> int:
    import pandas as pd

    total = 0
    for col in frame.columns:
        values = frame[col]
        if pd.api.types.is_object_dtype(values):
            total += int(values.dropna().astype(str).str.len().sum())
        else:
            total += 8 * len(values)
    return total


def child(args: argparse.Namespace) -> None:
    """One mode, in this process: read every row once, report time, bytes and peak RSS."""
    from monitor.core.summaries import BucketSummary
    from monitor.engine.runtime import Runtime
    from monitor.ingest.fit import fit_reference
    from monitor.ingest.registry import SOURCES, kind_of
    from monitor.ingest.summarize import summarize_predictions

    cfg = config(args.url, args.table, args.query)
    model = cfg.models["m"]
    source_cfg = cfg.sources["src"]
    kind = SOURCES[kind_of(args.url)]
    handle = kind.connect(args.url, source_cfg)
    source = kind.build(handle, model, source_cfg.chunk_size)
    sample = source.reference_frame(limit=20_000)
    preds = model.predictions
    reference = fit_reference(
        sample, preds.features, preds.categorical, "bench", model.task, ("channel",)
    )
    _ = Runtime  # the same objects a tick uses, without a store
    # VmHWM of this process (ru_maxrss would carry the parent's mark across fork and exec);
    # reset after the reference is read, so the peak is the read's own.
    reset_peak()
    base_rss = rss_now()
    t0 = time.perf_counter()
    buckets: dict[datetime, BucketSummary] = {}
    rows = sent = 0
    if args.child == "pull":
        original = type(source)._fetch

        def counting(self: Any, stmt: Any) -> Any:
            nonlocal sent
            frame = original(self, stmt)
            sent += _frame_bytes(frame)
            return frame

        type(source)._fetch = counting  # type: ignore[method-assign]
        for batch, _ in source.predictions_since(None, NOW):
            rows += len(batch)
            folded = summarize_predictions(
                batch, reference, model.task, model.threshold, model.bucket, NOW
            )
            for start, s in folded.items():
                buckets.setdefault(start, BucketSummary()).merge_into(s)
    else:
        for result in source.summaries_since(None, NOW, reference):
            rows += result.rows
            sent += result.result_bytes
            buckets.update(result.buckets)
    elapsed = time.perf_counter() - t0
    child_result(
        {
            "seconds": elapsed,
            "rows": rows,
            "bytes": sent,
            "buckets": len(buckets),
            "n_total": sum(b.n for b in buckets.values()),
            "peak_rss": rss_peak_since_reset(),
            "rss_before_read": base_rss,
        }
    )


def _rss(result: dict[str, Any]) -> str:
    peak, before = result["peak_rss"] / 2**20, result["rss_before_read"] / 2**20
    return f"{peak:.0f} (+{peak - before:.0f})"


def run_child(mode: str, url: str, table: str | None, query: str | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", mode, "--url", url]
    cmd += ["--table", table] if table else ["--query", query or ""]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    result = parse_child(proc.stdout)
    if result is None:
        raise RuntimeError(f"{mode} child failed:\n{proc.stderr[-3000:]}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--engines", nargs="+", default=["postgresql", "duckdb"])
    parser.add_argument("--out", default="pushdown.json")
    parser.add_argument(
        "--pull-max-rows",
        type=int,
        default=10**12,
        help="skip the pull run above this many rows (it is linear in N and slow)",
    )
    parser.add_argument("--child", choices=["pull", "pushdown"])
    parser.add_argument("--url")
    parser.add_argument("--table")
    parser.add_argument("--query")
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    machine = machine_info()
    results: dict[str, Any] = {}
    lines = []
    with tempfile.TemporaryDirectory(prefix="vigil-pushdown-") as tmp:
        for engine in args.engines:
            for n in args.rows:
                t0 = time.perf_counter()
                name: str | None = "predictions"
                query = None
                if engine == "postgresql":
                    url = make_pg(n)
                elif engine == "duckdb":
                    url = make_duckdb(Path(tmp), n)
                else:
                    url, name = "spark:local[2]", None
                    query = f"SELECT * FROM parquet.`{make_parquet(Path(tmp), n)}`"
                setup = time.perf_counter() - t0
                try:
                    pull_too = engine != "spark" and n <= args.pull_max_rows
                    modes = ("pull", "pushdown") if pull_too else ("pushdown",)
                    entry = {m: run_child(m, url, name, query) for m in modes}
                finally:
                    if engine == "postgresql":
                        import tickkit

                        tickkit.drop_pg_source(url)
                entry["setup_s"] = setup
                results[f"{engine}/{n}"] = entry
                push = entry["pushdown"]
                pull = entry.get("pull")
                if pull and pull["n_total"] != push["n_total"]:
                    raise RuntimeError(
                        f"{engine} {n}: pull counted {pull['n_total']}, push-down {push['n_total']}"
                    )
                lines.append(
                    [
                        engine,
                        f"{n:,}",
                        fmt(pull["seconds"]) if pull else "–",
                        fmt(push["seconds"]),
                        f"{pull['bytes'] / 1e6:.1f}" if pull else "–",
                        f"{push['bytes'] / 1e3:.1f}",
                        f"{pull['bytes'] / push['bytes']:.0f}×" if pull else "–",
                        _rss(pull) if pull else "–",
                        _rss(push),
                    ]
                )
                print(json.dumps({f"{engine}/{n}": entry}, default=float), file=sys.stderr)
    print(
        _common.table(
            [
                "engine",
                "rows",
                "pull (s)",
                "push-down (s)",
                "pull MB returned",
                "push-down kB returned",
                "fewer bytes",
                "pull peak RSS (MiB, +during read)",
                "push-down peak RSS (MiB, +during read)",
            ],
            lines,
        )
    )
    machine["loadavg_end"] = list(os.getloadavg())
    write_json(
        args.out,
        {"benchmark": "pushdown", "args": vars(args), "machine": machine, "results": results},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
