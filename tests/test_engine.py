"""The SLO and incident engine under a simulated clock: few, true, actionable alerts.

Each test feeds metric values straight into the engine's own step (`apply_value`, then the
same suppression refresh and group flush a tick runs) at chosen instants, on a real store
(SQLite and PostgreSQL), and reads incidents and the outbox back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from alerts.dispatch import flush
from alerts.incidents import acknowledge
from detectors.intervals import wilson_interval
from monitor.core.values import MetricValue
from monitor.engine.runtime import Runtime, open_runtime
from monitor.engine.tick import TickResult, apply_value, refresh_open_incidents
from monitor.store.slis import slo_id
from monitor.store.tables import Incident, IncidentEvent, OutboxMessage, Silence, SLOEvaluation
from tests.builders import T0, build_config, config_dict

MIN = timedelta(minutes=1)


class Engine:
    """A store and a config whose SLOs the tests feed by index."""

    def __init__(self, db_url: str, tmp_path: Path, slos: list[dict[str, Any]], **routing: Any):
        data = config_dict(db_url, f"sqlite:///{tmp_path / 'unused-source.db'}", slos=slos)
        data["routing"] = {"default": ["chat"], "group_wait": "0s", **routing}
        self.config = build_config(data)
        self.tmp_path = tmp_path
        self.rt: Runtime = open_runtime(self.config, tmp_path)

    def restart(self) -> None:
        self.rt.close()
        self.rt = open_runtime(self.config, self.tmp_path)

    def feed(self, now: Any, values: list[tuple[int, MetricValue]]) -> TickResult:
        result = TickResult("m", now)
        with self.rt.sessions.begin() as session:
            for index, value in values:
                apply_value(
                    session,
                    self.config,
                    "m",
                    self.config.models["m"].slos[index],
                    value,
                    now,
                    result,
                )
            refresh_open_incidents(session, self.config, now)
            flush(session, now)
        return result

    def incidents(self) -> list[Incident]:
        with self.rt.sessions() as session:
            return list(session.scalars(select(Incident).order_by(Incident.id)))

    def messages(self) -> list[OutboxMessage]:
        with self.rt.sessions() as session:
            return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    def events(self, incident_id: int) -> list[str]:
        with self.rt.sessions() as session:
            query = select(IncidentEvent.kind).where(IncidentEvent.incident_id == incident_id)
            return list(session.scalars(query.order_by(IncidentEvent.id)))


@pytest.fixture
def engine(db_url: str, tmp_path: Path) -> Iterator[Any]:
    made: list[Engine] = []

    def make(slos: list[dict[str, Any]], **routing: Any) -> Engine:
        made.append(Engine(db_url, tmp_path, slos, **routing))
        return made[-1]

    yield make
    for e in made:
        e.rt.close()


def accuracy(correct: int, n: int) -> MetricValue:
    return MetricValue("accuracy", correct / n, n, "24h", ci=wilson_interval(correct, n))


def age(seconds: float) -> MetricValue:
    return MetricValue("freshness.prediction_age", seconds, 100, "24h", unit="s")


ACC = {"metric": "accuracy", "objective": ">= 0.9", "severity": "page", "min_samples": 20}
AGE = {"metric": "freshness.prediction_age", "objective": "< 15m", "severity": "page"}
BAD, GOOD = accuracy(700, 1000), accuracy(950, 1000)


def test_a_breach_shorter_than_for_opens_nothing(engine: Any) -> None:
    """With `for: 30m`, a breach that lasts 20 minutes (5-minute ticks) opens no incident."""
    e = engine([{**ACC, "for": "30m"}])
    for i in range(5):
        e.feed(T0 + i * 5 * MIN, [(0, BAD)])
    for i in range(5, 8):
        e.feed(T0 + i * 5 * MIN, [(0, GOOD)])
    assert e.incidents() == []
    assert e.messages() == []


def test_a_sustained_breach_is_one_incident_and_one_notification(engine: Any) -> None:
    """Held past `for:`, a breach opens one incident; two hours more of it send nothing new."""
    e = engine([{**ACC, "for": "30m"}])
    for i in range(30):
        e.feed(T0 + i * 5 * MIN, [(0, BAD)])
    (incident,) = e.incidents()
    assert incident.opened_at == T0 + 30 * MIN
    assert [m.event for m in e.messages()] == ["open"]


def test_a_flapping_metric_is_one_incident_that_does_not_flap(engine: Any) -> None:
    """Breach, good, breach, good...: `resolve_after: 2` keeps one incident open throughout,
    with a single notification, and it resolves only after two good evaluations in a row."""
    e = engine([{**ACC, "resolve_after": 2}])
    for i in range(12):
        e.feed(T0 + i * 5 * MIN, [(0, BAD if i % 2 == 0 else GOOD)])
    (incident,) = e.incidents()
    assert incident.status == "firing"
    assert [m.event for m in e.messages()] == ["open"]
    e.feed(T0 + 60 * MIN, [(0, GOOD)])
    e.feed(T0 + 65 * MIN, [(0, GOOD)])
    (incident,) = e.incidents()
    assert incident.status == "resolved"
    assert [m.event for m in e.messages()] == ["open", "resolve"]


def test_a_breach_on_30_samples_is_uncertain_and_pages_nobody(engine: Any) -> None:
    """24 right of 30 is 0.8 against >= 0.9, but the Wilson interval reaches 0.905: uncertain.
    The same share on 3000 samples is a breach."""
    e = engine([{**ACC, "min_samples": 20}])
    small = accuracy(24, 30)
    assert small.ci is not None and small.ci[1] > 0.9
    result = e.feed(T0, [(0, small)])
    assert [v.status for v in result.verdicts] == ["uncertain"]
    assert e.incidents() == [] and e.messages() == []
    result = e.feed(T0 + 5 * MIN, [(0, accuracy(2400, 3000))])
    assert [v.status for v in result.verdicts] == ["breach"]
    assert len(e.incidents()) == 1


BURN_SLO = {**ACC, "for": "30d", "burn_alerts": "default", "target": 0.99}


def burn_incidents(e: Engine) -> list[Incident]:
    return [i for i in e.incidents() if i.kind == "error_budget_burn"]


def test_a_slow_burn_files_a_ticket_not_a_page(engine: Any) -> None:
    """One bad evaluation in fifty (burn rate 2 against a 99% target) for a day: the 3-day and
    6-hour windows burn above 1, so a ticket opens; the page rules never fire."""
    e = engine([BURN_SLO])
    for i in range(288):  # one day of 5-minute ticks
        e.feed(T0 + i * 5 * MIN, [(0, BAD if i % 50 == 49 else GOOD)])
    (burn,) = burn_incidents(e)
    assert burn.severity == "ticket"
    assert "escalate" not in e.events(burn.id)
    assert not [i for i in e.incidents() if i.kind == "quality_drop"]  # `for: 30d` holds them


def good_history(e: Engine, days: int) -> None:
    """Minute-by-minute good evaluations written straight into the SLI's stored history."""
    sid = slo_id(e.config.models["m"].slos[0])
    rows = [
        {
            "model": "m",
            "slo_id": sid,
            "feature": "",
            "status": "ok",
            "value": 0.95,
            "n": 1000,
            "at": T0 + i * MIN,
        }
        for i in range(days * 24 * 60)
    ]
    with e.rt.sessions.begin() as session:
        session.execute(insert(SLOEvaluation), rows)


