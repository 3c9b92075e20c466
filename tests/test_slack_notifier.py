"""The Slack notifier, driven through the real slack-sdk WebClient against a local fake Slack.

The fake enforces Slack's rules (auth, channels, Block Kit limits, thread heads), so a passing
test means Slack would have accepted the same bytes, not merely that some method was called.
"""

from __future__ import annotations

import json
import socket
import traceback
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from alerts.notifiers.base import Alert, DeliveryError, Notification
from alerts.notifiers.slack import SlackFileNotifier, SlackNotifier, from_config
from alerts.notifiers.slack_blocks import (
    MAX_BLOCKS,
    MAX_FALLBACK_TEXT,
    MAX_FIELD_TEXT,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    TRUNCATION_SUFFIX,
    build_message,
    clamp_blocks,
)
from monitor.config.models import SlackReceiver
from tests.fakes.slack_api import FakeSlack

TOKEN = "xoxb-test-token"
STARTED = datetime(2026, 11, 3, 14, 5, 42, tzinfo=UTC)


def make_alert(**changes: Any) -> Alert:
    alert = Alert(
        model="fraud-detector",
        slo="fraud-detector/roc_auc/7d",
        metric="roc_auc",
        kind="quality_drop",
        severity="page",
        objective=">= 0.85",
        window="7d",
        value=0.8123,
        n=1234,
        runbook_url="https://runbooks.example/quality-drop.md",
        started_at=STARTED,
        ci=(0.7901, 0.8302),
    )
    return replace(alert, **changes)


def make_notification(
    event: str = "open", thread_ref: str | None = None, **alert_changes: Any
) -> Notification:
    return Notification(
        key=f"inc-1:{event}:ml-oncall",
        receiver="ml-oncall",
        incident_key="inc-1",
        event=event,  # type: ignore[arg-type]
        alert=make_alert(**alert_changes),
        thread_ref=thread_ref,
    )


def resolved(thread_ref: str | None) -> Notification:
    return make_notification(
        "resolve",
        thread_ref=thread_ref,
        value=0.871,
        resolved_at=STARTED + timedelta(hours=2, minutes=30),
    )


def all_text(blocks: list[dict[str, Any]]) -> str:
    """Every string a reader could see in the blocks, joined, for content assertions."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(found)


def text_objects(blocks: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, text object) for every text object, to check each against its own limit."""
    for block in blocks:
        if block["type"] == "header":
            yield "header", block["text"]
        elif block["type"] == "section":
            if "text" in block:
                yield "section", block["text"]
            for item in block.get("fields", []):
                yield "field", item
        elif block["type"] == "context":
            for element in block["elements"]:
                yield "context", element


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def notifier(slack: FakeSlack) -> SlackNotifier:
    return SlackNotifier("#ml-oncall", TOKEN, base_url=slack.base_url, timeout=5)


def raw_client(slack: FakeSlack, token: str | None = TOKEN) -> WebClient:
    return WebClient(token=token, base_url=slack.base_url, retry_handlers=[])


# -- happy path --------------------------------------------------------------------------------


def test_open_posts_head_message_with_what_on_call_needs(
    slack: FakeSlack, notifier: SlackNotifier
) -> None:
    """An open posts one top-level message naming model, value, objective, n, CI and runbook."""
    delivery = notifier.send(make_notification())

    assert len(slack.messages) == 1
    head = slack.messages[0]
    assert delivery.ref == head["ts"]
    assert head["channel"] == "#ml-oncall"
    assert head["thread_ts"] is None
    shown = all_text(head["blocks"])
    assert "fraud-detector" in shown
    assert "`roc_auc`" in shown
    assert "0.812" in shown
    assert "&gt;= 0.85" in shown  # escaped, so Slack does not read it as markup
    assert "n = 1,234" in shown
    assert "CI [0.790, 0.830]" in shown
    assert "2026-11-03T14:05Z" in shown
    assert "<https://runbooks.example/quality-drop.md|Runbook>" in shown
    assert head["blocks"][0]["type"] == "header"
    assert head["blocks"][0]["text"]["text"].startswith(":rotating_light: fraud-detector")
    assert "fraud-detector" in head["text"]


def test_each_send_is_exactly_one_request(slack: FakeSlack, notifier: SlackNotifier) -> None:
    """The SDK's own retries are off: the outbox owns retrying, so one send is one HTTP call."""
    slack.fail_next(1, status=503)
    with pytest.raises(DeliveryError):
        notifier.send(make_notification())
    assert len(slack.requests) == 1


