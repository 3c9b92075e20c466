"""Root-cause lines reach every channel, through the strict fakes: Slack's blocks, PagerDuty's
custom_details, the webhook body (documented schema), and the GitHub/bug-queue body."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from alerts.notifiers.bug_queue import BugSpec
from alerts.notifiers.github import issue_body
from alerts.notifiers.pagerduty import PagerDutyNotifier
from alerts.notifiers.slack import SlackNotifier
from alerts.notifiers.webhook import WebhookNotifier
from tests.builders import build_alert, build_notification
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.test_webhook import SECRET, Receiver

LINES = [
    "country = NL: 12% → 25% of traffic, roc_auc 0.97 → 0.91, explains 61% of the drop"
    " (mostly performance)",
    "amount = ≥ 120: 20% → 21% of traffic, roc_auc 0.95 → 0.90, explains 30% of the drop"
    " (mostly performance)",
    "channel = app: 40% → 30% of traffic, roc_auc 0.93 → 0.93, explains 5% of the drop"
    " (mostly mix)",
    "a fourth line no channel shows",
]
TOKEN = "xoxb-root-cause-test"


@pytest.fixture
def notification() -> object:
    return build_notification(build_alert(metric="roc_auc", root_cause=LINES[:3]))


def test_slack_shows_the_three_lines(notification: object) -> None:
    alert = build_alert(metric="roc_auc", root_cause=LINES)
    with FakeSlack(token=TOKEN) as slack:
        notifier = SlackNotifier("#ml-oncall", TOKEN, base_url=slack.base_url, timeout=5)
        notifier.send(build_notification(alert))
        [head] = slack.messages
    shown = json.dumps(head["blocks"], ensure_ascii=False)
    assert "• country = NL: 12% → 25% of traffic" in shown
    assert "explains 5% of the drop (mostly mix)" in shown
    assert "a fourth line" not in shown


def test_pagerduty_custom_details_carry_the_lines(notification: object) -> None:
    with FakePagerDuty() as pd:
        PagerDutyNotifier("k" * 32, base_url=pd.base_url, timeout=5).send(notification)  # type: ignore[arg-type]
        [event] = pd.accepted()
    [alert] = event["payload"]["custom_details"]["alerts"]
    assert alert["root_cause"] == LINES[:3]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as state:
        yield state


def test_the_webhook_body_carries_the_lines(receiver: Receiver, notification: object) -> None:
    WebhookNotifier(receiver.url, SECRET).send(notification)  # type: ignore[arg-type]
    [(_, raw)] = receiver.received
    [alert] = json.loads(raw)["alerts"]
    assert alert["root_cause"] == LINES[:3]


def test_the_issue_body_lists_the_lines() -> None:
    alert = build_alert(metric="roc_auc", root_cause=LINES[:3])
    spec = BugSpec(dedup_key="d1", purpose="ticket", alert=alert, group_key="g1")
    body = issue_body(spec, 7)
    assert "Where the change comes from:\n- country = NL: 12% → 25%" in body
