"""`vigil baseline`: move a model's reference to a period, or accept named categories."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import typer

from monitor.cli.common import (
    EXIT_FAILURE,
    ConfigOption,
    fail,
    load,
    open_cli_runtime,
    writer_leases,
)


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option}: not a date: {text!r} (write e.g. 2026-11-01)")


def baseline(
    config: ConfigOption,
    model: Annotated[str, typer.Argument(help="The model whose reference moves.")],
    by: Annotated[str, typer.Option("--by", help="Who accepts the new normal.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the reference).")],
    start: Annotated[
        str | None, typer.Option("--from", help="First day of the new reference (UTC date).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last day of the new reference (UTC date).")
    ] = None,
    accept_category: Annotated[
        list[str] | None,
        typer.Option(
            "--accept-category", help="feature=value to stop counting as new (repeatable)."
        ),
    ] = None,
) -> None:
    """Accept a new normal: refit the reference on a period (--from/--to) or accept named
    categories; the incidents it decides resolve, with who and why on record."""
    from monitor.engine.baseline import (
        BaselineError,
        accept_categories,
        move_to_period,
        parse_accepted,
    )

    cfg = load(config)
    if model not in cfg.models:
        fail(f"unknown model {model!r} (the config has: {', '.join(cfg.models)})")
    period = start is not None or end is not None
    if period == bool(accept_category):
        fail("give either --from and --to, or one or more --accept-category feature=value")
    if period and (start is None or end is None):
        fail("--from and --to go together")
    if not by.strip() or not reason.strip():
        fail("--by and --reason must say who and why")
    from monitor.service.leases import model_lease

    first = _day(start, "--from") if start is not None else None
    last = _day(end, "--to") if end is not None else None
    now = datetime.now(UTC)
    rt = open_cli_runtime(cfg, config)
    try:  # the daemon's tick of this model waits; a baseline never races it
        with writer_leases(rt, [model_lease(model)], "vigil baseline"):
            if first is not None and last is not None:
                result = move_to_period(rt, model, first, last, by, reason, now)
            else:
                accepted = parse_accepted(accept_category or [])
                result = accept_categories(rt, model, accepted, by, reason, now)
    except BaselineError as exc:
        fail(str(exc))
    except Exception as exc:  # the source is unreachable or the query fails
        fail(rt.redact(f"{model}: baseline failed: {type(exc).__name__}: {exc}"), EXIT_FAILURE)
    finally:
        rt.close()
    resolved = ", ".join(f"#{i}" for i in result.resolved) or "none"
    typer.echo(
        f"{model}: reference v{result.version} in force ({result.rows} rows); "
        f"incidents resolved: {resolved}"
    )
