"""Writes the report and sends it once per week and channel (Slack, email).

The HTML (and PDF, when WeasyPrint is installed) is written on every run: rendering again is
harmless and lets a late label correction reach the file. Each send is recorded in
`report_deliveries` twice: `sending` just before, `sent` once the channel accepted it. A
failure removes the record, so the next run (or `vigil report weekly --week ...`) retries it,
and a success is never repeated. A crash between the send and `sent` leaves `sending`: the next
run knows the earlier attempt's outcome is unknown. Slack is asked (the summary and its file
are found there first, `slack_once`), so nothing repeats. SMTP cannot be asked, and a report
not sent is worse than one sent twice: the email is sent again with the same Message-ID
(which mail clients fold into one), and the run says so (`resent`, and a warning in the log).
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import structlog
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from monitor.config.models import ReportEmail, VigilConfig
from monitor.engine.runtime import Runtime
from monitor.report import slack_once
from monitor.report.data import WeeklyReport, build_report
from monitor.report.pdf import write_pdf
from monitor.report.render import render_html
from monitor.report.summary import slack_blocks, summary_text
from monitor.report.weeks import Week
from monitor.store.tables import ReportDelivery

log = structlog.get_logger("vigil.report")
SENDING, SENT = "sending", "sent"


class SendError(Exception):
    """A channel refused or could not be reached; the message is safe to show and log."""


@dataclass
class Outcome:
    channel: str
    status: str
    """sent, already_sent, resent (an email whose earlier attempt a crash left unknown: it may
    arrive twice, with one Message-ID), skipped or failed."""
    detail: str = ""


@dataclass
class Published:
    week: str
    html: Path
    pdf: Path | None
    report: WeeklyReport
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(o.status == "failed" for o in self.outcomes)


def out_dir(rt: Runtime) -> Path:
    """`report.out_dir`, relative to the config file's folder when not absolute."""
    folder = Path(rt.config.report.out_dir).expanduser()
    return folder if folder.is_absolute() else rt.state_dir / folder


def channel_key(kind: str, target: str) -> str:
    key = f"{kind}:{target}"
    return key if len(key) <= 200 else f"{kind}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def slack_settings(config: VigilConfig) -> tuple[str | None, str | None]:
    """(token, base_url): the report's own, else those of the first Slack receiver with a token
    (the same bot usually posts incidents and reports)."""
    report = config.report
    if report.slack_token is not None and report.slack_token.get_secret_value().strip():
        return report.slack_token.get_secret_value().strip(), report.slack_base_url
    for receiver in config.receivers.values():
        slack = receiver.slack
        if slack and slack.token is not None and slack.token.get_secret_value().strip():
            return slack.token.get_secret_value().strip(), report.slack_base_url or slack.base_url
    return None, report.slack_base_url


def send_slack(
    report: WeeklyReport, html: Path, channel: str, token: str, base_url: str | None
) -> str:
    """Post the summary, then upload the HTML into its thread; returns the message ts.

    The summary goes first because `chat.postMessage` accepts a channel name and answers with
    the channel ID, which `files.completeUploadExternal` requires.
    """
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError, SlackClientError

    options: dict[str, object] = {"token": token, "timeout": 30}
    if base_url:
        options["base_url"] = base_url if base_url.endswith("/") else base_url + "/"
    client = WebClient(**options)  # type: ignore[arg-type]
    problem = ""
    week = report.week.label
    try:
        found = slack_once.posted_summary(client, channel, week)
        if found is None:
            posted = client.chat_postMessage(
                channel=channel,
                text=summary_text(report),
                blocks=slack_blocks(report, html.name),
                metadata=slack_once.metadata(week, channel),
            )
            found = str(posted["channel"]), str(posted["ts"])
        channel_id, ts = found
        if not slack_once.file_in_thread(client, channel_id, ts, html.name):
            client.files_upload_v2(
                channel=channel_id,
                thread_ts=ts,
                file=str(html),
                filename=html.name,
                title=f"SLO report {week}",
            )
        return ts
    except SlackApiError as exc:
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        problem = f"slack: {data.get('error') or exc.response.status_code}"
    except (SlackClientError, OSError) as exc:
        problem = f"slack: {type(exc).__name__}: {exc}"
    # Raised outside the handlers: SDK exceptions carry the request headers (the token).
    raise SendError(problem.replace(token, "[redacted]"))


