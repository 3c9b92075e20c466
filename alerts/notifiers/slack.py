"""Slack delivery: one head message per alert group, edited in place, later events in its thread.

The notifier makes one attempt per `send`: slack-sdk's own retry handlers are off because the
outbox owns backoff, and retrying in two places would multiply waits and could post twice.
Every failure becomes a `DeliveryError` that says whether a retry can help and never carries
the token: SDK exceptions hold the request headers, so they are not chained.

A crash between `chat.postMessage` and the outbox commit must not post a message twice on
retry, so every message carries metadata naming its outbox key, and every post first looks for
that key: a head in the channel's recent history (`conversations.history`), a thread reply in
its thread (`conversations.replies`), both with `include_all_metadata`.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from alerts.notifiers.base import Delivery, DeliveryError, Notification, Notifier
from alerts.notifiers.http import (
    clip,
    header,
    is_retryable_status,
    retry_after_seconds,
    status_error,
)
from alerts.notifiers.slack_blocks import (
    METADATA_EVENT_TYPE,
    head_message,
    metadata,
    reply_message,
)
from alerts.notifiers.slack_channels import LIST_ARGS, find_channel_id, is_channel_id
from monitor.config.models import SlackReceiver
from monitor.core.redact import mask

log = structlog.get_logger("vigil.notify.slack")

#: Slack `error` codes that mean "later may work"; every other `ok: false` is a request or
#: configuration problem that repeating the identical call cannot fix.
RETRYABLE_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    }
)
#: A thread head that no longer exists (deleted, or posted by the file notifier in a demo).
STALE_THREAD_ERRORS = frozenset({"thread_not_found", "invalid_thread_ts", "message_not_found"})
#: Errors that fail every call alike: a lookup that meets one reports it instead of degrading.
AUTH_ERRORS = frozenset(
    {"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired"}
)
#: How many recent channel messages a retried head is looked for in (one page of history).
HISTORY_LIMIT = 200
#: Thread replies read per `conversations.replies` page, and pages read at most: a thread of
#: more than 2000 messages is beyond any alert group's life (a reminder every hour for months).
REPLIES_PAGE = 200
REPLIES_PAGES = 10


class SlackNotifier:
    """Posts alert groups to one Slack channel through the Web API."""

    def __init__(
        self,
        channel: str,
        token: str,
        base_url: str | None = None,
        timeout: float = 10,
        history_limit: int = HISTORY_LIMIT,
    ) -> None:
        # slack-sdk annotates `timeout` as int but hands it to urlopen, which takes float; the
        # options dict also lets base_url stay unset so the SDK's default host applies.
        options: dict[str, Any] = {"token": token, "timeout": timeout, "retry_handlers": []}
        if base_url:
            options["base_url"] = base_url if base_url.endswith("/") else base_url + "/"
        self.channel = channel
        self.history_limit = history_limit
        self._secret = token.strip()
        self._client = WebClient(**options)
        # conversations.history and chat.update take a channel ID, never a `#name`.
        self._channel_id: str | None = channel if is_channel_id(channel) else None
        # Lookups (history, replies, channel list) this token cannot make: tried no more.
        self._unavailable: set[str] = set()

    def __repr__(self) -> str:
        return f"SlackNotifier(channel={self.channel!r}, base_url={self._client.base_url!r})"

    def send(self, notification: Notification) -> Delivery:
        """Open: post the head (or find the one an interrupted attempt posted). Update and
        resolve: edit the head's status, then reply in its thread.

        A reply whose head Slack no longer knows becomes a new top-level message: a stale
        thread must not turn "it's fixed" into a message nobody sees.
        """
        if notification.event != "open" and notification.thread_ref:
            return self._follow_up(notification, notification.thread_ref)
        return Delivery(ref=self._post_top_level(notification))

    def _post_top_level(self, notification: Notification) -> str:
        found = self._find_posted(notification)
        if found is not None:
            return found
        return self._post({**head_message(notification), "metadata": metadata(notification)})

    def _follow_up(self, notification: Notification, head_ts: str) -> Delivery:
        self._edit_head(head_ts, notification)
        reply = {
            **reply_message(notification),
            "metadata": metadata(notification),
            "thread_ts": head_ts,
            "reply_broadcast": False,
        }
        try:
            if not self._reply_posted(notification, head_ts):
                self._post(reply)
        except _StaleThreadError:
            return Delivery(ref=self._post_top_level(notification))
        return Delivery(ref=head_ts)

    def _edit_head(self, ts: str, notification: Notification) -> None:
        """Show the group's current status on the head. Editing is idempotent, so it goes
        before the reply: a retry after a failed reply repeats the edit, not the reply."""
        channel_id = self._resolve_channel_id()
        if channel_id is None:
            return
        try:
            self._call(
                "chat.update",
                lambda: self._client.chat_update(
                    channel=channel_id, ts=ts, **head_message(notification)
                ),
            )
        except DeliveryError as exc:
            if exc.retryable:
                raise
            # A head that cannot be edited (deleted, too old) still gets its thread reply.
            log.warning("slack head not updated", channel=self.channel, error=str(exc))

    def _find_posted(self, notification: Notification) -> str | None:
        """The ts of a message this notification already posted, found by its metadata."""
        history = "conversations.history"
        channel_id = None if history in self._unavailable else self._resolve_channel_id()
        if channel_id is None:
            return None
        response = self._lookup(
            history,
            lambda: self._client.conversations_history(
                channel=channel_id, limit=self.history_limit, include_all_metadata=True
            ),
        )
        if response is None:
            return None
        for message in response.get("messages") or []:
            if _posted_by(message, notification):
                return str(message["ts"])
        return None

    def _reply_posted(self, notification: Notification, head_ts: str) -> bool:
        """Whether this notification's reply is already in the head's thread (an attempt that
        was cut off between Slack's answer and the outbox commit), found by its metadata."""
        replies = "conversations.replies"
        channel_id = None if replies in self._unavailable else self._resolve_channel_id()
        if channel_id is None:
            return False
        cursor: str | None = None
        for _ in range(REPLIES_PAGES):
            page = self._lookup(
                replies,
                partial(
                    self._client.conversations_replies,
                    channel=channel_id,
                    ts=head_ts,
                    limit=REPLIES_PAGE,
                    cursor=cursor,
                    include_all_metadata=True,
                ),
                threaded=True,
            )
            if page is None:
                return False
            if any(_posted_by(m, notification) for m in page.get("messages") or []):
                return True
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None:
                return False
        return False

    def _resolve_channel_id(self) -> str | None:
        """The configured channel's ID, from a previous answer or `conversations.list`."""
        listing = "conversations.list"
        if self._channel_id is not None or listing in self._unavailable:
            return self._channel_id
        self._channel_id = find_channel_id(
            self.channel,
            lambda cursor: self._lookup(
                listing, partial(self._client.conversations_list, cursor=cursor, **LIST_ARGS)
            ),
        )
        return self._channel_id

    def _lookup(
        self, method: str, call: Callable[[], Any], *, threaded: bool = False
    ) -> dict[str, Any] | None:
        """A lookup's answer, or None once this token cannot make it (missing scopes): the
        lookup is then switched off and the loss said once, while heads are still posted.

        Raised instead: a retryable error (unsure whether the message exists: a retry can
        tell), an auth error (no call can work at all) and a stale thread (the caller falls
        back to a new message)."""
        try:
            return self._call(method, call, threaded=threaded)
        except _StaleThreadError:
            raise
        except DeliveryError as exc:
            if exc.retryable or _is_auth_error(exc):
                raise
            self._unavailable.add(method)
            log.warning(
                "slack history lookup unavailable: "
                "a message re-sent after a crash may be duplicated",
                channel=self.channel,
                error=str(exc),
            )
            return None

    def _post(self, payload: dict[str, Any]) -> str:
        response = self._call(
            "chat.postMessage",
            lambda: self._client.chat_postMessage(channel=self.channel, **payload),
            threaded="thread_ts" in payload,
        )
        ts = response.get("ts")
        if not isinstance(ts, str) or not ts:
            raise DeliveryError(
                "slack chat.postMessage failed: response carried no ts", retryable=True
            )
        if isinstance(response.get("channel"), str) and self._channel_id is None:
            self._channel_id = response["channel"]
        return ts

    def _call(
        self, method: str, call: Callable[[], Any], *, threaded: bool = False
    ) -> dict[str, Any]:
        try:
            response = call()
        except SlackApiError as exc:
            error = _api_error(method, exc, self._secret, threaded=threaded)
        except (OSError, http.client.HTTPException) as exc:
            # URLError, refused or reset connections, timeouts and torn responses: the network
            # or Slack is briefly away, which is exactly what a later attempt is for.
            reason = getattr(exc, "reason", None) or exc
            error = DeliveryError(
                mask(f"slack {method} failed: {type(exc).__name__}: {reason}", [self._secret]),
                retryable=True,
            )
        except SlackClientError as exc:
            # Raised before any request is made (for example a base_url that is not http[s]).
            error = DeliveryError(
                mask(f"slack {method} failed: {type(exc).__name__}: {exc}", [self._secret]),
                retryable=False,
            )
        else:
            data = response.data if hasattr(response, "data") else response
            return dict(data) if isinstance(data, dict) else {}
        # Raised outside the handlers so the SDK exception, whose request args include the
        # Authorization header, is neither the cause nor the context of what callers log.
        raise error


class _SlackError(DeliveryError):
    """An answer from Slack, with its `error` code for callers that treat some codes apart."""

    def __init__(
        self, message: str, code: str, *, retryable: bool, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retryable=retryable, retry_after=retry_after)
        self.code = code


class _StaleThreadError(_SlackError):
    """The thread head is gone; the caller falls back to a new message."""


def _posted_by(message: dict[str, Any], notification: Notification) -> bool:
    """Whether a message Slack returned carries this notification's outbox key."""
    meta = message.get("metadata") or {}
    payload = meta.get("event_payload") or {}
    return bool(
        meta.get("event_type") == METADATA_EVENT_TYPE and payload.get("key") == notification.key
    )


def _is_auth_error(exc: DeliveryError) -> bool:
    return isinstance(exc, _SlackError) and exc.code in AUTH_ERRORS


def _api_error(method: str, exc: SlackApiError, secret: str, *, threaded: bool) -> DeliveryError:
    response = exc.response
    status = int(response.status_code)
    data = response.data if isinstance(response.data, dict) else {}
    code = str(data.get("error") or f"HTTP {status}")
    message = f"slack {method} failed: {code}"
    if status != 200 and code != f"HTTP {status}":
        message += f" (HTTP {status})"
    details = data.get("errors")
    if isinstance(details, list) and details:
        # Slack names the offending block by JSON pointer; worth keeping for invalid_blocks.
        message += f" ({clip('; '.join(map(str, details)))})"
    message = mask(message, [secret])
    if threaded and code in STALE_THREAD_ERRORS:
        return _StaleThreadError(message, code, retryable=False)
    if status == 429 or code in {"ratelimited", "rate_limited"}:
        wait = retry_after_seconds(header(response.headers, "retry-after"))
        return _SlackError(message, code, retryable=True, retry_after=wait)
    retryable = is_retryable_status(status) or code in RETRYABLE_ERRORS
    return _SlackError(message, code, retryable=retryable)


class SlackWebhookNotifier:
    """Posts through an incoming-webhook URL: simpler to set up, but Slack answers `ok` with no
    ts, so nothing can be threaded or edited; each event is a self-contained snapshot."""

    def __init__(self, url: str, timeout: float = 10) -> None:
        quiet = logging.getLogger("vigil.notify.slack_webhook.sdk")
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False  # the SDK logs failures with the URL, which is the credential
        self._url = url.strip()
        self._path = self._url.split("://", 1)[-1].partition("/")[2]
        self._client = WebhookClient(
            self._url,
            timeout=timeout,  # type: ignore[arg-type]  # annotated int, handed to urlopen
            retry_handlers=[],
            logger=quiet,
        )

    def __repr__(self) -> str:
        return "SlackWebhookNotifier(url='[redacted]')"

    def send(self, notification: Notification) -> Delivery:
        try:
            response = self._client.send_dict(head_message(notification))
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            error = DeliveryError(
                self._clean(f"slack webhook failed: {type(exc).__name__}: {reason}"),
                retryable=True,
            )
        except SlackClientError as exc:
            error = DeliveryError(self._clean(f"slack webhook failed: {exc}"), retryable=False)
        else:
            status, body = int(response.status_code), str(response.body or "").strip()
            if status == 200:
                return Delivery(ref=None)
            error = status_error(
                "slack webhook", status, response.headers, body, [self._url, self._path]
            )
        raise error

    def _clean(self, message: str) -> str:
        return mask(message, [self._url, self._path])


class SlackFileNotifier:
    """Writes what would have been posted, one JSON object per line, when there is no token.

    The demo and CI run without a Slack workspace yet must show exactly what on-call would see;
    recording the literal `chat.postMessage` payload (channel and thread_ts included) lets anyone
    replay it against the real API or diff it in a test. Head edits are not written: a file
    cannot be edited in place, and the thread replies already say what changed.
    """

    def __init__(self, channel: str, path: str | Path) -> None:
        self.channel = channel
        self.path = Path(path)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SlackFileNotifier(channel={self.channel!r}, path={str(self.path)!r})"

    def send(self, notification: Notification) -> Delivery:
        """Append the payload; the ref is a fake ts derived from the message key, stable on
        retry, that every later message of the group threads under."""
        payload: dict[str, Any] = {"channel": self.channel}
        if notification.event != "open" and notification.thread_ref:
            payload.update(reply_message(notification), metadata=metadata(notification))
            payload.update(thread_ts=notification.thread_ref, reply_broadcast=False)
        else:
            payload.update(head_message(notification), metadata=metadata(notification))
        line = json.dumps(payload, ensure_ascii=False) + "\n"
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(line)
        except OSError as exc:
            # A full disk or a directory created late can clear; the outbox decides how long.
            raise DeliveryError(
                f"slack file notifier could not write {self.path}: {exc.strerror or exc}",
                retryable=True,
            ) from None
        return Delivery(ref=payload.get("thread_ts") or f"file-{notification.key}")


def from_config(cfg: SlackReceiver, default_outfile: Path) -> Notifier:
    """The Web API with a token, an incoming webhook with a URL, otherwise the file notifier.

    An empty token usually means `${SLACK_BOT_TOKEN}` was unset, as in the demo; writing to a
    file keeps the pipeline runnable instead of failing every delivery with `not_authed`.
    """
    token = cfg.token.get_secret_value().strip() if cfg.token is not None else ""
    if token:
        return SlackNotifier(cfg.channel, token, base_url=cfg.base_url)
    webhook = cfg.webhook_url.get_secret_value().strip() if cfg.webhook_url is not None else ""
    if webhook:
        return SlackWebhookNotifier(webhook)
    return SlackFileNotifier(cfg.channel, cfg.outfile or default_outfile)
