"""Outbox delivery through the real Slack notifier against a local fake Slack.

Incidents are opened and resolved the way a tick does it (`open_incident`, `resolve`, then
`dispatch.flush` writing one message per alert group) in a real store (SQLite and
PostgreSQL); `drain` is then called with a fake clock the tests advance by hand, so hours of
outage take milliseconds.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from alerts.dispatch import flush
from alerts.incidents import dedup_key, open_incident, resolve
from alerts.notifiers.base import Alert, Delivery, Notification, Notifier
from alerts.notifiers.slack import SlackNotifier
from alerts.outbox import EXPIRED, FAILED, MAX_BACKOFF, PENDING, SENT, DrainResult, drain
from monitor.cli.main import app
from monitor.config import VigilConfig
from monitor.core.clock import SimulatedClock
from monitor.store.tables import Incident, OutboxMessage
from tests.builders import build_alert, build_config, config_dict, write_config
from tests.fakes.slack_api import FakeSlack

TOKEN = "xoxb-1234567890-secret-outbox-token"
T0 = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
MAX_AGE = timedelta(days=2)
STEP = timedelta(minutes=5)


def make_alert(model: str = "fraud-detector", slo: str = "accuracy>=0.85@24h") -> Alert:
    return build_alert(model=model, slo=slo, objective=">= 0.85", started_at=T0)


def config_for(receivers: list[str]) -> VigilConfig:
    """A config routing everything to `receivers` (Slack each); messages are due at once."""
    data = config_dict("sqlite://", "sqlite://")
    data["routing"] = {"default": receivers, "group_wait": "0s", "group_interval": "0s"}
    data["receivers"] = {r: {"slack": {"channel": "#ml-oncall"}} for r in receivers}
    return build_config(data)


class Store:
    """The outbox's view of the store: incidents opened and resolved the way a tick does
    (their groups flushed into outbox messages in the same transaction), drained, read back."""

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions
        self.rng = random.Random(1234)

    def open(
        self,
        receivers: list[str],
        now: datetime,
        model: str = "fraud-detector",
        slo: str = "accuracy>=0.85@24h",
    ) -> int:
        """Open an incident for `model`; one message per receiver is written (an 'open', or an
        'update' when another incident of the model's group is already open)."""
        alert = make_alert(model, slo)
        with self.sessions.begin() as session:
            key = dedup_key(model, alert.slo, "")
            incident = open_incident(session, config_for(receivers), key, alert, now, "test")
            assert flush(session, now) == len(receivers)
            return incident.id

    def resolve(self, incident_id: int, now: datetime) -> None:
        with self.sessions.begin() as session:
            incident = session.get(Incident, incident_id)
            assert incident is not None
            resolve(session, incident, now, "test", value=0.9)
            assert flush(session, now) >= 1

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
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN) as fake:
        yield fake


def notifier_for(fake: FakeSlack, channel: str = "#ml-oncall") -> SlackNotifier:
    return SlackNotifier(channel, TOKEN, base_url=fake.base_url, timeout=5)


def post_requests(fake: FakeSlack) -> int:
    """Posts the fake answered (a fake that is `down` answers, and records, none)."""
    return sum(r.api_method == "chat.postMessage" for r in fake.requests)


def api_calls(fake: FakeSlack) -> int:
    """Every call the fake answered: posts, edits and the lookups before a head is posted."""
    return len(fake.requests)


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

    store.resolve(incident, T0 + timedelta(hours=3))
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
    store.resolve(incident, T0 + timedelta(minutes=1))

    result = store.drain({"chat": notifier_for(slack)}, T0 + timedelta(minutes=2))

    assert result == DrainResult(sent=2)
    head, reply = slack.messages
    assert head["thread_ts"] is None
    assert reply["thread_ts"] == head["ts"]


