"""The PagerDuty notifier, through its real HTTP client, against a local Events API v2 server
that validates and answers like PagerDuty (tests/fakes/pagerduty_api.py)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from alerts.dispatch import deliver
from alerts.incidents import dedup_key, open_incident
from alerts.notifiers.base import Alert, Delivery, DeliveryError, Notification, Notifier
from alerts.notifiers.pagerduty import MAX_SUMMARY, PagerDutyNotifier, build_event, from_config
from alerts.notifiers.registry import Reporting, build_notifiers
from alerts.outbox import FAILED, PENDING, SENT
from monitor.config import ConfigError
from monitor.core.clock import SimulatedClock
from monitor.store.tables import Incident
from tests.builders import build_alert, build_config, config_dict
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.test_outbox import T0, Store
from tests.test_outbox import make_alert as make_outbox_alert

KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12"
STARTED = datetime(2026, 11, 3, 14, 5, tzinfo=UTC)


def make_alert(**changes: Any) -> Alert:
    return build_alert(**{"labels": {"team": "fraud"}, "incident_key": "inc-1", **changes})


def make_notification(
    event: str = "open", *alerts: Alert, reason: str = "", sequence: int = 1
) -> Notification:
    return Notification(
        key=f"group-1:1:{sequence}:pd",
        receiver="pd",
        group_key="group-1",
        event=event,  # type: ignore[arg-type]
        alerts=alerts or (make_alert(),),
        sequence=sequence,
        reason=reason,
    )


@pytest.fixture
def pd() -> Iterator[FakePagerDuty]:
    with FakePagerDuty() as fake:
        yield fake


@pytest.fixture
def notifier(pd: FakePagerDuty) -> PagerDutyNotifier:
    return PagerDutyNotifier(KEY, pd.base_url, timeout=5)


def test_open_triggers_an_incident_with_the_numbers(
    pd: FakePagerDuty, notifier: PagerDutyNotifier
) -> None:
    """An open is a trigger keyed by the group: summary, mapped severity, source, component,
    group, class, the numbers in custom_details and the runbook and report as links."""
    drift = make_alert(
        metric="drift.psi",
        kind="feature_drift",
        severity="ticket",
        feature="amount",
        objective="< 0.2",
        value=0.4,
        details={"amount": 0.4},
        report_url="https://vigil.example/drift.html",
    )

    delivery = notifier.send(make_notification("open", make_alert(), drift))

    assert delivery.ref == "group-1"
    [incident] = pd.incidents
    assert (incident.dedup_key, incident.status, incident.severity) == (
        "group-1",
        "triggered",
        "critical",
    )
    [event] = pd.accepted()
    payload = event["payload"]
    assert payload["summary"] == (
        "fraud-detector: accuracy >= 0.9 (24h): value 0.810 (n=2,500) and 1 more alert(s)"
    )
    assert (payload["source"], payload["component"], payload["group"], payload["class"]) == (
        "fraud-detector",
        "accuracy",
        "fraud",
        "quality_drop",
    )
    first, second = payload["custom_details"]["alerts"]
    assert (first["value"], first["n"], first["ci"], first["objective"]) == (
        0.81,
        2500,
        [0.79, 0.83],
        ">= 0.9",
    )
    assert second["top"] == {"amount": 0.4} and second["report"] == drift.report_url
    assert payload["custom_details"]["firing"] == 2
    # The shared runbook is linked once, then the drift alert's report.
    assert event["links"] == [
        {"href": "https://runbooks.example/quality-drop.md", "text": "Runbook: quality_drop"},
        {"href": "https://vigil.example/drift.html", "text": "Drift report: fraud-detector"},
    ]
    assert event["client"] == "Vigil"


def test_lifecycle_keeps_one_incident(pd: FakePagerDuty, notifier: PagerDutyNotifier) -> None:
    """Open, a new alert, acknowledgement of every firing alert, resolution: one PagerDuty
    incident throughout, ending resolved; a partly acknowledged group still triggers."""
    second = make_alert(metric="roc_auc", incident_key="inc-2")
    notifier.send(make_notification("open"))
    notifier.send(make_notification("update", make_alert(), second, reason="new alerts"))
    acked_one = make_notification(
        "update", make_alert(status="acknowledged"), second, reason="acknowledged"
    )
    notifier.send(acked_one)
    assert pd.incidents[0].status == "triggered"
    notifier.send(
        make_notification(
            "update",
            make_alert(status="acknowledged"),
            replace(second, status="acknowledged"),
            reason="acknowledged",
        )
    )
    assert pd.incidents[0].status == "acknowledged"
    resolved = make_alert(status="resolved", resolved_at=STARTED + timedelta(hours=1))
    notifier.send(make_notification("resolve", resolved, replace(resolved, metric="roc_auc")))

    [incident] = pd.incidents
    assert incident.status == "resolved"
    assert [e["event_action"] for e in incident.events] == [
        "trigger",
        "trigger",
        "trigger",
        "acknowledge",
        "resolve",
    ]
    assert all(e["dedup_key"] == "group-1" for e in incident.events)
    assert "payload" not in incident.events[-1]


@pytest.mark.parametrize(
    ("severity", "page_severity", "expected"),
    [
        ("page", "critical", "critical"),
        ("page", "error", "error"),
        ("ticket", "critical", "warning"),
        ("info", "critical", "info"),
    ],
)
def test_severity_mapping(severity: str, page_severity: str, expected: str) -> None:
    event = build_event(
        make_notification("open", make_alert(severity=severity)), KEY, page_severity=page_severity
    )
    assert event["payload"]["severity"] == expected


def test_long_names_fit_the_summary_limit(pd: FakePagerDuty, notifier: PagerDutyNotifier) -> None:
    """A summary over 1024 characters is cut (PagerDuty rejects longer ones) and accepted."""
    notifier.send(make_notification("open", make_alert(model="m" * 3000)))
    [event] = pd.accepted()
    assert len(event["payload"]["summary"]) == MAX_SUMMARY
    assert event["payload"]["summary"].endswith("…")


def test_local_runbooks_are_not_sent_as_links(
    pd: FakePagerDuty, notifier: PagerDutyNotifier
) -> None:
    notifier.send(make_notification("open", make_alert(runbook_url="file:///runbooks/q.md")))
    assert "links" not in pd.accepted()[0]


def test_a_resent_trigger_does_not_page_twice(
    pd: FakePagerDuty, notifier: PagerDutyNotifier
) -> None:
    """The same trigger twice (a retry after a crash) lands in the same incident."""
    notifier.send(make_notification("open"))
    notifier.send(make_notification("open"))
    [incident] = pd.incidents
    assert incident.triggers == 2


def test_malformed_routing_key_fails_once_clearly_and_never_leaks(pd: FakePagerDuty) -> None:
    """PagerDuty's 400 is permanent; the error quotes PagerDuty's reason and says what to fix,
    without the key; later sends fail the same way without another request."""
    bad_key = "not-a-real-key-SECRET"
    notifier = PagerDutyNotifier(bad_key, pd.base_url)

    with pytest.raises(DeliveryError) as first:
        notifier.send(make_notification("open"))
    with pytest.raises(DeliveryError) as second:
        notifier.send(make_notification("resolve"))

    assert first.value.retryable is False
    message = str(first.value)
    assert "Length of 'routing_key' is incorrect (should be 32 characters)" in message
    assert "check this receiver's routing_key" in message
    assert bad_key not in message and "SECRET" not in message
    assert str(second.value) == message
    assert len(pd.requests) == 1 and pd.incidents == []


def test_unknown_routing_key_is_permanent() -> None:
    with FakePagerDuty(known_keys={"A" * 32}) as pd, pytest.raises(DeliveryError) as caught:
        PagerDutyNotifier(KEY, pd.base_url).send(make_notification("open"))
    assert caught.value.retryable is False
    assert "Invalid routing key" in str(caught.value) and KEY not in str(caught.value)


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limits_and_server_errors_are_retried(
    pd: FakePagerDuty, notifier: PagerDutyNotifier, status: int
) -> None:
    """429 and 5xx mean "later": retryable, and the next attempt is accepted."""
    if status == 429:
        pd.rate_limit_next(1)
    else:
        pd.fail_next(1, status)

    with pytest.raises(DeliveryError) as caught:
        notifier.send(make_notification("open"))

    assert caught.value.retryable is True
    assert f"HTTP {status}" in str(caught.value)
    notifier.send(make_notification("open"))
    assert len(pd.incidents) == 1


def test_network_failures_are_retried(pd: FakePagerDuty, notifier: PagerDutyNotifier) -> None:
    pd.down = True
    with pytest.raises(DeliveryError) as dropped:
        notifier.send(make_notification("open"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DeliveryError) as refused:
        PagerDutyNotifier(KEY, f"http://127.0.0.1:{port}").send(make_notification("open"))
    assert dropped.value.retryable and refused.value.retryable
    assert KEY not in str(dropped.value) + str(refused.value)


def test_config_rejects_a_malformed_routing_key_by_field() -> None:
    """A key of the wrong length is a config error naming the field, not a silent drop."""
    data = config_dict("sqlite://", "sqlite://")
    data["receivers"]["pd"] = {"pagerduty": {"routing_key": "${PD_KEY}"}}
    with pytest.raises(ConfigError) as caught:
        build_config(data, env={"PD_KEY": "short-SECRET-key"})
    rendered = caught.value.render()
    assert "receivers.pd.pagerduty.routing_key" in rendered
    assert "32-character integration key" in rendered and "SECRET" not in rendered
    good = build_config(data, env={"PD_KEY": KEY})
    pagerduty = good.receivers["pd"].pagerduty
    assert pagerduty is not None
    built = from_config(pagerduty)
    assert built.url == "https://events.pagerduty.com/v2/enqueue" and KEY not in repr(built)


def _post(pd: FakePagerDuty, body: Any, content_type: str = "application/json") -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        pd.base_url + "/v2/enqueue", data=raw, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_fake_rejects_what_pagerduty_rejects(pd: FakePagerDuty) -> None:
    """Bodies PagerDuty refuses are refused with its status and error texts."""
    good = {
        "routing_key": KEY,
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "m", "severity": "critical"},
    }
    cases = {
        "long summary": {**good, "payload": {**good["payload"], "summary": "x" * 1025}},
        "no source": {**good, "payload": {"summary": "s", "severity": "critical"}},
        "bad severity": {**good, "payload": {**good["payload"], "severity": "page"}},
        "bad action": {**good, "event_action": "page"},
        "resolve without key": {"routing_key": KEY, "event_action": "resolve"},
        "long dedup key": {**good, "dedup_key": "k" * 256},
    }
    expected = {
        "long summary": "Length of 'payload.summary' is too long (maximum is 1024 characters)",
        "no source": "'payload.source' is missing or blank",
        "bad severity": "'payload.severity' is invalid",
        "bad action": "'event_action' is invalid",
        "resolve without key": "'dedup_key' is missing or blank",
        "long dedup key": "Length of 'dedup_key' is too long",
    }
    for name, body in cases.items():
        status, answer = _post(pd, body)
        assert status == 400, name
        assert (
            answer["status"] == "invalid event" and answer["message"] == "Event object is invalid"
        )
        assert any(e.startswith(expected[name]) for e in answer["errors"]), (name, answer)
    status, answer = _post(pd, b"routing_key=x", "application/x-www-form-urlencoded")
    assert status == 400 and answer["errors"] == ["JSON parse error"]
    status, answer = _post(pd, good)
    assert status == 202 and answer["status"] == "success" and len(answer["dedup_key"]) == 32
    assert len(pd.incidents) == 1


# -- through the outbox ------------------------------------------------------------------------


def test_a_429_storm_is_retried_without_loss(store: Store, pd: FakePagerDuty) -> None:
    """Three groups open and resolve while PagerDuty answers 429 to fifteen events in a row:
    every event is retried with backoff until accepted, each exactly once, trigger before
    resolve, and PagerDuty ends with three resolved incidents."""
    notifiers: dict[str, Notifier] = {"pd": PagerDutyNotifier(KEY, pd.base_url)}
    pd.rate_limit_next(15)
    clock = SimulatedClock(T0)
    incidents = [store.open(["pd"], T0, model=f"model-{i}") for i in range(3)]
    for incident in incidents:
        store.resolve(incident, T0 + timedelta(minutes=1))
    while any(m.status != SENT for m in store.messages()):
        # The queue is first in, first out, so all fifteen refusals fall on its oldest
        # message, whose backoff doubles each time up to MAX_BACKOFF (30 min).
        assert clock.now() < T0 + timedelta(hours=6), [m.last_error for m in store.messages()]
        store.drain(notifiers, clock.now())
        clock.advance(timedelta(seconds=30))

    assert sum(r.status == 429 for r in pd.requests) == 15
    assert len(pd.accepted()) == 6
    assert {m.status for m in store.messages()} == {SENT}
    assert [i.status for i in pd.incidents] == ["resolved"] * 3
    assert all(
        [e["event_action"] for e in i.events] == ["trigger", "resolve"] for i in pd.incidents
    )
    assert max(m.attempts for m in store.messages()) > 1


def test_a_crash_between_send_and_commit_opens_no_second_incident(
    store: Store, pd: FakePagerDuty
) -> None:
    """PagerDuty accepts the trigger, the process dies before the outbox commit; the retry
    sends the same dedup key, so PagerDuty still has one incident."""

    class CrashAfterSend:
        def send(self, notification: Notification) -> Delivery:
            PagerDutyNotifier(KEY, pd.base_url).send(notification)
            raise RuntimeError("killed before the commit")

    store.open(["pd"], T0)
    with pytest.raises(RuntimeError):
        store.drain({"pd": CrashAfterSend()}, T0)
    assert store.message("open", "pd").status == PENDING

    store.drain({"pd": PagerDutyNotifier(KEY, pd.base_url)}, T0 + timedelta(minutes=1))

    assert store.message("open", "pd").status == SENT
    [incident] = pd.incidents
    assert incident.triggers == 2 and incident.status == "triggered"


def test_a_malformed_routing_key_is_reported_once(store: Store, pd: FakePagerDuty) -> None:
    """Every message to a receiver with a key PagerDuty refuses fails for good, with one HTTP
    call, one error log line and one Vigil meta-alert (kind monitoring_blind) that reaches
    on-call through the receivers that work (Slack here)."""
    with FakeSlack(token="xoxb-t") as slack:
        data = config_dict("sqlite://", "sqlite://")
        data["routing"] = {"default": ["chat", "pd"], "group_wait": "0s", "group_interval": "0s"}
        data["receivers"] = {
            "chat": {
                "slack": {"channel": "#ml-oncall", "token": "xoxb-t", "base_url": slack.base_url}
            },
            "pd": {"pagerduty": {"routing_key": KEY, "base_url": pd.base_url}},
        }
        config = build_config(data)
        clock = SimulatedClock(T0)
        notifiers = build_notifiers(config, Path("."), sessions=store.sessions, clock=clock)
        # The config refuses a malformed key, so put one behind the receiver as if PagerDuty
        # had revoked it.
        reporting = notifiers["pd"]
        assert isinstance(reporting, Reporting)
        reporting.inner = PagerDutyNotifier("malformed-key", pd.base_url)

        with capture_logs() as logs:
            for minute, model in enumerate(["fraud-detector", "churn", "ranker"]):
                now = T0 + timedelta(minutes=minute)
                clock.set(now)
                with store.sessions.begin() as session:
                    key = dedup_key(model, "accuracy>=0.85@24h", "")
                    alert = replace(make_outbox_alert(model), started_at=now)
                    open_incident(session, config, key, alert, now, "test")
                deliver(store.sessions, notifiers, now, timedelta(days=2))
            deliver(store.sessions, notifiers, now + timedelta(minutes=1), timedelta(days=2))

        assert len(pd.requests) == 1
        failed = [m for m in store.messages() if m.receiver == "pd"]
        assert len(failed) == 4 and {m.status for m in failed} == {FAILED}
        assert all("Length of 'routing_key' is incorrect" in str(m.last_error) for m in failed)
        rejected = [e for e in logs if e["event"] == "receiver rejects notifications"]
        assert len(rejected) == 1 and rejected[0]["receiver"] == "pd"
        with store.sessions() as session:
            meta = list(
                session.scalars(select(Incident).where(Incident.kind == "monitoring_blind"))
            )
        assert len(meta) == 1 and meta[0].model == "vigil" and meta[0].status == "firing"
        told = [h for h in slack.heads() if "notifications.rejected" in h["text"]]
        assert len(told) == 1
        assert "receiver pd rejects notifications" in json.dumps(told[0]["blocks"])
        assert len(slack.heads()) == 4
