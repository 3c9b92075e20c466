"""PagerDuty Events API v2: one PagerDuty incident per alert group, keyed by the group key.

Every event of a group carries the same `dedup_key` (the group key), so PagerDuty folds a
re-sent trigger into the incident it already has: a crash between the HTTP call and the
outbox commit cannot page twice. Opens and updates trigger (PagerDuty updates the alert),
an update in which every alert still firing has been acknowledged acknowledges, and the
group's resolve resolves.

PagerDuty answers 202 when it accepted an event, 400 when it never will (recorded as a
permanent failure, with PagerDuty's own reasons), and 429 or 5xx when it may later.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from alerts.notifiers.base import Alert, Delivery, DeliveryError, Notification
from alerts.notifiers.http import USER_AGENT, response_error, send_request, url_secrets
from alerts.notifiers.slack_blocks import format_value
from monitor.config.models import PagerDutyReceiver
from monitor.core.redact import mask

DEFAULT_BASE_URL = "https://events.pagerduty.com"
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
#: Alerts described in `custom_details`; PagerDuty caps an event at 512 KB.
MAX_DETAILED_ALERTS = 20
SEVERITIES = {"ticket": "warning", "info": "info"}


class PagerDutyNotifier:
    """Sends one Events API v2 event per notification."""

    def __init__(
        self,
        routing_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        page_severity: str = "critical",
        source: str | None = None,
        client_url: str | None = None,
        timeout: float = 10,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._routing_key = routing_key.strip()
        self.url = base_url.rstrip("/") + "/v2/enqueue"
        self.page_severity = page_severity
        self.source = source
        self.client_url = client_url
        self._secrets = [self._routing_key, *url_secrets(self.url)[1:]]
        self._client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)
        self._key_rejected: str | None = None

    def __repr__(self) -> str:
        return f"PagerDutyNotifier(url={self.url!r})"

    def send(self, notification: Notification) -> Delivery:
        if self._key_rejected is not None:
            # PagerDuty said the routing key itself is wrong: every event would bounce the same
            # way, so say so again without asking (the config must change, then restart).
            raise DeliveryError(self._key_rejected, retryable=False)
        event = build_event(
            notification,
            self._routing_key,
            page_severity=self.page_severity,
            source=self.source,
            client_url=self.client_url,
        )
        response = send_request(
            self._client,
            "pagerduty",
            "POST",
            self.url,
            self._secrets,
            content=json.dumps(event).encode(),
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
        )
        if response.status_code == 202:
            answer = _json(response)
            return Delivery(ref=str(answer.get("dedup_key") or notification.group_key)[:200])
        raise self._rejected(response)

    def _rejected(self, response: httpx.Response) -> DeliveryError:
        answer = _json(response)
        if response.status_code != 400:
            detail = str(answer.get("message") or response.text.strip())
            return response_error("pagerduty", response, detail, self._secrets)
        reasons = [str(e) for e in answer.get("errors") or []]
        message = (
            f"pagerduty rejected the event (HTTP 400 {answer.get('status', 'invalid event')}): "
            + ("; ".join(reasons) or str(answer.get("message") or response.text.strip()))
        )
        if any("routing_key" in r or "routing key" in r for r in reasons):
            message += (
                " — check this receiver's routing_key: it must be the 32-character integration"
                " key of an Events API v2 integration"
            )
            self._key_rejected = mask(message, self._secrets)
        return DeliveryError(mask(message, self._secrets), retryable=False)


def event_action(notification: Notification) -> str:
    """trigger, acknowledge (every alert still firing is acknowledged) or resolve."""
    if notification.event == "resolve":
        return "resolve"
    if notification.event == "update":
        open_alerts = notification.firing
        if open_alerts and all(a.status == "acknowledged" for a in open_alerts):
            return "acknowledge"
    return "trigger"


def severity_of(alert: Alert, page_severity: str = "critical") -> str:
    if alert.severity == "page":
        return page_severity
    return SEVERITIES.get(alert.severity, "warning")


def build_event(
    notification: Notification,
    routing_key: str,
    *,
    page_severity: str = "critical",
    source: str | None = None,
    client_url: str | None = None,
) -> dict[str, Any]:
    """The Events API v2 body. Acknowledge and resolve need only the dedup key; a trigger
    carries the summary, severity, source and the numbers on-call needs."""
    action = event_action(notification)
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": notification.group_key[:MAX_DEDUP_KEY],
    }
    if action != "trigger":
        return event
    worst = (notification.firing or notification.alerts)[0]
    event["payload"] = {
        "summary": summary(notification),
        "source": source or worst.model,
        "severity": severity_of(worst, page_severity),
        "timestamp": worst.started_at.isoformat(),
        "component": worst.feature or worst.metric,
        "group": worst.labels.get("team") or worst.model,
        "class": worst.kind,
        "custom_details": custom_details(notification),
    }
    event["client"] = "Vigil"
    if client_url:
        event["client_url"] = client_url
    links = _links(notification.alerts)
    if links:
        event["links"] = links
    return event


def summary(notification: Notification) -> str:
    """One line, at most 1024 characters: the worst alert, its value, how many others."""
    alerts = notification.firing or notification.alerts
    worst = alerts[0]
    text = f"{worst.title}: value {format_value(worst.value, worst.unit)} (n={worst.n:,})"
    if len(alerts) > 1:
        text += f" and {len(alerts) - 1} more alert(s)"
    if len(text) > MAX_SUMMARY:
        text = text[: MAX_SUMMARY - 1] + "…"
    return text


def custom_details(notification: Notification) -> dict[str, Any]:
    """The numbers behind the page, per alert, as PagerDuty shows them in "Details"."""
    alerts = notification.alerts
    details: dict[str, Any] = {
        "reason": notification.reason,
        "firing": sum(a.status == "firing" for a in alerts),
        "acknowledged": sum(a.status == "acknowledged" for a in alerts),
        "resolved": sum(a.status == "resolved" for a in alerts),
        "alerts": [
            {
                "title": a.title,
                "status": a.status,
                "severity": a.severity,
                "value": a.value,
                "objective": a.objective,
                "n": a.n,
                "ci": list(a.ci) if a.ci else None,
                "window": a.window,
                "started_at": a.started_at.isoformat(),
                "runbook": a.runbook_url,
                **({"evidence": a.evidence_url} if a.evidence_url else {}),
                **({"report": a.report_url} if a.report_url else {}),
                **({"top": dict(a.details)} if a.details else {}),
                **({"root_cause": list(a.root_cause)} if a.root_cause else {}),
            }
            for a in alerts[:MAX_DETAILED_ALERTS]
        ],
    }
    if len(alerts) > MAX_DETAILED_ALERTS:
        details["more_alerts"] = len(alerts) - MAX_DETAILED_ALERTS
    return details


def _links(alerts: tuple[Alert, ...]) -> list[dict[str, str]]:
    """Runbooks and reports of the alerts, web links only, each once."""
    links: dict[str, str] = {}
    for alert in alerts:
        candidates = [(alert.runbook_url, f"Runbook: {alert.kind}")]
        if alert.evidence_url:
            candidates.append((alert.evidence_url, f"Evidence: {alert.title}"))
        if alert.report_url:
            candidates.append((alert.report_url, f"Drift report: {alert.model}"))
        for href, text in candidates:
            if href.startswith(("https://", "http://")):
                links.setdefault(href, text)
    return [{"href": href, "text": text} for href, text in links.items()]


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def from_config(cfg: PagerDutyReceiver) -> PagerDutyNotifier:
    return PagerDutyNotifier(
        cfg.routing_key.get_secret_value(),
        cfg.base_url,
        page_severity=cfg.page_severity,
        source=cfg.source,
        client_url=cfg.client_url,
    )