def send_email(report: WeeklyReport, html: Path, pdf: Path | None, cfg: ReportEmail) -> None:
    """One message: the summary as text, the report (and PDF) attached. The HTML is attached
    rather than inlined because mail clients block the data-URI images it carries."""
    message = EmailMessage()
    message["Subject"] = f"Weekly SLO report {report.week.label}: {report.verdict}"
    message["From"] = cfg.sender
    message["To"] = ", ".join(cfg.to)
    message["Date"] = formatdate(localtime=False)
    # The same ID on every attempt for a week and its recipients: a repeat after a crash
    # between the send and its record is folded by mail clients instead of shown twice.
    recipients = hashlib.sha256(",".join(cfg.to).encode()).hexdigest()[:16]
    domain = cfg.sender.rpartition("@")[2] or "vigil.invalid"
    message["Message-ID"] = f"<vigil-slo-report.{report.week.label}.{recipients}@{domain}>"
    message.set_content(summary_text(report) + "\n\nThe full report is attached.\n")
    message.add_attachment(html.read_bytes(), maintype="text", subtype="html", filename=html.name)
    if pdf is not None:
        message.add_attachment(
            pdf.read_bytes(), maintype="application", subtype="pdf", filename=pdf.name
        )
    password = cfg.password.get_secret_value() if cfg.password else ""
    accepted = False
    try:
        if cfg.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        with smtp:
            if cfg.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if cfg.username:
                smtp.login(cfg.username, password)
            smtp.send_message(message)
            accepted = True  # a failing QUIT after this does not undo the delivery
    except (smtplib.SMTPException, OSError) as exc:
        if accepted:
            return
        text = f"email: {type(exc).__name__}: {exc}"
        raise SendError(text.replace(password, "[redacted]") if password else text) from None


def _channels(
    rt: Runtime, report: WeeklyReport, html: Path, pdf: Path | None
) -> list[tuple[str, Callable[[], object] | str]]:
    """Each configured channel's key with its sender, or with why it cannot be sent."""
    config = rt.config.report
    out: list[tuple[str, Callable[[], object] | str]] = []
    if config.slack:
        channel = config.slack
        token, base_url = slack_settings(rt.config)
        key = channel_key("slack", channel)
        if token:
            out.append((key, lambda: send_slack(report, html, channel, token, base_url)))
        else:
            out.append((key, "no Slack token: set report.slack_token or a Slack receiver's token"))
    if config.email is not None:
        email = config.email
        out.append(
            (channel_key("email", ",".join(email.to)), lambda: send_email(report, html, pdf, email))
        )
    return out


def _send(
    rt: Runtime, week: Week, key: str, action: Callable[[], object], html: Path, now: datetime
) -> Outcome:
    """Send once per week and channel: record `sending`, send, record `sent` (or drop the
    record when the channel refused, so the next run tries again)."""
    ident = (week.label, key)
    try:
        with rt.sessions.begin() as session:
            done = session.get(ReportDelivery, ident)
            if done is not None and done.state == SENT:
                return Outcome(key, "already_sent", f"at {done.sent_at:%Y-%m-%d %H:%M} UTC")
            unknown = done.sent_at if done is not None else None
            if done is None:
                done = ReportDelivery(week=week.label, channel=key, path=str(html))
                session.add(done)
            done.state, done.sent_at = SENDING, now
    except IntegrityError:  # another process records the same send at this moment
        return Outcome(key, "skipped", "another process is sending it")
    try:
        action()
    except SendError as exc:
        with rt.sessions.begin() as session:
            session.execute(
                delete(ReportDelivery).where(
                    ReportDelivery.week == week.label, ReportDelivery.channel == key
                )
            )
        return Outcome(key, "failed", rt.redact(str(exc)))
    with rt.sessions.begin() as session:
        record = session.get(ReportDelivery, ident)
        if record is not None:
            record.state, record.sent_at = SENT, now
    if unknown is None:
        return Outcome(key, "sent")
    detail = f"after an attempt at {unknown:%Y-%m-%d %H:%M} UTC whose outcome a crash hid"
    if key.startswith("email:"):  # SMTP cannot be asked whether the first one arrived
        log.warning("report email sent again", week=week.label, channel=key, attempt=unknown)
        return Outcome(key, "resent", detail + ": it may arrive twice, with one Message-ID")
    return Outcome(key, "sent", detail + ": completed what was missing")


def publish(
    rt: Runtime, week: Week, now: datetime, send: bool = True, paper: str | None = None
) -> Published:
    """Render `week` from the store, write it to `out_dir`, and send it where configured;
    `paper` (A4 or Letter) overrides `report.paper` for this run."""
    report = build_report(rt, week, now)
    html = render_html(report, paper or rt.config.report.paper)
    folder = out_dir(rt)
    folder.mkdir(parents=True, exist_ok=True)
    html_path = folder / f"slo-report-{week.label}.html"
    html_path.write_text(html, encoding="utf-8")
    pdf_path = write_pdf(html, folder / f"slo-report-{week.label}.pdf")
    result = Published(week.label, html_path, pdf_path, report)
    if not send:
        return result
    for key, action in _channels(rt, report, html_path, pdf_path):
        if isinstance(action, str):
            result.outcomes.append(Outcome(key, "skipped", action))
            continue
        outcome = _send(rt, week, key, action, html_path, now)
        result.outcomes.append(outcome)
        log.info(
            "report delivery",
            week=week.label,
            channel=key,
            status=outcome.status,
            detail=outcome.detail,
        )
    return result
