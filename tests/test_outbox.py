"""Outbox delivery through the real Slack notifier against a local fake Slack.

Messages are enqueued the way `alerts.incidents` does (`enqueue` in the incident's session)
into a real store (SQLite and PostgreSQL), then `drain` is called with a fake clock that the
tests advance by hand, so hours of outage take milliseconds.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.incidents import dedup_key
from alerts.notifiers.base import Alert, Delivery, Notification, Notifier
from alerts.notifiers.slack import SlackNotifier
from alerts.outbox import EXPIRED, FAILED, MAX_BACKOFF, PENDING, SENT, DrainResult, drain, enqueue
from alerts.payloads import alert_to_json
from monitor.clock import SimulatedClock
from monitor.store.db import make_engine, session_factory, upgrade
from monitor.store.tables import Incident, OutboxMessage
from tests.fakes.slack_api import FakeSlack

TOKEN = "xoxb-1234567890-secret-outbox-token"
T0 = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
MAX_AGE = timedelta(days=2)
STEP = timedelta(minutes=5)


def make_alert(model: str = "fraud-detector") -> Alert:
    return Alert(
        model=model,
        slo="accuracy>=0.85@24h",
        metric="accuracy",
        kind="quality_drop",
        severity="page",
        objective=">= 0.85",
        window="24h",
        value=0.81,
        n=2500,
        runbook_url="https://runbooks.example/quality-drop.md",
        started_at=T0,
        ci=(0.79, 0.83),
    )


class Store:
    """The outbox's view of the store: open and resolve incidents, drain, read rows back."""

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions
        self.rng = random.Random(1234)

    def open(self, receivers: list[str], now: datetime, model: str = "fraud-detector") -> int:
        alert = make_alert(model)
        with self.sessions.begin() as session:
            incident = Incident(
                dedup_key=dedup_key(model, alert.slo, ""),
                model=model,
                slo_id=alert.slo,
                feature="",
                metric=alert.metric,
                kind=alert.kind,
                severity=alert.severity,
                status="firing",
                opened_at=now,
                alert=alert_to_json(alert),
            )
            session.add(incident)
            session.flush()
            enqueue(session, incident, "open", receivers, alert, now)
            return incident.id

    def resolve(self, incident_id: int, receivers: list[str], now: datetime) -> None:
        with self.sessions.begin() as session:
            incident = session.get(Incident, incident_id)
            assert incident is not None
            incident.status, incident.resolved_at = "resolved", now
            enqueue(session, incident, "resolve", receivers, make_alert(incident.model), now)

    def drain(
        self, notifiers: dict[str, Notifier], now: datetime, max_age: timedelta = MAX_AGE
    ) -> DrainResult:
        return drain(self.sessions, notifiers, now, max_age, self.rng)

    def messages(self) -> list[OutboxMessage]:
        with self.sessions() as session:
            return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    def message(self, event: str, receiver: str = "chat") -> OutboxMessage:
        [found] = [m for m in self.messages() if m.event == event and m.receiver == receiver]
        return found


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield Store(session_factory(engine))
    engine.dispose()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN) as fake:
        yield fake


def notifier_for(fake: FakeSlack, channel: str = "#ml-oncall") -> SlackNotifier:
    return SlackNotifier(channel, TOKEN, base_url=fake.base_url, timeout=5)


def post_requests(fake: FakeSlack) -> int:
    """Requests the fake answered (a fake that is `down` answers, and records, none)."""
    return sum(r.api_method == "chat.postMessage" for r in fake.requests)


class Counting:
    """Wraps a notifier to count `send` calls, including those that never reach the server."""

    def __init__(self, inner: Notifier) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def send(self, notification: Notification) -> Delivery:
        self.calls.append(notification.event)
        return self.inner.send(notification)


# -- threading ---------------------------------------------------------------------------------


