"""`vigil report weekly`: render any week from the store and (optionally) send it.

A missed Monday is caught up with `--week`; sending is idempotent per week and channel, so
running the command twice delivers once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from monitor.cli.common import EXIT_FAILURE, fail, load, open_cli_runtime, writer_leases

report_app = typer.Typer(help="The weekly SLO report.", no_args_is_help=True)


@report_app.command("weekly")
def weekly(
    config: Annotated[Path, typer.Option("--config", "-c", help="The Vigil YAML config file.")],
    week: Annotated[
        str | None,
        typer.Option(help="ISO week such as 2026-W47 (default: the last complete week)."),
    ] = None,
    send: Annotated[
        bool, typer.Option("--send/--no-send", help="Send to the configured Slack and email.")
    ] = True,
    paper: Annotated[
        str | None,
        typer.Option(help="Printed page size, A4 or Letter (default: report.paper, else A4)."),
    ] = None,
) -> None:
    """Write the HTML report for a week into `report.out_dir`; exit 3 if a send failed."""
    from monitor.report.weeks import last_complete_week, parse_week
    from monitor.service.leases import REPORT_LEASE

    cfg = load(config)
    tz = ZoneInfo(cfg.report.timezone)
    now = datetime.now(UTC)
    try:
        chosen = parse_week(week, tz) if week else last_complete_week(now, tz)
    except ValueError as exc:
        fail(f"--week: {exc}")
    if paper is not None and paper.strip().lower() not in {"a4", "letter"}:
        fail(f"--paper: {paper!r} is not a paper size (write A4 or Letter)")
    chosen_paper = None if paper is None else {"a4": "A4"}.get(paper.strip().lower(), "Letter")
    from monitor.report.deliver import publish

    rt = open_cli_runtime(cfg, config)
    # Sending is the daemon's weekly job too: hold its lease (a render only reads the store).
    needed = [REPORT_LEASE] if send else []
    try:
        with writer_leases(rt, needed, "vigil report weekly --send"):
            result = publish(rt, chosen, now, send=send, paper=chosen_paper)
    except ModuleNotFoundError as exc:
        if exc.name not in {"jinja2", "matplotlib"}:
            raise
        fail(f"the report needs the 'report' extra: pip install 'vigil-monitor[report]' ({exc})")
    finally:
        rt.close()
    typer.echo(f"{chosen.label}: {result.report.verdict}")
    typer.echo(f"wrote {result.html}")
    if result.pdf:
        typer.echo(f"wrote {result.pdf}")
    for outcome in result.outcomes:
        detail = f" ({outcome.detail})" if outcome.detail else ""
        typer.echo(f"{outcome.channel}: {outcome.status.replace('_', ' ')}{detail}")
    if result.failed:
        raise typer.Exit(EXIT_FAILURE)
