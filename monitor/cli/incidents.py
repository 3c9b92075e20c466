"""`vigil incidents` and `vigil silence`: look at, acknowledge and mute incidents by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.incidents import IncidentError, acknowledge, resolve
from alerts.payloads import alert_from_json
from detectors.root_cause_cells import cause_rows as cells
from monitor.cli.common import load
from monitor.cli.table import render_table
from monitor.core.durations import parse_duration
from monitor.store.tables import Incident, IncidentEvent, Silence

incidents_app = typer.Typer(
    help="List, show, acknowledge and resolve incidents.", no_args_is_help=True
)
silence_app = typer.Typer(help="Mute matching incidents for a while.", no_args_is_help=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The Vigil YAML config file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _sessions(config: Path) -> Any:
    from monitor.store.db import make_engine, session_factory

    cfg = load(config)
    return session_factory(make_engine(cfg.store.get_secret_value()))


def _iso(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def incident_row(incident: Incident) -> dict[str, Any]:
    alert = alert_from_json(incident.alert)
    return {
        "id": incident.id,
        "status": incident.status,
        "severity": incident.severity,
        "model": incident.model,
        "kind": incident.kind,
        "slo": incident.slo_id,
        "feature": incident.feature,
        "value": alert.value,
        "n": alert.n,
        "opened": _iso(incident.opened_at),
        "acknowledged": _iso(incident.acknowledged_at),
        "resolved": _iso(incident.resolved_at),
        "muted": incident.suppressed_by or "",
        "runbook": alert.runbook_url,
        "evidence": alert.evidence_url or "",
    }


CAUSE_COLUMNS = ["slice", "traffic", "metric", "share", "mix", "performance"]


def cause_rows(table: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The root-cause table as text cells: `dimension = slice`, before → now."""
    return [
        {
            "slice": c.slice,
            "traffic": f"{c.share_before} → {c.share_now}",
            "metric": f"{c.metric} {c.metric_before} → {c.metric_now}",
            "share": c.contribution,
            "mix": c.mix,
            "performance": c.performance,
        }
        for c in cells(table, missing="–")
    ]


