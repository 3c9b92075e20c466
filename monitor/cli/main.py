"""The `vigil` command. Every error a user can cause ends in a one-screen message, no traceback."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from monitor import __version__
from monitor.cli.baseline import baseline
from monitor.cli.common import (
    EXIT_BREACH,
    EXIT_FAILURE,
    EXIT_USAGE,
    ConfigOption,
    fail,
    load,
    open_cli_runtime,
    writer_leases,
)
from monitor.cli.dbstats import db_stats
from monitor.cli.health import health, web_config
from monitor.cli.incidents import incidents_app, silence_app
from monitor.cli.notify import bugs_app, outbox_app
from monitor.cli.report import report_app
from monitor.cli.status import status
from monitor.config.models import VigilConfig

if TYPE_CHECKING:  # the engine loads only for commands that tick
    from monitor.engine.runtime import Runtime

app = typer.Typer(
    help="Vigil watches ML models in production and tells on-call when they break.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the state store.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
db_app.command("stats")(db_stats)
app.add_typer(incidents_app, name="incidents")
app.add_typer(silence_app, name="silence")
app.add_typer(report_app, name="report")
app.add_typer(bugs_app, name="bugs")
app.add_typer(outbox_app, name="outbox")
app.command()(status)
app.command()(baseline)
app.command()(health)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vigil {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Vigil: rolling quality, drift and freshness SLOs for ML models, with alerting."""


@config_app.command("check")
def config_check(path: Annotated[Path, typer.Argument(help="The config file to check.")]) -> None:
    """Validate a config; print every problem with its line and field, exit 2 if any."""
    config = load(path)
    if pushdown_problems(config):
        raise typer.Exit(EXIT_USAGE)
    explained = [
        f"  models.{name}.slos[{i}] ({slo.metric} {slo.objective.text}): "
        + explain_objective(slo.objective.text)
        for name, model in config.models.items()
        for i, slo in enumerate(model.slos)
        if slo.objective.relative
    ]
    typer.echo(f"{path}: ok ({len(config.models)} model(s), {len(config.receivers)} receiver(s))")
    for line in explained:
        typer.echo(line)


def explain_objective(text: str) -> str:
    """A relative objective in words, for `config check` and `metrics`."""
    if text == "auto":
        return (
            "threshold = the metric on the reference, 3 standard deviations towards worse, "
            "the sd being that of a window of the evaluated window's size less the reference "
            "(both are samples); resolved at each evaluation, judged on the point estimate"
        )
    return (
        f"threshold = {text.split(' ', 1)[1]}, with `reference` the metric on the labelled "
        "reference; resolved at each evaluation, judged with the usual rules"
    )


def pushdown_problems(config: VigilConfig) -> bool:
    """For each `compute: pushdown` model, what its engine cannot compute, said now rather
    than at the first tick; also what push-down does not count. True if one cannot run."""
    from monitor.ingest.pushdown_label_source import LABELS_NOT_PUSHED, check_labels
    from monitor.ingest.pushdown_source import NOT_PUSHED, check_pushdown
    from monitor.ingest.sources import REFERENCE_ROW_LIMIT
    from monitor.store.db import make_engine

    failed = False
    for name, model in config.models.items():
        if model.compute != "pushdown":
            continue
        engine = make_engine(config.sources[model.source].url.get_secret_value())
        try:
            found = check_pushdown(model, engine)
            labels = None if found or model.labels is None else check_labels(model, engine)
        except Exception as exc:  # an unreachable source is reported, not a traceback
            reason = type(exc).__name__
            typer.echo(f"models.{name}: cannot inspect the source for push-down: {reason}")
            continue
        finally:
            engine.dispose()
        for problem in found:
            typer.echo(f"models.{name}.compute: pushdown: {problem}", err=True)
        failed |= bool(found)
        if not found:
            notes = "; ".join(NOT_PUSHED)
            typer.echo(f"models.{name}: summaries pushed down; not counted there: {notes}")
        if labels:  # they still work, read row by row: said now, not found at 3 a.m.
            why = "; ".join(labels)
            typer.echo(f"models.{name}: labels NOT pushed down (read row by row): {why}")
        elif labels is not None:
            notes = "; ".join(LABELS_NOT_PUSHED)
            typer.echo(f"models.{name}: labels pushed down; not counted there: {notes}")
        if not found:
            rest = [f"the reference fit (its rows are read once, at most {REFERENCE_ROW_LIMIT:,})"]
            if model.labels is not None:
                rest.append("the retry of labels held for their prediction (by id, row by row)")
            if model.predictions.scores:
                rest.append("the predictions' per-class score histograms (scores:): not kept")
            typer.echo(f"models.{name}: not pushed down: {'; '.join(rest)}")
    return failed


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption) -> None:
    """Apply the store's schema migrations (also done at every daemon start)."""
    from monitor.store.db import StoreError, make_engine, upgrade

    cfg = load(config)
    engine = make_engine(cfg.store.get_secret_value())
    try:
        revision = upgrade(engine)
    except StoreError as exc:
        fail(str(exc), EXIT_FAILURE)
    typer.echo(f"store at schema revision {revision}")


