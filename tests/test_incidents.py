"""The incident lifecycle, driven through the real `tick` with explicit times.

Each test builds a source with known rows (tests.builders), opens a runtime on a real store
(SQLite and PostgreSQL) and ticks at chosen instants, then reads incidents, their events and
the outbox back from the store. Routing uses `group_wait: 0s` unless a test says otherwise,
so a message owed by a tick is written by that same tick, and `repeat_interval: 30d`, so
reminders (tested with the outbox) do not interleave with the messages under test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select

import alerts.dispatch
import alerts.outbox
from alerts.incidents import dedup_key
from alerts.router import receivers_for
from monitor.config.alerting import RoutingConfig
from monitor.config.models import SLOConfig
from monitor.engine.runtime import Runtime, open_runtime
from monitor.engine.tick import tick
from monitor.store.slis import slo_id
from monitor.store.tables import (
    AlertGroup,
    AlertGroupMember,
    Incident,
    IncidentEvent,
    OutboxMessage,
    SLOState,
)
from tests.builders import (
    T0,
    add_labels,
    add_predictions,
    build_config,
    config_dict,
    create_source,
    hourly,
)

H = timedelta(hours=1)
ACCURACY_SLO = slo_id(SLOConfig.model_validate({"metric": "accuracy", "objective": ">= 0.9"}))


class World:
    """A source database plus a runtime on the store, reopened on demand like a restart."""

    def __init__(
        self,
        store_url: str,
        source_url: str,
        state_dir: Path,
        top: dict[str, Any] | None = None,
        **overrides: Any,
    ):
        self.source = create_source(source_url)
        data = config_dict(store_url, source_url, **overrides)
        data["routing"]["group_wait"] = "0s"
        data["routing"]["repeat_interval"] = "30d"
        data.update(top or {})
        self.config = build_config(data)
        self.state_dir = state_dir
        self.rt: Runtime = open_runtime(self.config, state_dir)
        self.next_id = 1

    def restart(self) -> None:
        self.rt.close()
        self.rt = open_runtime(self.config, self.state_dir)

    def close(self) -> None:
        self.rt.close()
        self.source.dispose()

    def rows(self, start: datetime, count: int, *, correct: bool, label_at: datetime) -> None:
        """`count` predictions a minute apart from `start`, all scored 0.9 (decision 1), with
        labels arriving at `label_at` that make every one right or every one wrong."""
        ids = add_predictions(self.source, self.next_id, hourly(start, count), score=0.9)
        self.next_id += count
        add_labels(self.source, [(i, label_at, 1 if correct else 0) for i in ids])

    def predictions(self, start: datetime, count: int) -> None:
        add_predictions(self.source, self.next_id, hourly(start, count))
        self.next_id += count

    def tick(self, now: datetime) -> Any:
        return tick(self.rt, "m", now)

    def incidents(self) -> list[Incident]:
        with self.rt.sessions() as session:
            return list(session.scalars(select(Incident).order_by(Incident.id)))

    def outbox(self) -> list[OutboxMessage]:
        with self.rt.sessions() as session:
            return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    def sent_about(self) -> list[tuple[str, str, list[str]]]:
        """(event, receiver, incident keys) of every outbox message, oldest first."""
        return [
            (m.event, m.receiver, [a["incident_key"] for a in m.payload["alerts"]])
            for m in self.outbox()
        ]

    def events(self) -> list[IncidentEvent]:
        with self.rt.sessions() as session:
            return list(
                session.scalars(select(IncidentEvent).order_by(IncidentEvent.at, IncidentEvent.id))
            )

    def count(self, table: Any) -> int:
        with self.rt.sessions() as session:
            return int(session.scalar(select(sa.func.count()).select_from(table)) or 0)


MakeWorld = Callable[..., World]


@pytest.fixture
def make_world(two_db_urls: tuple[str, str], tmp_path: Path) -> Iterator[MakeWorld]:
    worlds: list[World] = []

    def make(top: dict[str, Any] | None = None, **overrides: Any) -> World:
        """A world whose model config has `overrides` and whose top level has `top`."""
        store, source = two_db_urls
        world = World(store, source, tmp_path, top, **overrides)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.close()


def accuracy_slo(**fields: Any) -> list[dict[str, Any]]:
    slo: dict[str, Any] = {
        "metric": "accuracy",
        "window": "24h",
        "objective": ">= 0.9",
        "severity": "page",
        "min_samples": 20,
        "resolve_after": 1,
    }
    slo.update(fields)
    return [slo]


def freshness_slo(**fields: Any) -> list[dict[str, Any]]:
    slo: dict[str, Any] = {
        "metric": "freshness.prediction_age",
        "window": "24h",
        "objective": "< 30m",
        "severity": "page",
        "resolve_after": 1,
    }
    slo.update(fields)
    return [slo]


def breach_at_t0(world: World) -> None:
    """50 wrong predictions in T0's first hour, labelled an hour later: accuracy 0 on n=50."""
    world.rows(T0, 50, correct=False, label_at=T0 + H)