def test_reminders_reply_in_the_thread_not_as_new_messages(store: Store, slack: FakeSlack) -> None:
    """A group still firing after `repeat_interval` (4h) is reminded; the reminder is an
    'update' posted in the head's thread, so the channel keeps one message per incident."""
    notifiers: dict[str, Notifier] = {"chat": notifier_for(slack)}
    incident = store.open(["chat"], T0)
    store.drain(notifiers, T0)
    for hours in (4, 8):
        with store.sessions.begin() as session:
            assert flush(session, T0 + timedelta(hours=hours)) == 1
        assert store.drain(notifiers, T0 + timedelta(hours=hours)) == DrainResult(sent=1)
    store.resolve(incident, T0 + timedelta(hours=9))
    store.drain(notifiers, T0 + timedelta(hours=9))

    assert [m.event for m in store.messages()] == ["open", "update", "update", "resolve"]
    head, *replies = slack.messages
    assert head["thread_ts"] is None
    assert len(replies) == 3
    assert all(r["thread_ts"] == head["ts"] and r["reply_broadcast"] is False for r in replies)
    assert all(m.ref == head["ts"] for m in store.messages())


# -- outages and retries -----------------------------------------------------------------------


def test_two_hour_outage_delays_but_never_loses_or_doubles(store: Store, slack: FakeSlack) -> None:
    """While Slack is down each message stays pending with its attempts counted and its next
    attempt in the future, backing off (never more often than every step, never more than
    MAX_BACKOFF apart); later messages of the group wait behind the open. After recovery
    every message arrives exactly once and in order: the head, then in its thread a new
    alert, a resolved alert and the final resolve, the head edited to show the end."""
    counting = Counting(notifier_for(slack))
    notifiers: dict[str, Notifier] = {"chat": counting}
    clock = SimulatedClock(T0)
    slack.down = True
    first = store.open(["chat"], clock.now())
    changes = {
        T0 + timedelta(minutes=20): lambda now: store.open(["chat"], now, slo="roc_auc>=0.9@7d"),
        T0 + timedelta(minutes=30): lambda now: store.resolve(first, now),
        T0 + timedelta(minutes=50): lambda now: store.resolve(second[0], now),
    }
    second: list[int] = []
    outage_end = T0 + timedelta(hours=2)
    drains = 0
    last_attempts = 0
    while clock.now() < outage_end:
        change = changes.get(clock.now())
        if change is not None:
            opened_id = change(clock.now())
            if isinstance(opened_id, int):
                second.append(opened_id)
        store.drain(notifiers, clock.now())
        drains += 1
        opened = store.message("open")
        assert opened.status == PENDING
        assert opened.attempts >= last_attempts
        last_attempts = opened.attempts
        assert clock.now() < opened.next_attempt_at <= clock.now() + MAX_BACKOFF
        assert opened.last_error and "RemoteDisconnected" in opened.last_error
        assert all(m.attempts == 0 for m in store.messages() if m.event != "open")
        clock.advance(STEP)

    assert slack.messages == []
    opened = store.message("open")
    # Retried, but backed off: fewer attempts than drains, more than a couple.
    assert 4 <= opened.attempts < drains
    assert counting.calls == ["open"] * opened.attempts
    assert api_calls(slack) == 0

    slack.down = False
    for _ in range(int(MAX_BACKOFF / STEP) + 2):
        store.drain(notifiers, clock.now())
        clock.advance(STEP)

    messages = store.messages()
    assert [(m.event, m.status) for m in messages] == [
        ("open", SENT),
        ("update", SENT),
        ("update", SENT),
        ("resolve", SENT),
    ]
    assert [m.payload["reason"] for m in messages[1:]] == ["new alerts", "resolved", "resolved"]
    assert all(m.sent_at is not None and m.sent_at >= outage_end for m in messages)
    assert all(m.last_error is None for m in messages)
    assert all(m.attempts == 1 for m in messages[1:])
    [head] = slack.heads()
    assert head["ts"] == messages[0].ref and post_requests(slack) == 4
    replies = slack.thread(head["ts"])
    assert [r["text"].split(" ", 1)[1].split(":")[0] for r in replies] == [
        "Update (new alerts)",
        "Update (resolved)",
        "Resolved after 50m",
    ]
    assert head["blocks"][0]["text"]["text"].startswith(":white_check_mark: 2 alerts")
    assert counting.calls == ["open"] * messages[0].attempts + ["update", "update", "resolve"]