def _parse_at(text: str) -> datetime:
    """`--at` as an aware time; a time without an offset is UTC, like every time Vigil shows."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--at: not an ISO time: {text!r} (write e.g. 2026-11-04T12:00 or ...+01:00)")
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@app.command()
def check(
    config: ConfigOption,
    at: Annotated[
        str | None, typer.Option(help="Evaluate as of this ISO time (default: now).")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Judge without writing to the store or sending anything (SQLite: on a copy; "
            "PostgreSQL: in a transaction that is rolled back).",
        ),
    ] = False,
) -> None:
    """Run one tick for every model; exit 1 if any SLO is breached (for CI or cron)."""
    from alerts.dispatch import deliver
    from alerts.notifiers.registry import build_notifiers
    from monitor.service.leases import OUTBOX_LEASE, model_lease

    cfg = load(config)
    now = _parse_at(at) if at else datetime.now(UTC)
    if dry_run:
        _dry_check(cfg, now)
        return
    rt = open_cli_runtime(cfg, config)
    models = [model_lease(name) for name in cfg.models]
    with writer_leases(rt, models, "vigil check", optional=(OUTBOX_LEASE,)) as held:
        breached, failed = _tick_all(rt, now)
        if OUTBOX_LEASE in held:  # otherwise the daemon that holds it delivers them
            notifiers = build_notifiers(cfg, rt.state_dir)
            deliver(rt.sessions, notifiers, now, cfg.outbox_max_age, force=True)
    rt.close()
    _exit(breached, failed)


def _dry_check(cfg: VigilConfig, now: datetime) -> None:
    from monitor.core.redact import Redactor
    from monitor.engine.dry_run import dry_runtime
    from monitor.service.logs import configure
    from monitor.store.db import StoreError

    configure(redact=Redactor(cfg))
    try:
        with dry_runtime(cfg) as run:
            typer.echo(f"dry run: nothing is written or sent (the tick runs on {run.method})")
            breached, failed = _tick_all(run.runtime, now)
    except StoreError as exc:
        fail(str(exc), EXIT_FAILURE)
    _exit(breached, failed)


def _tick_all(rt: Runtime, now: datetime) -> tuple[bool, bool]:
    from monitor.engine.tick import tick

    breached = failed = False
    for name in rt.config.models:
        try:
            result = tick(rt, name, now)
        except Exception as exc:
            failed = True
            typer.echo(rt.redact(f"{name}: tick failed: {type(exc).__name__}: {exc}"), err=True)
            continue
        for verdict in result.verdicts:
            feature = f" [{verdict.feature}]" if verdict.feature else ""
            value = "n/a" if verdict.value.value is None else f"{verdict.value.value:.4g}"
            typer.echo(
                f"{name} {verdict.slo_id}{feature}: {verdict.status} "
                f"(value {value}, n={verdict.value.n})"
            )
        breached |= result.breached
    return breached, failed


def _exit(breached: bool, failed: bool) -> None:
    if failed:
        raise typer.Exit(EXIT_FAILURE)
    if breached:
        raise typer.Exit(EXIT_BREACH)


class LogFormatChoice(StrEnum):
    auto = "auto"
    json = "json"
    console = "console"


@app.command()
def run(
    config: ConfigOption,
    log_format: Annotated[
        LogFormatChoice,
        typer.Option(
            "--log-format",
            help="json (production), console (a terminal), auto: json unless stderr is a tty.",
        ),
    ] = LogFormatChoice.auto,
    web_config_file: Annotated[
        Path | None,
        typer.Option(
            "--web-config-file",
            "--web.config.file",
            help="TLS and basic auth for the endpoints, in Prometheus' web-config format "
            "(default: server.web_config_file).",
        ),
    ] = None,
) -> None:
    """Run the daemon: scheduled ticks, the outbox sender, the status page at /, /metrics,
    /healthz and /readyz, until SIGTERM or SIGINT. Exit 3 if another daemon owns a SQLite
    store, 2 if the web config cannot be used."""
    import os

    from monitor.core.clock import SystemClock
    from monitor.service.daemon import Daemon
    from monitor.service.leases import LeaseError, startup_lock
    from monitor.service.logs import configure, wants_json

    cfg = load(config)
    web = web_config(cfg, config, web_config_file)
    with startup_lock(cfg.store.get_secret_value()):  # replicas migrate one at a time
        rt = open_cli_runtime(cfg, config)
    configure(json_output=wants_json(log_format.value, sys.stderr), redact=rt.redact)
    try:
        daemon = Daemon(rt, SystemClock(), config_path=Path(config), web=web)
    except LeaseError as exc:
        rt.close()
        fail(str(exc), EXIT_FAILURE)
    code = daemon.serve_forever()
    if daemon.abandoned:  # a tick still hangs on its source: leave without waiting for it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    rt.close()
    raise typer.Exit(code)


@app.command()
def backtest(
    config: ConfigOption,
    start: Annotated[str, typer.Option("--from", help="ISO date or time to replay from (UTC).")],
    end: Annotated[str, typer.Option("--to", help="ISO date or time to replay to (UTC).")],
    step: Annotated[
        str | None, typer.Option(help="Clock step, e.g. 1h (default: the shortest schedule).")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Where to write the replay's store and results.")
    ] = Path("vigil-backtest"),
) -> None:
    """Replay history through the SLO and incident engine; print what would have fired."""
    from monitor.core.durations import parse_duration
    from monitor.demo.replay import terminal_progress
    from monitor.engine.backtest import run_backtest
    from monitor.service.leases import LeaseError, SoleOwner
    from monitor.service.logs import configure

    cfg = load(config)
    try:
        begin = _utc(start)
        finish = _utc(end)
        stride = parse_duration(step) if step else None
    except ValueError as exc:
        fail(str(exc))
    if finish <= begin:
        fail("--to must be after --from")
    configure(json_output=False)
    replay_store = (out / "backtest.db").resolve()
    try:  # the replay store is rebuilt from scratch: never under a daemon that uses it
        guard = SoleOwner(replay_store.with_name(replay_store.name + ".lock"))
    except LeaseError as exc:
        fail(f"vigil backtest: refused, {exc}", EXIT_FAILURE)
    try:
        result = run_backtest(cfg, begin, finish, out, stride, progress=terminal_progress)
    finally:
        guard.close()
    typer.echo(
        f"{result.ticks} ticks from {begin:%Y-%m-%d %H:%M} to {finish:%Y-%m-%d %H:%M} UTC; "
        f"{len(result.incidents)} incident(s) would have fired:"
    )
    for found in result.incidents:
        target = f" [{found.feature}]" if found.feature else ""
        until = found.resolved_at[:16].replace("T", " ") or "still open"
        muted = f"  (muted: {found.muted})" if found.muted else ""
        why = f"  decided by {found.rule}" if found.rule else ""
        version = f", reference v{found.reference}" if found.reference is not None else ""
        typer.echo(
            f"  {found.opened_at[:16].replace('T', ' ')} -> {until}  ({found.duration})  "
            f"{found.severity:<6} {found.kind}: {found.slo}{target}{muted}{why}{version}"
        )
    for ref in result.references:
        typer.echo(
            f"  {ref.model}: judged against reference v{ref.version} ({ref.origin}) "
            f"from {ref.applies_from[:16].replace('T', ' ')}"
        )
    typer.echo(f"wrote {out / 'incidents.csv'} and {out / 'incidents.json'}")


def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@app.command()
def metrics(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List every metric an SLO can name: family, alert kind, the tasks it applies to, its
    range (null: unbounded) and meaning."""
    import json
    import math

    from detectors.reference_values import RELATIVE_METRICS, higher_is_better
    from detectors.registry import METRICS

    rows: list[dict[str, Any]] = [
        {
            "metric": info.name,
            "family": info.family,
            "alert_kind": info.kind,
            "unit": info.unit or "ratio",
            "needs_labels": info.needs_labels,
            "tasks": sorted(info.tasks),
            "range": [b if math.isfinite(b) else None for b in info.bounds],
            "description": info.description,
            "relative_objectives": info.name in RELATIVE_METRICS,
            "higher_is_better": higher_is_better(info.name),
        }
        for info, _ in METRICS.values()
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    width = max(len(str(r["metric"])) for r in rows)
    for row in rows:
        mark = "R" if row["relative_objectives"] else " "
        typer.echo(f"{row['metric']:<{width}}  {mark}  {row['family']:<12}  {row['description']}")
    relative = explain_objective(">= reference - 0.01")
    typer.echo(
        "\nR: also takes objectives relative to the reference (binary classifiers):\n"
        f"  '>= reference - 0.01', '<= reference * 1.5': {relative}\n"
        f"  'auto': {explain_objective('auto')}"
    )


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo writes its files.")
    ] = Path("vigil-demo"),
) -> None:
    """Simulate six weeks of a fraud model with injected faults and replay them through Vigil."""
    from monitor.demo.replay import render, run_demo, terminal_progress
    from monitor.service.logs import configure

    configure(json_output=False)
    result = run_demo(directory, progress=terminal_progress)
    typer.echo(render(result))


def main() -> None:
    """Console entry point; keeps tracebacks off the screen for anything the user can cause."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