# -- opening and deduplication -----------------------------------------------------------------


def test_breach_opens_exactly_one_incident_with_a_stable_dedup_key(make_world: MakeWorld) -> None:
    """A breach opens one firing incident keyed by a hash of (model, SLO, feature), and one
    'open' outbox message for the default receiver, with the incident's open event."""
    world = make_world()
    breach_at_t0(world)
    result = world.tick(T0 + 2 * H)

    assert [v.status for v in result.verdicts] == ["breach"]
    assert [c.event for c in result.changes] == ["open"]
    [incident] = world.incidents()
    key = dedup_key("m", ACCURACY_SLO, "")
    assert incident.dedup_key == key == result.changes[0].dedup_key
    assert len(key) == 32 and int(key, 16) >= 0
    assert dedup_key("m", ACCURACY_SLO, "amount") != key
    assert dedup_key("other", ACCURACY_SLO, "") != key
    assert (incident.status, incident.opened_at, incident.resolved_at) == (
        "firing",
        T0 + 2 * H,
        None,
    )
    assert (incident.model, incident.slo_id, incident.metric, incident.severity) == (
        "m",
        ACCURACY_SLO,
        "accuracy",
        "page",
    )
    [message] = world.outbox()
    assert world.sent_about() == [("open", "chat", [key])]
    assert message.status == "pending"
    [alert] = message.payload["alerts"]
    assert (alert["value"], alert["n"], alert["status"]) == (0.0, 50, "firing")
    assert [e.kind for e in world.events()] == ["open"]


def test_repeated_breaching_ticks_open_nothing_more(make_world: MakeWorld) -> None:
    """While the breach goes on, later ticks (also after a restart) find the same incident:
    no second incident, no second message, no second event."""
    world = make_world()
    breach_at_t0(world)
    world.tick(T0 + 2 * H)
    [first] = world.incidents()

    result = world.tick(T0 + 3 * H)
    assert [v.status for v in result.verdicts] == ["breach"]
    assert result.changes == []
    world.restart()
    world.rows(T0 + 3 * H, 10, correct=False, label_at=T0 + 4 * H)
    result = world.tick(T0 + 5 * H)
    assert [v.status for v in result.verdicts] == ["breach"]
    assert result.changes == []

    [incident] = world.incidents()
    assert (incident.id, incident.status, incident.opened_at) == (first.id, "firing", T0 + 2 * H)
    assert world.sent_about() == [("open", "chat", [first.dedup_key])]
    assert [e.kind for e in world.events()] == ["open"]


# -- resolution and reopening ------------------------------------------------------------------


