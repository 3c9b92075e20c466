"""`vigil backtest`: replay source history through the tick with a simulated clock.

The replay writes into a store of its own (never the production one) and sends nothing:
messages stay in that store's outbox. It is the tool for tuning objectives, `for:` and
`min_samples` before they wake anyone, and it runs exactly the daemon's code path.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.config.models import VigilConfig
from monitor.core.durations import format_duration
from monitor.core.values import BREACH
from monitor.engine.runtime import open_runtime
from monitor.engine.tick import tick
from monitor.store.state import reference_versions
from monitor.store.tables import Incident, SLOEvaluation


@dataclass(frozen=True)
class WouldFire:
    """An incident the replay opened: when, for how long, and how bad."""

    id: int
    model: str
    kind: str
    severity: str
    slo: str
    feature: str
    opened_at: str
    resolved_at: str
    duration: str
    muted: str
    rule: str = ""
    """The rule that decided the breach that opened it (interval, sequential, point)."""
    reference: int | None = None
    """The reference version it was judged against."""


@dataclass(frozen=True)
class ReferenceUsed:
    """A reference version the replay judged against, and from when."""

    model: str
    version: int
    origin: str
    applies_from: str


@dataclass
class BacktestResult:
    ticks: int
    incidents: list[WouldFire]
    store_url: str
    references: list[ReferenceUsed] = field(default_factory=list)


def _opening_rule(session: Session, incident: Incident) -> str:
    """The rule of the last breach of its SLO (and feature) at or before its opening."""
    rule = session.scalar(
        select(SLOEvaluation.rule)
        .where(
            SLOEvaluation.model == incident.model,
            SLOEvaluation.slo_id == incident.slo_id,
            SLOEvaluation.feature == incident.feature,
            SLOEvaluation.status == BREACH,
            SLOEvaluation.at <= incident.opened_at,
        )
        .order_by(SLOEvaluation.at.desc())
        .limit(1)
    )
    return rule or ""


def _version_at(session: Session, model: str, at: datetime) -> int | None:
    applied = [v.version for v in reference_versions(session, model) if v.applies_from <= at]
    return applied[-1] if applied else None


def _row(incident: Incident, end: datetime, session: Session) -> WouldFire:
    closed = incident.resolved_at or end
    return WouldFire(
        id=incident.id,
        model=incident.model,
        kind=incident.kind,
        severity=incident.severity,
        slo=incident.slo_id,
        feature=incident.feature,
        opened_at=incident.opened_at.isoformat(),
        resolved_at=incident.resolved_at.isoformat() if incident.resolved_at else "",
        duration=format_duration(
            timedelta(minutes=(closed - incident.opened_at) // timedelta(minutes=1))
        ),
        muted=incident.suppressed_by or "",
        rule=_opening_rule(session, incident),
        reference=_version_at(session, incident.model, incident.opened_at),
    )


def run_backtest(
    config: VigilConfig,
    start: datetime,
    end: datetime,
    out_dir: Path,
    step: timedelta | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """Tick every model from `start` to `end`; write incidents.csv and incidents.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    store = out_dir / "backtest.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    store_url = f"sqlite:///{store}"
    replay = config.model_copy(update={"store": SecretStr(store_url)})
    rt = open_runtime(replay, out_dir)
    rt.replaying = True
    step = step or min(model.schedule for model in config.models.values())
    total = int((end - start) / step)
    try:
        for i in range(1, total + 1):
            now = start + i * step
            for name in config.models:
                tick(rt, name, now)
            if progress:
                progress(i, total)
        with rt.sessions() as session:
            found = [
                _row(inc, end, session)
                for inc in session.scalars(
                    select(Incident).order_by(Incident.opened_at, Incident.id)
                )
            ]
            used = [
                ReferenceUsed(v.model, v.version, v.origin, v.applies_from.isoformat())
                for name in config.models
                for v in reference_versions(session, name)
            ]
    finally:
        rt.close()
    write_results(found, out_dir)
    return BacktestResult(ticks=total, incidents=found, store_url=store_url, references=used)


def write_results(found: list[WouldFire], out_dir: Path) -> None:
    rows = [asdict(f) for f in found]
    (out_dir / "incidents.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    with (out_dir / "incidents.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(WouldFire.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(rows)
