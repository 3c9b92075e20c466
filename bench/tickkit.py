"""A whole Vigil tick on SQLite, prepared once and measured on fresh copies.

`prepare` builds, in a folder: a source database (predictions, labels, reference rows) with
`new_rows` predictions in the current hour, a store migrated to the current schema with the
reference fitted, `prefill_hours` hourly buckets already stored (prediction and label parts,
as a daemon that has been running for that long would have them) and the watermarks just
after them. `measure_tick` copies that folder, opens a runtime on the copy and times one
`monitor.engine.tick.tick`: it reads exactly the new rows, folds them, commits them, loads the
SLO windows' buckets, merges them, runs the detectors, judges the SLOs and records incidents.

Phases are timed by wrapping the functions `tick` calls (a few microseconds of overhead).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

NOW = datetime(2026, 3, 9, 12, 59, tzinfo=UTC)
HOUR = timedelta(hours=1)
TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
"""How SQLAlchemy's SQLite DateTime stores times: the keyset compares text with text."""


def feature_names(k: int) -> tuple[list[str], list[str]]:
    """k features, every fourth categorical (20 -> 15 numeric + 5 categorical)."""
    names = [f"f{i:03d}" for i in range(k)]
    return names, [n for i, n in enumerate(names) if i % 4 == 3]


def _features(rng: np.random.Generator, n: int, k: int, drift: float = 0.0) -> dict[str, Any]:
    names, categorical = feature_names(k)
    cats = set(categorical)
    out: dict[str, Any] = {}
    for i, name in enumerate(names):
        if name in cats:
            size = (3, 10, 50)[i % 3]
            p = 1.0 / np.arange(1, size + 1)
            table = np.array([f"c{j}" for j in range(size)], dtype=object)
            out[name] = table[rng.choice(size, n, p=p / p.sum())]
            continue
        kind = i % 6
        if kind == 0:
            v = rng.normal(drift, 1, n)
        elif kind == 1:
            v = rng.lognormal(0, 1, n)
        elif kind == 2:
            v = rng.exponential(2, n)
        elif kind == 3:
            v = rng.uniform(-5, 5, n)
        elif kind == 4:
            v = rng.gamma(2, 3, n)
        else:
            v = rng.standard_t(3, n)
        if i % 10 == 5:
            v[rng.random(n) < 0.01] = np.nan
        out[name] = v
    return out


def _scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(n) < 0.2).astype(np.int64)
    score = np.clip(rng.beta(2, 5, n) + 0.35 * y, 0, 1)
    return score, y


@dataclass
class Prepared:
    folder: Path
    features: int
    window: timedelta
    new_rows: int
    prefill_hours: int
    setup_s: float
    source_url: str | None = None
    """None: the SQLite file in `folder`; else a PostgreSQL database made by `prepare`."""


def config_dict(
    folder: Path, k: int, window: timedelta, source_url: str | None = None
) -> dict[str, Any]:
    names, categorical = feature_names(k)
    hours = int(window / HOUR)
    w = f"{hours}h"

    def slo(metric: str, objective: str, **extra: Any) -> dict[str, Any]:
        return {"metric": metric, "window": w, "objective": objective, **extra}

    return {
        "store": f"sqlite:///{folder / 'store.db'}",
        "sources": {"src": {"url": source_url or f"sqlite:///{folder / 'source.db'}"}},
        "models": {
            "m": {
                "source": "src",
                "task": "binary_classification",
                "schedule": "5m",
                "bucket": "1h",
                "predictions": {
                    "table": "predictions",
                    "id": "request_id",
                    "timestamp": "predicted_at",
                    "score": "score",
                    "prediction": "decision",
                    "features": names,
                    "categorical": categorical,
                },
                "labels": {
                    "table": "labels",
                    "id": "request_id",
                    "timestamp": "labeled_at",
                    "label": "is_fraud",
                },
                "reference": {"table": "reference_rows"},
                "slos": [
                    slo("drift.psi", "< 0.2", features="all"),
                    slo("drift.share", "< 0.3"),
                    slo("dq.missing_rate", "< 0.1", features="all"),
                    slo("roc_auc", ">= 0.7"),
                    slo("accuracy", ">= 0.7"),
                    slo("estimated.roc_auc", ">= 0.7"),
                    slo("label_coverage", ">= 0.05"),
                    slo("freshness.prediction_age", "< 15m"),
                ],
            }
        },
        "routing": {"default": ["chat"]},
        "receivers": {"chat": {"slack": {"channel": "#ml-oncall", "outfile": "/dev/null"}}},
    }


