"""The Slack notifiers, driven through the real slack-sdk clients against a local fake Slack.

The fake enforces Slack's rules (auth, channels, Block Kit limits, thread heads, metadata, IDs
for history and edits), so a passing test means Slack would have accepted the same bytes, not
merely that some method was called.
"""

from __future__ import annotations

import json
import socket
import traceback
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from alerts.notifiers.base import Alert, DeliveryError, Notification
from alerts.notifiers.slack import (
    SlackFileNotifier,
    SlackNotifier,
    SlackWebhookNotifier,
    from_config,
)
from alerts.notifiers.slack_blocks import (
    MAX_BLOCKS,
    MAX_FALLBACK_TEXT,
    MAX_FIELD_TEXT,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    TRUNCATION_SUFFIX,
    build_message,
    clamp_blocks,
    head_message,
)
from monitor.config.models import SlackReceiver
from tests.builders import build_alert
from tests.fakes import slack_api
from tests.fakes.slack_api import FakeSlack

TOKEN = "xoxb-test-token"
STARTED = datetime(2026, 11, 3, 14, 5, 42, tzinfo=UTC)
RUNBOOK = "https://runbooks.example/quality-drop.md"


def make_alert(**changes: Any) -> Alert:
    roc_auc = {
        "slo": "fraud-detector/roc_auc/7d",
        "metric": "roc_auc",
        "objective": ">= 0.85",
        "window": "7d",
        "value": 0.8123,
        "n": 1234,
        "runbook_url": RUNBOOK,
        "started_at": STARTED,
        "ci": (0.7901, 0.8302),
    }
    return build_alert(**{**roc_auc, **changes})


def make_notification(
    event: str = "open",
    thread_ref: str | None = None,
    *,
    alerts: tuple[Alert, ...] | None = None,
    reason: str = "",
    sequence: int = 1,
    **alert_changes: Any,
) -> Notification:
    return Notification(
        key=f"g1:1:{sequence}:ml-oncall",
        receiver="ml-oncall",
        group_key="g1",
        event=event,  # type: ignore[arg-type]
        alerts=alerts or (make_alert(**alert_changes),),
        thread_ref=thread_ref,
        sequence=sequence,
        reason=reason,
    )


