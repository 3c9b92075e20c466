"""`vigil status`: what Vigil currently thinks of every SLO, read from the store and nothing else.

Read-only: no migration, no silence sync, no tick; it can run beside the daemon at any time.
For each model, every SLO (and feature) shows its latest value, interval, sample size, the
threshold and how it was derived, the verdict and the rule that decided it, then the model's
open incidents (flapping ones say so).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from monitor.cli.common import EXIT_FAILURE, ConfigOption, fail, load
from monitor.config.models import SLOConfig, VigilConfig
from monitor.core.redact import Redactor

if TYPE_CHECKING:  # the store (SQLAlchemy) loads only when the command runs
    from sqlalchemy.orm import Session

    from monitor.store.tables import SLOState


def threshold_of(slo: SLOConfig) -> dict[str, str]:
    """The objective as judged, and where its number comes from."""
    derived = getattr(slo.objective, "derivation", None)
    return {"threshold": slo.objective.text, "derived": str(derived or "fixed in the config")}


def decided_by(state: SLOState) -> str:
    """The rule stored with the verdict when there is one; otherwise the rule the judge
    applies to a verdict of this kind (point estimate, interval, too few samples)."""
    stored = getattr(state, "rule", None)
    if stored:
        return str(stored)
    if state.status == "insufficient_data":
        return "min_samples"
    if state.status == "uncertain" or (state.status == "breach" and state.ci_low is not None):
        return "interval"
    return "point"


def _slo_rows(config: VigilConfig, session: Session, model: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from monitor.store.slis import slo_id
    from monitor.store.tables import SLOState

    states = {
        (s.slo_id, s.feature): s
        for s in session.scalars(select(SLOState).where(SLOState.model == model))
    }
    rows: list[dict[str, Any]] = []
    for slo in config.models[model].slos:
        sid = slo_id(slo)
        found = sorted((f, s) for (i, f), s in states.items() if i == sid)
        if not found:
            rows.append({"slo": sid, "feature": None, "verdict": "not evaluated yet"})
            continue
        for feature, state in found:
            rows.append(
                {
                    "slo": sid,
                    "feature": feature or None,
                    "metric": slo.metric,
                    "window": slo.window.total_seconds(),
                    "value": state.value,
                    "interval": [state.ci_low, state.ci_high] if state.ci_low is not None else None,
                    "n": state.n,
                    **threshold_of(slo),
                    "verdict": state.status,
                    "rule": decided_by(state),
                    "since": state.since.isoformat(),
                    "evaluated_at": state.evaluated_at.isoformat(),
                    "severity": slo.severity,
                }
            )
    return rows


def _incident_rows(session: Session, model: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from monitor.store.tables import Incident

    query = (
        select(Incident)
        .where(Incident.model == model, Incident.status != "resolved")
        .order_by(Incident.opened_at, Incident.id)
    )
    return [
        {
            "id": i.id,
            "severity": i.severity,
            "kind": i.kind,
            "slo": i.slo_id,
            "feature": i.feature or None,
            "status": i.status,
            "opened_at": i.opened_at.isoformat(),
            "flapping": bool(i.flapping),
            "muted": i.suppressed_by,
        }
        for i in session.scalars(query)
    ]


def collect(config: VigilConfig, session: Session) -> dict[str, Any]:
    return {
        model: {
            "slos": _slo_rows(config, session, model),
            "open_incidents": _incident_rows(session, model),
        }
        for model in config.models
    }


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def render(found: dict[str, Any]) -> str:
    lines: list[str] = []
    for model, data in found.items():
        lines.append(f"{model}")
        for row in data["slos"]:
            target = f" [{row['feature']}]" if row.get("feature") else ""
            if "value" not in row:
                lines.append(f"  {row['slo']}{target}: {row['verdict']}")
                continue
            interval = row["interval"]
            ci = f" [{_number(interval[0])}, {_number(interval[1])}]" if interval else ""
            lines.append(
                f"  {row['slo']}{target}: {row['verdict']} by {row['rule']}  "
                f"value {_number(row['value'])}{ci} n={row['n']}  "
                f"threshold {row['threshold']} ({row['derived']})"
            )
        opened = data["open_incidents"]
        lines.append(f"  open incidents: {len(opened) or 'none'}")
        for inc in opened:
            target = f" [{inc['feature']}]" if inc["feature"] else ""
            flags = "".join(
                [
                    " flapping" if inc["flapping"] else "",
                    f" muted ({inc['muted']})" if inc["muted"] else "",
                ]
            )
            lines.append(
                f"    #{inc['id']} {inc['severity']:<6} {inc['kind']}: {inc['slo']}{target} "
                f"{inc['status']} since {inc['opened_at'][:16].replace('T', ' ')}{flags}"
            )
    return "\n".join(lines)


def status(
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Every SLO's latest value, interval, n, threshold, verdict and deciding rule, and the
    open incidents, from the store (read-only, safe beside the daemon)."""
    from sqlalchemy.orm import Session

    from monitor.store.db import current_revision, head_revision, make_engine

    cfg = load(config)
    redact = Redactor(cfg)
    url = cfg.store.get_secret_value()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        fail("no store yet: nothing has been evaluated (run `vigil check` or `vigil run`)", 1)
    engine = make_engine(url)
    try:
        if current_revision(engine) != head_revision():
            fail("the store's schema is not current: run `vigil db upgrade` first", EXIT_FAILURE)
        with Session(engine) as session:
            found = collect(cfg, session)
    except typer.Exit:
        raise
    except Exception as exc:
        fail(redact(f"cannot read the store: {type(exc).__name__}: {exc}"), EXIT_FAILURE)
    finally:
        engine.dispose()
    as_of = datetime.now().astimezone().isoformat(timespec="seconds")
    if as_json:
        typer.echo(json.dumps({"as_of": as_of, "models": found}, indent=2))
    else:
        typer.echo(render(found))
