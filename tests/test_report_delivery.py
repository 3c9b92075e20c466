"""Sending the weekly report: Slack through the real slack-sdk against the fake Web API (summary
message, then the HTML uploaded into its thread with files_upload_v2), email through smtplib
against a local aiosmtpd server, and idempotence per week and channel in `report_deliveries`."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiosmtpd.controller import Controller
from sqlalchemy import select

from monitor.engine.runtime import Runtime, open_runtime
from monitor.report.deliver import publish
from monitor.store.tables import ReportDelivery
from tests.builders import build_config, config_dict
from tests.fakes.slack_api import FakeSlack
from tests.test_report import W45, config, fill_store

TOKEN = "xoxb-test-token"


@pytest.fixture(autouse=True)
def _fresh_logging() -> None:
    """A CLI test run in-process elsewhere can leave structlog bound to a closed stream."""
    structlog.reset_defaults()


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (
                envelope.mail_from,
                list(envelope.rcpt_tos),
                email.message_from_bytes(envelope.content, policy=email.policy.default),
            )
        )
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN) as fake:
        yield fake


def runtime(store: str, tmp_path: Path, **report: Any) -> Runtime:
    rt = open_runtime(
        config(store, f"sqlite:///{tmp_path / 'src.db'}", tmp_path, **report), tmp_path
    )
    fill_store(rt)
    return rt


def deliveries(rt: Runtime, state: str = "sent") -> list[tuple[str, str]]:
    with rt.sessions() as session:
        rows = session.scalars(select(ReportDelivery).where(ReportDelivery.state == state))
        return [(d.week, d.channel) for d in rows]


def test_slack_gets_a_summary_with_the_report_in_its_thread(
    slack: FakeSlack, tmp_path: Path
) -> None:
    rt = runtime(
        f"sqlite:///{tmp_path / 'vigil.db'}",
        tmp_path,
        slack="#ml-slo",
        slack_token=TOKEN,
        slack_base_url=slack.base_url,
    )
    result = publish(rt, W45, W45.end)
    assert [(o.channel, o.status) for o in result.outcomes] == [("slack:#ml-slo", "sent")]
    [message] = slack.heads()
    assert message["channel_id"] == slack.channel_id("#ml-slo")
    assert message["blocks"][0]["text"]["text"] == "Weekly SLO report · 2026-W45"
    assert "1 of 2 SLOs met their target" in message["text"]
    [upload] = slack.files.values()
    assert upload["content"] == result.html.read_bytes()
    assert upload["name"] == "slo-report-2026-W45.html"
    assert (upload["channel_id"], upload["thread_ts"]) == (message["channel_id"], message["ts"])
    [shared] = slack.thread(message["ts"])
    assert [f["name"] for f in shared["files"]] == ["slo-report-2026-W45.html"]
    assert [r.api_method for r in slack.requests] == [
        "conversations.list",  # the lookups that make a repeat after a crash harmless
        "conversations.history",
        "chat.postMessage",
        "conversations.replies",
        "files.getUploadURLExternal",
        "/upload/v1/F00000001",
        "files.completeUploadExternal",
    ]
    assert deliveries(rt) == [("2026-W45", "slack:#ml-slo")]
    again = publish(rt, W45, W45.end)
    assert [o.status for o in again.outcomes] == ["already_sent"]
    assert len(slack.heads()) == 1 and len(slack.files) == 1
    rt.close()


def test_slack_token_comes_from_a_receiver_and_failures_are_retried_later(
    slack: FakeSlack, tmp_path: Path
) -> None:
    rt = runtime(f"sqlite:///{tmp_path / 'vigil.db'}", tmp_path, slack="#ml-slo")
    skipped = publish(rt, W45, W45.end)
    assert [o.status for o in skipped.outcomes] == ["skipped"]
    assert "no Slack token" in skipped.outcomes[0].detail
    rt.close()

    data = config_dict(f"sqlite:///{tmp_path / 'vigil.db'}", "sqlite://")
    data["receivers"] = {
        "chat": {"slack": {"channel": "#ml-oncall", "token": TOKEN, "base_url": slack.base_url}}
    }
    data["report"] = {"slack": "#ml-slo", "out_dir": str(tmp_path / "reports")}
    rt = open_runtime(build_config(data), tmp_path)
    slack.fail_next(1)
    failed = publish(rt, W45, W45.end)
    assert [o.status for o in failed.outcomes] == ["failed"] and failed.failed
    assert TOKEN not in failed.outcomes[0].detail
    assert deliveries(rt) == []
    sent = publish(rt, W45, W45.end)
    assert [o.status for o in sent.outcomes] == ["sent"]
    assert deliveries(rt) == [("2026-W45", "slack:#ml-slo")]
    rt.close()


def test_email_is_sent_once_per_week(smtp: tuple[Inbox, int], db_url: str, tmp_path: Path) -> None:
    inbox, port = smtp
    mail = {"host": "127.0.0.1", "port": port, "from": "vigil@example.com",
            "to": ["owner@example.com", "cto@example.com"], "security": "none"}  # fmt: skip
    rt = runtime(db_url, tmp_path, email=mail)
    result = publish(rt, W45, W45.end)
    assert [(o.channel, o.status) for o in result.outcomes] == [
        ("email:owner@example.com,cto@example.com", "sent")
    ]
    [(sender, recipients, message)] = inbox.messages
    assert sender == "vigil@example.com"
    assert recipients == ["owner@example.com", "cto@example.com"]
    assert message["Subject"].startswith("Weekly SLO report 2026-W45: 1 of 2 SLOs met")
    parts = {part.get_filename(): part for part in message.walk() if part.get_filename()}
    attached = parts["slo-report-2026-W45.html"].get_payload(decode=True)
    assert attached == result.html.read_bytes()
    body = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    assert isinstance(body, EmailMessage) and "incident #" in body.get_content()
    assert [o.status for o in publish(rt, W45, W45.end).outcomes] == ["already_sent"]
    assert len(inbox.messages) == 1
    # Another week is another delivery.
    publish(rt, W45.previous(), W45.end)
    assert len(inbox.messages) == 2
    rt.close()


def test_unreachable_smtp_server_fails_without_recording(tmp_path: Path) -> None:
    mail = {"host": "127.0.0.1", "port": free_port(), "from": "v@example.com",
            "to": ["o@example.com"], "security": "none", "timeout": 2}  # fmt: skip
    rt = runtime(f"sqlite:///{tmp_path / 'vigil.db'}", tmp_path, email=mail)
    result = publish(rt, W45, W45.end)
    assert result.failed and "ConnectionRefusedError" in result.outcomes[0].detail
    assert deliveries(rt) == [] and deliveries(rt, "sending") == []  # refused: retried plainly
    rt.close()


# -- a crash between Slack's answer and the record ---------------------------------------------


@pytest.mark.parametrize("killed", ["after the summary", "after the upload"])
def test_a_crash_before_the_record_repeats_nothing_in_slack(
    slack: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killed: str
) -> None:
    """The first run dies after Slack took the summary (or the summary and the file), before
    `report_deliveries` recorded it; the next run finds the summary by its metadata and the
    file in its thread, and sends only what is missing: one summary, one file in the end."""
    from slack_sdk import WebClient

    rt = runtime(
        f"sqlite:///{tmp_path / 'vigil.db'}",
        tmp_path,
        slack="#ml-slo",
        slack_token=TOKEN,
        slack_base_url=slack.base_url,
    )
    real_upload = WebClient.files_upload_v2

    def killed_upload(self: WebClient, **kwargs: Any) -> Any:
        if killed == "after the upload":
            real_upload(self, **kwargs)
        raise SystemExit("killed before the record")

    with monkeypatch.context() as patch:
        patch.setattr(WebClient, "files_upload_v2", killed_upload)
        with pytest.raises(SystemExit):
            publish(rt, W45, W45.end)
    assert deliveries(rt) == []
    assert deliveries(rt, "sending") == [("2026-W45", "slack:#ml-slo")]
    assert len(slack.heads()) == 1

    result = publish(rt, W45, W45.end)

    assert [o.status for o in result.outcomes] == ["sent"]
    assert deliveries(rt) == [("2026-W45", "slack:#ml-slo")]
    [head] = slack.heads()
    [shared] = slack.thread(head["ts"])
    assert [f["name"] for f in shared["files"]] == ["slo-report-2026-W45.html"]
    posts = [r for r in slack.requests if r.api_method == "chat.postMessage"]
    assert len(posts) == 1
    rt.close()


def test_a_repeated_email_carries_the_same_message_id(
    smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    """SMTP cannot say what was delivered, so a crash before the record sends the email again;
    it carries the same Message-ID (per week and recipients), which mail clients fold."""
    inbox, port = smtp
    mail = {"host": "127.0.0.1", "port": port, "from": "vigil@example.com",
            "to": ["owner@example.com"], "security": "none"}  # fmt: skip
    first = runtime(f"sqlite:///{tmp_path / 'a.db'}", tmp_path, email=mail)
    second = runtime(f"sqlite:///{tmp_path / 'b.db'}", tmp_path, email=mail)  # no record
    publish(first, W45, W45.end)
    publish(second, W45, W45.end)
    publish(second, W45.previous(), W45.end)
    ids = [message["Message-ID"] for _, _, message in inbox.messages]
    assert len(ids) == 3 and ids[0] == ids[1] != ids[2]
    assert ids[0].startswith("<vigil-slo-report.2026-W45.") and ids[0].endswith("@example.com>")
    first.close()
    second.close()


def test_an_email_whose_send_a_crash_hid_is_resent_once_with_the_same_message_id(
    smtp: tuple[Inbox, int], db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the SMTP server took the email, before `sent` was recorded: the store
    says `sending`, so the next run knows the outcome is unknown. It sends again (a lost
    report is worse than a folded repeat) with the same Message-ID and says `resent`; the
    run after that sends nothing. A send the server refused leaves no record at all."""
    from monitor.report import deliver

    inbox, port = smtp
    mail = {"host": "127.0.0.1", "port": port, "from": "vigil@example.com",
            "to": ["owner@example.com"], "security": "none"}  # fmt: skip
    rt = runtime(db_url, tmp_path, email=mail)
    real_send = deliver.send_email

    def killed_after_send(*args: Any) -> None:
        real_send(*args)
        raise SystemExit("killed before the record")

    with monkeypatch.context() as patch:
        patch.setattr(deliver, "send_email", killed_after_send)
        with pytest.raises(SystemExit):
            publish(rt, W45, W45.end)
    assert len(inbox.messages) == 1
    assert deliveries(rt) == [] and deliveries(rt, "sending") == [
        ("2026-W45", "email:owner@example.com")
    ]

    [again] = publish(rt, W45, W45.end).outcomes
    assert again.status == "resent" and "may arrive twice" in again.detail
    assert deliveries(rt) == [("2026-W45", "email:owner@example.com")]
    assert deliveries(rt, "sending") == []
    first, second = (message for _, _, message in inbox.messages)
    assert first["Message-ID"] == second["Message-ID"]
    assert [o.status for o in publish(rt, W45, W45.end).outcomes] == ["already_sent"]
    assert len(inbox.messages) == 2
    rt.close()
