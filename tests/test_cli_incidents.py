"""`vigil incidents` and `vigil silence`, run in-process on a store with a real incident."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli.main import app
from monitor.engine.runtime import open_runtime
from monitor.engine.tick import tick
from tests.builders import (
    T0,
    add_labels,
    add_predictions,
    config_dict,
    create_source,
    hourly,
    write_config,
)

runner = CliRunner()


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A store holding one firing accuracy incident: 40 labelled predictions, all wrong."""
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    source = create_source(source_url, n_reference=200)
    ids = add_predictions(source, 1, hourly(T0, 40), score=0.9)
    add_labels(source, [(i, T0 + timedelta(minutes=50), 0) for i in ids])
    data = config_dict(f"sqlite:///{tmp_path / 'store.db'}", source_url)
    data["routing"]["group_wait"] = "0s"
    data["receivers"]["chat"]["slack"]["outfile"] = str(tmp_path / "slack.jsonl")
    path = write_config(tmp_path / "vigil.yaml", data)
    from monitor.config import load_config

    rt = open_runtime(load_config(path), tmp_path)
    tick(rt, "m", T0 + timedelta(hours=1))
    rt.close()
    return path


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_list_show_ack_and_resolve(config_path: Path) -> None:
    """The open incident is listed (table and JSON), shown with its events, acknowledged by
    someone, then resolved by hand; each change is an event with its actor and reason."""
    code, out = run("incidents", "list", "-c", str(config_path))
    assert code == 0 and "quality_drop" in out and "firing" in out
    code, out = run("incidents", "list", "-c", str(config_path), "--json")
    (row,) = json.loads(out)
    assert row["status"] == "firing" and row["kind"] == "quality_drop" and row["n"] == 40
    code, out = run(
        "incidents",
        "ack",
        "-c",
        str(config_path),
        str(row["id"]),
        "--by",
        "alice",
        "--reason",
        "looking",
    )
    assert code == 0 and "acknowledged by alice" in out
    code, out = run("incidents", "ack", "-c", str(config_path), str(row["id"]), "--by", "bob")
    assert code == 2 and "not firing" in out
    code, out = run("incidents", "resolve", "-c", str(config_path), str(row["id"]), "--by", "alice")
    assert code == 0
    code, out = run("incidents", "show", "-c", str(config_path), str(row["id"]), "--json")
    shown = json.loads(out)
    assert shown["status"] == "resolved"
    assert [(e["kind"], e["actor"]) for e in shown["events"]] == [
        ("open", "vigil"),
        ("acknowledge", "alice"),
        ("resolve", "alice"),
    ]
    code, out = run("incidents", "list", "-c", str(config_path), "--json")
    assert json.loads(out) == []
    code, out = run("incidents", "show", "-c", str(config_path), "999")
    assert code == 2 and "no incident 999" in out


def test_silence_add_list_expire(config_path: Path) -> None:
    """A silence from the command line is recorded with who and why, listed while active,
    and gone from the active list once expired; a malformed matcher is refused."""
    code, out = run(
        "silence",
        "add",
        "-c",
        str(config_path),
        "model=m",
        "kind=~quality_.*",
        "--for",
        "2h",
        "--by",
        "bob",
        "--comment",
        "retraining",
    )
    assert code == 0 and out.startswith("silence 1 until")
    code, out = run("silence", "list", "-c", str(config_path), "--json")
    (row,) = json.loads(out)
    assert row["matchers"] == "model=m kind=~quality_.*" and row["by"] == "bob"
    code, out = run("silence", "expire", "-c", str(config_path), "1")
    assert code == 0
    code, out = run("silence", "list", "-c", str(config_path), "--json")
    assert json.loads(out) == []
    code, out = run("silence", "list", "-c", str(config_path), "--all", "--json")
    assert len(json.loads(out)) == 1
    code, out = run(
        "silence",
        "add",
        "-c",
        str(config_path),
        "model",
        "--for",
        "1h",
        "--by",
        "b",
        "--comment",
        "c",
    )
    assert code == 2 and "not a matcher" in out


def test_config_silences_are_synced_into_the_store(tmp_path: Path) -> None:
    """Silences declared in the config appear in the store at start, replacing the previous
    config's; silences added from the command line are kept."""
    data = config_dict(f"sqlite:///{tmp_path / 'store.db'}", f"sqlite:///{tmp_path / 's.db'}")
    data["silences"] = [
        {
            "matchers": {"model": "m"},
            "starts_at": "2026-11-01T00:00:00Z",
            "ends_at": "2099-01-01T00:00:00Z",
            "comment": "maintenance",
        },
    ]
    path = write_config(tmp_path / "vigil.yaml", data)
    from monitor.config import load_config

    open_runtime(load_config(path), tmp_path).close()
    open_runtime(load_config(path), tmp_path).close()
    code, out = run("silence", "list", "-c", str(path), "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["source"] == "config" and row["comment"] == "maintenance"


def test_receivers_of_nested_routes_are_checked(tmp_path: Path) -> None:
    """A receiver named only in a nested route must exist too; the error names its path."""
    data = config_dict("sqlite:///x.db", "sqlite:///y.db")
    data["routing"]["routes"] = [
        {
            "match": {"severity": "page"},
            "routes": [{"match": {"team": "fraud"}, "receivers": ["pager"]}],
        }
    ]
    path = write_config(tmp_path / "vigil.yaml", data)
    code, out = run("config", "check", str(path))
    assert code == 2
    assert "routing.routes.0.routes.0.receivers.0: no receiver named 'pager'" in out
