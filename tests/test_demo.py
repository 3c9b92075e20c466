"""The demo, end to end: six simulated weeks with three injected faults, replayed through `tick`.

The replay takes about half a minute, so it runs once for this module and every test reads
its result: the incidents and outbox in the store, the Slack payload file and the summary.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from alerts.payloads import alert_from_json
from monitor.demo.replay import DemoResult, fault_for, render
from monitor.demo.simulate import BROKEN_COUNTRY, FAULTS, START, WEEKS, Fault
from monitor.store.tables import AlertGroupMember, Incident, OutboxMessage

pytestmark = pytest.mark.slow
DETECTION_DELAY = timedelta(hours=24)
END = START + timedelta(weeks=WEEKS)


@pytest.fixture(scope="module")
def demo(demo_run: DemoResult) -> DemoResult:
    return demo_run


@pytest.fixture(scope="module")
def payloads(demo: DemoResult) -> list[dict[str, Any]]:
    lines = demo.slack_file.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def outbox(demo: DemoResult) -> list[OutboxMessage]:
    engine = create_engine(f"sqlite:///{demo.directory / 'vigil.db'}")
    with Session(engine) as session:
        rows = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    engine.dispose()
    return rows


@pytest.fixture(scope="module")
def members(demo: DemoResult) -> dict[int, int]:
    """Alert group id -> its incident (each demo fault has its own group)."""
    engine = create_engine(f"sqlite:///{demo.directory / 'vigil.db'}")
    with Session(engine) as session:
        rows = session.execute(select(AlertGroupMember.group_id, AlertGroupMember.incident_id))
        pairs = [(g, i) for g, i in rows]
    engine.dispose()
    assert len({g for g, _ in pairs}) == len(pairs), "a group holds more than one incident"
    return dict(pairs)


def caught_by(fault: Fault, incidents: list[Incident]) -> list[Incident]:
    """Incidents on the fault's SLO (and feature) opened from its start to a day after."""
    return [
        i
        for i in incidents
        if i.metric == fault.slo_metric
        and (fault.feature is None or i.feature == fault.feature)
        and fault.start <= i.opened_at <= fault.start + DETECTION_DELAY
    ]


def test_demo_replays_six_weeks(demo: DemoResult) -> None:
    """Every two-hourly tick ran and read rows: predictions for six weeks, labels behind them."""
    assert demo.ticks == WEEKS * 7 * 12
    assert demo.predictions > 200_000
    assert 0.8 * demo.predictions < demo.labels < demo.predictions


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_each_fault_opens_exactly_one_incident_within_a_day(demo: DemoResult, fault: Fault) -> None:
    """Each injected fault is caught once, on its own SLO (and feature), no earlier than it
    began and within 24 hours, and the incident is resolved after the fault ends."""
    [incident] = caught_by(fault, demo.incidents)
    assert fault.start <= incident.opened_at <= fault.start + DETECTION_DELAY
    assert incident.status == "resolved"
    assert incident.resolved_at is not None
    assert fault.end <= incident.resolved_at <= fault.end + timedelta(days=3)
    assert fault_for(incident) == fault.name


def test_every_incident_belongs_to_a_fault(demo: DemoResult) -> None:
    """No false alarms: as many incidents as faults, each one explained by its fault."""
    assert len(demo.incidents) == len(FAULTS)
    assert sorted(fault_for(i) or "none" for i in demo.incidents) == sorted(f.name for f in FAULTS)


def test_no_incident_in_the_quiet_weeks(demo: DemoResult) -> None:
    """Weeks 1, 2 and 6 (before the first fault, and from a day after the last) are quiet."""
    quiet_until = FAULTS[0].start
    quiet_from = FAULTS[-1].end + timedelta(days=1)
    assert quiet_until >= START + timedelta(weeks=2)
    assert quiet_from <= START + timedelta(weeks=5, days=1)
    loud = [i for i in demo.incidents if i.opened_at < quiet_until or i.opened_at > quiet_from]
    assert loud == []
    assert all(START < i.opened_at < END for i in demo.incidents)