def test_open_is_a_head_message_and_resolve_lands_in_its_thread(
    store: Store, slack: FakeSlack
) -> None:
    """The open becomes a top-level message whose ts is stored as the message's ref; the
    resolve is posted in that thread, and both rows end up sent after one attempt each."""
    notifiers: dict[str, Notifier] = {"chat": notifier_for(slack)}
    incident = store.open(["chat"], T0)

    assert store.drain(notifiers, T0) == DrainResult(sent=1)
    [head] = slack.messages
    assert head["thread_ts"] is None
    opened = store.message("open")
    assert (opened.status, opened.ref, opened.attempts, opened.sent_at) == (
        SENT,
        head["ts"],
        1,
        T0,
    )

    store.resolve(incident, ["chat"], T0 + timedelta(hours=3))
    assert store.drain(notifiers, T0 + timedelta(hours=3)) == DrainResult(sent=1)
    assert len(slack.messages) == 2
    assert slack.thread(head["ts"]) == [slack.messages[1]]
    assert slack.messages[1]["thread_ts"] == head["ts"]
    resolved = store.message("resolve")
    assert (resolved.status, resolved.ref, resolved.attempts) == (SENT, head["ts"], 1)

    # Sent messages are never sent again.
    assert store.drain(notifiers, T0 + timedelta(hours=4)) == DrainResult()
    assert len(slack.messages) == 2


def test_open_and_resolve_due_together_leave_in_order(store: Store, slack: FakeSlack) -> None:
    """When both are due in the same drain, the open goes first and the resolve threads
    under it in that same drain."""
    incident = store.open(["chat"], T0)
    store.resolve(incident, ["chat"], T0 + timedelta(minutes=1))

    result = store.drain({"chat": notifier_for(slack)}, T0 + timedelta(minutes=2))

    assert result == DrainResult(sent=2)
    head, reply = slack.messages
    assert head["thread_ts"] is None
    assert reply["thread_ts"] == head["ts"]


# -- outages and retries -----------------------------------------------------------------------


def test_two_hour_outage_delays_but_never_loses_or_doubles(store: Store, slack: FakeSlack) -> None:
    """While Slack is down each message stays pending with its attempts counted and its next
    attempt in the future, backing off (never more often than every step, never more than
    MAX_BACKOFF apart); the resolve waits behind the open. After recovery both arrive exactly
    once, open first, the resolve in the open's thread."""
    counting = Counting(notifier_for(slack))
    notifiers: dict[str, Notifier] = {"chat": counting}
    clock = SimulatedClock(T0)
    slack.down = True
    incident = store.open(["chat"], clock.now())
    outage_end = T0 + timedelta(hours=2)
    resolved_at = T0 + timedelta(minutes=30)
    drains = 0
    last_attempts = 0
    while clock.now() < outage_end:
        if clock.now() == resolved_at:
            store.resolve(incident, ["chat"], clock.now())
        store.drain(notifiers, clock.now())
        drains += 1
        opened = store.message("open")
        assert opened.status == PENDING
        assert opened.attempts >= last_attempts
        last_attempts = opened.attempts
        assert clock.now() < opened.next_attempt_at <= clock.now() + MAX_BACKOFF
        assert opened.last_error and "chat.postMessage" in opened.last_error
        if clock.now() >= resolved_at:
            waiting = store.message("resolve")
            assert (waiting.status, waiting.attempts) == (PENDING, 0)
        clock.advance(STEP)

    assert slack.messages == []
    opened = store.message("open")
    # Retried, but backed off: fewer attempts than drains, more than a couple.
    assert 4 <= opened.attempts < drains
    assert counting.calls == ["open"] * opened.attempts
    assert post_requests(slack) == 0

    slack.down = False
    for _ in range(int(MAX_BACKOFF / STEP) + 2):
        store.drain(notifiers, clock.now())
        clock.advance(STEP)

    messages = store.messages()
    assert [(m.event, m.status) for m in messages] == [("open", SENT), ("resolve", SENT)]
    assert all(m.sent_at is not None and m.sent_at >= outage_end for m in messages)
    assert all(m.last_error is None for m in messages)
    head, reply = slack.messages
    assert head["thread_ts"] is None
    assert reply["thread_ts"] == head["ts"] == messages[0].ref
    assert messages[1].attempts == 1
    assert counting.calls == ["open"] * messages[0].attempts + ["resolve"]


