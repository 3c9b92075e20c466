"""Per-receiver delivery: a hanging receiver delays no other, and each queue keeps its order.

Issue 12, defect 6. A hang is a fake server that holds its answer until the test opens a gate,
so "PagerDuty was delivered while Slack hung" is observed as an order of events, not timed.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from alerts.notifiers.base import Notifier
from alerts.notifiers.pagerduty import PagerDutyNotifier
from alerts.notifiers.slack import SlackNotifier
from alerts.outbox import PENDING, SENT, DrainResult, drain
from alerts.workers import ReceiverWorkers
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.test_outbox import MAX_AGE, T0, Store

TOKEN = "xoxb-1234567890-secret-outbox-token"
PD_KEY = "R0123456789ABCDEF0123456789ABCDE"


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) for something another thread does; not a timing assertion."""
    done = threading.Event()
    for _ in range(600):
        if condition():
            return
        done.wait(0.05)
    raise AssertionError(f"never happened: {what}")


def test_a_hanging_slack_does_not_hold_up_pagerduty(store: Store) -> None:
    """Slack hangs (the gate stays shut) while one drain runs: PagerDuty gets its trigger
    during the hang, and Slack's head arrives once Slack answers."""
    with FakeSlack(token=TOKEN) as slack, FakePagerDuty() as pd:
        notifiers: dict[str, Notifier] = {
            "chat": SlackNotifier("#ml-oncall", TOKEN, base_url=slack.base_url, timeout=30),
            "pd": PagerDutyNotifier(PD_KEY, pd.base_url, timeout=30),
        }
        store.open(["chat", "pd"], T0)
        gate = threading.Event()
        slack.gate = gate
        results: list[DrainResult] = []
        runner = threading.Thread(target=lambda: results.append(store.drain(notifiers, T0)))
        runner.start()
        try:
            wait_for(
                lambda: store.message("open", "pd").status == SENT,
                "PagerDuty trigger sent and recorded during the Slack hang",
            )
            assert len(pd.accepted()) == 1
            assert slack.messages == []  # Slack is still hanging
            assert store.message("open", "chat").status == PENDING
        finally:
            gate.set()
            runner.join(timeout=60)
        assert results == [DrainResult(sent=2)]
        assert len(slack.heads()) == 1


def test_workers_keep_delivering_to_others_while_one_receiver_hangs(store: Store) -> None:
    """The daemon's workers: while Slack's worker hangs on its first message, new PagerDuty
    messages are delivered by later rounds, and Slack's busy worker is not started twice."""
    with FakeSlack(token=TOKEN) as slack, FakePagerDuty() as pd:
        notifiers: dict[str, Notifier] = {
            "chat": SlackNotifier("#ml-oncall", TOKEN, base_url=slack.base_url, timeout=30),
            "pd": PagerDutyNotifier(PD_KEY, pd.base_url, timeout=30),
        }
        workers = ReceiverWorkers(store.sessions, notifiers, MAX_AGE)
        gate = threading.Event()
        slack.gate = gate
        try:
            store.open(["chat", "pd"], T0)
            assert sorted(workers.kick(T0)) == ["chat", "pd"]
            wait_for(lambda: len(pd.accepted()) == 1, "first trigger")
            wait_for(lambda: workers.busy() == ["chat"], "PagerDuty's round to end")

            store.open(["chat", "pd"], T0, model="other-model")
            assert workers.kick(T0 + timedelta(seconds=30)) == ["pd"]
            wait_for(lambda: len(pd.accepted()) == 2, "second trigger during the hang")
            assert slack.messages == []
        finally:
            gate.set()
        assert workers.wait(time.monotonic() + 60)
        assert len(slack.heads()) == 1  # its round had one message due when it started
        workers.kick(T0 + timedelta(minutes=1))
        assert workers.wait(time.monotonic() + 60)
        assert [m.status for m in store.messages()] == [SENT] * 4
        assert len(slack.heads()) == 2 and len(pd.incidents) == 2


def test_after_an_outage_heads_arrive_in_the_order_the_incidents_opened(store: Store) -> None:
    """Six incidents open one after another while Slack is down; retries are jittered, yet
    once Slack is back the six heads are posted in opening order, each exactly once."""
    with FakeSlack(token=TOKEN) as slack:
        notifier = SlackNotifier("#ml-oncall", TOKEN, base_url=slack.base_url, timeout=5)
        slack.down = True
        rng = random.Random(7)
        now = T0
        for i in range(6):
            store.open(["chat"], now, model=f"model-{i}")
            drain(store.sessions, {"chat": notifier}, now, MAX_AGE, rng)
            now += timedelta(seconds=rng.randint(5, 90))
        for _ in range(20):
            now += timedelta(minutes=3)
            drain(store.sessions, {"chat": notifier}, now, MAX_AGE, rng)
        slack.down = False
        for _ in range(40):
            now += timedelta(minutes=1)
            drain(store.sessions, {"chat": notifier}, now, MAX_AGE, rng)

        heads = [h["text"] for h in slack.heads()]
        order = [next(i for i in range(6) if f"model-{i}:" in text) for text in heads]
        assert order == [0, 1, 2, 3, 4, 5]
        assert [m.status for m in store.messages()] == [SENT] * 6


def test_no_reminders_pile_up_behind_an_undelivered_message(store: Store) -> None:
    """While a group's head is retried against a receiver that is down, no reminders are written
    (they would only lengthen the queue); once the head is delivered, reminding resumes."""
    from alerts.dispatch import flush

    with FakeSlack(token=TOKEN) as slack:
        notifier = SlackNotifier("#ml-oncall", TOKEN, base_url=slack.base_url, timeout=5)
        store.open(["chat"], T0)
        slack.down = True
        now = T0
        assert drain(store.sessions, {"chat": notifier}, now, MAX_AGE) == DrainResult(retried=1)
        for _ in range(3):
            now += timedelta(hours=4, minutes=1)
            with store.sessions.begin() as session:
                assert flush(session, now) == 0
            drain(store.sessions, {"chat": notifier}, now, MAX_AGE, random.Random(1))
        assert [m.event for m in store.messages()] == ["open"]

        slack.down = False
        now += timedelta(hours=1)
        assert drain(store.sessions, {"chat": notifier}, now, MAX_AGE) == DrainResult(sent=1)
        with store.sessions.begin() as session:
            assert flush(session, now) == 1  # the reminder, due since the head was written
        assert [m.event for m in store.messages()] == ["open", "update"]
