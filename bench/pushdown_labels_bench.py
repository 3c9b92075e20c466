"""Label push-down against pull on the same labels: bytes returned and time, one process.

The DuckDB or PostgreSQL source of `pushdown_bench.py` (N predictions, 20 features, score, decision, one
segment, 24 hourly buckets) gets a labels table with one label per prediction, two hours
late. One tick's label read (every label since an empty watermark) is then done both ways:

- `pull`: the source's chunked label reader (labels joined to their predictions' score,
  decision, segment and 20 features) and the local fold (`summarize_labels`), per chunk;
- `pushdown`: one aggregate query; only per-bucket label summaries come back.

Bytes returned as in `pushdown_bench.py`: the pulled columns as received (8 bytes per number or
time, the text's length per string); the push-down result printed as text (an over-estimate).

    .venv/bin/python bench/pushdown_labels_bench.py --rows 1000000 [--engine postgresql]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT
from pushdown_bench import NOW, _frame_bytes, _select_list, config, make_duckdb

sys.path.insert(0, str(ROOT))


def _with_labels(url: str) -> Any:
    """The bench's push-down config with a `labels:` block."""
    cfg = config(url, "predictions", None)
    model = cfg.models["m"]
    from monitor.config.models import LabelsSpec

    labels = LabelsSpec(table="labels", id="request_id", timestamp="labeled_at", label="is_fraud")
    return model.model_copy(update={"labels": labels})


def _make(engine_name: str, n: int, folder: Path) -> str:
    """The predictions of `pushdown_bench.py` and one label per prediction, two hours late."""
    import sqlalchemy as sa

    if engine_name == "duckdb":
        import duckdb

        url = make_duckdb(folder, n)
        with duckdb.connect(url.removeprefix("duckdb:///")) as db:
            db.execute(
                "CREATE TABLE labels AS SELECT request_id, predicted_at + INTERVAL 2 HOUR AS "
                "labeled_at, CAST(random() < 0.1 AS INTEGER) AS is_fraud FROM predictions"
            )
        return url
    import tickkit

    url = tickkit.fresh_pg_database(f"vigil_bench_push_labels_{n}")  # its own: not the
    engine = sa.create_engine(url.replace("postgresql:", "postgresql+psycopg:"))  # other bench's
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"CREATE TABLE predictions AS SELECT {_select_list('postgresql', n)} "
                f"FROM generate_series(CAST(0 AS BIGINT), {n - 1}) AS g"
            )
        )
        conn.execute(sa.text("ANALYZE predictions"))
        conn.execute(
            sa.text(
                "CREATE TABLE labels AS SELECT request_id, predicted_at + interval '2 hours' AS "
                "labeled_at, CAST(random() < 0.1 AS INTEGER) AS is_fraud FROM predictions"
            )
        )
        conn.execute(sa.text("CREATE INDEX ON labels (labeled_at, request_id)"))
        conn.execute(sa.text("CREATE INDEX ON predictions (request_id)"))
        conn.execute(sa.text("ANALYZE labels"))
    engine.dispose()
    return url


def run(engine_name: str, n: int, folder: Path) -> dict[str, float]:
    from monitor.core.summaries import BucketSummary
    from monitor.engine.label_rows import take
    from monitor.ingest.fit import fit_reference
    from monitor.ingest.pushdown_label_source import label_summaries_since
    from monitor.ingest.pushdown_source import PushdownSqlSource
    from monitor.ingest.summarize import summarize_labels
    from monitor.store.db import make_engine

    url = _make(engine_name, n, folder)
    model = _with_labels(url)
    engine = make_engine(url)
    source = PushdownSqlSource(engine, model)
    frame = source.reference_frame(limit=100_000)
    names = model.predictions.features
    reference = fit_reference(
        frame, names, model.predictions.categorical, "bench", pooled_segments=("channel",)
    )
    until = NOW + timedelta(days=1)
    pulled_bytes = 0
    fetch = source._fetch

    def counting(stmt: Any) -> Any:
        nonlocal pulled_bytes
        got = fetch(stmt)
        pulled_bytes += _frame_bytes(got)
        return got

    source._fetch = counting  # type: ignore[method-assign]
    started = time.perf_counter()
    local: dict[Any, BucketSummary] = {}
    for batch, _ in source.labels_since(None, until):
        assert batch.matched is not None
        waiting = batch.ids.notna().to_numpy() & ~batch.matched.to_numpy(dtype=bool)
        for start, summary in summarize_labels(
            take(batch, ~waiting),
            model.task,
            model.threshold,
            model.bucket,
            until,
            reference.segment_values,
            reference,
        ).items():
            local.setdefault(start, BucketSummary()).merge_into(summary)
    pull_s = time.perf_counter() - started
    started = time.perf_counter()
    pushed = label_summaries_since(source, None, until, reference, until)
    push_s = time.perf_counter() - started
    assert pushed is not None and pushed.read == n
    assert sum(s.n_labelled for s in pushed.buckets.values()) == n
    assert sum(s.n_labelled for s in local.values()) == n
    engine.dispose()
    return {
        "rows": n,
        "pull_s": pull_s,
        "push_s": push_s,
        "pull_bytes": pulled_bytes,
        "push_bytes": pushed.result_bytes,
        "push_rows": pushed.result_rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=["duckdb", "postgresql"], default="duckdb")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        load = os.getloadavg()
        out = run(args.engine, args.rows, Path(tmp))
    print(
        f"{args.engine} labels, {out['rows']:,} rows (load {load[0]:.1f}): "
        f"pull {out['pull_s']:.1f} s, {out['pull_bytes'] / 1e6:.1f} MB; "
        f"push-down {out['push_s']:.1f} s, {out['push_bytes'] / 1e3:.1f} kB "
        f"({out['push_rows']} result rows); "
        f"{out['pull_bytes'] / max(out['push_bytes'], 1):.0f}x fewer bytes, "
        f"{out['pull_s'] / max(out['push_s'], 1e-9):.1f}x faster"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
