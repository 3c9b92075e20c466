"""Exactly-once delivery through the crash window, one test per message kind.

The window: the receiver accepted a message, then the process died before the outbox row was
marked sent. The row is still pending, so a fresh process sends it again; each test replays
that with a notifier that delivers and then raises (the "kill"), then drains with a fresh
notifier (the "restart"), and counts what the fake receiver ended up with. Heads, PagerDuty
triggers, bug-queue bugs and GitHub issues have their own crash tests beside their notifiers
(tests/test_outbox.py, tests/test_pagerduty.py, tests/test_bugs.py).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from alerts.incidents import acknowledge
from alerts.notifiers.base import Delivery, Notification, Notifier
from alerts.notifiers.pagerduty import PagerDutyNotifier
from alerts.notifiers.slack import SlackNotifier
from alerts.notifiers.slack_blocks import head_message
from alerts.notifiers.webhook import IDEMPOTENCY_HEADER, WebhookNotifier
from alerts.outbox import PENDING, SENT, DrainResult, notification_of
from monitor.store.tables import Incident
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.test_outbox import T0, Store

SLACK_TOKEN = "xoxb-1234567890-secret-outbox-token"
PD_KEY = "R0123456789ABCDEF0123456789ABCDE"
STEP = timedelta(minutes=5)


class CrashAfterSend:
    """Delivers through a notifier of its own, then dies before the outbox can commit."""

    def __init__(self, make: Callable[[], Notifier]) -> None:
        self.make = make

    def send(self, notification: Notification) -> Delivery:
        self.make().send(notification)
        raise RuntimeError("killed before the commit")


def crash_then_restart(
    store: Store, receiver: str, make: Callable[[], Notifier], event: str, now: Any
) -> None:
    """Deliver the pending `event` and crash; then a fresh process drains the outbox."""
    with pytest.raises(RuntimeError):
        store.drain({receiver: CrashAfterSend(make)}, now)
    assert store.message(event, receiver).status == PENDING
    assert store.drain({receiver: make()}, now + STEP) == DrainResult(sent=1)
    assert store.message(event, receiver).status == SENT


def acknowledge_and_flush(store: Store, incident_id: int, now: Any) -> None:
    from alerts.dispatch import flush

    with store.sessions.begin() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        acknowledge(session, incident, now, "alice", "looking into it")
        assert flush(session, now) == 1


# -- Slack: thread replies and head edits ------------------------------------------------------


def test_a_crash_after_a_thread_reply_posts_no_second_reply(db_url: str, store: Store) -> None:
    """Issue 12, defect 1: the resolve reply was accepted, the process was killed before the
    commit; the restarted process finds the reply in the thread by its metadata
    (`conversations.replies`) and posts nothing."""
    with FakeSlack(token=SLACK_TOKEN) as slack:

        def make() -> Notifier:
            return SlackNotifier("#ml-oncall", SLACK_TOKEN, base_url=slack.base_url, timeout=5)

        incident = store.open(["chat"], T0)
        assert store.drain({"chat": make()}, T0) == DrainResult(sent=1)
        [head] = slack.heads()
        store.resolve(incident, T0 + timedelta(hours=1))

        crash_then_restart(store, "chat", make, "resolve", T0 + timedelta(hours=1))

        [reply] = slack.thread(head["ts"])
        assert reply["text"].startswith(":white_check_mark: Resolved")
        assert len(slack.messages) == 2
        lookups = [r for r in slack.requests if r.api_method == "conversations.replies"]
        assert lookups and lookups[-1].body["ts"] == head["ts"]
        assert store.message("resolve", "chat").ref == head["ts"]


def test_a_crash_between_the_edit_and_the_reply_edits_again_and_replies_once(
    store: Store,
) -> None:
    """An update edits the head, then replies. Killed after the edit only: the retry repeats
    the (idempotent) edit and posts the reply once; the head shows the acknowledgement."""
    with FakeSlack(token=SLACK_TOKEN) as slack:

        def make() -> Notifier:
            return SlackNotifier("#ml-oncall", SLACK_TOKEN, base_url=slack.base_url, timeout=5)

        incident = store.open(["chat"], T0)
        store.drain({"chat": make()}, T0)
        [head] = slack.heads()
        opened_blocks = copy.deepcopy(head["blocks"])  # the fake edits its record in place
        acknowledge_and_flush(store, incident, T0 + timedelta(minutes=10))

        class CrashAfterEdit:
            def send(self, notification: Notification) -> Delivery:
                notifier = make()
                assert isinstance(notifier, SlackNotifier)
                notifier._edit_head(head["ts"], notification)
                raise RuntimeError("killed between the edit and the reply")

        with pytest.raises(RuntimeError):
            store.drain({"chat": CrashAfterEdit()}, T0 + timedelta(minutes=10))
        assert "edited" in slack.heads()[0]
        assert slack.thread(head["ts"]) == []

        crash_then_restart(store, "chat", make, "update", T0 + timedelta(minutes=10))

        [reply] = slack.thread(head["ts"])
        assert "acknowledged" in reply["text"]
        update = notification_of(store.message("update", "chat"), head["ts"])
        assert slack.heads()[0]["blocks"] == head_message(update)["blocks"] != opened_blocks
        assert len(slack.messages) == 2


def test_replies_of_different_messages_are_not_mistaken_for_each_other(store: Store) -> None:
    """The lookup matches the outbox key, not the group: a reminder after an earlier reply in
    the same thread is still posted."""
    from alerts.dispatch import flush

    with FakeSlack(token=SLACK_TOKEN) as slack:
        notifier = SlackNotifier("#ml-oncall", SLACK_TOKEN, base_url=slack.base_url, timeout=5)
        incident = store.open(["chat"], T0)
        store.drain({"chat": notifier}, T0)
        for hours in (4, 8):
            with store.sessions.begin() as session:
                assert flush(session, T0 + timedelta(hours=hours)) == 1
            store.drain({"chat": notifier}, T0 + timedelta(hours=hours))
        store.resolve(incident, T0 + timedelta(hours=9))
        store.drain({"chat": notifier}, T0 + timedelta(hours=9))
        [head] = slack.heads()
        assert len(slack.thread(head["ts"])) == 3


# -- PagerDuty: acknowledge and resolve --------------------------------------------------------


@pytest.mark.parametrize("event", ["acknowledge", "resolve"])
def test_a_crash_after_an_acknowledge_or_resolve_changes_nothing_twice(
    store: Store, event: str
) -> None:
    """PagerDuty applies acknowledge and resolve by dedup_key: the repeat after a crash finds
    the incident already in that state (or resolved) and opens nothing new."""
    with FakePagerDuty() as pd:

        def make() -> Notifier:
            return PagerDutyNotifier(PD_KEY, pd.base_url, timeout=5)

        incident = store.open(["pd"], T0)
        store.drain({"pd": make()}, T0)
        later = T0 + timedelta(minutes=20)
        if event == "acknowledge":
            acknowledge_and_flush(store, incident, later)
            crash_then_restart(store, "pd", make, "update", later)
        else:
            store.resolve(incident, later)
            crash_then_restart(store, "pd", make, "resolve", later)

        [page] = pd.incidents
        expected = "acknowledged" if event == "acknowledge" else "resolved"
        assert page.status == expected
        assert len(pd.accepted()) == 3  # the repeat reached PagerDuty ...
        actions = [e["event_action"] for e in page.events]
        # ... and changed nothing: a second ack of an acknowledged incident, a resolve of a
        # resolved one (which PagerDuty ignores: there is no open incident for the key).
        assert actions == (
            ["trigger", event, event] if event == "acknowledge" else ["trigger", event]
        )


# -- webhooks ----------------------------------------------------------------------------------


@dataclass
class DedupingReceiver:
    """A webhook endpoint written as docs/webhook-schema.md tells receivers to: it acts on a
    delivery id once and answers 200 to a repeat."""

    url: str = ""
    acted_on: list[bytes] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    deliveries: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
def hook() -> Iterator[DedupingReceiver]:
    state = DedupingReceiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = dict(self.headers.items())
            with lock:
                state.deliveries.append(headers)
                key = headers.get(IDEMPOTENCY_HEADER, "")
                if key and key not in state.seen:
                    state.seen.add(key)
                    state.acted_on.append(raw)
            self.send_response(200 if key else 400)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/vigil"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_a_webhook_resent_after_a_crash_carries_the_same_idempotency_key(
    store: Store, hook: DedupingReceiver
) -> None:
    """Both deliveries of the open carry one `Idempotency-Key` (equal to X-Vigil-Delivery and
    the body's id), so a receiver that dedups on it acts once; the resolve has its own key."""

    def make() -> Notifier:
        return WebhookNotifier(hook.url, "s3cret-webhook-key", timeout=5)

    incident = store.open(["hook"], T0)
    crash_then_restart(store, "hook", make, "open", T0)
    store.resolve(incident, T0 + timedelta(hours=1))
    store.drain({"hook": make()}, T0 + timedelta(hours=1))

    keys = [d[IDEMPOTENCY_HEADER] for d in hook.deliveries]
    assert len(keys) == 3 and keys[0] == keys[1] != keys[2]
    assert all(d[IDEMPOTENCY_HEADER] == d["X-Vigil-Delivery"] for d in hook.deliveries)
    assert keys[0] == store.message("open", "hook").key
    assert len(hook.acted_on) == 2


# -- the fake's conversations.replies, and the lookup over it ----------------------------------


def test_fake_conversations_replies_answers_as_slack_does() -> None:
    """Parent first then replies oldest first; a channel ID, not a name; metadata only when
    asked; `thread_not_found` for an unknown ts; pages joined by `next_cursor`."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    with FakeSlack(token=SLACK_TOKEN) as slack:
        client = WebClient(token=SLACK_TOKEN, base_url=slack.base_url, retry_handlers=[])
        meta = {"event_type": "vigil_alert", "event_payload": {"key": "k"}}
        head = client.chat_postMessage(channel="#ml-oncall", text="head")
        channel = str(head["channel"])
        replies = [
            client.chat_postMessage(
                channel="#ml-oncall", text=f"r{i}", thread_ts=head["ts"], metadata=meta
            )["ts"]
            for i in range(3)
        ]
        client.chat_postMessage(channel="#ml-oncall", text="another head")

        plain = client.conversations_replies(channel=channel, ts=head["ts"])
        assert [m["text"] for m in plain["messages"]] == ["head", "r0", "r1", "r2"]
        assert all("metadata" not in m for m in plain["messages"])
        seen, cursor = [], None
        while True:
            page = client.conversations_replies(
                channel=channel, ts=replies[1], limit=2, cursor=cursor, include_all_metadata=True
            )
            seen += page["messages"]
            cursor = page["response_metadata"]["next_cursor"] or None
            if cursor is None:
                break
        assert [m["ts"] for m in seen] == [head["ts"], *replies]
        assert [m.get("metadata") for m in seen[1:]] == [meta] * 3

        for kwargs, error in (
            ({"channel": "#ml-oncall", "ts": head["ts"]}, "channel_not_found"),
            ({"channel": channel, "ts": "1.999999"}, "thread_not_found"),
        ):
            with pytest.raises(SlackApiError) as caught:
                client.conversations_replies(**kwargs)
            assert caught.value.response["error"] == error


def test_the_reply_lookup_reads_every_page_of_a_long_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reply posted before the crash is found even when the thread is longer than a page."""
    from alerts.notifiers import slack as slack_module
    from tests.test_slack_notifier import make_notification

    monkeypatch.setattr(slack_module, "REPLIES_PAGE", 2)
    with FakeSlack(token=SLACK_TOKEN) as slack:
        notifier = SlackNotifier("#ml-oncall", SLACK_TOKEN, base_url=slack.base_url, timeout=5)
        head = notifier.send(make_notification()).ref
        assert head is not None
        updates = [make_notification("update", head, sequence=s) for s in range(2, 8)]
        for update in updates:
            notifier.send(update)
        notifier.send(updates[0])  # the oldest reply is on the last page
        notifier.send(updates[-1])
        assert len(slack.thread(head)) == 6


def test_without_the_history_scope_replies_are_still_posted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bot that may not read threads still replies (once per send), and says why a crash
    could double a reply; it does not ask again for every message."""
    from structlog.testing import capture_logs

    from tests.fakes import slack_api
    from tests.test_slack_notifier import make_notification

    with FakeSlack(token=SLACK_TOKEN) as slack:

        def no_scope(body: dict[str, Any]) -> dict[str, Any]:
            raise slack_api._ApiError("missing_scope")

        monkeypatch.setattr(slack, "_replies", no_scope)
        notifier = SlackNotifier("#ml-oncall", SLACK_TOKEN, base_url=slack.base_url, timeout=5)
        head = notifier.send(make_notification()).ref
        assert head is not None
        with capture_logs() as logs:
            for sequence in (2, 3):
                notifier.send(make_notification("update", head, sequence=sequence))
        assert len(slack.thread(head)) == 2
        assert sum(r.api_method == "conversations.replies" for r in slack.requests) == 1
        assert any("may be duplicated" in entry["event"] for entry in logs)
