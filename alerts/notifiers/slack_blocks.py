"""Block Kit messages for incidents, kept inside Slack's limits so a long name never loses a page.

Slack rejects a whole message (`invalid_blocks`) when a single field is one character too long,
and a feature or model name is user data of any length. So every text is escaped and clamped here,
in a pure function the tests can inspect, rather than trusted to the caller. The limits are
Slack's documented ones (docs.slack.dev, Block Kit reference).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from alerts.notifiers.base import Alert, Notification
from monitor.durations import humanize

#: A message may carry at most this many blocks.
MAX_BLOCKS = 50
#: A section's `text` may be at most this long.
MAX_SECTION_TEXT = 3000
#: A section may have at most this many `fields`.
MAX_FIELDS = 10
#: Each section field may be at most this long. Slack documents 2000, stricter than a section's
#: text, so a field clamped to 3000 would still be rejected.
MAX_FIELD_TEXT = 2000
#: A header block's plain_text may be at most this long.
MAX_HEADER_TEXT = 150
#: A context block may have at most this many elements.
MAX_CONTEXT_ELEMENTS = 10
#: Each context element's text may be at most this long.
MAX_CONTEXT_TEXT = 3000
#: The top-level `text`, which Slack shows in notifications and screen readers.
MAX_FALLBACK_TEXT = 3000
#: What a clamped text ends with, so a reader knows something was cut.
TRUNCATION_SUFFIX = "… (truncated)"

#: Emoji shown before an open incident's title, by severity; the colour of the page at a glance.
SEVERITY_EMOJI: dict[str, str] = {
    "page": ":rotating_light:",
    "ticket": ":warning:",
    "info": ":information_source:",
}
DEFAULT_EMOJI = ":warning:"
RESOLVED_EMOJI = ":white_check_mark:"

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
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def build_message(notification: Notification) -> dict[str, Any]:
    """The `chat.postMessage` arguments for one notification, except `channel` and threading.

    The notifier owns `channel` and `thread_ts` because only it knows where the head message
    landed; this function only decides what people read.
    """
    alert = notification.alert
    if notification.event == "resolve":
        blocks, text = _resolve_message(alert)
    else:
        blocks, text = _open_message(alert)
    return {"text": truncate(text, MAX_FALLBACK_TEXT, markup=True), "blocks": clamp_blocks(blocks)}


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
    return clamped


def _clamp_text(obj: dict[str, Any], limit: int) -> dict[str, Any]:
    markup = obj.get("type") == "mrkdwn"
    return {**obj, "text": truncate(str(obj["text"]), limit, markup=markup)}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _context(texts: list[str]) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text) for text in texts]}


def _field(label: str, value: str) -> dict[str, Any]:
    return _mrkdwn(f"*{label}*\n{value}")


def _open_message(alert: Alert) -> tuple[list[dict[str, Any]], str]:
    emoji = SEVERITY_EMOJI.get(alert.severity, DEFAULT_EMOJI)
    value = format_value(alert.value, alert.unit)
    metric = f"`{escape(alert.metric)}`"
    if alert.feature:
        metric += f" on feature `{escape(alert.feature)}`"
    sample = f"n = {alert.n:,}"
    if alert.ci is not None:
        low, high = (format_value(bound, alert.unit) for bound in alert.ci)
        sample += f"\nCI [{low}, {high}]"
    fields = [
        _field("Model", escape(alert.model)),
        _field("SLO metric", metric),
        _field("Value vs objective", f"{value} (objective {escape(alert.objective)})"),
        _field("Sample size", sample),
        _field("Severity", escape(alert.severity)),
        _field("Window", escape(alert.window)),
        _field("Started", format_time(alert.started_at)),
    ]
    links = [f"<{escape(alert.runbook_url)}|Runbook>"]
    if alert.slo:
        links.append(f"SLO `{escape(alert.slo)}`")
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"{emoji} {alert.title}", "emoji": True},
        },
        {"type": "section", "fields": fields},
        _context([" · ".join(links)]),
    ]
    # The top-level text is parsed as mrkdwn too, so it is escaped like the blocks.
    text = f"{emoji} {escape(alert.title)}: value {value} (n = {alert.n:,})"
    return blocks, text


def _resolve_message(alert: Alert) -> tuple[list[dict[str, Any]], str]:
    value = format_value(alert.value, alert.unit)
    after = ""
    if alert.resolved_at is not None:
        elapsed = (_aware(alert.resolved_at) - _aware(alert.started_at)).total_seconds()
        after = f" after {humanize(elapsed)}"
    body = (
        f"{RESOLVED_EMOJI} *Resolved{after}*: {escape(alert.title)}\n"
        f"Final value {value} (objective {escape(alert.objective)}, n = {alert.n:,})"
    )
    text = f"{RESOLVED_EMOJI} Resolved{after}: {escape(alert.title)} (final value {value})"
    return [{"type": "section", "text": _mrkdwn(body)}], text


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