def test_a_fast_burn_pages_within_the_workbook_detection_time(engine: Any) -> None:
    """After three good days, every evaluation fails (minute ticks). The workbook's detection
    time for the 14.4x / 1h rule at a 100% error rate is 60 min x 14.4 x 1% = 8.6 minutes:
    a page opens then (not before minute 8, by minute 10), before any ticket rule trips."""
    e = engine([BURN_SLO])
    good_history(e, 3)
    onset = T0 + 3 * 24 * 60 * MIN
    for i in range(15):
        e.feed(onset + i * MIN, [(0, BAD)])
    (burn,) = burn_incidents(e)
    assert burn.severity == "page"
    assert "escalate" not in e.events(burn.id)
    assert 8 * MIN <= burn.opened_at - onset <= 10 * MIN


def test_a_burn_that_speeds_up_escalates_ticket_to_page(engine: Any) -> None:
    """A slow burn's ticket becomes a page when the burn turns fast: one incident, escalated,
    with an update notification rather than a second incident."""
    e = engine([BURN_SLO], repeat_interval="30d")
    for i in range(288):
        e.feed(T0 + i * 5 * MIN, [(0, BAD if i % 50 == 49 else GOOD)])
    later = T0 + 288 * 5 * MIN
    for i in range(20):
        e.feed(later + i * MIN, [(0, BAD)])
    (burn,) = burn_incidents(e)
    assert burn.severity == "page"
    assert "escalate" in e.events(burn.id)
    assert [(m.event, m.payload["reason"]) for m in e.messages()] == [
        ("open", "new alerts"),
        ("update", "escalated"),
    ]


