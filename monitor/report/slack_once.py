"""What a report delivery to Slack already did, found in Slack itself.

A delivery is recorded in the store only after Slack accepted it, so a process killed between
Slack's answer and that record sends again on the next run. To make the repeat harmless, the
summary carries message metadata naming the week and the channel; a later run first looks for
it in the channel's history and reuses it, then looks in its thread for the uploaded file
before uploading. A bot without the history scopes still delivers (a repeat is then possible).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from alerts.notifiers.slack_channels import LIST_ARGS, find_channel_id

EVENT_TYPE = "vigil_report"
HISTORY_LIMIT = 200
#: Errors that mean "this bot may not look": the lookup is skipped, the delivery goes on.
NO_LOOKUP = frozenset({"missing_scope", "not_in_channel", "channel_not_found"})


def metadata(week: str, channel: str) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"week": week, "channel": channel}}


def channel_id(client: WebClient, channel: str) -> str | None:
    """The ID of `channel` (history and replies take IDs, not `#names`)."""
    return find_channel_id(
        channel,
        lambda cursor: _lookup(partial(client.conversations_list, cursor=cursor, **LIST_ARGS)),
    )


def posted_summary(client: WebClient, channel: str, week: str) -> tuple[str, str] | None:
    """(channel ID, ts) of the summary an earlier run posted for `week`, if any."""
    cid = channel_id(client, channel)
    if cid is None:
        return None
    history = _lookup(
        lambda: client.conversations_history(
            channel=cid, limit=HISTORY_LIMIT, include_all_metadata=True
        )
    )
    wanted = metadata(week, channel)
    for message in (history or {}).get("messages") or []:
        if message.get("metadata") == wanted:
            return cid, str(message["ts"])
    return None


def file_in_thread(client: WebClient, channel_id: str, ts: str, filename: str) -> bool:
    """Whether the thread under `ts` already holds a file named `filename`."""
    thread = _lookup(lambda: client.conversations_replies(channel=channel_id, ts=ts, limit=200))
    return any(
        shared.get("name") == filename
        for message in (thread or {}).get("messages") or []
        for shared in message.get("files") or []
    )


def _lookup(call: Any) -> dict[str, Any] | None:
    """One lookup call; None when the bot may not look. Other errors reach the caller."""
    try:
        response = call()
    except SlackApiError as exc:
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        if data.get("error") in NO_LOOKUP:
            return None
        raise
    data = response.data if hasattr(response, "data") else response
    return dict(data) if isinstance(data, dict) else {}
