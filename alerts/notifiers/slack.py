"""Slack delivery: one head message per incident, later events in its thread.

The notifier makes exactly one attempt per `send`. slack-sdk's own retry handlers are switched
off because the outbox owns backoff; retrying in two places would multiply waits and could post
the same message twice. Every failure becomes a `DeliveryError` that says whether a retry can help
and never carries the token: SDK exceptions hold the request headers, so they are not chained.
"""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from alerts.notifiers.base import Delivery, DeliveryError, Notification, Notifier
from alerts.notifiers.slack_blocks import build_message
from monitor.config.models import SlackReceiver

API_METHOD = "chat.postMessage"

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
#: HTTP statuses worth another attempt: rate limiting, timeouts and server-side faults (5xx).
RETRYABLE_STATUSES = frozenset({408, 425, 429})
#: A thread head that no longer exists (deleted, or posted by the file notifier in a demo).
STALE_THREAD_ERRORS = frozenset({"thread_not_found", "invalid_thread_ts", "message_not_found"})
_MAX_DETAIL = 300


class SlackNotifier:
    """Posts incidents to one Slack channel through the Web API."""

    def __init__(
        self, channel: str, token: str, base_url: str | None = None, timeout: float = 10
    ) -> None:
        # slack-sdk annotates `timeout` as int but hands it to urlopen, which takes float; the
        # options dict also lets base_url stay unset so the SDK's default host applies.
        options: dict[str, Any] = {"token": token, "timeout": timeout, "retry_handlers": []}
        if base_url:
            options["base_url"] = base_url if base_url.endswith("/") else base_url + "/"
        self.channel = channel
        self._secret = token.strip()
        self._client = WebClient(**options)

    def __repr__(self) -> str:
        return f"SlackNotifier(channel={self.channel!r}, base_url={self._client.base_url!r})"

    def send(self, notification: Notification) -> Delivery:
        """Post the head message on open; on resolve, reply in the head's thread.

        The returned ref is always the head's ts, so every later event threads under the first.
        A resolve whose head Slack no longer knows is posted as a new message instead: a stale
        thread must not turn "it's fixed" into a message nobody sees.
        """
        payload = build_message(notification)
        if notification.event == "resolve" and notification.thread_ref:
            threaded = {**payload, "thread_ts": notification.thread_ref, "reply_broadcast": False}
            try:
                self._post(threaded)
            except _StaleThreadError:
                return Delivery(ref=self._post(payload))
            return Delivery(ref=notification.thread_ref)
        return Delivery(ref=self._post(payload))

    def _post(self, payload: dict[str, Any]) -> str:
        try:
            response = self._client.chat_postMessage(channel=self.channel, **payload)
        except SlackApiError as exc:
            error = _api_error(exc, self._secret, threaded="thread_ts" in payload)
        except (OSError, http.client.HTTPException) as exc:
            # URLError, refused or reset connections, timeouts and torn responses: the network
            # or Slack is briefly away, which is exactly what a later attempt is for.
            reason = getattr(exc, "reason", None) or exc
            error = DeliveryError(
                _redact(f"slack {API_METHOD} failed: {type(exc).__name__}: {reason}", self._secret),
                retryable=True,
            )
        except SlackClientError as exc:
            # Raised before any request is made (for example a base_url that is not http[s]).
            error = DeliveryError(
                _redact(f"slack {API_METHOD} failed: {type(exc).__name__}: {exc}", self._secret),
                retryable=False,
            )
        else:
            ts = response.get("ts")
            if not isinstance(ts, str) or not ts:
                raise DeliveryError(
                    f"slack {API_METHOD} failed: response carried no ts", retryable=True
                )
            return ts
        # Raised outside the handlers so the SDK exception, whose request args include the
        # Authorization header, is neither the cause nor the context of what callers log.
        raise error


class _StaleThreadError(DeliveryError):
    """The thread head is gone; the caller falls back to a new message."""


def _api_error(exc: SlackApiError, secret: str, *, threaded: bool) -> DeliveryError:
    response = exc.response
    status = int(response.status_code)
    data = response.data if isinstance(response.data, dict) else {}
    code = str(data.get("error") or f"HTTP {status}")
    message = f"slack {API_METHOD} failed: {code}"
    if status != 200 and code != f"HTTP {status}":
        message += f" (HTTP {status})"
    details = data.get("errors")
    if isinstance(details, list) and details:
        # Slack names the offending block by JSON pointer; worth keeping for invalid_blocks.
        detail = "; ".join(map(str, details))
        if len(detail) > _MAX_DETAIL:
            detail = detail[:_MAX_DETAIL] + "…"
        message += f" ({detail})"
    message = _redact(message, secret)
    if threaded and code in STALE_THREAD_ERRORS:
        return _StaleThreadError(message, retryable=False)
    if status == 429 or code in {"ratelimited", "rate_limited"}:
        retry_after = _retry_after(response.headers)
        return DeliveryError(message, retryable=True, retry_after=retry_after)
    retryable = status >= 500 or status in RETRYABLE_STATUSES or code in RETRYABLE_ERRORS
    return DeliveryError(message, retryable=retryable)


def _retry_after(headers: Any) -> float | None:
    """Seconds from a `Retry-After` header, or None when absent or not a number of seconds."""
    if not headers:
        return None
    for name, value in dict(headers).items():
        if str(name).lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) and value else value
            try:
                seconds = float(str(raw).strip())
            except ValueError:
                return None
            return max(seconds, 0.0)
    return None


def _redact(message: str, secret: str) -> str:
    """Last line of defence: whatever a library or server echoed, the token does not leave."""
    return message.replace(secret, "[redacted]") if secret else message


class SlackFileNotifier:
    """Writes what would have been posted, one JSON object per line, when there is no token.

    The demo and CI run without a Slack workspace yet must show exactly what on-call would see;
    recording the literal `chat.postMessage` payload (channel and thread_ts included) lets anyone
    replay it against the real API or diff it in a test.
    """

    def __init__(self, channel: str, path: str | Path) -> None:
        self.channel = channel
        self.path = Path(path)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SlackFileNotifier(channel={self.channel!r}, path={str(self.path)!r})"

    def send(self, notification: Notification) -> Delivery:
        """Append the payload; the ref is a fake ts derived from the incident, stable on retry."""
        head = f"file-{notification.incident_key}"
        payload: dict[str, Any] = {"channel": self.channel, **build_message(notification)}
        if notification.event == "resolve" and notification.thread_ref:
            payload["thread_ts"] = notification.thread_ref
            payload["reply_broadcast"] = False
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
        if notification.event == "resolve":
            return Delivery(ref=notification.thread_ref or head)
        return Delivery(ref=head)


def from_config(cfg: SlackReceiver, default_outfile: Path) -> Notifier:
    """Pick the real API when a token is configured, otherwise the file notifier.

    An empty token usually means `${SLACK_BOT_TOKEN}` was unset, as in the demo; writing to a
    file keeps the pipeline runnable instead of failing every delivery with `not_authed`.
    """
    token = cfg.token.get_secret_value().strip() if cfg.token is not None else ""
    if not token:
        return SlackFileNotifier(cfg.channel, cfg.outfile or default_outfile)
    return SlackNotifier(cfg.channel, token, base_url=cfg.base_url)