def test_server_errors_are_retried_with_backoff(store: Store, slack: FakeSlack) -> None:
    """A 503 keeps the message pending for a later attempt; the next due drain delivers it."""
    notifiers: dict[str, Notifier] = {"chat": notifier_for(slack)}
    store.open(["chat"], T0)
    slack.fail_next(1, status=503)

    assert store.drain(notifiers, T0) == DrainResult(retried=1)
    message = store.message("open")
    assert (message.status, message.attempts) == (PENDING, 1)
    assert T0 < message.next_attempt_at <= T0 + timedelta(seconds=10)
    assert message.last_error and "503" in message.last_error

    # Not yet due: nothing is attempted.
    assert store.drain(notifiers, T0) == DrainResult()
    assert post_requests(slack) == 1
    assert store.drain(notifiers, message.next_attempt_at) == DrainResult(sent=1)
    assert len(slack.messages) == 1
    assert store.message("open").attempts == 2


@pytest.mark.parametrize("retry_after", [120, 3600 * 2])
def test_rate_limit_retry_after_is_honoured(
    store: Store, slack: FakeSlack, retry_after: int
) -> None:
    """A 429 schedules the next attempt no sooner than Retry-After, even when that is longer
    than the outbox's own maximum backoff, and nothing is sent before then."""
    notifiers: dict[str, Notifier] = {"chat": notifier_for(slack)}
    store.open(["chat"], T0)
    slack.rate_limit_next(1, retry_after=retry_after)

    assert store.drain(notifiers, T0) == DrainResult(retried=1)
    message = store.message("open")
    wait = timedelta(seconds=retry_after)
    assert message.status == PENDING
    assert message.next_attempt_at >= T0 + wait
    assert message.last_error and "ratelimited" in message.last_error

    assert store.drain(notifiers, T0 + wait - timedelta(seconds=1)) == DrainResult()
    assert post_requests(slack) == 1
    assert store.drain(notifiers, message.next_attempt_at) == DrainResult(sent=1)
    assert len(slack.messages) == 1


def test_permanent_failure_is_marked_failed_and_never_retried(
    store: Store, slack: FakeSlack
) -> None:
    """An unknown channel cannot be fixed by trying again: the message is failed after one
    attempt, with the reason, and no later drain sends another request."""
    notifiers: dict[str, Notifier] = {"chat": notifier_for(slack, channel="#no-such-channel")}
    store.open(["chat"], T0)

    assert store.drain(notifiers, T0) == DrainResult(failed=1)
    message = store.message("open")
    assert (message.status, message.attempts) == (FAILED, 1)
    assert message.last_error and "channel_not_found" in message.last_error

    for hours in (1, 6, 24):
        assert store.drain(notifiers, T0 + timedelta(hours=hours)) == DrainResult()
    assert post_requests(slack) == 1
    assert store.message("open").status == FAILED


def test_unconfigured_receiver_fails_without_blocking_others(
    store: Store, slack: FakeSlack
) -> None:
    store.open(["gone", "chat"], T0)
    result = store.drain({"chat": notifier_for(slack)}, T0)
    assert result == DrainResult(sent=1, failed=1)
    assert store.message("open", "gone").status == FAILED
    assert store.message("open", "chat").status == SENT