def test_resolve_lands_in_the_head_thread(slack: FakeSlack, notifier: SlackNotifier) -> None:
    """A resolve replies under the head (not broadcast) and hands back the head's ts."""
    head = notifier.send(make_notification())
    delivery = notifier.send(resolved(head.ref))

    assert delivery.ref == head.ref
    assert len(slack.messages) == 2
    reply = slack.thread(str(head.ref))
    assert len(reply) == 1
    assert reply[0]["reply_broadcast"] is False
    shown = all_text(reply[0]["blocks"])
    assert "Resolved after 2h 30m" in shown
    assert "0.871" in shown
    assert reply[0]["text"].startswith(":white_check_mark: Resolved after 2h 30m")


def test_resolve_without_thread_posts_a_new_message(
    slack: FakeSlack, notifier: SlackNotifier
) -> None:
    """With no head known (it was never delivered), a resolve becomes its own top-level message."""
    delivery = notifier.send(resolved(None))

    assert len(slack.messages) == 1
    assert slack.messages[0]["thread_ts"] is None
    assert delivery.ref == slack.messages[0]["ts"]


def test_resolve_with_a_stale_thread_is_still_delivered(
    slack: FakeSlack, notifier: SlackNotifier
) -> None:
    """A head Slack does not know (demo fake ts, deleted message) must not swallow the resolve."""
    delivery = notifier.send(resolved("file-inc-1"))

    assert [r.response.get("error") for r in slack.requests] == ["thread_not_found", None]
    assert len(slack.messages) == 1
    assert delivery.ref == slack.messages[0]["ts"]


# -- failures ----------------------------------------------------------------------------------


def test_invalid_token_is_permanent_and_never_leaks(slack: FakeSlack) -> None:
    """A wrong token will not fix itself; the error, its chain and traceback omit the token."""
    secret = "xoxb-wrong-0123456789-SECRET"
    notifier = SlackNotifier("#ml-oncall", secret, base_url=slack.base_url)

    with pytest.raises(DeliveryError) as caught:
        notifier.send(make_notification())

    err = caught.value
    assert err.retryable is False
    assert str(err) == "slack chat.postMessage failed: invalid_auth"
    assert err.__cause__ is None and err.__context__ is None
    rendered = "".join(traceback.format_exception(err)) + repr(err) + repr(notifier)
    assert secret not in rendered
    assert slack.messages == []


def test_rate_limit_is_retryable_after_retry_after(
    slack: FakeSlack, notifier: SlackNotifier
) -> None:
    """HTTP 429 is retryable and carries Slack's Retry-After so the outbox waits that long."""
    slack.rate_limit_next(1, retry_after=7)

    with pytest.raises(DeliveryError) as caught:
        notifier.send(make_notification())

    assert caught.value.retryable is True
    assert caught.value.retry_after == 7.0
    assert "ratelimited" in str(caught.value)
    assert notifier.send(make_notification()).ref == slack.messages[0]["ts"]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retryable(
    slack: FakeSlack, notifier: SlackNotifier, status: int
) -> None:
    """A 5xx (even with a non-JSON body) is Slack's problem, so a later attempt can succeed."""
    slack.fail_next(1, status=status)

    with pytest.raises(DeliveryError) as caught:
        notifier.send(make_notification())

    assert caught.value.retryable is True
    assert caught.value.retry_after is None
    assert str(status) in str(caught.value)
    assert notifier.send(make_notification()).ref is not None


def test_dropped_connection_is_retryable(slack: FakeSlack, notifier: SlackNotifier) -> None:
    """A connection closed without an answer is an outage, not a bad message."""
    slack.down = True

    with pytest.raises(DeliveryError) as caught:
        notifier.send(make_notification())

    assert caught.value.retryable is True
    slack.down = False
    assert notifier.send(make_notification()).ref is not None


def test_timeout_is_retryable(slack: FakeSlack) -> None:
    """A Slack slower than our timeout is retried later rather than blocking the outbox."""
    notifier = SlackNotifier("#ml-oncall", TOKEN, base_url=slack.base_url, timeout=0.2)
    slack.delay = 1.0

    with pytest.raises(DeliveryError) as caught:
        notifier.send(make_notification())

    assert caught.value.retryable is True
    assert "timed out" in str(caught.value).lower()


