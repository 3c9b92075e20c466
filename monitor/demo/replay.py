"""Builds the demo's files and replays six weeks hour by hour through the same `tick`.

Rows are written into the source as the simulated clock passes their time, as a live model
would log them, so every tick sees exactly what a real daemon would have seen.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select

from alerts.dispatch import deliver
from alerts.notifiers.registry import build_notifiers
from monitor.config import load_config
from monitor.core.clock import SimulatedClock
from monitor.demo.simulate import FAULTS, START, WEEKS, simulate
from monitor.engine.runtime import open_runtime
from monitor.engine.tick import tick
from monitor.store.tables import Incident

MODEL = "fraud-detector"
TICK = timedelta(hours=2)
TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

CONFIG_TEMPLATE = """\
# Written by `vigil demo`: the simulated fraud model on the embedded default (SQLite).
store: sqlite:///{dir}/vigil.db
sources:
  shop_db: {{url: "sqlite:///{dir}/source.db"}}
models:
  fraud-detector:
    source: shop_db
    task: binary_classification
    schedule: 2h
    team: fraud
    predictions: {{table: predictions, id: request_id, timestamp: predicted_at,
                  score: score, prediction: decision,
                  features: [amount, merchant_category, country, account_age_days]}}
    labels: {{table: chargebacks, id: request_id, timestamp: labeled_at, label: is_fraud}}
    reference: {{table: reference_sample}}
    slos:
      - {{metric: accuracy, window: 24h, objective: ">= 0.85", severity: page, min_samples: 200}}
      - {{metric: drift.psi, features: all, window: 24h, objective: "< 0.2", severity: ticket}}
      - {{metric: freshness.prediction_age, objective: "< 30m", severity: page}}
routing:
  default: [ml-oncall]
  group_wait: 0s          # the replay ticks every 2h; a 30s wait would hold each message for a tick
receivers:
  ml-oncall: {{slack: {{channel: "#ml-oncall", outfile: "{dir}/slack-payloads.jsonl"}}}}
"""


@dataclass
class DemoResult:
    directory: Path
    config_path: Path
    incidents: list[Incident] = field(default_factory=list)
    ticks: int = 0
    predictions: int = 0
    labels: int = 0

    @property
    def slack_file(self) -> Path:
        return self.directory / "slack-payloads.jsonl"


def _write_source(path: Path, reference: pd.DataFrame) -> sqlite3.Connection:
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE predictions (request_id INTEGER PRIMARY KEY, predicted_at TEXT NOT NULL,
            amount REAL, merchant_category TEXT, country TEXT, account_age_days REAL,
            score REAL, decision INTEGER);
        CREATE INDEX ix_predictions_ts ON predictions (predicted_at, request_id);
        CREATE TABLE chargebacks (request_id INTEGER NOT NULL, labeled_at TEXT NOT NULL,
            is_fraud INTEGER NOT NULL);
        CREATE INDEX ix_chargebacks_ts ON chargebacks (labeled_at, request_id);
        """
    )
    reference.to_sql("reference_sample", conn, index=False)
    return conn


def _rows(frame: pd.DataFrame, time_col: str) -> list[tuple[object, ...]]:
    out = frame.copy()
    out[time_col] = pd.to_datetime(out[time_col]).dt.strftime(TS_FORMAT)
    return list(out.itertuples(index=False, name=None))


