"""`vigil status`, `vigil check --dry-run` and `vigil baseline`, run in-process against a real
store (SQLite and PostgreSQL) holding a quality incident and a new-category incident."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from monitor.cli.main import app
from monitor.config import load_config
from monitor.engine.runtime import open_runtime
from monitor.engine.tick import tick
from monitor.store.tables import (
    Incident,
    IncidentEvent,
    MetricPoint,
    OutboxMessage,
    ReferenceVersion,
    SLOEvaluation,
    SLOState,
    Watermark,
)
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
H = timedelta(hours=1)
NEW_CATEGORIES = {
    "metric": "dq.new_categories",
    "window": "24h",
    "objective": "< 1",
    "severity": "ticket",
}


class Store:
    """A config file, its source and its store, after one tick that opened two incidents:
    accuracy 0 on 40 labelled rows, and a country (`XX`) the reference never saw."""

    def __init__(self, store_url: str, source_url: str, tmp_path: Path):
        self.store_url, self.tmp_path = store_url, tmp_path
        self.source = create_source(source_url, n_reference=200)
        ids = add_predictions(self.source, 1, hourly(T0, 40), score=0.9, countries=["DE", "XX"])
        add_labels(self.source, [(i, T0 + 50 * timedelta(minutes=1), 0) for i in ids])
        data = config_dict(store_url, source_url)
        data["models"]["m"]["slos"].append(NEW_CATEGORIES)
        data["routing"]["group_wait"] = "0s"
        data["receivers"]["chat"]["slack"]["outfile"] = str(tmp_path / "slack.jsonl")
        self.path = write_config(tmp_path / "vigil.yaml", data)
        self.config = load_config(self.path)
        self.tick(T0 + H)

    def tick(self, now: Any) -> None:
        rt = open_runtime(self.config, self.tmp_path)
        tick(rt, "m", now)
        rt.close()

    def rows(self, table: Any) -> list[tuple[Any, ...]]:
        """Every row of a table as plain tuples, in a stable order: for before/after checks."""
        engine = sa.create_engine(self.store_url)
        with engine.connect() as conn:
            found = sorted(tuple(map(str, r)) for r in conn.execute(sa.select(table.__table__)))
        engine.dispose()
        return found

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        tables = (
            Incident,
            IncidentEvent,
            OutboxMessage,
            SLOEvaluation,
            SLOState,
            MetricPoint,
            Watermark,
            ReferenceVersion,
        )
        return {t.__tablename__: self.rows(t) for t in tables}

    def incidents(self) -> list[Incident]:
        engine = sa.create_engine(self.store_url)
        with Session(engine) as session:
            found = list(session.scalars(sa.select(Incident).order_by(Incident.id)))
        engine.dispose()
        return found

    def events(self, incident_id: int) -> list[tuple[str, str]]:
        engine = sa.create_engine(self.store_url)
        with Session(engine) as session:
            query = sa.select(IncidentEvent.kind, IncidentEvent.actor).where(
                IncidentEvent.incident_id == incident_id
            )
            found = [(k, a) for k, a in session.execute(query.order_by(IncidentEvent.id))]
        engine.dispose()
        return found

    def versions(self) -> list[ReferenceVersion]:
        engine = sa.create_engine(self.store_url)
        with Session(engine) as session:
            query = sa.select(ReferenceVersion).order_by(ReferenceVersion.version)
            found = list(session.scalars(query))
        engine.dispose()
        return found


@pytest.fixture
def store(two_db_urls: tuple[str, str], tmp_path: Path) -> Iterator[Store]:
    made = Store(*two_db_urls, tmp_path)
    yield made
    made.source.dispose()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def by_kind(store: Store) -> dict[str, Incident]:
    return {i.kind: i for i in store.incidents()}


# -- vigil status ------------------------------------------------------------------------------


def test_status_shows_every_slo_and_the_open_incidents_without_writing(store: Store) -> None:
    before = store.snapshot()
    code, out = run("status", "-c", str(store.path), "--json")
    assert code == 0
    model = json.loads(out)["models"]["m"]
    accuracy = next(r for r in model["slos"] if r["slo"].startswith("accuracy"))
    assert (accuracy["verdict"], accuracy["value"], accuracy["n"]) == ("breach", 0.0, 40)
    assert accuracy["threshold"] == ">= 0.9" and accuracy["derived"]
    assert accuracy["rule"] == "interval"
    low, high = accuracy["interval"]
    assert 0.0 <= low <= high < 0.9
    new = next(r for r in model["slos"] if r["slo"].startswith("dq.new_categories"))
    assert (new["feature"], new["value"], new["verdict"]) == ("country", 1.0, "breach")
    kinds = sorted(i["kind"] for i in model["open_incidents"])
    assert kinds == ["quality_drop", "schema_change"]
    code, text = run("status", "-c", str(store.path))
    assert code == 0
    assert "accuracy>=0.9@24h: breach by interval" in text
    assert "open incidents: 2" in text
    assert store.snapshot() == before


def test_status_without_a_store_says_so(tmp_path: Path) -> None:
    data = config_dict(f"sqlite:///{tmp_path / 'none.db'}", f"sqlite:///{tmp_path / 'src.db'}")
    path = write_config(tmp_path / "vigil.yaml", data)
    code, out = run("status", "-c", str(path))
    assert code == 1 and "no store yet" in out
    assert not (tmp_path / "none.db").exists()


# -- vigil check --dry-run ---------------------------------------------------------------------


def test_check_dry_run_judges_but_writes_and_sends_nothing(store: Store) -> None:
    """New rows arrive; a dry run reads and judges them (exit 1: breached) and says how it
    kept the store untouched; every table is as before and no message left."""
    ids = add_predictions(store.source, 100, hourly(T0 + 2 * H, 30), score=0.9)
    add_labels(store.source, [(i, T0 + 3 * H, 0) for i in ids])
    slack = store.tmp_path / "slack.jsonl"
    sent = slack.read_text() if slack.exists() else ""
    before = store.snapshot()
    at = (T0 + 4 * H).isoformat()
    code, out = run("check", "-c", str(store.path), "--at", at, "--dry-run")
    assert code == 1, out
    method = "copy of the SQLite store" if store.store_url.startswith("sqlite") else "rolled back"
    assert "dry run: nothing is written or sent" in out and method in out
    assert "accuracy>=0.9@24h: breach (value 0, n=70)" in out
    assert store.snapshot() == before
    assert (slack.read_text() if slack.exists() else "") == sent
    code, out = run("check", "-c", str(store.path), "--at", at)  # the real one does write
    assert code == 1
    assert store.snapshot()["slo_evaluations"] != before["slo_evaluations"]


# -- vigil baseline ----------------------------------------------------------------------------


def test_accepting_a_category_records_who_and_why_and_resolves_its_incident(
    store: Store,
) -> None:
    code, out = run(
        "baseline",
        "-c",
        str(store.path),
        "m",
        "--accept-category",
        "country=XX",
        "--by",
        "alice",
        "--reason",
        "new market launched",
    )
    assert code == 0, out
    incidents = by_kind(store)
    schema, quality = incidents["schema_change"], incidents["quality_drop"]
    assert schema.status == "resolved" and quality.status == "firing"
    assert f"#{schema.id}" in out and f"#{quality.id}" not in out
    assert store.events(schema.id)[-2:] == [("baseline", "alice"), ("resolve", "alice")]
    first, second = store.versions()
    assert (first.version, first.origin) == (1, "config")
    assert (second.version, second.origin, second.created_by) == (2, "categories", "alice")
    assert second.accepted == {"country": ["XX"]}
    assert second.reason == "new market launched"
    assert "XX" in second.payload["categorical"]["country"]["counts"]
    assert "XX" not in first.payload["categorical"]["country"]["counts"]
    # The next tick judges against the new reference: XX is no longer new, nothing reopens.
    store.tick(T0 + 2 * H)
    assert by_kind(store)["schema_change"].id == schema.id
    assert len(store.incidents()) == 2


def test_moving_the_reference_to_a_period_refits_it_there(store: Store) -> None:
    day = T0.date().isoformat()
    code, out = run(
        "baseline",
        "-c",
        str(store.path),
        "m",
        "--from",
        day,
        "--to",
        day,
        "--by",
        "bob",
        "--reason",
        "retrained model",
    )
    assert code == 0, out
    latest = store.versions()[-1]
    assert (latest.version, latest.origin, latest.created_by) == (2, "period", "bob")
    assert latest.payload["n"] == 40  # the 40 predictions of that day
    assert latest.payload["categorical"]["country"]["counts"] == {"DE": 20, "XX": 20}
    assert latest.period_start is not None and latest.period_start.date() == T0.date()
    assert by_kind(store)["schema_change"].status == "resolved"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--accept-category", "colour=red"], "not a categorical feature"),
        (["--accept-category", "country"], "write feature=value"),
        (["--from", "2020-01-01", "--to", "2020-01-02"], "no predictions"),
        (["--from", "2020-01-01"], "go together"),
        ([], "give either"),
    ],
)
def test_a_baseline_that_cannot_be_taken_changes_nothing(
    store: Store, args: list[str], message: str
) -> None:
    before = store.snapshot()
    code, out = run("baseline", "-c", str(store.path), "m", "--by", "a", "--reason", "r", *args)
    assert code == 2 and message in out
    assert store.snapshot() == before
