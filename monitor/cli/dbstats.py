"""`vigil db stats`: how big the store is, per table and per model (read-only, safe beside the
daemon): what retention (`retention:` in the config) keeps bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from monitor.cli.common import EXIT_FAILURE, ConfigOption, fail, load
from monitor.cli.table import render_table
from monitor.core.redact import Redactor


def _human(size: int | None) -> str | None:
    if size is None:
        return None
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return None  # pragma: no cover - the loop always returns


def db_stats(
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Rows and bytes per table, and per model its hourly and daily buckets (oldest, newest),
    SLO evaluations and metric points."""
    from monitor.store.db import make_engine
    from monitor.store.stats import model_sizes, table_sizes

    cfg = load(config)
    url = cfg.store.get_secret_value()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        fail("no store yet: nothing has been stored (run `vigil check` or `vigil run`)", 1)
    engine = make_engine(url)
    try:
        tables, method = table_sizes(engine)
        models = model_sizes(engine, tables)
    except Exception as exc:
        fail(Redactor(cfg)(f"cannot read the store: {type(exc).__name__}: {exc}"), EXIT_FAILURE)
    finally:
        engine.dispose()
    if as_json:
        out: dict[str, Any] = {
            "bytes_from": method,
            "tables": [vars(t) for t in tables],
            "models": [m.to_json() for m in models],
        }
        typer.echo(json.dumps(out, indent=2))
        return
    total = sum(t.bytes or 0 for t in tables)
    typer.echo(f"store: {_human(total) if method != 'rows only' else '?'} (bytes from {method})")
    typer.echo(
        render_table(
            [{"table": t.table, "rows": t.rows, "bytes": _human(t.bytes)} for t in tables],
            ["table", "rows", "bytes"],
        )
    )
    typer.echo("")
    rows = [
        {
            **m.to_json(),
            "hourly": m.fine_buckets,
            "daily": m.daily_buckets,
            "oldest": m.oldest_bucket.isoformat(timespec="minutes") if m.oldest_bucket else None,
            "newest": m.newest_bucket.isoformat(timespec="minutes") if m.newest_bucket else None,
            "bytes": _human(m.bytes),
        }
        for m in models
    ]
    columns = ["model", "hourly", "daily", "oldest", "newest", "evaluations", "metric_points"]
    typer.echo(render_table(rows, [*columns, "bytes"]))
