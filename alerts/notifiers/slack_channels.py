"""Finding a Slack channel's ID from the name a user configured.

History and replies take channel IDs, not `#names`. The alert notifier and the weekly report's
once-only delivery both need that ID to look for what they already posted, so they share one
answer here: an ID is used as given, a name is found in `conversations.list` (archived
channels left out: nothing can be posted there), at most `MAX_PAGES` pages deep.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: Keyword arguments of `conversations.list` for the search (plus `cursor`).
LIST_ARGS: dict[str, Any] = {
    "types": "public_channel,private_channel",
    "exclude_archived": True,
    "limit": 1000,
}
MAX_PAGES = 50

#: One page of `conversations.list` for a cursor; None when the bot may not list channels.
ListPage = Callable[[str | None], Mapping[str, Any] | None]


def is_channel_id(channel: str) -> bool:
    """Whether `channel` is already an ID (C…, G… or D…, upper-case, 9+ characters)."""
    return len(channel) >= 9 and channel[0] in "CGD" and channel.isalnum() and channel.isupper()


def find_channel_id(channel: str, list_page: ListPage) -> str | None:
    """The ID of `channel`, or None when it is not listed or the bot may not list."""
    if is_channel_id(channel):
        return channel
    wanted = channel.removeprefix("#")
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = list_page(cursor)
        if page is None:
            return None
        for found in page.get("channels") or []:
            if found.get("name") == wanted:
                return str(found["id"])
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if cursor is None:
            return None
    return None