def test_slack_file_has_one_valid_message_per_line(
    demo: DemoResult, payloads: list[dict[str, Any]]
) -> None:
    """One JSON object per line, each a complete chat.postMessage payload within Slack's
    limits: a channel, a non-empty fallback text and 1 to 50 blocks."""
    raw = demo.slack_file.read_text(encoding="utf-8")
    assert raw.endswith("\n")
    assert len(payloads) == len(raw.splitlines())
    for payload in payloads:
        assert isinstance(payload, dict)
        assert payload["channel"] == "#ml-oncall"
        assert isinstance(payload["text"], str) and payload["text"].strip()
        assert isinstance(payload["blocks"], list) and 1 <= len(payload["blocks"]) <= 50
        assert all(isinstance(b, dict) and b.get("type") for b in payload["blocks"])


def test_one_head_per_incident_and_everything_else_in_its_thread(
    demo: DemoResult,
    payloads: list[dict[str, Any]],
    outbox: list[OutboxMessage],
    members: dict[int, int],
) -> None:
    """Each incident posts exactly one head message (no thread_ts) and ends with exactly one
    resolve; reminders while it fires ('update') and the resolve all carry the thread_ts its
    head was delivered with, after the head, so the channel shows one message per incident."""
    heads = [i for i, p in enumerate(payloads) if "thread_ts" not in p]
    assert len(heads) == len(demo.incidents)
    assert all(m.status == "sent" for m in outbox)
    for incident in demo.incidents:
        messages = [m for m in outbox if members[m.group_id] == incident.id]
        events = [m.event for m in messages]
        assert events[0] == "open" and events[-1] == "resolve"
        assert set(events[1:-1]) <= {"update"}
        ref = messages[0].ref
        assert ref and all(m.ref == ref for m in messages)
        title = alert_from_json(incident.alert).title
        # heads and incidents are both in opening order (two incidents may share a title)
        head = heads[demo.incidents.index(incident)]
        assert payloads[head]["blocks"][0]["text"]["text"].endswith(title)
        thread = [i for i, p in enumerate(payloads) if p.get("thread_ts") == ref]
        assert len(thread) == len(messages) - 1
        assert all(head < i for i in thread)
        assert all(payloads[i]["reply_broadcast"] is False for i in thread)
        assert "Resolved" in payloads[thread[-1]]["text"]
        assert not any("Resolved" in payloads[i]["text"] for i in thread[:-1])
        # Reminders come at most every repeat_interval (4h) while the incident fires.
        assert incident.resolved_at is not None
        assert len(messages) - 2 <= (incident.resolved_at - incident.opened_at) / timedelta(hours=4)


def test_render_mentions_each_fault_and_its_incident(demo: DemoResult) -> None:
    """The summary lists every fault, and every incident line names the fault it caught."""
    text = render(demo)
    for fault in FAULTS:
        assert fault.name in text
        assert text.count(f"<- {fault.name}") == 1
    assert "no injected fault" not in text
    assert "still open" not in text
    assert str(demo.slack_file) in text
    assert f"{demo.ticks} two-hourly ticks" in text


def test_demo_writes_a_config_vigil_can_load(demo: DemoResult) -> None:
    from monitor.config import load_config

    config = load_config(demo.config_path)
    assert list(config.models) == ["fraud-detector"]
    assert Path(config.store.get_secret_value().removeprefix("sqlite:///")).exists()


def test_the_one_country_fault_names_its_country(demo: DemoResult, payloads: list[Any]) -> None:
    """The fault whose cause sits in one country: its alert's first root-cause line names it,
    as a performance drop, and the Slack message carries the line."""
    fault = next(f for f in FAULTS if BROKEN_COUNTRY in f.name)
    [incident] = caught_by(fault, demo.incidents)
    causes = incident.alert["root_cause"]
    assert causes[0].startswith(f"country = {BROKEN_COUNTRY}: "), causes
    assert causes[0].endswith("(mostly performance)")
    assert any(
        f"country = {BROKEN_COUNTRY}: " in json.dumps(p, ensure_ascii=False) for p in payloads
    )
