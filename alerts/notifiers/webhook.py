"""A signed JSON POST for anything Vigil has no integration for (Opsgenie, Teams, a bot).

The body follows a documented, versioned schema (docs/webhook-schema.md) so a receiver can be
written once and keep working: fields are only added within a `schema_version`. The header
`X-Vigil-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body bytes with the shared
secret, so the receiver can tell Vigil's messages from anyone else's; `Idempotency-Key` (the
outbox key, as the IETF httpapi draft names it; also sent as `X-Vigil-Delivery`) is the same
on every attempt of one message, so the receiver can drop a message it has already acted on
after a retry: Vigil sends at least once, a receiver that dedups on the key acts exactly once.

This module also holds the HTTP error rules the other HTTP notifiers share: 2xx delivered,
408/425/429 and 5xx retried (honouring Retry-After), any other status permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from alerts.notifiers.base import Alert, Delivery, DeliveryError, Notification
from monitor import __version__
from monitor.config.models import WebhookReceiver

SCHEMA_VERSION = 1
SIGNATURE_HEADER = "X-Vigil-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRYABLE_STATUSES = frozenset({408, 425, 429})
USER_AGENT = f"vigil/{__version__}"
_MAX_BODY_IN_ERROR = 300


def payload(notification: Notification) -> dict[str, Any]:
    """The versioned body; docs/webhook-schema.md documents every field (a test keeps it so)."""
    alerts = notification.alerts
    if all(a.status == "resolved" for a in alerts):
        status = "resolved"
    elif all(a.status == "acknowledged" for a in alerts if a.status != "resolved"):
        status = "acknowledged"
    else:
        status = "firing"
    return {
        "schema_version": SCHEMA_VERSION,
        "id": notification.key,
        "receiver": notification.receiver,
        "group_key": notification.group_key,
        "event": notification.event,
        "sequence": notification.sequence,
        "reason": notification.reason,
        "status": status,
        "alerts": [alert_json(a) for a in alerts],
    }


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "title": alert.title,
        "model": alert.model,
        "slo": alert.slo,
        "metric": alert.metric,
        "kind": alert.kind,
        "severity": alert.severity,
        "status": alert.status,
        "feature": alert.feature,
        "value": alert.value,
        "unit": alert.unit,
        "objective": alert.objective,
        "window": alert.window,
        "n": alert.n,
        "ci": list(alert.ci) if alert.ci is not None else None,
        "started_at": alert.started_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "incident_key": alert.incident_key,
        "labels": dict(alert.labels),
        "details": dict(alert.details),
        "runbook_url": alert.runbook_url,
        "report_url": alert.report_url,
    }


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that may be credentials: the whole URL, its password, its query."""
    parts = urlsplit(url)
    found = [url]
    if parts.password:
        found.append(parts.password)
    if parts.query:
        found.append(parts.query)
    return [s for s in found if len(s) >= 4]


def redact(message: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        message = message.replace(secret, "[redacted]")
    return message


def send_request(
    client: httpx.Client, service: str, method: str, url: str, secrets: list[str], **kwargs: Any
) -> httpx.Response:
    """One HTTP request; a request that got no answer becomes a `DeliveryError`.

    Refused, reset or timed-out requests can work later; a URL that cannot be requested at
    all (no http/https scheme, malformed) cannot. httpx messages can quote the URL, so the
    text is redacted, and nothing is chained: the exception's request holds headers and body.
    """
    try:
        return client.request(method, url, **kwargs)
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        error = DeliveryError(
            redact(f"{service} URL cannot be requested: {exc}", secrets), retryable=False
        )
    except httpx.HTTPError as exc:
        error = DeliveryError(
            redact(f"{service} request failed: {type(exc).__name__}: {exc}", secrets),
            retryable=True,
        )
    raise error


def status_error(
    service: str, response: httpx.Response, detail: str, secrets: list[str]
) -> DeliveryError:
    """A non-2xx answer: retried for 408/425/429 and 5xx, permanent for anything else."""
    status = response.status_code
    retryable = status >= 500 or status in RETRYABLE_STATUSES
    retry_after = retry_after_seconds(response.headers.get("retry-after")) if retryable else None
    message = f"{service} answered HTTP {status}"
    if detail:
        message += f": {detail[:_MAX_BODY_IN_ERROR]}"
    return DeliveryError(redact(message, secrets), retryable=retryable, retry_after=retry_after)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: a number of seconds, or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value.strip()), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


class WebhookNotifier:
    """POSTs the versioned JSON body, signed, to one URL."""

    def __init__(
        self,
        url: str,
        secret: str,
        timeout: float = 10,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = url.strip()
        self._secret = secret
        self._secrets = [*url_secrets(self._url), secret]
        self._client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    def __repr__(self) -> str:
        return "WebhookNotifier(url='[redacted]')"

    def send(self, notification: Notification) -> Delivery:
        body = json.dumps(payload(notification), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(body, self._secret),
            IDEMPOTENCY_HEADER: notification.key,
            "X-Vigil-Delivery": notification.key,
            "X-Vigil-Event": notification.event,
        }
        response = send_request(
            self._client, "webhook", "POST", self._url, self._secrets, content=body, headers=headers
        )
        if 200 <= response.status_code < 300:
            request_id = response.headers.get("x-request-id")
            return Delivery(ref=request_id[:200] if request_id else None)
        raise status_error("webhook", response, response.text.strip(), self._secrets)


def from_config(cfg: WebhookReceiver) -> WebhookNotifier:
    return WebhookNotifier(cfg.url.get_secret_value(), cfg.secret.get_secret_value())