def test_refused_connection_is_retryable() -> None:
    """Nothing listening (Slack or a proxy down) is retryable too."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    notifier = SlackNotifier("#ml-oncall", TOKEN, base_url=f"http://127.0.0.1:{port}/api")

    with pytest.raises(DeliveryError) as caught:
        notifier.send(make_notification())

    assert caught.value.retryable is True
    assert TOKEN not in str(caught.value)


def test_unknown_channel_is_permanent(slack: FakeSlack) -> None:
    """A channel that does not exist needs a config change; retrying cannot help."""
    notifier = SlackNotifier("#no-such-channel", TOKEN, base_url=slack.base_url)

    with pytest.raises(DeliveryError) as caught:
        notifier.send(make_notification())

    assert caught.value.retryable is False
    assert str(caught.value) == "slack chat.postMessage failed: channel_not_found"


# -- Slack's limits ----------------------------------------------------------------------------


def test_huge_names_are_truncated_to_fit_slack(slack: FakeSlack, notifier: SlackNotifier) -> None:
    """Oversized user data is cut with a marker; the fake, as strict as Slack, accepts it."""
    notification = make_notification(
        model="m" * 500,
        feature="f" * 10_000,
        objective="< " + "9" * 4000,
        slo="s" * 5000,
    )

    delivery = notifier.send(notification)

    assert delivery.ref == slack.messages[0]["ts"]
    sent = slack.messages[0]
    limits = {"header": MAX_HEADER_TEXT, "section": MAX_SECTION_TEXT, "field": MAX_FIELD_TEXT}
    limits["context"] = MAX_SECTION_TEXT
    truncated = []
    for where, obj in text_objects(sent["blocks"]):
        assert len(obj["text"]) <= limits[where], where
        if obj["text"].endswith(TRUNCATION_SUFFIX):
            truncated.append(where)
    assert "header" in truncated and "field" in truncated
    assert len(sent["text"]) <= MAX_FALLBACK_TEXT
    assert sent["text"].endswith(TRUNCATION_SUFFIX)
    # The link comes first in its context element, so cutting the tail keeps it clickable.
    assert "<https://runbooks.example/quality-drop.md|Runbook>" in all_text(sent["blocks"])


def test_clamp_blocks_caps_count_and_sizes() -> None:
    """Too many blocks or overlong texts are clamped, never passed on for Slack to reject."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 5000}} for _ in range(60)
    ]

    clamped = clamp_blocks(blocks)

    assert len(clamped) == MAX_BLOCKS
    assert "11 more blocks omitted" in clamped[-1]["elements"][0]["text"]
    assert all(len(b["text"]["text"]) == MAX_SECTION_TEXT for b in clamped[:-1])
    assert blocks[0]["text"]["text"] == "x" * 5000  # inputs are not mutated


def test_truncation_never_leaves_half_an_escape() -> None:
    """A cut inside `&amp;` would show raw markup; the cut backs off to before the entity."""
    message = build_message(make_notification(feature="&" * 3000))
    mrkdwn = [obj["text"] for _, obj in text_objects(message["blocks"]) if obj["type"] == "mrkdwn"]
    for text in [*mrkdwn, message["text"]]:
        body = text.removesuffix(TRUNCATION_SUFFIX)
        assert not body.endswith(("&", "&a", "&am", "&amp"))
    # plain_text is shown literally, so the header keeps its ampersands unescaped.
    assert message["blocks"][0]["text"]["text"].endswith("&" + TRUNCATION_SUFFIX)


def test_durations_are_humanized_for_seconds_metrics() -> None:
    """Freshness metrics read as `1h 2m`, not `3720.000`, in the value and its interval."""
    message = build_message(
        make_notification(
            metric="freshness.prediction_age",
            unit="s",
            value=3720.0,
            objective="< 15m",
            ci=(3600.0, 3900.0),
        )
    )
    shown = all_text(message["blocks"])
    assert "1h 2m (objective &lt; 15m)" in shown
    assert "CI [1h, 1h 5m]" in shown


def test_missing_value_reads_no_data() -> None:
    """A blind monitor has no value; the message says so instead of printing `None`."""
    shown = all_text(build_message(make_notification(value=None, ci=None))["blocks"])
    assert "no data (objective &gt;= 0.85)" in shown
    assert "CI" not in shown


# -- file notifier and factory -----------------------------------------------------------------


def test_file_notifier_writes_the_same_payload_shape(
    tmp_path: Path, slack: FakeSlack, notifier: SlackNotifier
) -> None:
    """Without a token each message is one JSON line, the very body chat.postMessage receives."""
    outfile = tmp_path / "nested" / "slack.jsonl"
    file_notifier = SlackFileNotifier("#ml-oncall", outfile)

    head = file_notifier.send(make_notification())
    resolve = file_notifier.send(resolved(head.ref))

    assert head.ref == "file-inc-1"
    assert file_notifier.send(make_notification()).ref == head.ref  # stable on retry
    assert resolve.ref == head.ref
    lines = outfile.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    written = [json.loads(line) for line in lines]
    assert set(written[0]) == {"channel", "text", "blocks"}
    assert written[1]["thread_ts"] == "file-inc-1"
    assert written[1]["reply_broadcast"] is False

    real_head = notifier.send(make_notification())
    notifier.send(resolved(real_head.ref))
    posted = [r.body for r in slack.requests if r.api_method == "chat.postMessage"]
    assert posted[0] == written[0]
    assert {**posted[1], "thread_ts": "file-inc-1"} == written[1]


