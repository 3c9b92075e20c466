"""What every `vigil` sub-command shares: loading the config, failing with one screen and an
exit code, and opening the store. Sub-command modules import this, never `main`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from monitor.config import ConfigError, VigilConfig, load_config

if TYPE_CHECKING:  # the engine (pandas, SQLAlchemy) loads only for commands that tick
    from monitor.engine.runtime import Runtime

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The Vigil YAML config file.")]
EXIT_BREACH, EXIT_USAGE, EXIT_FAILURE = 1, 2, 3


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def load(path: Path) -> VigilConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        fail(exc.render())


def open_cli_runtime(cfg: VigilConfig, config_path: Path) -> Runtime:
    """Open the store for a one-shot command; an unreachable store is a one-line failure."""
    from monitor.core.redact import Redactor
    from monitor.engine.runtime import open_runtime
    from monitor.service.logs import configure
    from monitor.store.db import StoreError

    configure(redact=Redactor(cfg))
    try:
        return open_runtime(cfg, config_path.resolve().parent)
    except StoreError as exc:
        fail(str(exc), EXIT_FAILURE)
    except Exception as exc:  # an unreachable store: say so without a traceback
        fail(Redactor(cfg)(f"cannot open the store: {type(exc).__name__}: {exc}"), EXIT_FAILURE)


@contextmanager
def writer_leases(
    rt: Runtime, required: list[str], what: str, optional: tuple[str, ...] = ()
) -> Iterator[set[str]]:
    """Hold, for the whole command, the leases a daemon holds for the same work, or refuse
    with exit 3: `vigil check` ticking a model beside the daemon that owns it would read its
    new rows a second time and count them twice.

    On a SQLite store that is the daemon's lock file (the whole store); on PostgreSQL one
    advisory lock per lease (`model:<name>`, `report`), all or none. `optional` leases are
    taken when free (`outbox`: otherwise the daemon that holds it delivers). Yields the
    leases held.
    """
    from monitor.service.leases import LeaseError, coordinator_for

    if not required and not optional:
        yield set()
        return
    try:
        leases, _ = coordinator_for(rt.store)
    except LeaseError as exc:
        rt.close()
        fail(f"{what}: refused, {exc}", EXIT_FAILURE)
    try:
        busy = [name for name in required if not leases.acquire(name)]
        if busy:
            leases.close()
            rt.close()
            fail(
                f"{what}: refused, a running `vigil run` on this store holds the lease(s) "
                f"{', '.join(busy)}; doing the same work here too would count rows or send "
                "messages twice. Stop that daemon, or read its results (/metrics, "
                "`vigil incidents list`).",
                EXIT_FAILURE,
            )
        for name in optional:
            leases.acquire(name)
        yield set(leases.held())
    finally:
        leases.close()
