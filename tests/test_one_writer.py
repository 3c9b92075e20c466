"""One writer per model: `vigil check`, `vigil backtest` and `vigil report weekly --send` take
the leases a daemon takes (the SQLite lock file, PostgreSQL advisory locks) and refuse with
exit 3 while a daemon holds them, so no row is ever counted twice.

The "daemon" here is a real lease holder (the same `SoleOwner` / `AdvisoryLocks` objects
`vigil run` uses) that ticks the model while it holds the lease, as the daemon does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from monitor.cli.main import app
from monitor.engine.runtime import open_runtime
from monitor.engine.tick import tick
from monitor.service.leases import (
    REPORT_LEASE,
    Coordinator,
    SoleOwner,
    coordinator_for,
    model_lease,
)
from monitor.store.db import make_engine
from monitor.store.state import load_buckets
from tests.builders import add_predictions, build_config, config_dict, create_source, hourly

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def _daemon_like(store_url: str) -> Coordinator:
    """The coordinator `vigil run` would build for this store, holding model `m`'s lease."""
    engine = make_engine(store_url)
    try:
        leases, _ = coordinator_for(engine)
    finally:
        engine.dispose()
    assert leases.acquire(model_lease("m")) is True
    return leases


def _rows_summed(store_url: str) -> int:
    engine = make_engine(store_url)
    try:
        with Session(engine) as session:
            buckets = load_buckets(session, "m", NOW - timedelta(days=30), NOW + timedelta(days=1))
    finally:
        engine.dispose()
    return sum(summary.n for _, summary in buckets)


def _source_rows(source: sa.Engine) -> int:
    with source.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM predictions")).scalar_one())


def _check(config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", "--config", str(config), "--at", NOW.isoformat()])
    return result.exit_code, result.output


@pytest.fixture
def setup(two_db_urls: tuple[str, str], tmp_path: Path) -> tuple[str, sa.Engine, Path]:
    store_url, source_url = two_db_urls
    source = create_source(source_url)
    add_predictions(source, 1, hourly(NOW - timedelta(hours=3), 120))
    data = config_dict(store_url, source_url)
    config = tmp_path / "vigil.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return store_url, source, config


def test_check_beside_a_daemon_refuses_and_rows_are_counted_once(
    setup: tuple[str, sa.Engine, Path],
) -> None:
    store_url, source, config = setup
    cfg = build_config(yaml_data(config))
    rt = open_runtime(cfg, config.parent)  # migrates the store, as the daemon's start does
    daemon = _daemon_like(store_url)
    try:
        code, output = _check(config)
        assert code == 3, output
        assert "refused" in output and "vigil run" in output
        assert _rows_summed(store_url) == 0  # the refused check read nothing

        tick(rt, "m", NOW)  # the daemon's tick, under its lease
        add_predictions(source, 1000, hourly(NOW - timedelta(minutes=50), 40))
        code, output = _check(config)
        assert code == 3, output
    finally:
        daemon.close()
        rt.close()
    code, output = _check(config)  # the daemon is gone: check may tick now
    assert code in (0, 1), output
    assert _rows_summed(store_url) == _source_rows(source) == 160


def test_report_send_refuses_beside_the_daemon_that_sends_it(
    setup: tuple[str, sa.Engine, Path],
) -> None:
    store_url, _, config = setup
    build = open_runtime(build_config(yaml_data(config)), config.parent)
    build.close()
    engine = make_engine(store_url)
    try:
        leases, _ = coordinator_for(engine)
    finally:
        engine.dispose()
    assert leases.acquire(REPORT_LEASE) is True
    try:
        result = CliRunner().invoke(
            app, ["report", "weekly", "--config", str(config), "--week", "2026-W45"]
        )
        assert result.exit_code == 3, result.output
        assert "report" in result.output and "refused" in result.output
    finally:
        leases.close()


def test_backtest_refuses_a_replay_store_a_daemon_uses(tmp_path: Path) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    create_source(source_url)
    out = tmp_path / "replay"
    out.mkdir()
    live = out / "backtest.db"
    data = config_dict(f"sqlite:///{live}", source_url)
    config = tmp_path / "vigil.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    daemon = SoleOwner(live.with_name("backtest.db.lock"))
    live.write_bytes(b"live store")
    try:
        result = CliRunner().invoke(
            app,
            [
                "backtest",
                "--config",
                str(config),
                "--from",
                "2026-11-01",
                "--to",
                "2026-11-02",
                "--out",
                str(out),
            ],
        )
    finally:
        daemon.close()
    assert result.exit_code == 3, result.output
    assert live.read_bytes() == b"live store"  # not deleted, not rebuilt


def yaml_data(config: Path) -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load(config.read_text(encoding="utf-8"))
    return loaded