def test_recovery_resolves_after_resolve_after_good_evaluations(make_world: MakeWorld) -> None:
    """With resolve_after 2, the first good evaluation keeps the incident firing; the second
    resolves it, records the resolve event and enqueues one 'resolve' message."""
    world = make_world(slos=accuracy_slo(resolve_after=2))
    breach_at_t0(world)
    world.tick(T0 + 2 * H)
    # A day later the bad hour has left the 24h window; only right predictions remain.
    world.rows(T0 + 26 * H, 50, correct=True, label_at=T0 + 27 * H)

    first_good = world.tick(T0 + 28 * H)
    assert [v.status for v in first_good.verdicts] == ["ok"]
    assert first_good.changes == []
    [incident] = world.incidents()
    assert incident.status == "firing"
    assert [m.event for m in world.outbox()] == ["open"]

    second_good = world.tick(T0 + 29 * H)
    assert [c.event for c in second_good.changes] == ["resolve"]
    [incident] = world.incidents()
    assert (incident.status, incident.resolved_at) == ("resolved", T0 + 29 * H)
    assert incident.alert["resolved_at"] is not None
    key = incident.dedup_key
    assert world.sent_about() == [("open", "chat", [key]), ("resolve", "chat", [key])]
    [alert] = world.outbox()[1].payload["alerts"]
    assert (alert["value"], alert["status"]) == (1.0, "resolved")
    events = world.events()
    assert [(e.kind, e.at, e.incident_id) for e in events] == [
        ("open", T0 + 2 * H, incident.id),
        ("resolve", T0 + 29 * H, incident.id),
    ]
    assert all(e.actor == "vigil" and e.reason for e in events)

    # Staying good does not resolve (or notify) twice.
    assert world.tick(T0 + 30 * H).changes == []
    assert len(world.outbox()) == 2


def test_uncertain_or_insufficient_does_not_resolve(make_world: MakeWorld) -> None:
    """Only good evaluations count towards resolution: an empty window (insufficient data)
    and a point below the objective whose interval still reaches it (uncertain) both leave
    the incident open."""
    world = make_world()
    breach_at_t0(world)
    world.tick(T0 + 2 * H)
    result = world.tick(T0 + 40 * H)  # the bad hour has left the window; nothing replaced it
    assert [v.status for v in result.verdicts] == ["insufficient_data"]
    assert result.changes == []
    # 21 of 25 right: 0.84, below 0.9; the Wilson interval reaches above it, but the evidence
    # accumulated since the breach (the sequential rule, issue 13) keeps it a breach: still
    # not a reason to resolve.
    world.rows(T0 + 41 * H, 21, correct=True, label_at=T0 + 42 * H)
    world.rows(T0 + 41 * H + timedelta(minutes=30), 4, correct=False, label_at=T0 + 42 * H)
    result = world.tick(T0 + 43 * H)
    assert [(v.status, v.rule) for v in result.verdicts] == [("breach", "sequential")]
    assert result.verdicts[0].value.value == pytest.approx(0.84)
    assert result.changes == []
    assert [i.status for i in world.incidents()] == ["firing"]
    # Reminders of a still-firing group may go out; a resolve may not.
    messages = world.outbox()
    assert messages[0].event == "open"
    assert "resolve" not in [m.event for m in messages]
    assert all(a["status"] == "firing" for m in messages for a in m.payload["alerts"])


def test_new_breach_after_resolution_opens_a_new_incident_with_the_same_key(
    make_world: MakeWorld,
) -> None:
    """After a resolve and past the `keep_firing_for` cool-down, the next breach is a new
    incident (a new id and a new message) that shares the dedup key; the resolved one stays
    resolved."""
    world = make_world(slos=accuracy_slo(keep_firing_for="1d"))
    breach_at_t0(world)
    world.tick(T0 + 2 * H)
    world.rows(T0 + 26 * H, 50, correct=True, label_at=T0 + 27 * H)
    assert [c.event for c in world.tick(T0 + 28 * H).changes] == ["resolve"]
    world.rows(T0 + 56 * H, 50, correct=False, label_at=T0 + 57 * H)

    result = world.tick(T0 + 58 * H)

    assert [c.event for c in result.changes] == ["open"]
    first, second = world.incidents()
    assert second.id != first.id
    assert first.dedup_key == second.dedup_key == dedup_key("m", ACCURACY_SLO, "")
    assert (first.status, first.resolved_at) == ("resolved", T0 + 28 * H)
    assert (second.status, second.opened_at) == ("firing", T0 + 58 * H)
    key = first.dedup_key
    assert world.sent_about() == [
        ("open", "chat", [key]),
        ("resolve", "chat", [key]),
        ("open", "chat", [key]),
    ]
    messages = world.outbox()
    assert len({m.key for m in messages}) == 3
    # The new incident's message is a new thread (a new group), not a reply to the old one.
    assert messages[2].group_id != messages[0].group_id


# -- `for:` ------------------------------------------------------------------------------------


