"""Incidents per problem: a rare new category through the real SLO and incident engine.

A category the reference never saw shows up `rate` times a day (a Poisson process); each
hourly tick judges the 24h `dq.new_categories < 1` SLO as the README teaches it (nothing else
set) and feeds the verdict through `apply_value`, suppression refresh and the group flush,
exactly as a tick does, on a SQLite store. The same stream is judged with the defaults and
with the old behaviour (`resolve_after: 2`, no cool-down); the figures are incidents and
messages per 30 days, measured in one run.

    .venv/bin/python bench/incidents_bench.py [--days 90] [--rates 1,1.5,2]
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from alerts.dispatch import flush
from monitor.config.models import VigilConfig
from monitor.core.values import MetricValue
from monitor.engine.runtime import open_runtime
from monitor.engine.tick import TickResult, apply_value, refresh_open_incidents
from monitor.store.tables import Incident, OutboxMessage

T0 = datetime(2026, 1, 5, tzinfo=UTC)
SLO = {"metric": "dq.new_categories", "objective": "< 1", "window": "24h"}
SETTINGS = {
    "defaults": SLO,
    "old (resolve_after 2, no cool-down)": {**SLO, "keep_firing_for": "0s", "flap_changes": 0},
}


def counts(rate: float, days: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(24 / rate, size=int(rate * days * 3) + 10))
    hours = np.arange(1, days * 24 + 1)
    return [int(np.sum((arrivals > h - 24) & (arrivals <= h))) for h in hours]


def config(store: str, slo: dict[str, Any]) -> VigilConfig:
    return VigilConfig.model_validate(
        {
            "store": store,
            "sources": {"src": {"url": "sqlite://"}},
            "models": {
                "m": {
                    "source": "src",
                    "task": "binary_classification",
                    "schedule": "1h",
                    "predictions": {"table": "p", "id": "id", "timestamp": "ts"},
                    "reference": {"table": "r"},
                    "slos": [{**slo, "severity": "ticket"}],
                }
            },
            "routing": {"default": ["chat"], "group_wait": "0s"},
            "receivers": {"chat": {"slack": {"channel": "#x"}}},
        }
    )


def run(stream: list[int], slo: dict[str, Any], directory: Path) -> tuple[int, int]:
    cfg = config(f"sqlite:///{directory / 'store.db'}", slo)
    rt = open_runtime(cfg, directory)
    try:
        for hour, count in enumerate(stream):
            now = T0 + timedelta(hours=hour)
            value = MetricValue("dq.new_categories", float(count), 100, "24h", feature="country")
            with rt.sessions.begin() as session:
                result = TickResult("m", now)
                apply_value(session, cfg, "m", cfg.models["m"].slos[0], value, now, result)
                refresh_open_incidents(session, cfg, now)
                flush(session, now)
        with rt.sessions() as session:
            incidents = int(session.scalar(select(func.count()).select_from(Incident)) or 0)
            messages = int(session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)
    finally:
        rt.close()
    return incidents, messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rates", default="1,1.5,2")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"rare new category, {args.days} simulated days of hourly ticks, seed {args.seed}")
    print(f"{'rate/day':>8}  {'setting':<38} {'incidents/30d':>13} {'messages/30d':>12}")
    for rate in (float(r) for r in args.rates.split(",")):
        stream = counts(rate, args.days, args.seed)
        for name, slo in SETTINGS.items():
            with tempfile.TemporaryDirectory() as scratch:
                incidents, messages = run(stream, slo, Path(scratch))
            scale = 30 / args.days
            print(f"{rate:>8g}  {name:<38} {incidents * scale:>13.2f} {messages * scale:>12.2f}")


if __name__ == "__main__":
    main()