def load_config(folder: Path, k: int, window: timedelta, source_url: str | None = None) -> Any:
    from monitor.config import parse_config

    text = yaml.safe_dump(config_dict(folder, k, window, source_url), sort_keys=False)
    return parse_config(text, str(folder / "vigil.yaml"), {})


def _create_source(path: Path, k: int) -> None:
    names, categorical = feature_names(k)
    cats = set(categorical)
    cols = ", ".join(f'"{n}" {"TEXT" if n in cats else "REAL"}' for n in names)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE predictions (request_id INTEGER PRIMARY KEY, predicted_at TEXT "
            f"NOT NULL, score REAL, decision INTEGER, {cols})"
        )
        db.execute("CREATE INDEX ix_pred_ts ON predictions (predicted_at)")
        db.execute(
            "CREATE TABLE labels (request_id INTEGER, labeled_at TEXT NOT NULL, is_fraud INTEGER)"
        )
        db.execute("CREATE INDEX ix_labels_ts ON labels (labeled_at)")
        db.execute(
            f"CREATE TABLE reference_rows (score REAL, decision INTEGER, is_fraud INTEGER, {cols})"
        )


PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def fresh_pg_database(name: str) -> str:
    """An empty PostgreSQL database `name` (dropped first if a run left it), as a URL."""
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def pg_source(name: str, k: int) -> str:
    """A fresh PostgreSQL database `name` with the source tables (timestamptz times)."""
    import sqlalchemy as sa

    url = fresh_pg_database(name)
    names, categorical = feature_names(k)
    cats = set(categorical)
    cols = ", ".join(f'"{n}" {"text" if n in cats else "double precision"}' for n in names)
    engine = sa.create_engine(url.replace("postgresql:", "postgresql+psycopg:"))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE predictions (request_id bigint PRIMARY KEY, predicted_at "
                f"timestamptz NOT NULL, score double precision, decision integer, {cols})"
            )
        )
        conn.execute(sa.text("CREATE INDEX ix_pred_ts ON predictions (predicted_at, request_id)"))
        conn.execute(
            sa.text(
                "CREATE TABLE labels (request_id bigint, labeled_at timestamptz NOT NULL, "
                "is_fraud integer)"
            )
        )
        conn.execute(sa.text("CREATE INDEX ix_labels_ts ON labels (labeled_at)"))
        conn.execute(
            sa.text(
                "CREATE TABLE reference_rows (score double precision, decision integer, "
                f"is_fraud integer, {cols})"
            )
        )
    engine.dispose()
    return url