def run_demo(directory: Path, progress: Callable[[int, int], None] | None = None) -> DemoResult:
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("vigil.db", "vigil.db-wal", "vigil.db-shm", "slack-payloads.jsonl"):
        (directory / name).unlink(missing_ok=True)
    predictions, labels, reference = simulate()
    source = _write_source(directory / "source.db", reference)
    config_path = directory / "vigil.yaml"
    config_path.write_text(CONFIG_TEMPLATE.format(dir=directory.as_posix()), encoding="utf-8")
    config = load_config(config_path)
    rt = open_runtime(config, directory)
    notifiers = build_notifiers(config, directory)
    clock = SimulatedClock(START)
    result = DemoResult(directory=directory, config_path=config_path)

    pred_times = predictions["predicted_at"].to_numpy()
    label_times = labels["labeled_at"].to_numpy()
    columns = list(predictions.columns)
    insert_predictions = (
        f"INSERT INTO predictions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    )
    total_ticks = int(WEEKS * timedelta(days=7) / TICK)
    for step in range(1, total_ticks + 1):
        now = clock.advance(TICK)
        lo = np.datetime64((now - TICK).replace(tzinfo=None), "us")
        hi = np.datetime64(now.replace(tzinfo=None), "us")
        new_preds = predictions.iloc[
            np.searchsorted(pred_times, lo, "right") : np.searchsorted(pred_times, hi, "right")
        ]
        new_labels = labels.iloc[
            np.searchsorted(label_times, lo, "right") : np.searchsorted(label_times, hi, "right")
        ]
        source.executemany(insert_predictions, _rows(new_preds, "predicted_at"))
        source.executemany(
            "INSERT INTO chargebacks VALUES (?, ?, ?)", _rows(new_labels, "labeled_at")
        )
        source.commit()
        outcome = tick(rt, MODEL, now)
        deliver(rt.sessions, notifiers, now, config.outbox_max_age)
        result.ticks += 1
        result.predictions += outcome.predictions_read
        result.labels += outcome.labels_read
        if progress:
            progress(step, total_ticks)
    source.close()
    with rt.sessions() as session:
        result.incidents = list(session.scalars(select(Incident).order_by(Incident.opened_at)))
    rt.close()
    return result


def fault_for(incident: Incident) -> str | None:
    """The injected fault an incident belongs to, if it opened while (or soon after) it ran."""
    for fault in FAULTS:
        same_metric = fault.slo_metric == incident.metric
        same_feature = fault.feature is None or fault.feature == incident.feature
        if (
            same_metric
            and same_feature
            and fault.start <= incident.opened_at <= fault.end + timedelta(hours=24)
        ):
            return fault.name
    return None


def render(result: DemoResult) -> str:
    lines = [
        f"Replayed {WEEKS} weeks ({result.ticks} two-hourly ticks): "
        f"{result.predictions} predictions, {result.labels} labels.",
        "",
        "Injected faults:",
    ]
    lines += [
        f"  {f.start:%a %Y-%m-%d %H:%M} .. {f.end:%a %Y-%m-%d %H:%M}  {f.name}" for f in FAULTS
    ]
    lines += ["", "Incidents:"]
    for inc in result.incidents:
        target = f" [{inc.feature}]" if inc.feature else ""
        resolved = f"{inc.resolved_at:%a %Y-%m-%d %H:%M}" if inc.resolved_at else "still open"
        lines.append(
            f"  #{inc.id} {inc.severity:<6} {inc.metric}{target}: "
            f"opened {inc.opened_at:%a %Y-%m-%d %H:%M}, resolved {resolved}"
            f"  <- {fault_for(inc) or 'no injected fault'}"
        )
    if not result.incidents:
        lines.append("  (none)")
    lines += [
        "",
        "Wrote:",
        f"  config          {result.config_path}",
        f"  store           {result.directory / 'vigil.db'}",
        f"  source data     {result.directory / 'source.db'}",
        f"  Slack payloads  {result.slack_file}  (Block Kit JSON, one message per line)",
        "",
        f"Try: vigil check --config {result.config_path}",
    ]
    return "\n".join(lines)


def terminal_progress(step: int, total: int) -> None:
    if not sys.stderr.isatty():
        return
    width = 40
    done = int(width * step / total)
    sys.stderr.write(f"\r  simulating [{'#' * done}{'.' * (width - done)}] {step}/{total} hours")
    if step == total:
        sys.stderr.write("\n")
    sys.stderr.flush()
