"""Block Kit messages for alert groups, kept inside Slack's limits so long names never lose a page.

A group has one head message (its whole current state, edited in place as it changes) and
replies in the head's thread (what changed). Slack rejects a whole message (`invalid_blocks`)
when a single field is one character too long, and a feature or model name is user data of any
length, so every text is escaped and clamped here, in pure functions the tests can inspect.
The limits are Slack's documented ones (docs.slack.dev, Block Kit reference).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from alerts.notifiers.base import Alert, Notification
from monitor.core.durations import humanize

#: A message may carry at most this many blocks.
MAX_BLOCKS = 50
#: A section's `text` may be at most this long.
MAX_SECTION_TEXT = 3000
#: A section may have at most this many `fields`.
MAX_FIELDS = 10
#: Each section field may be at most this long (stricter than a section's text).
MAX_FIELD_TEXT = 2000
#: A header block's plain_text may be at most this long.
MAX_HEADER_TEXT = 150
#: A context block may have at most this many elements.
MAX_CONTEXT_ELEMENTS = 10
#: Each context element's text may be at most this long.
MAX_CONTEXT_TEXT = 3000
#: An actions block may have at most this many elements; a button's text and URL these long.
MAX_ACTIONS = 25
MAX_BUTTON_TEXT = 75
MAX_URL = 3000
#: The top-level `text`, which Slack shows in notifications and screen readers.
MAX_FALLBACK_TEXT = 3000
#: What a clamped text ends with, so a reader knows something was cut.
TRUNCATION_SUFFIX = "… (truncated)"
#: Alerts listed one section each; the rest are counted, so a storm still fits 50 blocks.
MAX_ALERTS_SHOWN = 40
#: Supporting numbers shown per alert (the most drifted features, worst first).
MAX_DETAILS = 5
#: Root-cause lines per alert: the top three, as in every channel.
MAX_ROOT_CAUSE = 3
#: The `event_type` of the message metadata that lets a retry find a head it already posted.
METADATA_EVENT_TYPE = "vigil_alert"

#: Emoji shown before an open group's title, by severity; the colour of the page at a glance.
SEVERITY_EMOJI: dict[str, str] = {
    "page": ":rotating_light:",
    "ticket": ":warning:",
    "info": ":information_source:",
}
DEFAULT_EMOJI = ":warning:"
RESOLVED_EMOJI = ":white_check_mark:"
ACKNOWLEDGED_EMOJI = ":eyes:"
UPDATE_EMOJI = ":arrows_counterclockwise:"

# A cut can land inside an entity produced by `escape` ("&am"), which Slack would show raw.
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def escape(text: str) -> str:
    """Escape the three characters mrkdwn treats as markup.

    Objectives such as `>= 0.85` and user-chosen names would otherwise be read as links or
    mentions, or break the `<url|Runbook>` link that follows them.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int, *, markup: bool = False) -> str:
    """Cut `text` to `limit` characters, ending with `TRUNCATION_SUFFIX` when anything was cut.

    With `markup` (mrkdwn text, already escaped) the cut backs off from a half-cut entity.
    """
    if len(text) <= limit:
        return text
    head = text[: max(0, limit - len(TRUNCATION_SUFFIX))]
    if markup:
        head = _PARTIAL_ENTITY.sub("", head)
    return (head + TRUNCATION_SUFFIX)[:limit]


def format_value(value: float | None, unit: str) -> str:
    """A metric value as on-call reads it: durations humanized, ratios to three decimals."""
    if value is None:
        return "no data"
    if not math.isfinite(value):
        return str(value)
    if unit == "s":
        return humanize(value)
    return f"{value:.3f}"


def format_time(moment: datetime) -> str:
    """UTC to the minute: on-call compares it with dashboards, never with local wall clocks."""
    return _aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def slack_date(moment: datetime, pattern: str = "{date_short_pretty} {time} ({ago})") -> str:
    """A date Slack renders in each reader's time zone, `{ago}` kept current as time passes;
    clients that cannot render it show the UTC fallback."""
    stamp = int(_aware(moment).timestamp())
    return f"<!date^{stamp}^{pattern}|{format_time(moment)}>"


def metadata(notification: Notification) -> dict[str, Any]:
    """Message metadata naming the group and the outbox message that posted the head."""
    return {
        "event_type": METADATA_EVENT_TYPE,
        "event_payload": {"group_key": notification.group_key, "key": notification.key},
    }


def build_message(notification: Notification) -> dict[str, Any]:
    """What `chat.postMessage` sends for a notification, except `channel` and threading: the
    head for an open, the thread reply for an update or resolve."""
    if notification.event == "open":
        return head_message(notification)
    return reply_message(notification)


