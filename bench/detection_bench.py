"""Detection benchmark: simulated streams with known change points through the real tick.

Each stream is a calibrated binary classifier (score = P(y = 1 | x1), labels drawn from it,
arriving 1-14 days late, uniformly) with three numeric features and one categorical. A fault
starts at the change point and lasts to the end; a quiet stream has none. Rows are written
into a SQLite source as a simulated clock passes their time and `monitor.engine.tick.tick`
runs on a SQLite store, exactly as `vigil demo` does. SLOs are written as the README teaches
(fixed objectives, defaults otherwise):

    roc_auc 30d            >= base AUC - 0.008      (page)
    estimated.roc_auc 30d  >= base AUC - 0.008      (page)
    drift.detected 24h     < 0.5, features: all     (ticket)
    dq.missing_rate 24h    < 0.05, features: all    (ticket)
    dq.new_categories 24h  < 1, features: all       (ticket)
    freshness.prediction_age  < 3h                  (page)

`--objectives fixed relative auto` writes the two AUC SLOs once per kind of objective
(`>= reference - 0.005`, `auto`, beside the fixed one) and judges the same stream under all
of them; `--nannyml PYTHON` runs NannyML's CBPE on each AUC stream too (bench/nannyml_cbpe.py).

Per stream it reports, for the SLO the fault should trip: the delay from the change to the
first incident, the number of incidents opened after the change (per episode), whether the
label-free estimate opened before the realised-label SLO, and every incident opened where no
fault ran (false incidents, per SLO-year over the SLO series judged).

    .venv/bin/python bench/detection_bench.py --quick      # 1,000/day, 7 faults + quiet, ~15 min
    .venv/bin/python bench/detection_bench.py               # 100, 1,000, 10,000/day, 3 seeds

Ticks and buckets are 6-hourly here (the daemon's default bucket is 1h) to keep a simulated
year within minutes on 2 cores; delays are therefore quantised to 6 hours.

By default each step's rows are summarised once, in memory, by the real
`summarize_predictions` / `summarize_labels`, and stored with their watermarks exactly as the
read stage stores them; the rest of the tick (window, values, judge, incidents, budgets,
outbox) is the engine's own code (`judge_step`). What this skips is the read stage's SQL:
writing rows into a source, reading them back, duplicate-id claims, and the Evidently report
attached to drift incidents (its messages are written without the link, as after a crash
between the two stages). `--full` runs the whole `tick` on a SQLite source instead; on the
same stream both give the same incidents (bench/README.md "Detection").
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerts.dispatch import flush  # noqa: E402
from bench.detection_summary import markdown, summarise  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.core.clock import SimulatedClock  # noqa: E402
from monitor.core.reference import ReferenceSummary  # noqa: E402
from monitor.core.summaries import BucketSummary  # noqa: E402
from monitor.core.watermark import Watermark  # noqa: E402
from monitor.engine.reading import LABELS, PREDICTIONS  # noqa: E402
from monitor.engine.runtime import Runtime, open_runtime  # noqa: E402
from monitor.engine.tick import (  # noqa: E402
    TickResult,
    compute_values,
    ensure_reference,
    judge_values,
    load_windows,
    tick,
)
from monitor.ingest.batches import LabelBatch, PredictionBatch  # noqa: E402
from monitor.ingest.summarize import summarize_labels, summarize_predictions  # noqa: E402
from monitor.store.state import set_watermark, upsert_buckets  # noqa: E402
from monitor.store.tables import Incident, SLOEvaluation  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(hours=6)
DAY = timedelta(days=1)
SLOPE, BIAS = 2.2, -1.5
TS = "%Y-%m-%d %H:%M:%S.%f"
RESULTS = ROOT / "bench" / "results" / "detection.json"


@dataclass(frozen=True)
class Fault:
    name: str
    metric: str
    """The SLO metric the fault should trip."""
    feature: str | None = None
    auc_drop: float = 0.0
    mean_shift: float = 0.0
    scale: float = 1.0
    missing: float = 0.0
    new_per_day: float = 0.0
    gap_hours: int = 0
    gradual_days: int = 0


FAULTS = {
    "quiet": Fault("quiet", ""),
    "auc_drop_0.005": Fault("auc_drop_0.005", "estimated.roc_auc", auc_drop=0.005),
    "auc_drop_0.01": Fault("auc_drop_0.01", "estimated.roc_auc", auc_drop=0.01),
    "auc_drop_0.02": Fault("auc_drop_0.02", "estimated.roc_auc", auc_drop=0.02),
    "mean_+0.1sd": Fault("mean_+0.1sd", "drift.detected", "x2", mean_shift=0.1),
    "mean_+0.25sd": Fault("mean_+0.25sd", "drift.detected", "x2", mean_shift=0.25),
    "mean_+0.5sd_gradual": Fault(
        "mean_+0.5sd_gradual", "drift.detected", "x2", mean_shift=0.5, gradual_days=14
    ),
    "spread_+20%": Fault("spread_+20%", "drift.detected", "x2", scale=1.2),
    "spread_-30%": Fault("spread_-30%", "drift.detected", "x2", scale=0.7),
    "missing_step_10%": Fault("missing_step_10%", "dq.missing_rate", "x3", missing=0.10),
    "rare_new_category": Fault("rare_new_category", "dq.new_categories", "cat", new_per_day=2),
    "logging_gap_12h": Fault("logging_gap_12h", "freshness.prediction_age", gap_hours=12),
}
QUICK = [
    "quiet",
    "auc_drop_0.01",
    "auc_drop_0.02",
    "mean_+0.1sd",
    "spread_+20%",
    "missing_step_10%",
    "rare_new_category",
    "logging_gap_12h",
]


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def auc_of(spread: float, rng: np.random.Generator, n: int = 400_000) -> float:
    from sklearn.metrics import roc_auc_score

    p = sigmoid(BIAS + SLOPE * spread * rng.normal(size=n))
    return float(roc_auc_score(rng.random(n) < p, p))


def spread_for(drop: float, base: float, rng: np.random.Generator) -> float:
    """The spread of the latent x1 that lowers the (calibrated) AUC by `drop`: bisection."""
    lo, hi = 0.5, 1.0
    for _ in range(18):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if base - auc_of(mid, rng) > drop else (lo, mid)
    return (lo + hi) / 2


def rows(rng: np.random.Generator, ts: np.ndarray, spread: np.ndarray) -> pd.DataFrame:
    n = ts.size
    x1 = rng.normal(size=n) * spread
    score = sigmoid(BIAS + SLOPE * x1)
    return pd.DataFrame(
        {
            "predicted_at": ts,
            "x1": x1,
            "x2": rng.normal(size=n),
            "x3": rng.normal(size=n),
            "cat": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "score": score,
            "decision": (score >= 0.5).astype(int),
            "y": (rng.random(n) < score).astype(int),
        }
    )


def simulate(
    fault: Fault, per_day: int, days: int, change_day: int, seed: int, base_auc: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    total = rng.poisson(per_day * days)
    start = np.datetime64(START.replace(tzinfo=None), "us")
    offsets = np.sort(rng.uniform(0, days * 86400, total))
    ts = start + (offsets * 1e6).astype("timedelta64[us]")
    day = offsets / 86400
    after = day >= change_day
    ramp = np.clip((day - change_day) / max(fault.gradual_days, 1e-9), 0, 1) * after
    if fault.gradual_days == 0:
        ramp = after.astype(float)
    spread = np.ones(total)
    if fault.auc_drop:
        spread = np.where(after, spread_for(fault.auc_drop, base_auc, rng), 1.0)
    frame = rows(rng, ts, spread)
    frame["x2"] = frame["x2"] * (1 + (fault.scale - 1) * ramp) + fault.mean_shift * ramp
    if fault.missing:
        frame.loc[after & (rng.random(total) < fault.missing), "x3"] = np.nan
    if fault.new_per_day:
        chance = fault.new_per_day / per_day
        frame.loc[after & (rng.random(total) < chance), "cat"] = "zz"
    if fault.gap_hours:
        gap = (day >= change_day) & (day < change_day + fault.gap_hours / 24)
        frame = frame.loc[~gap]
    frame = frame.reset_index(drop=True)
    frame.insert(0, "request_id", np.arange(1, len(frame) + 1))
    delay = rng.uniform(1, 14, len(frame)) * 86400e6
    labels = pd.DataFrame(
        {
            "request_id": frame["request_id"],
            "labeled_at": frame["predicted_at"].to_numpy() + delay.astype("timedelta64[us]"),
            "y": frame.pop("y"),
        }
    ).sort_values(["labeled_at", "request_id"], ignore_index=True)
    reference = rows(rng, np.full(20_000, start), np.ones(20_000)).drop(columns="predicted_at")
    return frame, labels, reference


CONFIG = """\
store: sqlite:///{dir}/vigil.db
sources:
  src: {{url: "sqlite:///{dir}/source.db"}}