def test_for_delays_opening_until_the_breach_has_lasted(make_world: MakeWorld) -> None:
    """With `for: 2h` the incident opens at the first tick at which the breach has held for
    two hours, not before, and nothing is enqueued before it opens."""
    world = make_world(slos=freshness_slo(**{"for": "2h"}))
    world.predictions(T0, 10)  # newest prediction at T0 + 9m
    for now in (T0 + 1 * H, T0 + 2 * H, T0 + 2.5 * H):
        result = world.tick(now)
        assert [v.status for v in result.verdicts] == ["breach"]
        assert result.changes == []
        assert world.incidents() == [] and world.outbox() == []

    result = world.tick(T0 + 3 * H)

    assert [c.event for c in result.changes] == ["open"]
    [incident] = world.incidents()
    assert incident.opened_at == T0 + 3 * H
    assert incident.alert["started_at"] == (T0 + 1 * H).isoformat()
    assert [m.event for m in world.outbox()] == ["open"]


def test_for_restarts_when_the_breach_is_interrupted(make_world: MakeWorld) -> None:
    """A good evaluation in between restarts the `for:` clock: two short breaches that add
    up to more than `for:` open nothing."""
    world = make_world(slos=freshness_slo(**{"for": "2h"}))
    world.predictions(T0, 10)
    assert world.tick(T0 + 1 * H).verdicts[0].status == "breach"
    assert world.tick(T0 + 2 * H).verdicts[0].status == "breach"
    world.predictions(T0 + 2 * H + timedelta(minutes=10), 1)
    assert world.tick(T0 + 2 * H + timedelta(minutes=20)).verdicts[0].status == "ok"
    for now in (T0 + 3 * H, T0 + 4 * H):
        result = world.tick(now)
        assert result.verdicts[0].status == "breach"
        assert result.changes == []
    assert world.incidents() == []
    assert [c.event for c in world.tick(T0 + 5 * H).changes] == ["open"]
    assert [i.opened_at for i in world.incidents()] == [T0 + 5 * H]


# -- one transaction ---------------------------------------------------------------------------