def head_message(notification: Notification) -> dict[str, Any]:
    """The group's whole current state: posted on open, then edited in place (`chat.update`)."""
    alerts = notification.alerts
    worst = alerts[0]
    firing = [a for a in alerts if a.status != "resolved"]
    emoji = _emoji(notification)
    prefix = f"{len(alerts)} alerts · " if len(alerts) > 1 else ""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"{emoji} {prefix}{worst.title}", "emoji": True},
        },
        _context([_status_line(notification)]),
    ]
    buttons = _buttons(worst)
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    shown = alerts[:MAX_ALERTS_SHOWN]
    blocks += [{"type": "section", "text": _mrkdwn(_alert_text(a))} for a in shown]
    if len(alerts) > len(shown):
        blocks.append(_context([f"_… and {len(alerts) - len(shown)} more alerts_"]))
    value = format_value(worst.value, worst.unit)
    text = f"{emoji} {escape(worst.title)}: value {value} (n = {worst.n:,})"
    if len(alerts) > 1:
        text += f"; {len(firing)} of {len(alerts)} alerts firing"
    return _finish(blocks, text)


def reply_message(notification: Notification) -> dict[str, Any]:
    """The thread reply for an update or the final resolve: what changed, in a few lines."""
    alerts = notification.alerts
    worst = alerts[0]
    if notification.event == "resolve":
        after = _resolved_after(alerts)
        title = escape(worst.title) if len(alerts) == 1 else f"all {len(alerts)} alerts"
        lines = [f"{RESOLVED_EMOJI} *Resolved{after}*: {title}"]
        lines += [_final_line(a) for a in alerts[:MAX_ALERTS_SHOWN]]
        value = format_value(worst.value, worst.unit)
        text = f"{RESOLVED_EMOJI} Resolved{after}: {escape(worst.title)} (final value {value})"
        return _finish([{"type": "section", "text": _mrkdwn("\n".join(lines))}], text)
    reason = escape(notification.reason or "reminder")
    counts = _counts(alerts)
    lines = [f"{UPDATE_EMOJI} *Update: {reason}* · {counts}"]
    lines += [_short_line(a) for a in alerts[:MAX_ALERTS_SHOWN]]
    if len(alerts) > MAX_ALERTS_SHOWN:
        lines.append(f"_… and {len(alerts) - MAX_ALERTS_SHOWN} more alerts_")
    text = f"{UPDATE_EMOJI} Update ({reason}): {escape(worst.title)}; {counts}"
    return _finish([{"type": "section", "text": _mrkdwn("\n".join(lines))}], text)