def test_a_crash_between_send_and_commit_posts_no_second_head(
    store: Store, slack: FakeSlack
) -> None:
    """Slack accepts the head, then the process dies before the outbox row is marked sent:
    the row is still pending, and the retry (a fresh process) finds the head by its metadata
    and records its ts instead of posting another."""

    class CrashAfterSend:
        def send(self, notification: Notification) -> Delivery:
            notifier_for(slack).send(notification)
            raise RuntimeError("killed before the commit")

    store.open(["chat"], T0)
    with pytest.raises(RuntimeError):
        store.drain({"chat": CrashAfterSend()}, T0)
    message = store.message("open")
    assert (message.status, message.attempts, message.ref) == (PENDING, 0, None)
    assert len(slack.heads()) == 1

    assert store.drain({"chat": notifier_for(slack)}, T0 + STEP) == DrainResult(sent=1)
    [head] = slack.heads()
    assert store.message("open").ref == head["ts"]
    assert post_requests(slack) == 1


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
    calls = api_calls(slack)
    assert store.drain(notifiers, T0) == DrainResult()
    assert api_calls(slack) == calls
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

    calls = api_calls(slack)
    assert store.drain(notifiers, T0 + wait - timedelta(seconds=1)) == DrainResult()
    assert api_calls(slack) == calls
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

    calls = api_calls(slack)
    for hours in (1, 6, 24):
        assert store.drain(notifiers, T0 + timedelta(hours=hours)) == DrainResult()
    assert post_requests(slack) == 1 and api_calls(slack) == calls
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

        # One failed attempt holds the down receiver's queue: its second message waits.
        assert store.drain(notifiers, T0) == DrainResult(sent=2, retried=1)
        assert len(up.messages) == 2
        store.resolve(first, T0 + timedelta(minutes=10))
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
        assert first_head.receiver == "a" and first_head.event == "open"
        [alert] = first_head.payload["alerts"]
        assert alert["model"] == "fraud-detector"
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
    assert "invalid_auth" in str(errors["echo"]) and "***" in str(errors["echo"])
    assert "channel_not_found" in str(errors["nochannel"])
    assert "ratelimited" in str(errors["limited"])


# -- vigil outbox ------------------------------------------------------------------------------


def test_cli_lists_and_retries_failed_messages(
    db_url: str, store: Store, slack: FakeSlack, tmp_path: Path
) -> None:
    """`vigil outbox list` shows what is unsent with its error; `retry` puts failed messages
    back (their age restarted, so expiry does not take them at once) and the next drain,
    with the channel fixed, delivers them."""
    store.open(["chat"], T0)
    store.drain({"chat": notifier_for(slack, channel="#no-such-channel")}, T0)
    data = config_dict(db_url, "sqlite://")
    path = write_config(tmp_path / "vigil.yaml", data)
    runner = CliRunner()

    listed = runner.invoke(app, ["outbox", "list", "-c", str(path)])
    assert listed.exit_code == 0, listed.output
    header, row = listed.output.strip().splitlines()
    assert header.split()[:5] == ["ID", "RECEIVER", "EVENT", "STATUS", "ATTEMPTS"]
    assert "chat" in row and "failed" in row and "channel_not_found" in row
    as_json = json.loads(runner.invoke(app, ["outbox", "list", "-c", str(path), "--json"]).output)
    assert [(m["status"], m["attempts"], m["model"]) for m in as_json] == [
        ("failed", 1, "fraud-detector")
    ]
    refused = runner.invoke(app, ["outbox", "retry", "-c", str(path)])
    assert refused.exit_code == 2 and "--all" in refused.output

    retried = runner.invoke(app, ["outbox", "retry", "-c", str(path), str(as_json[0]["id"]), "99"])
    assert retried.exit_code == 0 and "1 message(s) back to pending" in retried.output
    assert "left alone): [99]" in retried.output
    message = store.message("open")
    assert message.status == PENDING and message.created_at > T0

    later = datetime.now(UTC)
    assert store.drain({"chat": notifier_for(slack)}, later, MAX_AGE) == DrainResult(sent=1)
    assert len(slack.heads()) == 1
    empty = runner.invoke(app, ["outbox", "list", "-c", str(path)])
    assert empty.output.strip() == "(none)"