def _fail_after_enqueue(monkeypatch: pytest.MonkeyPatch) -> None:
    real = alerts.outbox.enqueue

    def enqueue_then_fail(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        raise RuntimeError("outbox write failed")

    monkeypatch.setattr(alerts.dispatch, "enqueue", enqueue_then_fail)


def _fail_outbox_row(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_row(**kwargs: Any) -> OutboxMessage:
        raise RuntimeError("outbox write failed")

    monkeypatch.setattr(alerts.outbox, "OutboxMessage", broken_row)


@pytest.mark.parametrize("break_outbox", [_fail_after_enqueue, _fail_outbox_row])
def test_incident_and_its_outbox_rows_commit_together(
    make_world: MakeWorld, monkeypatch: pytest.MonkeyPatch, break_outbox: Any
) -> None:
    """If writing the notification fails, the incident (and its event and group) is rolled
    back with it: there is never an incident nobody was told about. Once the fault clears, the next
    tick opens it properly."""
    world = make_world()
    breach_at_t0(world)
    with monkeypatch.context() as patch:
        break_outbox(patch)
        with pytest.raises(RuntimeError, match="outbox write failed"):
            world.tick(T0 + 2 * H)
    assert world.count(Incident) == 0
    assert world.count(IncidentEvent) == 0
    assert world.count(OutboxMessage) == 0
    assert world.count(AlertGroup) == 0
    assert world.count(AlertGroupMember) == 0
    assert world.count(SLOState) == 0

    result = world.tick(T0 + 3 * H)
    assert [c.event for c in result.changes] == ["open"]
    [incident] = world.incidents()
    assert world.sent_about() == [("open", "chat", [incident.dedup_key])]


def test_group_wait_delays_the_message_but_not_the_incident(make_world: MakeWorld) -> None:
    """With the default `group_wait` (30s) the incident opens at the breaching tick, but its
    message is written by the first flush after the wait (here: the sender job), once."""
    world = make_world(top={"routing": {"default": ["chat"]}})
    breach_at_t0(world)
    world.tick(T0 + 2 * H)
    [incident] = world.incidents()
    assert world.outbox() == []
    with world.rt.sessions.begin() as session:
        assert alerts.dispatch.flush(session, T0 + 2 * H + timedelta(seconds=29)) == 0
    with world.rt.sessions.begin() as session:
        assert alerts.dispatch.flush(session, T0 + 2 * H + timedelta(seconds=30)) == 1
    with world.rt.sessions.begin() as session:
        assert alerts.dispatch.flush(session, T0 + 2 * H + timedelta(seconds=31)) == 0
    assert world.sent_about() == [("open", "chat", [incident.dedup_key])]


# -- routing -----------------------------------------------------------------------------------


def routing(**data: Any) -> RoutingConfig:
    return RoutingConfig.model_validate(data)


PAGE = {"model": "m", "severity": "page", "kind": "quality_drop", "team": "fraud"}
TICKET = {"model": "m", "severity": "ticket", "kind": "feature_drift", "team": "fraud"}


def test_router_first_matching_route_wins() -> None:
    """Routes are tried in order; the first whose labels all match is used and stops the
    search; every label of a route must match."""
    config = routing(
        default=["chat"],
        routes=[
            {"match": {"severity": "page", "team": "payments"}, "receivers": ["payments"]},
            {"match": {"severity": "page"}, "receivers": ["pager", "chat"]},
            {"match": {"team": "fraud"}, "receivers": ["fraud-chat"]},
        ],
    )
    assert receivers_for(PAGE, config) == ["pager", "chat"]
    assert receivers_for(TICKET, config) == ["fraud-chat"]


def test_router_continue_collects_later_matches_without_duplicates() -> None:
    config = routing(
        default=["chat"],
        routes=[
            {"match": {"severity": "page"}, "receivers": ["pager", "chat"], "continue": True},
            {"match": {"team": "fraud"}, "receivers": ["chat", "fraud-chat"]},
            {"match": {}, "receivers": ["never"]},
        ],
    )
    assert receivers_for(PAGE, config) == ["pager", "chat", "fraud-chat"]
    # A ticket skips the `continue` route and stops at the first one it matches.
    assert receivers_for(TICKET, config) == ["chat", "fraud-chat"]


def test_router_falls_back_to_default_only_when_nothing_matches() -> None:
    config = routing(
        default=["chat", "chat", "bugs"],
        routes=[{"match": {"severity": "page"}, "receivers": ["pager"]}],
    )
    assert receivers_for(TICKET, config) == ["chat", "bugs"]
    assert receivers_for(PAGE, config) == ["pager"]
    assert receivers_for({"severity": "page"}, routing(default=["chat"])) == ["chat"]
    assert receivers_for(TICKET, routing()) == []


def test_router_empty_match_matches_everything() -> None:
    config = routing(default=["chat"], routes=[{"match": {}, "receivers": ["all"]}])
    assert receivers_for(PAGE, config) == ["all"]
    assert receivers_for({}, config) == ["all"]


def _routed_world(make_world: MakeWorld, severity: str) -> World:
    names = ("chat", "pager", "fraud-chat")
    return make_world(
        top={
            "receivers": {name: {"slack": {"channel": "#ml-oncall"}} for name in names},
            "routing": {
                "default": ["chat"],
                "group_wait": "0s",
                "routes": [
                    {"match": {"severity": "page"}, "receivers": ["pager"], "continue": True},
                    {
                        "match": {"team": "fraud", "kind": "quality_drop"},
                        "receivers": ["fraud-chat"],
                    },
                ],
            },
        },
        slos=accuracy_slo(severity=severity),
        team="fraud",
    )


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("page", ["pager", "fraud-chat"]), ("ticket", ["fraud-chat"]), ("info", ["fraud-chat"])],
)
def test_incident_messages_go_to_the_routed_receivers(
    make_world: MakeWorld, severity: str, expected: list[str]
) -> None:
    """Opening an incident enqueues one message per receiver its labels (severity, team from
    the model, kind from the detector) route to, and the resolve goes to the same ones."""
    world = _routed_world(make_world, severity)
    breach_at_t0(world)
    world.tick(T0 + 2 * H)
    assert [(m.event, m.receiver) for m in world.outbox()] == [("open", r) for r in expected]
    world.rows(T0 + 26 * H, 50, correct=True, label_at=T0 + 27 * H)
    world.tick(T0 + 28 * H)
    assert [(m.event, m.receiver) for m in world.outbox()] == [
        *(("open", r) for r in expected),
        *(("resolve", r) for r in expected),
    ]
