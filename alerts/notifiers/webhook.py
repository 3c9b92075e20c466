"""A signed JSON POST for anything Vigil has no integration for (Opsgenie, Teams, a bot).

The body follows a documented, versioned schema (docs/webhook-schema.md) so a receiver can be
written once and keep working: fields are only added within a `schema_version`. The header
`X-Vigil-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body bytes with the shared
secret, so the receiver can tell Vigil's messages from anyone else's; `Idempotency-Key` (the
outbox key, as the IETF httpapi draft names it; also sent as `X-Vigil-Delivery`) is the same
on every attempt of one message, so the receiver can drop a message it has already acted on
after a retry: Vigil sends at least once, a receiver that dedups on the key acts exactly once.

HTTP errors follow the rules every HTTP notifier shares (alerts/notifiers/http.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from alerts.notifiers.base import Alert, Delivery, Notification, measurement
from alerts.notifiers.http import USER_AGENT, response_error, send_request, url_secrets
from monitor.config.models import WebhookReceiver

SCHEMA_VERSION = 1
SIGNATURE_HEADER = "X-Vigil-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


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
        **measurement(alert),
        "started_at": alert.started_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "incident_key": alert.incident_key,
        "labels": dict(alert.labels),
        "details": dict(alert.details),
        "root_cause": list(alert.root_cause),
        "runbook_url": alert.runbook_url,
        "report_url": alert.report_url,
        "evidence_url": alert.evidence_url,
    }


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


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
        raise response_error("webhook", response, response.text.strip(), self._secrets)


def from_config(cfg: WebhookReceiver) -> WebhookNotifier:
    return WebhookNotifier(cfg.url.get_secret_value(), cfg.secret.get_secret_value())
