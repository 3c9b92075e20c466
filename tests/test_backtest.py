"""`vigil backtest` replays the demo's six weeks and lists exactly the injected faults."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from monitor.cli.main import app
from monitor.demo.replay import DemoResult
from monitor.demo.simulate import FAULTS, START, WEEKS


def store_snapshot(path: Path) -> tuple[object, ...]:
    """What a replay must not touch in the demo's own store: incidents, events, outbox."""
    with sqlite3.connect(path) as conn:
        return tuple(
            conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
            for table in ("incidents", "incident_events", "outbox")
        )


def test_backtest_over_the_demo_lists_exactly_the_injected_faults(
    demo_run: DemoResult, tmp_path: Path
) -> None:
    """Replaying the demo's source history with a simulated clock (through the CLI) opens one
    incident per injected fault, each at or after its start and within a day of it, in a
    store of its own; the demo's store is left untouched and nothing is sent."""
    demo = demo_run
    demo_store = store_snapshot(demo.directory / "vigil.db")
    sent_before = demo.slack_file.read_bytes()
    out = tmp_path / "bt"
    end = START + timedelta(days=7 * WEEKS)
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--config",
            str(demo.config_path),
            "--from",
            START.isoformat(),
            "--to",
            end.isoformat(),
            "--step",
            "2h",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    found = json.loads((out / "incidents.json").read_text())
    assert len(found) == len(FAULTS), found
    for fault, incident in zip(FAULTS, found, strict=True):
        opened = incident["opened_at"]
        assert fault.start.isoformat() <= opened <= (fault.start + timedelta(days=1)).isoformat()
        assert incident["resolved_at"], incident
        assert incident["kind"] in {"feature_drift", "quality_drop", "stale_predictions"}
        # Which rule decided the breach that opened it, and against which reference.
        assert incident["rule"] in {"interval", "sequential", "point"}, incident
        assert incident["reference"] == 1
    assert (out / "incidents.csv").read_text().count("\n") == len(FAULTS) + 1
    assert f"{len(FAULTS)} incident(s) would have fired" in result.output
    assert result.output.count(", reference v1") == len(FAULTS)
    assert result.output.count("  decided by ") == len(FAULTS)
    start = START.isoformat()[:16].replace("T", " ")
    # The reference is fitted at the first tick and kept as version 1 of the replay's store.
    assert "fraud-detector: judged against reference v1 (config) from " in result.output
    assert start < result.output.split("reference v1 (config) from ")[1][:16]
    assert store_snapshot(demo.directory / "vigil.db") == demo_store
    assert demo.slack_file.read_bytes() == sent_before
    # History later than the simulated clock is not future-dated: it is what the replay reads
    # next. Only rows dated after the real present would be.
    with sqlite3.connect(out / "backtest.db") as conn:
        [(future,)] = conn.execute("SELECT count(*) FROM seen_rows WHERE kind = 'future'")
    assert future == 0