def clamp_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return copies of `blocks` that fit Slack's limits, cutting text rather than failing.

    Applied to every message on its way out, so a block added later cannot reintroduce an
    `invalid_blocks` rejection that would silently drop a page.
    """
    if len(blocks) > MAX_BLOCKS:
        omitted = len(blocks) - (MAX_BLOCKS - 1)
        note = _context([f"_{omitted} more blocks omitted_"])
        blocks = [*blocks[: MAX_BLOCKS - 1], note]
    return [_clamp_block(block) for block in blocks]


def _finish(blocks: list[dict[str, Any]], text: str) -> dict[str, Any]:
    # The top-level text is parsed as mrkdwn too, so it is escaped like the blocks.
    return {"text": truncate(text, MAX_FALLBACK_TEXT, markup=True), "blocks": clamp_blocks(blocks)}


def _clamp_block(block: dict[str, Any]) -> dict[str, Any]:
    clamped = dict(block)
    kind = block.get("type")
    if kind == "header":
        clamped["text"] = _clamp_text(block["text"], MAX_HEADER_TEXT)
    elif kind == "section":
        if "text" in block:
            clamped["text"] = _clamp_text(block["text"], MAX_SECTION_TEXT)
        if "fields" in block:
            fields = block["fields"][:MAX_FIELDS]
            clamped["fields"] = [_clamp_text(field, MAX_FIELD_TEXT) for field in fields]
    elif kind == "context":
        elements = block["elements"][:MAX_CONTEXT_ELEMENTS]
        clamped["elements"] = [
            _clamp_text(element, MAX_CONTEXT_TEXT) if "text" in element else element
            for element in elements
        ]
    elif kind == "actions":
        clamped["elements"] = [
            {**e, "text": _clamp_text(e["text"], MAX_BUTTON_TEXT)}
            for e in block["elements"][:MAX_ACTIONS]
            if len(str(e.get("url", ""))) <= MAX_URL
        ]
    return clamped


def _clamp_text(obj: dict[str, Any], limit: int) -> dict[str, Any]:
    markup = obj.get("type") == "mrkdwn"
    return {**obj, "text": truncate(str(obj["text"]), limit, markup=markup)}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _context(texts: list[str]) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text) for text in texts]}


def _emoji(notification: Notification) -> str:
    firing = [a for a in notification.alerts if a.status != "resolved"]
    if not firing:
        return RESOLVED_EMOJI
    return SEVERITY_EMOJI.get(firing[0].severity, DEFAULT_EMOJI)


def _status_line(notification: Notification) -> str:
    alerts = notification.alerts
    since = slack_date(min(_aware(a.started_at) for a in alerts))
    if all(a.status == "resolved" for a in alerts):
        return f"{RESOLVED_EMOJI} *Resolved{_resolved_after(alerts)}* · started {since}"
    state = "Firing"
    if all(a.status == "acknowledged" for a in alerts if a.status != "resolved"):
        state = f"{ACKNOWLEDGED_EMOJI} Acknowledged"
    line = f"*{state}* · {_counts(alerts)} · firing since {since}"
    if notification.event == "update" and notification.reason:
        line += f" · last update: {escape(notification.reason)}"
    return line


def _counts(alerts: tuple[Alert, ...]) -> str:
    names = ("firing", "acknowledged", "resolved")
    counts = {name: sum(a.status == name for a in alerts) for name in names}
    return ", ".join(f"{count} {name}" for name, count in counts.items() if count)


def _target(alert: Alert) -> str:
    target = f"`{escape(alert.metric)}`"
    if alert.feature:
        target += f" on `{escape(alert.feature)}`"
    return target


def _alert_text(alert: Alert) -> str:
    """Everything on-call needs about one alert: what, how bad, how sure, since when, what to do."""
    emoji = RESOLVED_EMOJI if alert.status == "resolved" else SEVERITY_EMOJI.get(alert.severity, "")
    value = format_value(alert.value, alert.unit)
    sample = f"n = {alert.n:,}"
    if alert.ci is not None:
        low, high = (format_value(bound, alert.unit) for bound in alert.ci)
        sample += f" · CI [{low}, {high}]"
    lines = [
        f"{emoji} *{_target(alert)}* · {escape(alert.model)} · {escape(alert.severity)}"
        f" · _{escape(alert.status)}_",
        f"Value *{value}* vs objective {escape(alert.objective)} · {sample}"
        f" · window {escape(alert.window)}",
    ]
    if alert.details:
        top = sorted(alert.details.items(), key=lambda kv: -kv[1])[:MAX_DETAILS]
        label = "Top drifting" if "drift" in alert.kind else "Details"
        lines.append(f"{label}: " + " · ".join(f"`{escape(k)}` {v:.3f}" for k, v in top))
    lines += [f"• {escape(line)}" for line in alert.root_cause[:MAX_ROOT_CAUSE]]
    if alert.status == "resolved" and alert.resolved_at is not None:
        when = f"Resolved {slack_date(alert.resolved_at)}"
    else:
        when = f"Firing since {slack_date(alert.started_at)}"
    links = [when, f"<{escape(alert.runbook_url)}|Runbook>"]
    if alert.evidence_url:
        links.append(f"<{escape(alert.evidence_url)}|Evidence>")
    if alert.report_url:
        links.append(f"<{escape(alert.report_url)}|Drift report>")
    if alert.slo:
        links.append(f"SLO `{escape(alert.slo)}`")
    lines.append(" · ".join(links))
    return "\n".join(lines)


def _short_line(alert: Alert) -> str:
    emoji = RESOLVED_EMOJI if alert.status == "resolved" else SEVERITY_EMOJI.get(alert.severity, "")
    value = format_value(alert.value, alert.unit)
    return (
        f"{emoji} {_target(alert)} ({escape(alert.model)}): {value} vs {escape(alert.objective)}"
        f" · _{escape(alert.status)}_"
    )


def _final_line(alert: Alert) -> str:
    value = format_value(alert.value, alert.unit)
    return (
        f"{_target(alert)} ({escape(alert.model)}): final value {value}"
        f" (objective {escape(alert.objective)}, n = {alert.n:,})"
    )


def _resolved_after(alerts: tuple[Alert, ...]) -> str:
    ends = [_aware(a.resolved_at) for a in alerts if a.resolved_at is not None]
    if not ends:
        return ""
    start = min(_aware(a.started_at) for a in alerts)
    return f" after {humanize((max(ends) - start).total_seconds())}"


def _buttons(alert: Alert) -> list[dict[str, Any]]:
    """Link buttons for web URLs only: Slack rejects a button whose URL is a local file."""
    links = [
        ("runbook", "Runbook", alert.runbook_url),
        ("evidence", "Evidence", alert.evidence_url),
        ("report", "Drift report", alert.report_url),
    ]
    return [
        {
            "type": "button",
            "action_id": f"vigil_{action}",
            "text": {"type": "plain_text", "text": label},
            "url": url,
        }
        for action, label, url in links
        if url and url.startswith(("https://", "http://")) and len(url) <= MAX_URL
    ]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