def test_from_config_picks_file_without_token(tmp_path: Path) -> None:
    """No token (or an empty one from an unset env var) means the demo's file notifier."""
    default = tmp_path / "default.jsonl"
    for token in (None, SecretStr(""), SecretStr("  ")):
        chosen = from_config(SlackReceiver(channel="#ml-oncall", token=token), default)
        assert isinstance(chosen, SlackFileNotifier)
        assert chosen.path == default
    custom = from_config(
        SlackReceiver(channel="#ml-oncall", outfile=str(tmp_path / "custom.jsonl")), default
    )
    assert isinstance(custom, SlackFileNotifier)
    assert custom.path == tmp_path / "custom.jsonl"


def test_from_config_uses_the_api_with_a_token(slack: FakeSlack, tmp_path: Path) -> None:
    """With a token, messages go to the Web API at the configured base_url (slash optional)."""
    cfg = SlackReceiver(
        channel="#ml-slo", token=SecretStr(TOKEN), base_url=slack.base_url.rstrip("/")
    )
    chosen = from_config(cfg, tmp_path / "unused.jsonl")

    assert isinstance(chosen, SlackNotifier)
    assert TOKEN not in repr(chosen)
    assert chosen.send(make_notification()).ref == slack.messages[0]["ts"]
    assert slack.messages[0]["channel"] == "#ml-slo"
    assert not (tmp_path / "unused.jsonl").exists()


# -- the fake itself ---------------------------------------------------------------------------


def _api_error(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as caught:
        call()
    data = caught.value.response.data
    assert isinstance(data, dict)
    return data


def test_fake_rejects_what_slack_rejects(slack: FakeSlack) -> None:
    """The fake is no accept-all mock: auth, channel, content and Block Kit limits are enforced."""
    client = raw_client(slack)
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "ok"}}

    no_auth = _api_error(
        lambda: raw_client(slack, None).chat_postMessage(channel="#ml-oncall", text="x")
    )
    bad_auth = _api_error(
        lambda: raw_client(slack, "xoxb-nope").chat_postMessage(channel="#ml-oncall", text="x")
    )
    too_many = _api_error(
        lambda: client.chat_postMessage(channel="#ml-oncall", text="x", blocks=[section] * 51)
    )
    too_long = {"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}
    long_section = _api_error(
        lambda: client.chat_postMessage(channel="#ml-oncall", text="x", blocks=[too_long])
    )
    long_header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    header = _api_error(
        lambda: client.chat_postMessage(channel="#ml-oncall", text="x", blocks=[long_header])
    )
    with pytest.warns(UserWarning, match="`text` argument is missing"):
        empty = _api_error(lambda: client.chat_postMessage(channel="#ml-oncall", text=""))
    channel = _api_error(lambda: client.chat_postMessage(channel="#nope", text="x"))
    thread = _api_error(
        lambda: client.chat_postMessage(channel="#ml-oncall", text="x", thread_ts="1.000001")
    )

    assert no_auth["error"] == "not_authed"
    assert bad_auth["error"] == "invalid_auth"
    assert too_many["error"] == "invalid_blocks"
    assert long_section["error"] == "invalid_blocks"
    assert (
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
        in long_section["errors"]
    )
    assert header["error"] == "invalid_blocks"
    assert empty["error"] == "no_text"
    assert channel["error"] == "channel_not_found"
    assert thread["error"] == "thread_not_found"
    assert slack.messages == []
    assert all(r.status == 200 for r in slack.requests)  # Slack reports these with HTTP 200


def test_fake_accepts_form_encoding_and_serves_history(slack: FakeSlack) -> None:
    """Form bodies (blocks as a JSON string, token as a parameter) work like JSON ones."""
    client = raw_client(slack)
    head = client.chat_postMessage(channel="C0123", text="head")
    form = {
        "token": TOKEN,
        "channel": "C0123",
        "thread_ts": head["ts"],
        "blocks": json.dumps([{"type": "section", "text": {"type": "mrkdwn", "text": "reply"}}]),
    }
    request = urllib.request.Request(
        slack.base_url + "chat.postMessage",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        reply = json.loads(response.read())
    client.chat_update(channel="C0123", ts=head["ts"], text="head, edited")
    history = client.conversations_history(channel="C0123")

    assert reply["ok"] is True and reply["message"]["thread_ts"] == head["ts"]
    assert float(reply["ts"]) > float(head["ts"])
    assert [m["text"] for m in history["messages"]] == ["head, edited"]
    assert client.auth_test()["ok"] is True
    assert (
        _api_error(lambda: client.chat_update(channel="C0123", ts="9.9", text="x"))["error"]
        == "message_not_found"
    )
