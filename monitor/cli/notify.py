"""`vigil bugs` and `vigil outbox`: the bug queue and the notification outbox, from a terminal.

Both read and change the store directly, so they work while the daemon runs (each change is
one short transaction) and when it is down. Tables are for people; `--json` is for scripts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from monitor.cli.common import fail, load, open_cli_runtime
from monitor.cli.table import render_table

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

bugs_app = typer.Typer(
    help="Vigil's bug queue: ticket incidents and follow-ups of resolved pages.",
    no_args_is_help=True,
)
outbox_app = typer.Typer(
    help="Notifications waiting to be sent, sent, failed or expired.", no_args_is_help=True
)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The Vigil YAML config file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
BUG_FILTERS = ("active", "open", "triaged", "closed", "all")
OUTBOX_FILTERS = ("unsent", "pending", "failed", "expired", "sent", "all")


def _sessions(config: Path) -> sessionmaker[Session]:

    return open_cli_runtime(load(config), config).sessions


def _fail(message: str) -> NoReturn:

    fail(message)


def by_status(query: Any, column: Any, status: str, but: str, done: str) -> Any:
    """Filter on `status`: `all` keeps every row, the pseudo-status `but` every row not yet
    `done` (`active` bugs are not closed, `unsent` messages not sent), any other name itself."""
    if status == but:
        return query.where(column != done)
    return query if status == "all" else query.where(column == status)


def _listing(
    config: Path, query: Any, to_row: Callable[[Any], dict[str, Any]], as_json: bool
) -> list[dict[str, Any]] | None:
    """The query's rows as dicts, with a short `created` for the table; printed as JSON
    instead (and None returned) with `--json`."""
    with _sessions(config)() as session:
        rows = [to_row(item) for item in session.scalars(query)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return None
    for row in rows:
        row["created"] = row["created_at"][:16].replace("T", " ")
    return rows


def _time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "-"


# -- bugs --------------------------------------------------------------------------------------


def bug_row(bug: Any) -> dict[str, Any]:
    return {
        "id": bug.id,
        "status": bug.status,
        "severity": bug.severity,
        "model": bug.model,
        "slo": bug.slo_id,
        "title": bug.title,
        "assignee": bug.assignee,
        "incident_id": bug.incident_id,
        "runbook_url": bug.runbook_url,
        "external_url": bug.external_url,
        "evidence": bug.evidence,
        "created_at": bug.created_at.isoformat(),
        "updated_at": bug.updated_at.isoformat(),
    }


@bugs_app.command("list")
def bugs_list(
    config: ConfigOption,
    status: Annotated[
        str, typer.Option(help="active (open and triaged), open, triaged, closed or all.")
    ] = "active",
    model: Annotated[str | None, typer.Option(help="Only this model's bugs.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List bugs, newest first."""
    from sqlalchemy import select

    from monitor.store.tables import Bug

    if status not in BUG_FILTERS:
        _fail(f"--status: expected one of {', '.join(BUG_FILTERS)}, got {status!r}")
    query = by_status(select(Bug).order_by(Bug.id.desc()), Bug.status, status, "active", "closed")
    if model:
        query = query.where(Bug.model == model)
    rows = _listing(config, query, bug_row, as_json)
    if rows is None:
        return
    columns = ["id", "status", "severity", "model", "title", "assignee", "created"]
    typer.echo(render_table(rows, columns))


def _bug(session: Session, bug_id: int) -> Any:
    from monitor.store.tables import Bug

    bug = session.get(Bug, bug_id)
    if bug is None:
        _fail(f"no bug #{bug_id} (see `vigil bugs list --status all`)")
    return bug


@bugs_app.command("show")
def bugs_show(
    config: ConfigOption,
    bug_id: Annotated[int, typer.Argument(help="The bug's number.")],
    as_json: JsonOption = False,
) -> None:
    """Everything about one bug: evidence, runbook, incident and links."""
    with _sessions(config)() as session:
        row = bug_row(_bug(session, bug_id))
    if as_json:
        typer.echo(json.dumps(row, indent=2))
        return
    evidence = row.pop("evidence") or {}
    for key, value in row.items():
        typer.echo(f"{key:<12} {'-' if value is None else value}")
    typer.echo("evidence:")
    for key, value in evidence.items():
        if value not in (None, "", {}, []):
            typer.echo(
                f"  {key:<12} {json.dumps(value) if isinstance(value, dict | list) else value}"
            )