def resolved(thread_ref: str | None) -> Notification:
    return make_notification(
        "resolve",
        thread_ref,
        sequence=3,
        value=0.871,
        status="resolved",
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


def calls(slack: FakeSlack, method: str) -> int:
    return sum(r.api_method == method for r in slack.requests)


# -- the head ----------------------------------------------------------------------------------


def test_open_posts_head_message_with_what_on_call_needs(
    slack: FakeSlack, notifier: SlackNotifier
) -> None:
    """An open posts one top-level message naming model, value, objective, n, CI, time firing
    and the runbook, carrying metadata that names the group and the outbox message."""
    delivery = notifier.send(make_notification())

    [head] = slack.messages
    assert delivery.ref == head["ts"]
    assert head["channel"] == "#ml-oncall" and head["thread_ts"] is None
    shown = all_text(head["blocks"])
    for expected in (
        "fraud-detector",
        "`roc_auc`",
        "*0.812*",
        "&gt;= 0.85",  # escaped, so Slack does not read it as markup
        "n = 1,234",
        "CI [0.790, 0.830]",
        "window 7d",
        "|2026-11-03T14:05Z>",  # a live Slack date whose fallback is UTC
        f"<{RUNBOOK}|Runbook>",
        "*Firing* · 1 firing",
    ):
        assert expected in shown, expected
    assert head["blocks"][0]["text"]["text"] == (
        ":rotating_light: fraud-detector: roc_auc >= 0.85 (7d)"
    )
    [actions] = [b for b in head["blocks"] if b["type"] == "actions"]
    assert [e["url"] for e in actions["elements"]] == [RUNBOOK]
    assert head["metadata"] == {
        "event_type": "vigil_alert",
        "event_payload": {"group_key": "g1", "key": "g1:1:1:ml-oncall"},
    }
    assert "fraud-detector" in head["text"]


def test_group_head_lists_alerts_worst_first_with_drift_evidence(
    slack: FakeSlack, notifier: SlackNotifier
) -> None:
    """A group's head lists every alert in the order given (worst first), the top drifting
    features from `details` (largest first, at most five) and the drift report link."""
    drift = make_alert(
        metric="drift.psi",
        kind="feature_drift",
        severity="ticket",
        feature="amount",
        objective="< 0.2",
        value=0.41,
        ci=None,
        details={"amount": 0.41, "country": 0.22, "a": 0.01, "b": 0.02, "c": 0.03, "d": 0.04},
        report_url="https://vigil.example/artifacts/drift.html",
    )
    notifier.send(make_notification(alerts=(make_alert(), drift)))

    [head] = slack.messages
    sections = [b["text"]["text"] for b in head["blocks"] if b["type"] == "section"]
    assert len(sections) == 2
    assert "`roc_auc`" in sections[0] and "`drift.psi` on `amount`" in sections[1]
    assert "Top drifting: `amount` 0.410 · `country` 0.220 · `d` 0.040" in sections[1]
    assert "`a` 0.010" not in sections[1]
    assert "<https://vigil.example/artifacts/drift.html|Drift report>" in sections[1]
    assert head["blocks"][0]["text"]["text"].startswith(":rotating_light: 2 alerts · ")
    assert "*Firing* · 2 firing" in all_text(head["blocks"])


def test_local_links_are_text_not_buttons(slack: FakeSlack, notifier: SlackNotifier) -> None:
    """A bundled runbook (file://) stays a text link: Slack rejects a button with such a URL."""
    notifier.send(make_notification(runbook_url="file:///opt/vigil/runbooks/quality-drop.md"))
    [head] = slack.messages
    assert all(b["type"] != "actions" for b in head["blocks"])
    assert "<file:///opt/vigil/runbooks/quality-drop.md|Runbook>" in all_text(head["blocks"])


# -- updates, resolves and the thread ----------------------------------------------------------


def test_update_edits_the_head_and_replies_in_its_thread(
    slack: FakeSlack, notifier: SlackNotifier
) -> None:
    """An acknowledgement edits the head's status in place (chat.update) and adds one reply
    under it; the head keeps its metadata and the ref stays the head's ts."""
    head = notifier.send(make_notification())
    update = make_notification(
        "update", head.ref, reason="acknowledged", sequence=2, status="acknowledged"
    )

    delivery = notifier.send(update)

    assert delivery.ref == head.ref
    assert len(slack.heads()) == 1
    [reply] = slack.thread(str(head.ref))
    assert reply["reply_broadcast"] is False
    assert "*Update: acknowledged*" in reply["blocks"][0]["text"]["text"]
    assert "Resolved" not in reply["text"]
    edited = slack.heads()[0]
    assert "edited" in edited
    assert ":eyes: Acknowledged" in all_text(edited["blocks"])
    assert "last update: acknowledged" in all_text(edited["blocks"])
    assert edited["metadata"]["event_payload"]["key"] == "g1:1:1:ml-oncall"


def test_resolve_lands_in_the_head_thread_and_marks_the_head_resolved(
    slack: FakeSlack, notifier: SlackNotifier
) -> None:
    """A resolve replies under the head with the duration and final value, and the head turns
    into a resolved summary."""
    head = notifier.send(make_notification())
    delivery = notifier.send(resolved(head.ref))

    assert delivery.ref == head.ref
    [reply] = slack.thread(str(head.ref))
    shown = all_text(reply["blocks"])
    assert "Resolved after 2h 30m" in shown and "final value 0.871" in shown
    assert reply["text"].startswith(":white_check_mark: Resolved after 2h 30m")
    [edited] = slack.heads()
    assert edited["blocks"][0]["text"]["text"].startswith(":white_check_mark: fraud-detector")
    assert "*Resolved after 2h 30m*" in all_text(edited["blocks"])


def test_resolve_without_thread_posts_the_state_as_a_new_message(
    slack: FakeSlack, notifier: SlackNotifier
) -> None:
    """With no head known (it was never delivered), a resolve becomes its own top-level
    message showing the resolved state; nothing is edited."""
    delivery = notifier.send(resolved(None))

    [message] = slack.messages
    assert message["thread_ts"] is None and delivery.ref == message["ts"]
    assert "*Resolved after 2h 30m*" in all_text(message["blocks"])
    assert calls(slack, "chat.update") == 0


def test_resolve_with_a_stale_thread_is_still_delivered(
    slack: FakeSlack, notifier: SlackNotifier
) -> None:
    """A head Slack does not know (demo fake ts, deleted message) must not swallow the resolve:
    the failed edit is skipped and the reply falls back to a top-level message."""
    delivery = notifier.send(resolved("1.000001"))

    errors = [(r.api_method, r.response.get("error")) for r in slack.requests]
    assert ("chat.update", "message_not_found") in errors
    # The look for an earlier attempt's reply is what finds the thread gone now.
    assert ("conversations.replies", "thread_not_found") in errors
    [message] = slack.messages
    assert delivery.ref == message["ts"] and message["thread_ts"] is None


# -- idempotent heads --------------------------------------------------------------------------


def test_a_retried_open_reuses_the_head_it_already_posted(slack: FakeSlack) -> None:
    """After a crash between posting and the outbox commit, a fresh process retries the open:
    it finds its head by metadata in the channel history (by channel ID) and posts nothing."""
    first = SlackNotifier("#ml-oncall", TOKEN, base_url=slack.base_url)
    head = first.send(make_notification())
    other = make_notification(sequence=1)
    other = replace(other, key="g2:7:1:ml-oncall", group_key="g2")
    first.send(other)  # a newer head in the channel, for another group

    restarted = SlackNotifier("#ml-oncall", TOKEN, base_url=slack.base_url)
    again = restarted.send(make_notification())

    assert again.ref == head.ref
    assert len(slack.messages) == 2
    history = [r for r in slack.requests if r.api_method == "conversations.history"]
    assert history[-1].body["channel"] == slack.channel_id("#ml-oncall")
    assert calls(slack, "conversations.list") == 2  # once per process, to learn the ID


def test_history_outage_delays_the_open_instead_of_doubling(
    slack: FakeSlack, notifier: SlackNotifier
) -> None:
    """When the lookup itself fails retryably, nothing is posted: Vigil cannot tell whether
    the head exists, and a later attempt can."""
    slack.fail_next(1, status=503)
    with pytest.raises(DeliveryError) as caught:
        notifier.send(make_notification())
    assert caught.value.retryable is True
    assert slack.messages == []


def test_without_history_scope_heads_are_still_posted(
    slack: FakeSlack, notifier: SlackNotifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bot without `channels:history` still pages; the lookup is skipped from then on."""

    def no_scope(body: dict[str, Any]) -> dict[str, Any]:
        raise slack_api._ApiError("missing_scope")

    monkeypatch.setattr(slack, "_history", no_scope)
    notifier.send(make_notification())
    notifier.send(replace(make_notification(), key="g1:1:9:ml-oncall"))

    assert len(slack.messages) == 2
    assert calls(slack, "conversations.history") == 1


# -- failures ----------------------------------------------------------------------------------


def test_each_send_makes_one_attempt_per_call(
    slack: FakeSlack, notifier: SlackNotifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's own retries are off: the outbox owns retrying, so a failing post is one call."""

    def failing(body: dict[str, Any]) -> dict[str, Any]:
        raise slack_api._ApiError("internal_error")

    monkeypatch.setattr(slack, "_post_message", failing)
    with pytest.raises(DeliveryError) as caught:
        notifier.send(make_notification())

    assert caught.value.retryable is True
    assert str(caught.value) == "slack chat.postMessage failed: internal_error"
    assert calls(slack, "chat.postMessage") == 1


def test_invalid_token_is_permanent_and_never_leaks(slack: FakeSlack) -> None:
    """A wrong token will not fix itself; the error, its chain and traceback omit the token."""
    secret = "xoxb-wrong-0123456789-SECRET"
    notifier = SlackNotifier("#ml-oncall", secret, base_url=slack.base_url)

    with pytest.raises(DeliveryError) as caught:
        notifier.send(make_notification())

    err = caught.value
    assert err.retryable is False
    assert str(err) == "slack conversations.list failed: invalid_auth"
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


def test_rate_limit_with_an_http_date_waits_until_that_date(
    slack: FakeSlack, notifier: SlackNotifier
) -> None:
    """`Retry-After` may be an HTTP date (RFC 9110); Slack's notifier reads it through the
    shared HTTP rules, as the webhook's does, instead of dropping it."""
    later = datetime.now(UTC) + timedelta(minutes=10)
    slack.rate_limit_next(1, retry_after=format_datetime(later, usegmt=True))

    with pytest.raises(DeliveryError) as caught:
        notifier.send(make_notification())

    assert caught.value.retryable is True
    assert caught.value.retry_after is not None
    assert 540 < caught.value.retry_after <= 600


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
        model="m" * 500, feature="f" * 10_000, objective="< " + "9" * 4000, slo="s" * 5000
    )

    delivery = notifier.send(notification)

    sent = slack.messages[0]
    assert delivery.ref == sent["ts"]
    limits = {"header": MAX_HEADER_TEXT, "section": MAX_SECTION_TEXT, "field": MAX_FIELD_TEXT}
    limits["context"] = MAX_SECTION_TEXT
    truncated = []
    for where, obj in text_objects(sent["blocks"]):
        assert len(obj["text"]) <= limits[where], where
        if obj["text"].endswith(TRUNCATION_SUFFIX):
            truncated.append(where)
    assert "header" in truncated and "section" in truncated
    assert len(sent["text"]) <= MAX_FALLBACK_TEXT
    assert sent["text"].endswith(TRUNCATION_SUFFIX)


def test_a_storm_of_alerts_fits_fifty_blocks(slack: FakeSlack, notifier: SlackNotifier) -> None:
    """A group of 120 alerts still posts: 40 are listed, the rest counted, under 50 blocks."""
    alerts = tuple(make_alert(feature=f"feature_{i:03d}") for i in range(120))

    notifier.send(make_notification(alerts=alerts))

    [head] = slack.messages
    assert len(head["blocks"]) <= MAX_BLOCKS
    assert "… and 80 more alerts" in all_text(head["blocks"])
    assert "feature_039" in all_text(head["blocks"]) and "feature_040" not in all_text(
        head["blocks"]
    )


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
    message = head_message(
        make_notification(
            metric="freshness.prediction_age",
            unit="s",
            value=3720.0,
            objective="< 15m",
            ci=(3600.0, 3900.0),
        )
    )
    shown = all_text(message["blocks"])
    assert "Value *1h 2m* vs objective &lt; 15m" in shown
    assert "CI [1h, 1h 5m]" in shown


def test_missing_value_reads_no_data() -> None:
    """A blind monitor has no value; the message says so instead of printing `None`."""
    shown = all_text(head_message(make_notification(value=None, ci=None))["blocks"])
    assert "Value *no data* vs objective &gt;= 0.85" in shown
    assert "CI" not in shown


# -- incoming webhooks -------------------------------------------------------------------------


def test_incoming_webhook_posts_a_snapshot_per_event(slack: FakeSlack) -> None:
    """Through an incoming-webhook URL every event is a self-contained top-level message
    (Slack returns no ts to thread on), the resolve showing the resolved state."""
    notifier = SlackWebhookNotifier(slack.webhook_url)

    assert notifier.send(make_notification()).ref is None
    notifier.send(resolved(None))

    assert [m.get("via") for m in slack.messages] == ["webhook", "webhook"]
    assert all(m["thread_ts"] is None for m in slack.messages)
    assert "*Resolved after 2h 30m*" in all_text(slack.messages[1]["blocks"])


def test_incoming_webhook_errors_are_classified_and_redacted(slack: FakeSlack) -> None:
    """A revoked URL (404 no_service) is permanent, a 429 waits Retry-After; neither message
    contains the URL, which is the credential."""
    bad_url = slack.webhook_url[:-4] + "nope"
    bad = SlackWebhookNotifier(bad_url)
    with pytest.raises(DeliveryError) as gone:
        bad.send(make_notification())
    slack.rate_limit_next(1, retry_after=30)
    with pytest.raises(DeliveryError) as limited:
        SlackWebhookNotifier(slack.webhook_url).send(make_notification())

    assert gone.value.retryable is False and "HTTP 404: no_service" in str(gone.value)
    assert limited.value.retryable is True and limited.value.retry_after == 30
    for err in (gone.value, limited.value):
        assert "w3bh00ks3cr3t" not in str(err) and "nope" not in str(err)
    assert "w3bh00ks3cr3t" not in repr(bad)


# -- file notifier and factory -----------------------------------------------------------------


def test_file_notifier_writes_the_same_payload_shape(
    tmp_path: Path, slack: FakeSlack, notifier: SlackNotifier
) -> None:
    """Without a token each message is one JSON line, the very body chat.postMessage receives;
    updates and resolves carry the head's thread_ts."""
    outfile = tmp_path / "nested" / "slack.jsonl"
    file_notifier = SlackFileNotifier("#ml-oncall", outfile)

    head = file_notifier.send(make_notification())
    update = file_notifier.send(make_notification("update", head.ref, reason="new alerts"))
    resolve = file_notifier.send(resolved(head.ref))

    assert head.ref == "file-g1:1:1:ml-oncall"
    assert file_notifier.send(make_notification()).ref == head.ref  # stable on retry
    assert update.ref == resolve.ref == head.ref
    written = [json.loads(line) for line in outfile.read_text(encoding="utf-8").splitlines()]
    assert len(written) == 4
    assert set(written[0]) == {"channel", "text", "blocks", "metadata"}
    assert [w.get("thread_ts") for w in written[1:3]] == [head.ref, head.ref]
    assert written[2]["reply_broadcast"] is False and "Resolved" in written[2]["text"]

    real_head = notifier.send(make_notification())
    notifier.send(resolved(real_head.ref))
    posted = [r.body for r in slack.requests if r.api_method == "chat.postMessage"]
    assert posted[0] == written[0]
    assert {**posted[1], "thread_ts": head.ref} == written[2]


def test_from_config_picks_the_integration(slack: FakeSlack, tmp_path: Path) -> None:
    """A token means the Web API (slash in base_url optional), a webhook URL the incoming
    webhook, neither (or an empty token from an unset variable) the file notifier."""
    default = tmp_path / "default.jsonl"
    for token in (None, SecretStr(""), SecretStr("  ")):
        chosen = from_config(SlackReceiver(channel="#ml-oncall", token=token), default)
        assert isinstance(chosen, SlackFileNotifier) and chosen.path == default
    hook = from_config(SlackReceiver(webhook_url=SecretStr(slack.webhook_url)), default)
    assert isinstance(hook, SlackWebhookNotifier)
    api = from_config(
        SlackReceiver(
            channel="#ml-slo", token=SecretStr(TOKEN), base_url=slack.base_url.rstrip("/")
        ),
        default,
    )
    assert isinstance(api, SlackNotifier) and TOKEN not in repr(api)
    assert api.send(make_notification()).ref == slack.messages[0]["ts"]
    assert slack.messages[0]["channel"] == "#ml-slo"
    assert not default.exists()


# -- the fake itself ---------------------------------------------------------------------------


def _api_error(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as caught:
        call()
    data = caught.value.response.data
    assert isinstance(data, dict)
    return data


def test_fake_rejects_what_slack_rejects(slack: FakeSlack) -> None:
    """The fake is no accept-all mock: auth, channels, content, metadata, buttons and Block
    Kit limits are enforced, and history and edits want a channel ID."""
    client = raw_client(slack)
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "ok"}}

    def post(**kwargs: Any) -> Any:
        return lambda: client.chat_postMessage(channel="#ml-oncall", text="x", **kwargs)

    no_auth = _api_error(
        lambda: raw_client(slack, None).chat_postMessage(channel="#ml-oncall", text="x")
    )
    bad_auth = _api_error(
        lambda: raw_client(slack, "xoxb-nope").chat_postMessage(channel="#ml-oncall", text="x")
    )
    too_many = _api_error(post(blocks=[section] * 51))
    too_long = {"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}
    long_section = _api_error(post(blocks=[too_long]))
    long_header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    header = _api_error(post(blocks=[long_header]))
    button = {"type": "button", "text": {"type": "plain_text", "text": "go"}, "url": "file:///x"}
    bad_button = _api_error(post(blocks=[{"type": "actions", "elements": [button]}]))
    bad_metadata = _api_error(post(metadata={"event_type": "Vigil Alert", "event_payload": {}}))
    with pytest.warns(UserWarning, match="`text` argument is missing"):
        empty = _api_error(lambda: client.chat_postMessage(channel="#ml-oncall", text=""))
    channel = _api_error(lambda: client.chat_postMessage(channel="#nope", text="x"))
    thread = _api_error(post(thread_ts="1.000001"))
    by_name = _api_error(lambda: client.conversations_history(channel="#ml-oncall"))

    assert no_auth["error"] == "not_authed"
    assert bad_auth["error"] == "invalid_auth"
    assert too_many["error"] == "invalid_blocks"
    assert long_section["error"] == "invalid_blocks"
    assert (
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
        in long_section["errors"]
    )
    assert header["error"] == "invalid_blocks"
    assert "must be a valid URL [json-pointer:/blocks/0/elements/0/url]" in bad_button["errors"]
    assert bad_metadata["error"] == "invalid_metadata_schema"
    assert empty["error"] == "no_text"
    assert channel["error"] == "channel_not_found"
    assert thread["error"] == "thread_not_found"
    assert by_name["error"] == "channel_not_found"
    assert slack.messages == []
    assert all(r.status == 200 for r in slack.requests)  # Slack reports these with HTTP 200


def test_fake_returns_metadata_only_when_asked(slack: FakeSlack) -> None:
    """History shows message metadata only with include_all_metadata, and an edit without
    metadata keeps the message's metadata, as Slack does."""
    client = raw_client(slack)
    meta = {"event_type": "vigil_alert", "event_payload": {"key": "k"}}
    head = client.chat_postMessage(channel="#ml-oncall", text="head", metadata=meta)
    channel_id = head["channel"]
    client.chat_update(channel=channel_id, ts=head["ts"], text="head, edited")

    plain = client.conversations_history(channel=channel_id)
    full = client.conversations_history(channel=channel_id, include_all_metadata=True)
    listed = client.conversations_list()

    assert [m["text"] for m in plain["messages"]] == ["head, edited"]
    assert "metadata" not in plain["messages"][0]
    assert full["messages"][0]["metadata"] == meta
    assert {"id": channel_id, "name": "ml-oncall"}.items() <= next(
        c for c in listed["channels"] if c["id"] == channel_id
    ).items()
    assert (
        _api_error(lambda: client.chat_update(channel=channel_id, ts="9.9", text="x"))["error"]
        == "message_not_found"
    )