def test_a_receiver_that_is_down_never_blocks_another(store: Store) -> None:
    """Two receivers on two Slacks, one down: the healthy one gets the open and the resolve
    on time; the other catches up, in order, once it is back."""
    with FakeSlack(token=TOKEN) as down, FakeSlack(token=TOKEN) as up:
        notifiers: dict[str, Notifier] = {"a": notifier_for(down), "b": notifier_for(up)}
        down.down = True
        first = store.open(["a", "b"], T0)
        second = store.open(["a", "b"], T0, model="other-model")

        assert store.drain(notifiers, T0) == DrainResult(sent=2, retried=2)
        assert len(up.messages) == 2
        store.resolve(first, ["a", "b"], T0 + timedelta(minutes=10))
        assert store.drain(notifiers, T0 + timedelta(minutes=10)).sent == 1
        assert len(up.messages) == 3
        assert up.messages[2]["thread_ts"] == up.messages[0]["ts"]
        assert down.messages == []
        assert {m.receiver for m in store.messages() if m.status == PENDING} == {"a"}

        down.down = False
        now = T0 + timedelta(minutes=10)
        for _ in range(10):
            now += STEP
            store.drain(notifiers, now)
        assert [(m.receiver, m.status) for m in store.messages() if m.status != SENT] == []
        assert len(down.messages) == 3
        heads = [m for m in down.messages if m["thread_ts"] is None]
        replies = [m for m in down.messages if m["thread_ts"] is not None]
        assert len(heads) == 2 and len(replies) == 1
        first_head = store.messages()[0]
        assert first_head.receiver == "a" and first_head.incident_id == first
        assert replies[0]["thread_ts"] == first_head.ref
        assert down.messages.index(replies[0]) > down.messages.index(
            next(m for m in heads if m["ts"] == first_head.ref)
        )
        assert second != first
        assert len(up.messages) == 3


# -- expiry ------------------------------------------------------------------------------------


def test_messages_older_than_max_age_expire_visibly(store: Store, slack: FakeSlack) -> None:
    """A message undeliverable for longer than max_age is marked expired with a reason and
    kept in the store (not dropped), and is never sent afterwards, even when Slack is back."""
    notifiers: dict[str, Notifier] = {"chat": notifier_for(slack)}
    max_age = timedelta(hours=1)
    slack.down = True
    store.open(["chat"], T0)
    now = T0
    while now <= T0 + max_age:
        store.drain(notifiers, now, max_age)
        assert store.message("open").status == PENDING
        now += STEP
    slack.down = False

    result = store.drain(notifiers, now, max_age)

    assert result == DrainResult(expired=1)
    message = store.message("open")
    assert message.status == EXPIRED
    assert message.last_error and "undelivered" in message.last_error
    assert message.sent_at is None
    store.drain(notifiers, now + timedelta(hours=1), max_age)
    assert slack.messages == []
    assert store.message("open").status == EXPIRED


# -- secrets -----------------------------------------------------------------------------------


def test_last_error_never_contains_the_token(store: Store, slack: FakeSlack) -> None:
    """Whatever the failure (down, 5xx, 429, unknown channel, a server that echoes the token
    back), the stored error names the problem but not the token."""
    echoing = FakeSlack(token=TOKEN)
    with echoing:
        echoing._handle = lambda *a: (  # type: ignore[method-assign]
            200,
            {},
            {"ok": False, "error": "invalid_auth", "errors": [f"token {TOKEN} was revoked"]},
        )
        notifiers: dict[str, Notifier] = {
            "down": notifier_for(slack),
            "five": notifier_for(slack),
            "limited": notifier_for(slack),
            "nochannel": notifier_for(slack, channel="#nope"),
            "echo": notifier_for(echoing),
        }

        def attempt(receiver: str) -> None:
            store.open([receiver], T0, model=f"model-{receiver}")
            assert store.drain(notifiers, T0) != DrainResult()

        slack.down = True
        attempt("down")
        slack.down = False
        slack.fail_next(1, status=502)
        attempt("five")
        slack.rate_limit_next(1, retry_after=30)
        attempt("limited")
        attempt("nochannel")
        attempt("echo")

    messages = store.messages()
    errors = {m.receiver: m.last_error for m in messages}
    assert set(errors) == set(notifiers)
    assert all(errors.values()), errors
    for receiver, error in errors.items():
        assert error is not None
        assert TOKEN not in error, receiver
        assert "secret-outbox-token" not in error, receiver
        assert "Bearer" not in error, receiver
    assert "invalid_auth" in str(errors["echo"]) and "[redacted]" in str(errors["echo"])
    assert "channel_not_found" in str(errors["nochannel"])
    assert "ratelimited" in str(errors["limited"])