@bugs_app.command("assign")
def bugs_assign(
    config: ConfigOption,
    bug_id: Annotated[int, typer.Argument(help="The bug's number.")],
    assignee: Annotated[str, typer.Argument(help="Who owns it now.")],
) -> None:
    """Give a bug an owner; an open bug becomes triaged."""
    with _sessions(config).begin() as session:
        bug = _bug(session, bug_id)
        bug.assignee = assignee
        if bug.status == "open":
            bug.status = "triaged"
        bug.updated_at = datetime.now(UTC)
        status = bug.status
    typer.echo(f"bug #{bug_id} assigned to {assignee} ({status})")


@bugs_app.command("close")
def bugs_close(
    config: ConfigOption,
    bug_id: Annotated[int, typer.Argument(help="The bug's number.")],
    reason: Annotated[str | None, typer.Option(help="Why, kept in the bug's evidence.")] = None,
) -> None:
    """Close a bug (fixed, won't fix, duplicate: say which with --reason)."""
    with _sessions(config).begin() as session:
        bug = _bug(session, bug_id)
        if bug.status == "closed":
            _fail(f"bug #{bug_id} is already closed")
        if reason:
            bug.evidence = {**(bug.evidence or {}), "close_reason": reason}
        bug.status = "closed"
        bug.updated_at = datetime.now(UTC)
    typer.echo(f"bug #{bug_id} closed")


# -- outbox ------------------------------------------------------------------------------------


def outbox_row(message: Any) -> dict[str, Any]:
    payload = message.payload or {}
    alerts = payload.get("alerts") or []
    first = alerts[0] if alerts else {}
    return {
        "id": message.id,
        "receiver": message.receiver,
        "event": message.event,
        "status": message.status,
        "attempts": message.attempts,
        "created_at": message.created_at.isoformat(),
        "next_attempt_at": message.next_attempt_at.isoformat(),
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
        "alerts": len(alerts),
        "model": first.get("model"),
        "metric": first.get("metric"),
        "last_error": message.last_error,
        "key": message.key,
    }


@outbox_app.command("list")
def outbox_list(
    config: ConfigOption,
    status: Annotated[
        str,
        typer.Option(
            help="unsent (pending, failed, expired), pending, failed, expired, sent, all."
        ),
    ] = "unsent",
    receiver: Annotated[str | None, typer.Option(help="Only this receiver's messages.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List outbox messages with their attempts and last error."""
    from sqlalchemy import select

    from monitor.store.tables import OutboxMessage

    if status not in OUTBOX_FILTERS:
        _fail(f"--status: expected one of {', '.join(OUTBOX_FILTERS)}, got {status!r}")
    newest = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(max(limit, 1))
    query = by_status(newest, OutboxMessage.status, status, "unsent", "sent")
    if receiver:
        query = query.where(OutboxMessage.receiver == receiver)
    rows = _listing(config, query, outbox_row, as_json)
    if rows is None:
        return
    for row in rows:
        row["next"] = (
            row["next_attempt_at"][:16].replace("T", " ") if row["status"] == "pending" else None
        )
        row["what"] = f"{row['model']} {row['metric']}" + (
            f" +{row['alerts'] - 1}" if row["alerts"] > 1 else ""
        )
    columns = ["id", "receiver", "event", "status", "attempts", "created", "next", "what"]
    typer.echo(render_table(rows, [*columns, "last_error"]))


@outbox_app.command("retry")
def outbox_retry(
    config: ConfigOption,
    ids: Annotated[list[int] | None, typer.Argument(help="Message ids to retry.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every failed and expired message.")] = False,
    receiver: Annotated[str | None, typer.Option(help="Only this receiver's messages.")] = None,
) -> None:
    """Put failed or expired messages back in the queue; the sender delivers them next.

    Their age restarts now, so the expiry limit does not expire them again at once.
    """
    from sqlalchemy import select

    from alerts.outbox import EXPIRED, FAILED, PENDING
    from monitor.store.tables import OutboxMessage

    if not ids and not all_:
        _fail("name the message ids to retry, or pass --all (see `vigil outbox list`)")
    now = datetime.now(UTC)
    query = select(OutboxMessage).where(OutboxMessage.status.in_([FAILED, EXPIRED]))
    if ids:
        query = query.where(OutboxMessage.id.in_(ids))
    if receiver:
        query = query.where(OutboxMessage.receiver == receiver)
    with _sessions(config).begin() as session:
        messages = list(session.scalars(query.order_by(OutboxMessage.id)))
        for message in messages:
            message.status, message.next_attempt_at, message.created_at = PENDING, now, now
        retried = [m.id for m in messages]
    skipped = sorted(set(ids or []) - set(retried))
    typer.echo(f"{len(retried)} message(s) back to pending" + (f": {retried}" if retried else ""))
    if skipped:
        typer.echo(f"not failed or expired (left alone): {skipped}", err=True)
