"""The webhook notifier, through its real HTTP client, against a local receiver that checks the
signature the way docs/webhook-schema.md tells receivers to."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from alerts.notifiers.base import DeliveryError, Notification
from alerts.notifiers.webhook import SCHEMA_VERSION, WebhookNotifier, payload
from tests.builders import build_alert, build_config, config_dict
from tests.fakes.http import FakeHTTPServer, Reply, Request

SECRET = "whsec-0123456789abcdef"
DOC = Path(__file__).resolve().parent.parent / "docs" / "webhook-schema.md"
STARTED = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def make_notification(event: str = "open", **changes: Any) -> Notification:
    alert = build_alert(
        slo="accuracy>=0.9@24h",
        runbook_url="https://wiki.example/runbooks/quality-drop.md",
        started_at=STARTED,
        ci=(0.794, 0.825),
        labels={"team": "fraud"},
        incident_key="inc-1",
        **changes,
    )
    return Notification(
        key="g1:14:1:my-tool",
        receiver="my-tool",
        group_key="g1",
        event=event,  # type: ignore[arg-type]
        alerts=(alert,),
        reason="new alerts",
    )


def verified(body: bytes, header: str, secret: str) -> bool:
    """The verification snippet from docs/webhook-schema.md, verbatim in behaviour."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


class Receiver(FakeHTTPServer):
    """A webhook endpoint: answers `status` (with `headers`), records what it received."""

    name = "fake-webhook-receiver"

    def __init__(self) -> None:
        super().__init__()
        self.status = 200
        self.headers: dict[str, str] = {}
        self.body = ""
        self.received: list[tuple[dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return self.origin + "/hooks/vigil"

    def answer(self, request: Request) -> Reply:
        self.received.append((request.headers, request.raw))
        return Reply(self.status, self.body.encode(), self.headers)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as state:
        yield state


def test_delivers_signed_versioned_json(receiver: Receiver) -> None:
    """The body is the versioned schema, the signature verifies with the documented recipe,
    and the delivery id is the message key (stable across retries)."""
    WebhookNotifier(receiver.url, SECRET).send(make_notification())

    [(headers, raw)] = receiver.received
    assert verified(raw, headers["X-Vigil-Signature"], SECRET)
    assert not verified(raw, headers["X-Vigil-Signature"], "another-secret")
    body = json.loads(raw)
    assert body["schema_version"] == SCHEMA_VERSION == 1
    assert (body["id"], body["event"], body["status"], body["group_key"]) == (
        "g1:14:1:my-tool",
        "open",
        "firing",
        "g1",
    )
    assert headers["X-Vigil-Delivery"] == body["id"] and headers["X-Vigil-Event"] == "open"
    assert headers["Content-Type"] == "application/json"
    [alert] = body["alerts"]
    assert (alert["value"], alert["n"], alert["ci"], alert["started_at"]) == (
        0.81,
        2500,
        [0.794, 0.825],
        "2026-11-03T09:00:00+00:00",
    )


def _documented_fields(section: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", body, flags=re.MULTILINE)


def test_the_documented_schema_is_the_schema() -> None:
    """Every field sent is documented and every documented field is sent, top level and per
    alert; the documented example has exactly those fields too."""
    sent = payload(make_notification())
    assert _documented_fields("Body") == list(sent)
    assert _documented_fields("Alert") == list(sent["alerts"][0])
    example = DOC.read_text(encoding="utf-8").split("```json\n", 1)[1].split("```", 1)[0]
    documented = json.loads(example)
    assert list(documented) == list(sent)
    assert list(documented["alerts"][0]) == list(sent["alerts"][0])


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (410, False),
        (422, False),
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
    ],
)
def test_status_classification(receiver: Receiver, status: int, retryable: bool) -> None:
    """4xx is permanent except 408 and 429; 5xx is retried; the answer's text is kept."""
    receiver.status, receiver.body = status, "nope, because reasons"
    with pytest.raises(DeliveryError) as caught:
        WebhookNotifier(receiver.url, SECRET).send(make_notification())
    assert caught.value.retryable is retryable
    assert f"HTTP {status}: nope, because reasons" in str(caught.value)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_delivered(receiver: Receiver, status: int) -> None:
    receiver.status = status
    WebhookNotifier(receiver.url, SECRET).send(make_notification("resolve", status="resolved"))
    assert json.loads(receiver.received[0][1])["status"] == "resolved"


def test_retry_after_in_seconds_or_as_a_date(receiver: Receiver) -> None:
    receiver.status, receiver.headers = 429, {"Retry-After": "120"}
    with pytest.raises(DeliveryError) as seconds:
        WebhookNotifier(receiver.url, SECRET).send(make_notification())
    later = datetime.now(UTC) + timedelta(minutes=10)
    receiver.status, receiver.headers = 503, {"Retry-After": format_datetime(later, usegmt=True)}
    with pytest.raises(DeliveryError) as date:
        WebhookNotifier(receiver.url, SECRET).send(make_notification())
    assert seconds.value.retry_after == 120
    assert date.value.retry_after is not None and 500 < date.value.retry_after <= 600


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    """A redirect could carry the signed body elsewhere: it is a permanent failure instead."""
    receiver.status, receiver.headers = 302, {"Location": "http://127.0.0.1:1/elsewhere"}
    with pytest.raises(DeliveryError) as caught:
        WebhookNotifier(receiver.url, SECRET).send(make_notification())
    assert caught.value.retryable is False and len(receiver.received) == 1


def test_outages_are_retried_and_credentials_never_leak(receiver: Receiver) -> None:
    """A dropped connection is retryable; no error names the URL's password or token query,
    or the signing secret, even when the server echoes the URL back."""
    password, token = "hunter2-pass", "tok-ABCDEF123456"
    url = receiver.url.replace("http://", f"http://bot:{password}@") + f"?token={token}"
    notifier = WebhookNotifier(url, SECRET)
    receiver.down = True
    with pytest.raises(DeliveryError) as dropped:
        notifier.send(make_notification())
    receiver.down = False
    receiver.status, receiver.body = 400, f"bad request to {url} signed with {SECRET}"
    with pytest.raises(DeliveryError) as echoed:
        notifier.send(make_notification())

    assert dropped.value.retryable is True and echoed.value.retryable is False
    for err in (dropped.value, echoed.value):
        text = str(err) + repr(err)
        assert password not in text and token not in text and SECRET not in text
        assert err.__cause__ is None
    assert password not in repr(notifier)


def test_config_takes_url_and_secret_from_the_environment() -> None:
    data = config_dict("sqlite://", "sqlite://")
    data["receivers"]["hook"] = {"webhook": {"url": "${HOOK_URL}", "secret": "${HOOK_SECRET}"}}
    config = build_config(data, env={"HOOK_URL": "https://x.example/h", "HOOK_SECRET": SECRET})
    hook = config.receivers["hook"].webhook
    assert hook is not None and hook.secret.get_secret_value() == SECRET
    assert SECRET not in repr(config)


def test_a_url_that_cannot_be_requested_is_permanent() -> None:
    """A scheme httpx cannot speak will not start working: failed, not retried forever."""
    with pytest.raises(DeliveryError) as caught:
        WebhookNotifier("ftp://files.example/hook?token=tok-SECRET99", SECRET).send(
            make_notification()
        )
    assert caught.value.retryable is False
    assert "cannot be requested" in str(caught.value) and "SECRET99" not in str(caught.value)