@incidents_app.command("list")
def list_incidents(
    config: ConfigOption,
    status: Annotated[
        str, typer.Option(help="open (firing or acknowledged), resolved or all")
    ] = "open",
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Incidents, newest first."""
    with _sessions(config)() as session:
        query = select(Incident).order_by(Incident.opened_at.desc(), Incident.id.desc())
        if status == "open":
            query = query.where(Incident.status != "resolved")
        elif status != "all":
            query = query.where(Incident.status == status)
        if model:
            query = query.where(Incident.model == model)
        rows = [incident_row(i) for i in session.scalars(query)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    columns = ["id", "status", "severity", "model", "kind", "slo", "feature", "opened", "muted"]
    typer.echo(render_table(rows, columns))


def _get(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        typer.echo(f"no incident {incident_id}", err=True)
        raise typer.Exit(2)
    return incident


@incidents_app.command("show")
def show_incident(
    config: ConfigOption, incident_id: Annotated[int, typer.Argument()], as_json: JsonOption = False
) -> None:
    """One incident with its full history of events."""
    with _sessions(config)() as session:
        incident = _get(session, incident_id)
        row = incident_row(incident)
        events = [
            {"at": _iso(e.at), "kind": e.kind, "actor": e.actor, "reason": e.reason}
            for e in session.scalars(
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident_id)
                .order_by(IncidentEvent.id)
            )
        ]
    alert = alert_from_json(incident.alert)
    if as_json:
        causes = {"root_cause": alert.root_cause, "root_cause_table": alert.root_cause_table}
        typer.echo(json.dumps({**row, **causes, "events": events}, indent=2, default=str))
        return
    for key, value in row.items():
        typer.echo(f"{key:>13}: {value}")
    if alert.root_cause_table:
        typer.echo("\nwhere the change comes from (share of the change, mix and performance):")
        typer.echo(render_table(cause_rows(alert.root_cause_table), CAUSE_COLUMNS, wide=None))
    elif alert.root_cause:  # lines without a table: why there is no split (say, multiclass)
        typer.echo("\nroot cause:")
        for line in alert.root_cause:
            typer.echo(f"  {line}")
    typer.echo("\nevents:")
    typer.echo(render_table(events, ["at", "kind", "actor", "reason"], wide=None))


def _change(config: Path, incident_id: int, action: str, by: str, reason: str) -> None:
    sessions = _sessions(config)
    try:
        with sessions.begin() as session:
            incident = _get(session, incident_id)
            now = datetime.now(UTC)
            if action == "ack":
                acknowledge(session, incident, now, by, reason)
            else:
                resolve(session, incident, now, reason, actor=by)
    except IncidentError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"incident {incident_id}: {'acknowledged' if action == 'ack' else 'resolved'} by {by}"
    )


@incidents_app.command("ack")
def ack_incident(
    config: ConfigOption,
    incident_id: Annotated[int, typer.Argument()],
    by: Annotated[str, typer.Option(help="Who takes it.")],
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "acknowledged",
) -> None:
    """Take an incident: reminders stop and the channels show who has it."""
    _change(config, incident_id, "ack", by, reason)


@incidents_app.command("resolve")
def resolve_incident(
    config: ConfigOption,
    incident_id: Annotated[int, typer.Argument()],
    by: Annotated[str, typer.Option(help="Who resolves it.")],
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "resolved by hand",
) -> None:
    """Resolve by hand (a still-breaching SLO opens a new incident at its next tick)."""
    _change(config, incident_id, "resolve", by, reason)


def _matchers(values: list[str]) -> dict[str, dict[str, str]]:
    """`key=value` is exact, `key=~regex` a regular expression."""
    out: dict[str, dict[str, str]] = {"eq": {}, "re": {}}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            typer.echo(f"not a matcher: {item!r} (write label=value or label=~regex)", err=True)
            raise typer.Exit(2)
        if value.startswith("~"):
            out["re"][key] = value[1:]
        else:
            out["eq"][key] = value
    return out


@silence_app.command("add")
def add_silence(
    config: ConfigOption,
    matchers: Annotated[
        list[str], typer.Argument(help="label=value or label=~regex, e.g. model=fraud-detector")
    ],
    duration: Annotated[str, typer.Option("--for", help="How long, e.g. 2h.")],
    by: Annotated[str, typer.Option(help="Who mutes.")],
    comment: Annotated[str, typer.Option(help="Why, for the record.")],
    starts: Annotated[str | None, typer.Option(help="ISO start time (default: now).")] = None,
) -> None:
    """Mute incidents whose labels match, for a maintenance window or a known issue."""
    try:
        length = parse_duration(duration)
        start = datetime.fromisoformat(starts).astimezone(UTC) if starts else datetime.now(UTC)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    with _sessions(config).begin() as session:
        silence = Silence(
            matchers=_matchers(matchers),
            starts_at=start,
            ends_at=start + length,
            created_by=by,
            comment=comment,
            created_at=datetime.now(UTC),
            source="cli",
        )
        session.add(silence)
        session.flush()
        typer.echo(f"silence {silence.id} until {_iso(silence.ends_at)} UTC")


@silence_app.command("list")
def list_silences(
    config: ConfigOption,
    all_: Annotated[bool, typer.Option("--all", help="Include expired silences.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Active silences (or all of them)."""
    now = datetime.now(UTC)
    with _sessions(config)() as session:
        query = select(Silence).order_by(Silence.id)
        if not all_:
            query = query.where(Silence.ends_at > now)
        rows = [
            {
                "id": s.id,
                "matchers": " ".join(
                    [f"{k}={v}" for k, v in s.matchers.get("eq", {}).items()]
                    + [f"{k}=~{v}" for k, v in s.matchers.get("re", {}).items()]
                ),
                "starts": _iso(s.starts_at),
                "ends": _iso(s.ends_at),
                "by": s.created_by,
                "comment": s.comment,
                "source": s.source,
            }
            for s in session.scalars(query)
        ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(render_table(rows, ["id", "matchers", "starts", "ends", "by", "comment", "source"]))


@silence_app.command("expire")
def expire_silence(config: ConfigOption, silence_id: Annotated[int, typer.Argument()]) -> None:
    """End a silence now; its incidents notify at the next tick if still firing."""
    with _sessions(config).begin() as session:
        silence = session.get(Silence, silence_id)
        if silence is None:
            typer.echo(f"no silence {silence_id}", err=True)
            raise typer.Exit(2)
        silence.ends_at = min(silence.ends_at, datetime.now(UTC) - timedelta(microseconds=1))
    typer.echo(f"silence {silence_id} expired")