models:
  m:
    source: src
    task: binary_classification
    schedule: 6h
    bucket: 6h
    predictions: {{table: predictions, id: request_id, timestamp: predicted_at,
                  score: score, prediction: decision, features: [x1, x2, x3, cat]}}
    labels: {{table: labels, id: request_id, timestamp: labeled_at, label: y}}
    reference: {{table: reference}}
    slos:
{auc_slos}      - {{metric: drift.detected, features: all, window: 24h, objective: "< 0.5"}}
      - {{metric: dq.missing_rate, features: all, window: 24h, objective: "< 0.05"}}
      - {{metric: dq.new_categories, features: all, window: 24h, objective: "< 1"}}
      - {{metric: freshness.prediction_age, objective: "< 3h", severity: page}}
routing: {{default: [log], group_wait: 0s}}
receivers:
  log: {{slack: {{channel: "#bench", outfile: "{dir}/slack.jsonl"}}}}
"""
SLO_SERIES = 1 + 1 + 5 + 5 + 1 + 1  # roc_auc, estimated, drift x5 (4 + score), missing x4+, ...
AUC_SLO = '      - {{metric: {metric}, window: 30d, objective: "{objective}", severity: page}}\n'
OBJECTIVES = ("fixed", "relative", "auto")
"""How the two AUC SLOs' objectives are written: `fixed` (>= base - 0.8 x drop, as the README
teaches), `relative` (>= reference - margin) or `auto` (the reference's own variability at the
window's n). Several at once judge the same stream under each (one SLO pair per objective)."""


def objective_texts(
    objectives: list[str], base: float, drop: float, margin: float
) -> dict[str, str]:
    """Each requested objective kind and its text in the config."""
    texts = {
        "fixed": f">= {round(base - 0.8 * drop, 4)}",
        "relative": f">= reference - {margin:g}",
        "auto": "auto",
    }
    return {kind: texts[kind] for kind in objectives}


def auc_slos(texts: dict[str, str]) -> str:
    return "".join(
        AUC_SLO.format(metric=metric, objective=text)
        for text in texts.values()
        for metric in ("roc_auc", "estimated.roc_auc")
    )


@dataclass
class Outcome:
    fault: str
    per_day: int
    seed: int
    change_day: int
    days: int = 0
    judged_from: int = 0
    """The first judged day (after a warm start); days before it are not counted as quiet."""
    incidents: list[dict[str, object]] = field(default_factory=list)
    seconds: float = 0.0
    objectives: dict[str, str] = field(default_factory=dict)
    """The AUC SLOs' objective per kind (fixed, relative, auto), as written in the config."""
    auc_trace: list[dict[str, object]] = field(default_factory=list)
    """Daily evaluations of the AUC SLOs (AUC faults only): value, threshold, status, rule."""
    nannyml: dict[str, object] = field(default_factory=dict)
    """NannyML CBPE's alerts on the same stream (`--nannyml`)."""


def utc(values: pd.Series) -> pd.Series:
    return pd.Series(pd.to_datetime(values.to_numpy(), utc=True), index=values.index)


def prediction_buckets(
    predictions: pd.DataFrame, reference: ReferenceSummary, rt: Runtime, end: datetime
) -> dict[datetime, BucketSummary]:
    """Every bucket of the stream, each summarised once by the real summariser."""
    model = rt.config.models["m"]
    batch = PredictionBatch(
        ids=predictions["request_id"],
        ts=utc(predictions["predicted_at"]),
        score=predictions["score"],
        decision=predictions["decision"],
        features=predictions[["x1", "x2", "x3", "cat"]],
    )
    return summarize_predictions(batch, reference, model.task, model.threshold, model.bucket, end)


def judge_step(
    rt: Runtime,
    reference: ReferenceSummary,
    now: datetime,
    buckets: dict[datetime, BucketSummary],
    new: pd.DataFrame,
    lab: pd.DataFrame,
    scored: pd.DataFrame,
    span: timedelta = STEP,
    judge: bool = True,
) -> None:
    """One tick with the read stage done in memory: the step's prediction buckets (summarised
    once, up front) and its labels (summarised here, as they arrive) are stored with their
    watermarks as `monitor.engine.reading` stores them; window, values, judging, incidents,
    budgets and the outbox are the engine's own stages. `scored` holds every prediction's
    time, score and decision by request id (the join the label reader makes in SQL).
    `judge=False` stores a whole span of history (the warm start) without judging it."""
    model = rt.config.models["m"]
    with rt.sessions.begin() as session:
        if len(new):
            step = {start: b for start, b in buckets.items() if now - span <= start < now}
            upsert_buckets(session, "m", step, now, part=PREDICTIONS)
            at = utc(new["predicted_at"].iloc[-1:]).iloc[0].to_pydatetime()
            mark = Watermark(at, int(new["request_id"].iloc[-1]))
            set_watermark(session, "m", PREDICTIONS, mark, now)
        if len(lab):
            joined = scored.loc[lab["request_id"].to_numpy()]
            labels = LabelBatch(
                ids=lab["request_id"].reset_index(drop=True),
                labeled_at=utc(lab["labeled_at"]).reset_index(drop=True),
                label=lab["y"].reset_index(drop=True),
                predicted_at=utc(joined["predicted_at"]).reset_index(drop=True),
                score=joined["score"].reset_index(drop=True),
                decision=joined["decision"].reset_index(drop=True),
            )
            summaries = summarize_labels(
                labels, model.task, model.threshold, model.bucket, now, reference.segment_values
            )
            upsert_buckets(session, "m", summaries, now, part=LABELS)
            at = utc(lab["labeled_at"].iloc[-1:]).iloc[0].to_pydatetime()
            mark = Watermark(at, int(lab["request_id"].iloc[-1]))
            set_watermark(session, "m", LABELS, mark, now)
    if not judge:
        return
    windows = load_windows(rt, "m", now)
    values = compute_values(model, windows, reference, now)
    wanted = judge_values(rt, "m", values, now, TickResult(model="m", at=now))
    if wanted:  # drift incidents wait for their Evidently report: send without it
        with rt.sessions.begin() as session:
            flush(session, now)


def incidents_of(rt: Runtime) -> list[dict[str, object]]:
    with rt.sessions() as session:
        found = list(session.scalars(select(Incident).order_by(Incident.opened_at)))
        return [
            {
                "metric": i.metric,
                "slo": i.slo_id,
                "feature": i.feature,
                "kind": i.kind,
                "opened_day": (i.opened_at - START) / timedelta(days=1),
                "resolved_day": (i.resolved_at - START) / timedelta(days=1)
                if i.resolved_at
                else None,
            }
            for i in found
        ]


def auc_trace(rt: Runtime) -> list[dict[str, object]]:
    """The AUC SLOs' evaluations once a day (at midnight): value, interval, threshold that
    applied (a relative objective's, resolved), status and the rule that decided."""
    with rt.sessions() as session:
        found = session.scalars(
            select(SLOEvaluation)
            .where(SLOEvaluation.slo_id.like("%roc_auc%"))
            .order_by(SLOEvaluation.at, SLOEvaluation.slo_id)
        )
        return [
            {
                "slo": e.slo_id,
                "day": (e.at - START) / DAY,
                "value": e.value,
                "ci": [e.ci_low, e.ci_high],
                "n": e.n,
                "threshold": e.threshold,
                "status": e.status,
                "rule": e.rule,
            }
            for e in found
            if e.at.hour == 0
        ]


def replay(
    fault: Fault,
    per_day: int,
    days: int,
    change_day: int,
    seed: int,
    base: float,
    drop_for_objective: float,
    full: bool = False,
    progress: Path | None = None,
    warm_day: int = 0,
    objectives: tuple[str, ...] = ("fixed",),
    margin: float = 0.005,
) -> Outcome:
    """One stream; with `progress`, every 30 simulated days the incidents so far are written
    there, so a long quiet stream cut short still counts the days it ran. With `warm_day`,
    the history before that day is summarised and stored as the read stage would store it
    (predictions, and the labels arrived by then) but not judged: judging starts with full
    windows a day or so before the change, where the detection delay is measured."""
    predictions, labels, reference = simulate(fault, per_day, days, change_day, seed, base)
    began = time.perf_counter()
    shm = Path("/dev/shm")  # the store's commits need no disk
    with tempfile.TemporaryDirectory(
        prefix="vigil-detect-", dir=shm if shm.is_dir() else None
    ) as tmp:
        directory = Path(tmp)
        conn = sqlite3.connect(directory / "source.db")
        conn.executescript(
            "CREATE TABLE predictions (request_id INTEGER PRIMARY KEY, predicted_at TEXT, "
            "x1 REAL, x2 REAL, x3 REAL, cat TEXT, score REAL, decision INTEGER);"
            "CREATE INDEX ix_p ON predictions (predicted_at, request_id);"
            "CREATE TABLE labels (request_id INTEGER, labeled_at TEXT, y INTEGER);"
            "CREATE INDEX ix_l ON labels (labeled_at, request_id);"
        )
        reference.to_sql("reference", conn, index=False)
        texts = objective_texts(list(objectives), base, drop_for_objective, margin)
        path = directory / "vigil.yaml"
        path.write_text(CONFIG.format(dir=directory.as_posix(), auc_slos=auc_slos(texts)))
        config = load_config(path)
        rt = open_runtime(config, directory)
        clock = SimulatedClock(START)
        p_times = predictions["predicted_at"].to_numpy()
        l_times = labels["labeled_at"].to_numpy()
        cols = list(predictions.columns)
        insert = (
            f"INSERT INTO predictions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        )
        reference_fit = None if full else ensure_reference(rt, "m", START)
        scored = predictions.set_index("request_id", drop=False)
        end = START + timedelta(days=days)
        buckets = {} if full else prediction_buckets(predictions, reference_fit, rt, end)  # type: ignore[arg-type]
        first = 0
        if warm_day and reference_fit is not None:
            warm = START + timedelta(days=warm_day)
            first = int(timedelta(days=warm_day) / STEP)
            cut = np.datetime64(warm.replace(tzinfo=None), "us")
            before = predictions.iloc[: np.searchsorted(p_times, cut, "right")]
            arrived = labels.iloc[: np.searchsorted(l_times, cut, "right")]
            span = warm - START
            judge_step(rt, reference_fit, warm, buckets, before, arrived, scored, span, False)
            clock = SimulatedClock(warm)
        for step in range(first, int(timedelta(days=days) / STEP)):
            now = clock.advance(STEP)
            lo = np.datetime64((now - STEP).replace(tzinfo=None), "us")
            hi = np.datetime64(now.replace(tzinfo=None), "us")
            new = predictions.iloc[
                np.searchsorted(p_times, lo, "right") : np.searchsorted(p_times, hi, "right")
            ].copy()
            lab = labels.iloc[
                np.searchsorted(l_times, lo, "right") : np.searchsorted(l_times, hi, "right")
            ].copy()
            if progress is not None and step and step % int(timedelta(days=30) / STEP) == 0:
                done = {"fault": fault.name, "per_day": per_day, "days_done": step * STEP / DAY}
                progress.write_text(json.dumps({**done, "incidents": incidents_of(rt)}))
            if reference_fit is not None:
                judge_step(rt, reference_fit, now, buckets, new, lab, scored)
                continue
            new["predicted_at"] = pd.to_datetime(new["predicted_at"]).dt.strftime(TS)
            lab["labeled_at"] = pd.to_datetime(lab["labeled_at"]).dt.strftime(TS)
            conn.executemany(insert, list(new.itertuples(index=False, name=None)))
            conn.executemany(
                "INSERT INTO labels VALUES (?, ?, ?)", list(lab.itertuples(index=False, name=None))
            )
            conn.commit()
            tick(rt, "m", now)
        incidents = incidents_of(rt)
        trace = auc_trace(rt) if fault.auc_drop else []
        rt.close()
        conn.close()
    seconds = time.perf_counter() - began
    return Outcome(
        fault.name, per_day, seed, change_day, days, warm_day, incidents, seconds, texts, trace
    )


def nannyml_contender(
    python: str, fault: Fault, per_day: int, days: int, change_day: int, seed: int, base: float
) -> dict[str, object]:
    """NannyML's CBPE on the very stream `replay` judged (same simulation, same seed), run by
    `bench/nannyml_cbpe.py` in NannyML's own environment (`python`)."""
    predictions, _, reference = simulate(fault, per_day, days, change_day, seed, base)
    with tempfile.TemporaryDirectory(prefix="vigil-nannyml-") as tmp:
        directory = Path(tmp)
        start = np.datetime64(START.replace(tzinfo=None), "us")
        day = (predictions["predicted_at"].to_numpy() - start) / np.timedelta64(1, "D")
        stream = predictions[["score", "decision"]].assign(day=day)
        stream.to_csv(directory / "predictions.csv", index=False)
        reference[["score", "decision", "y"]].to_csv(directory / "reference.csv", index=False)
        meta = {"per_day": per_day, "change_day": change_day}
        (directory / "meta.json").write_text(json.dumps(meta))
        script = Path(__file__).with_name("nannyml_cbpe.py")
        done = subprocess.run(
            [python, str(script), str(directory)], capture_output=True, text=True, check=False
        )
    if done.returncode:
        return {"error": done.stderr[-2000:]}
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="*")
    parser.add_argument("--faults", nargs="*")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--days", type=int)
    parser.add_argument("--change-day", type=int, help="default: half of --days")
    parser.add_argument("--quiet-days", type=int, help="length of the quiet stream")
    parser.add_argument("--full", action="store_true", help="the whole tick on a SQLite source")
    parser.add_argument("--progress", type=Path, help="write incidents so far every 30 days")
    parser.add_argument(
        "--judged-before",
        type=int,
        default=0,
        help="judge only this many days before the change; the history before is stored, "
        "not judged (fault streams only; 0: judge every day)",
    )
    parser.add_argument(
        "--objectives",
        nargs="*",
        choices=OBJECTIVES,
        default=["fixed"],
        help="how the AUC SLOs' objectives are written; several judge the same stream under "
        "each (fixed: base - 0.8 x drop; relative: reference - --margin; auto)",
    )
    parser.add_argument(
        "--margin", type=float, default=0.005, help="for --objectives relative (default 0.005)"
    )
    parser.add_argument(
        "--nannyml",
        metavar="PYTHON",
        help="a Python with nannyml installed: run its CBPE on every AUC stream too",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = args.sizes or ([1000] if args.quick else [100, 1000, 10_000])
    faults = args.faults or (QUICK if args.quick else list(FAULTS))
    seeds = args.seeds or (1 if args.quick else 3)
    days = args.days or (90 if args.quick else 180)
    change_day = args.change_day or days // 2
    rng = np.random.default_rng(0)
    base = auc_of(1.0, rng)
    outcomes = []
    for name in faults:
        fault = FAULTS[name]
        quiet_days = args.quiet_days or (days if args.quick else 365)
        run_days = quiet_days if name == "quiet" else days
        for per_day in sizes:
            for seed in range(seeds):
                drop = fault.auc_drop or 0.01
                warm = max(change_day - args.judged_before, 0) if args.judged_before else 0
                o = replay(
                    fault,
                    per_day,
                    run_days,
                    change_day,
                    100 + seed,
                    base,
                    drop,
                    args.full,
                    args.progress,
                    warm if fault.metric else 0,
                    tuple(args.objectives),
                    args.margin,
                )
                if args.nannyml and fault.auc_drop:
                    o.nannyml = nannyml_contender(
                        args.nannyml, fault, per_day, run_days, change_day, 100 + seed, base
                    )
                outcomes.append(o)
                print(
                    f"{name:<22} {per_day:>6}/day seed {seed}: {len(o.incidents)} incidents "
                    f"in {o.seconds:.0f}s",
                    flush=True,
                )
    table = summarise(outcomes, FAULTS, SLO_SERIES)
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "base_auc": base,
                "days": days,
                "change_day": change_day,
                "objectives": args.objectives,
                "margin": args.margin,
                "load_average": os.getloadavg(),
                "table": table,
                "runs": [asdict(o) for o in outcomes],
            },
            indent=1,
            default=str,
        )
    )
    print(f"base AUC {base:.4f}; AUC SLO objectives: {', '.join(args.objectives)}")
    print(markdown(table))


if __name__ == "__main__":
    main()