def test_a_silence_records_the_incident_but_sends_nothing(engine: Any) -> None:
    """During a silence an incident is recorded as muted (`silence:<id>`) and not notified;
    when the silence ends and the breach goes on, it is notified then."""
    e = engine([ACC])
    with e.rt.sessions.begin() as session:
        session.add(
            Silence(
                matchers={"eq": {"model": "m"}, "re": {"kind": "quality_.*"}},
                starts_at=T0,
                ends_at=T0 + 60 * MIN,
                created_by="alice",
                comment="retraining",
                created_at=T0,
                source="cli",
            )
        )
    e.feed(T0 + 5 * MIN, [(0, BAD)])
    (incident,) = e.incidents()
    assert incident.suppressed_by == "silence:1"
    assert e.events(incident.id) == ["open", "suppressed"]
    assert e.messages() == []
    e.feed(T0 + 65 * MIN, [(0, BAD)])
    assert e.events(incident.id)[-1] == "unsuppressed"
    assert [m.event for m in e.messages()] == ["open"]


def test_stale_predictions_inhibit_the_quality_alert_of_the_same_model(engine: Any) -> None:
    """While predictions are stale, the accuracy breach of the same model is recorded as
    inhibited and not sent: only the root cause pages."""
    e = engine([ACC, AGE])
    e.feed(T0, [(1, age(3600)), (0, BAD)])
    stale, quality = sorted(e.incidents(), key=lambda i: i.kind != "stale_predictions")
    assert stale.kind == "stale_predictions" and stale.suppressed_by is None
    assert quality.suppressed_by == f"inhibited:{stale.id}"
    (message,) = e.messages()
    assert [a["kind"] for a in message.payload["alerts"]] == ["stale_predictions"]


def test_twenty_drifting_features_are_one_message_naming_the_worst(engine: Any) -> None:
    """Twenty features breaching one drift SLO in one tick are twenty incidents (one per
    feature) but one notification per receiver, its alerts ordered worst first."""
    e = engine(
        [{"metric": "drift.psi", "objective": "< 0.2", "features": "all", "severity": "ticket"}]
    )
    values = [
        (0, MetricValue("drift.psi", 0.25 + i / 100, 5000, "24h", feature=f"f{i:02d}"))
        for i in range(20)
    ]
    e.feed(T0, values)
    assert len(e.incidents()) == 20
    (message,) = e.messages()
    alerts = message.payload["alerts"]
    assert len(alerts) == 20
    assert alerts[0]["feature"] == "f19"


def test_a_restart_in_the_middle_of_an_incident_duplicates_nothing(engine: Any) -> None:
    """The dedup key and the stored group survive a restart: the still-breaching SLO neither
    opens a second incident nor sends a second message."""
    e = engine([ACC])
    e.feed(T0, [(0, BAD)])
    e.restart()
    e.feed(T0 + 5 * MIN, [(0, BAD)])
    e.feed(T0 + 10 * MIN, [(0, BAD)])
    assert len(e.incidents()) == 1
    assert [m.event for m in e.messages()] == ["open"]


def test_acknowledging_stops_reminders(engine: Any) -> None:
    """An unacknowledged incident is reminded every `repeat_interval` (1h here); once someone
    acknowledges it, one update says so and the reminders stop."""
    e = engine([ACC], repeat_interval="1h")
    for i in range(13):  # 0..3h in 15-minute ticks
        e.feed(T0 + i * 15 * MIN, [(0, BAD)])
    assert [m.payload["reason"] for m in e.messages()] == [
        "new alerts",
        "reminder",
        "reminder",
        "reminder",
    ]
    (incident,) = e.incidents()
    now = T0 + 3 * 60 * MIN + MIN
    with e.rt.sessions.begin() as session:
        acknowledge(session, session.get(Incident, incident.id), now, "alice", "on it")
        flush(session, now + 5 * MIN)
    for i in range(13, 30):
        e.feed(T0 + i * 15 * MIN, [(0, BAD)])
    reasons = [m.payload["reason"] for m in e.messages()]
    assert reasons[4:] == ["acknowledged"]


def test_an_open_incident_carries_the_latest_value(engine: Any) -> None:
    """While an incident stays open, its alert shows the latest value, sample size and
    interval, so reminders and updates never repeat the number from the opening tick."""
    e = engine([ACC])
    e.feed(T0, [(0, BAD)])
    worse = accuracy(600, 2000)
    e.feed(T0 + 5 * MIN, [(0, worse)])
    (incident,) = e.incidents()
    assert incident.alert["value"] == 0.3
    assert incident.alert["n"] == 2000
    assert tuple(incident.alert["ci"]) == pytest.approx(worse.ci)