def drop_pg_source(url: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def _insert_pg(url: str, table: str, frame: pd.DataFrame) -> None:
    """COPY, so a million rows load in seconds."""
    import psycopg

    columns = ", ".join(f'"{c}"' for c in frame.columns)
    rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(f"ANALYZE {table}")


def _insert(path: Path | str, table: str, frame: pd.DataFrame) -> None:
    if isinstance(path, str):
        _insert_pg(path, table, frame)
        return
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    marks = ", ".join("?" for _ in frame.columns)
    rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
    with sqlite3.connect(path) as db:
        db.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


def _frame(rng: np.random.Generator, n: int, k: int) -> pd.DataFrame:
    score, y = _scores(rng, n)
    frame = pd.DataFrame(_features(rng, n, k))
    frame.insert(0, "score", score)
    frame.insert(1, "decision", (score >= 0.5).astype(np.int64))
    frame.insert(2, "is_fraud", y)
    return frame


def prepare(
    folder: Path,
    k: int,
    window: timedelta,
    new_rows: int,
    prefill_hours: int,
    prefill_rows_per_hour: int = 1000,
    reference_rows: int = 20_000,
    seed: int = 11,
    postgres: str | None = None,
    new_labels: float = 0.0,
    slices: bool = True,
) -> Prepared:
    """`postgres`: the name of a PostgreSQL database to make the source in (else SQLite).
    `new_labels`: the share of the new rows whose label is in the source too (read by the
    tick). `slices=False` prepares the store as Vigil did before root-cause slices."""
    with root_cause_slices(slices):
        return _prepare(
            folder,
            k,
            window,
            new_rows,
            prefill_hours,
            prefill_rows_per_hour,
            reference_rows,
            seed,
            postgres,
            new_labels,
        )


@contextmanager
def root_cause_slices(enabled: bool) -> Iterator[None]:
    """With `enabled` False, Vigil as before root-cause slices: no per-slice label counts, no
    per-slice or per-segment score counts of the predictions, no features joined to the label
    read, no labelled reference bucket."""
    if enabled:
        yield
        return
    import monitor.engine.tick as tick_module
    import monitor.ingest.sources as sources
    import monitor.ingest.summarize as summarize
    import monitor.ingest.summarize_labels as summarize_labels

    saved = (summarize_labels.fold_slices, tick_module.quality_summary)
    saved_predictions = (summarize.fold_slice_scores, summarize._fold_segment_scores)
    real_context = sources.SqlSource._label_context

    def context(self: Any, preds: Any) -> list[Any]:
        return [c for c in real_context(self, preds) if not c.name.startswith("v_f")]

    summarize_labels.fold_slices = lambda *args, **kwargs: None  # type: ignore[assignment]
    summarize.fold_slice_scores = lambda *args, **kwargs: None  # type: ignore[assignment]
    summarize._fold_segment_scores = lambda *args, **kwargs: None  # type: ignore[assignment]
    tick_module.quality_summary = lambda *args, **kwargs: {}  # type: ignore[assignment]
    sources.SqlSource._label_context = context  # type: ignore[method-assign]
    try:
        yield
    finally:
        summarize_labels.fold_slices, tick_module.quality_summary = saved
        summarize.fold_slice_scores, summarize._fold_segment_scores = saved_predictions
        sources.SqlSource._label_context = real_context  # type: ignore[method-assign]


def _prepare(
    folder: Path,
    k: int,
    window: timedelta,
    new_rows: int,
    prefill_hours: int,
    prefill_rows_per_hour: int,
    reference_rows: int,
    seed: int,
    postgres: str | None,
    new_labels: float,
) -> Prepared:
    from monitor.core.watermark import Watermark
    from monitor.engine.runtime import open_runtime
    from monitor.engine.tick import ensure_reference
    from monitor.ingest.batches import LabelBatch, PredictionBatch
    from monitor.ingest.summarize import summarize_labels, summarize_predictions
    from monitor.store.state import set_watermark, upsert_buckets

    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    source_url = pg_source(postgres, k) if postgres else None
    source: Path | str = source_url or folder / "source.db"
    if source_url is None:
        _create_source(folder / "source.db", k)
    rng = np.random.default_rng(seed)
    _insert(source, "reference_rows", _frame(rng, reference_rows, k))

    config = load_config(folder, k, window, source_url)
    model = config.models["m"]
    hour_start = NOW.replace(minute=0, second=0, microsecond=0)
    rt = open_runtime(config, folder, migrate=True)
    try:
        reference = ensure_reference(rt, "m", NOW)
        last_id, last_ts = 0, hour_start - HOUR
        for h in range(prefill_hours, 0, -1):
            start = hour_start - h * HOUR
            n = prefill_rows_per_hour
            frame = _frame(rng, n, k)
            offsets = np.sort(rng.integers(0, 3600 * 10**6, n))
            ts = pd.Series(pd.to_datetime(start) + pd.to_timedelta(offsets, unit="us"))
            ids = pd.Series(np.arange(last_id + 1, last_id + 1 + n))
            names, _ = feature_names(k)
            batch = PredictionBatch(
                ids=ids,
                ts=ts,
                score=frame["score"],
                decision=frame["decision"],
                features=frame[names],
            )
            buckets = summarize_predictions(
                batch, reference, model.task, model.threshold, model.bucket, NOW
            )
            # About half of each hour's predictions already have their label, 0-6 h later.
            has_label = rng.random(n) < 0.5
            lag = pd.to_timedelta(rng.integers(0, 6 * 3600, n), unit="s")
            labelled_at = (ts + lag).where(ts + lag < NOW, NOW - timedelta(minutes=1))
            labels = LabelBatch(
                ids=ids[has_label],
                labeled_at=labelled_at[has_label],
                label=frame["is_fraud"][has_label],
                predicted_at=ts[has_label],
                score=frame["score"][has_label],
                decision=frame["decision"][has_label],
                features=frame[names][has_label],
            )
            label_buckets = summarize_labels(
                labels, model.task, model.threshold, model.bucket, NOW, None, reference
            )
            with rt.sessions.begin() as session:
                upsert_buckets(session, "m", buckets, NOW, part="predictions")
                upsert_buckets(session, "m", label_buckets, NOW, part="labels")
            last_id, last_ts = int(ids.iloc[-1]), ts.iloc[-1].to_pydatetime()
        mark_ts = last_ts.replace(tzinfo=UTC) if last_ts.tzinfo is None else last_ts
        raw = mark_ts.astimezone(UTC).replace(tzinfo=None).strftime(TS_FORMAT)
        with rt.sessions.begin() as session:
            keyset_text = None if source_url else raw  # PostgreSQL compares real times
            set_watermark(
                session, "m", "predictions", Watermark(mark_ts, last_id, keyset_text), NOW
            )
            # with labels among the new rows, the label stream resumes at the hour's start
            label_at = (
                hour_start - timedelta(minutes=1) if new_labels else NOW - timedelta(minutes=1)
            )
            label_mark = Watermark(label_at, 0, None)
            set_watermark(session, "m", "labels", label_mark, NOW)
    finally:
        rt.close()

    # The new rows: `new_rows` predictions during the current hour, after the watermark.
    frame = _frame(rng, new_rows, k)
    truth = frame.pop("is_fraud")
    offsets = np.sort(rng.integers(0, 55 * 60 * 10**6, new_rows))
    times = pd.to_datetime(hour_start.replace(tzinfo=None)) + pd.to_timedelta(offsets, unit="us")
    frame.insert(0, "request_id", np.arange(last_id + 1, last_id + 1 + new_rows))
    frame.insert(1, "predicted_at", times.strftime(TS_FORMAT))
    if source_url:
        frame["predicted_at"] = frame["predicted_at"] + "+00"
    _insert(source, "predictions", frame)
    if new_labels > 0:  # labelled a minute after the prediction (or just before NOW)
        chosen = rng.random(new_rows) < new_labels
        latest = pd.Timestamp(NOW.replace(tzinfo=None)) - timedelta(minutes=2)
        at = (times + timedelta(minutes=1)).where(times + timedelta(minutes=1) < latest, latest)
        labelled = pd.DataFrame(
            {
                "request_id": frame["request_id"][chosen],
                "labeled_at": pd.Series(at.strftime(TS_FORMAT))[chosen]
                + ("+00" if source_url else ""),
                "is_fraud": truth[chosen],
            }
        )
        _insert(source, "labels", labelled)
    return Prepared(
        folder, k, window, new_rows, prefill_hours, time.perf_counter() - started, source_url
    )


PHASES = (
    ("monitor.engine.tick", "ensure_reference", "reference"),
    ("monitor.engine.tick", "ingest", "ingest"),
    ("monitor.engine.reading", "summarize_predictions", "summarize"),
    ("monitor.engine.reading", "upsert_buckets", "commit"),
    ("monitor.engine.reading", "claim", "seen_ids"),
    ("monitor.engine.tick", "load_windows", "windows"),
    ("monitor.engine.tick", "compute_values", "values"),
    ("monitor.engine.tick", "judge_values", "judge"),
    ("monitor.engine.tick", "load_buckets", "load_buckets"),
    ("monitor.engine.tick", "build_window", "merge_window"),
    ("monitor.engine.tick", "run_detector", "detectors"),
)
"""(module, function, phase): `tick` and the reading stage look these names up at call time,
so wrapping the module attribute times every call. `seen_ids` is the duplicate-id store."""


@contextmanager
def phase_timers() -> Iterator[dict[str, float]]:
    """Accumulated seconds per phase of `tick`, by wrapping the functions it looks up."""
    import importlib

    totals: dict[str, float] = {label: 0.0 for _, _, label in PHASES}
    modules = {name: importlib.import_module(name) for name, _, _ in PHASES}
    originals = {(mod, fn): getattr(modules[mod], fn) for mod, fn, _ in PHASES}

    def wrap(fn: Any, label: str) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[label] += time.perf_counter() - t0

        return timed

    for mod, fn, label in PHASES:
        setattr(modules[mod], fn, wrap(originals[(mod, fn)], label))
    try:
        yield totals
    finally:
        for (mod, fn), original in originals.items():
            setattr(modules[mod], fn, original)


def measure_tick(prepared: Prepared, warm: bool = True, slices: bool = True) -> dict[str, Any]:
    """One tick on a fresh copy of the prepared folder (copying is not timed); `warm` first
    fills the bucket cache as the daemon's previous ticks would have. `slices=False`: as
    Vigil ticked before root-cause slices (`root_cause_slices`)."""
    with root_cause_slices(slices):
        return _measure_tick(prepared, warm)


def _measure_tick(prepared: Prepared, warm: bool) -> dict[str, Any]:
    from monitor.engine.runtime import open_runtime
    from monitor.engine.tick import tick

    with tempfile.TemporaryDirectory(prefix="vigil-tick-") as tmp:
        copy = Path(tmp) / "state"
        shutil.copytree(prepared.folder, copy)
        config = load_config(copy, prepared.features, prepared.window, prepared.source_url)
        rt = open_runtime(config, copy, migrate=False)
        if warm:
            # A running daemon has parsed its stored buckets at earlier ticks; the timed tick
            # then re-reads only what it changes (monitor.store.state.BucketCache).
            from monitor.store.state import load_buckets

            with rt.sessions() as session:
                load_buckets(
                    session,
                    "m",
                    NOW - timedelta(days=60),
                    NOW + timedelta(days=1),
                    cache=rt.bucket_cache,
                )
        try:
            with phase_timers() as phases:
                c0, t0 = time.process_time(), time.perf_counter()
                result = tick(rt, "m", NOW)
                elapsed = time.perf_counter() - t0
                cpu = time.process_time() - c0
        finally:
            rt.close()
    if result.predictions_read != prepared.new_rows:
        raise RuntimeError(
            f"tick read {result.predictions_read} rows, expected {prepared.new_rows}"
        )
    phases = dict(phases)
    phases["read_source"] = (
        phases["ingest"] - phases["summarize"] - phases["commit"] - phases["seen_ids"]
    )
    phases["evaluate"] = phases["windows"] + phases["values"] + phases["judge"]
    phases["slo_and_incidents"] = (
        phases["evaluate"] - phases["load_buckets"] - phases["merge_window"] - phases["detectors"]
    )
    from _common import source_fingerprint

    return {
        "vigil_source": source_fingerprint(),
        "tick_s": elapsed,
        "cpu_s": cpu,
        "phases_s": phases,
        "values": len(result.values),
        "rows_read": result.predictions_read,
        "labels_read": result.labels_read,
    }


def bucket_payload_bytes(folder: Path) -> dict[str, float]:
    """Size of the stored bucket payloads (JSON), per part."""
    with sqlite3.connect(folder / "store.db") as db:
        rows = db.execute(
            "SELECT part, COUNT(*), AVG(LENGTH(payload)) FROM bucket_summaries GROUP BY part"
        ).fetchall()
    return {f"{part}_avg_bytes": avg for part, _, avg in rows} | {
        f"{part}_rows": count for part, count, _ in rows
    }
