"""A local stand-in for PagerDuty's Events API v2 (`POST /v2/enqueue`).

It validates like PagerDuty (PagerDuty/api-schema, events-v2/openapiv3.json, and the error
texts PagerDuty returns): a JSON body, a 32-character `routing_key`, an `event_action` of
trigger/acknowledge/resolve, a `dedup_key` of at most 255 characters (required to acknowledge
or resolve), and for a trigger a payload with `summary` (at most 1024 characters), `source`
and a `severity` of critical/error/warning/info. It answers as PagerDuty does: 202 with
`{"status": "success", "message": "Event processed", "dedup_key": ...}`, 400 with
`{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}`, 429
with an empty body. Triggers are deduplicated by dedup_key into one incident, as PagerDuty
does, until that incident is resolved.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import FakeHTTPServer, Reply, Request

ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255


@dataclass
class FakeIncident:
    """What PagerDuty would show: one incident per dedup key, and every event it absorbed."""

    routing_key: str
    dedup_key: str
    status: str = "triggered"
    summary: str = ""
    severity: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def triggers(self) -> int:
        return sum(e["event_action"] == "trigger" for e in self.events)


@dataclass
class RecordedEvent:
    headers: dict[str, str]
    raw: bytes
    status: int
    response: dict[str, Any] | str


class FakePagerDuty(FakeHTTPServer):
    """Context manager serving the Events API on 127.0.0.1 (port picked by the OS).

    Knobs: `rate_limit_next(n)` answers the next n events with 429, `fail_next(n, status)` with
    a server error, `down = True` drops connections unanswered, `gate` (a `threading.Event`)
    holds every answer until set, as a hanging server does, `after_answer(action)` is called
    once an answer was written (where the fault suite kills Vigil); `known_keys` (if set) makes
    any other well-formed key an "Invalid routing key".
    """

    name = "fake-pagerduty"

    def __init__(self, known_keys: set[str] | None = None) -> None:
        super().__init__()
        self.known_keys = known_keys
        self.incidents: list[FakeIncident] = []
        self.requests: list[RecordedEvent] = []
        self._rate_limit = 0
        self._fail: list[int] = []
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.origin

    def answer(self, request: Request) -> Reply | None:
        status, reply = self.handle(request.path, request.headers, request.raw)
        with self._lock:
            self.requests.append(RecordedEvent(request.headers, request.raw, status, reply))
        return Reply(status, reply)

    def answered(self, request: Request) -> str:
        return str(_json_object(request.raw).get("event_action") or "?")

    def rate_limit_next(self, n: int) -> None:
        with self._lock:
            self._rate_limit += n

    def fail_next(self, n: int, status: int = 500) -> None:
        with self._lock:
            self._fail.extend([status] * n)

    def open_incidents(self) -> list[FakeIncident]:
        return [i for i in self.incidents if i.status != "resolved"]

    def accepted(self) -> list[dict[str, Any]]:
        """The events PagerDuty accepted (202), in arrival order."""
        return [json.loads(r.raw) for r in self.requests if r.status == 202]

    # -- request handling ------------------------------------------------------------------

    def handle(
        self, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any] | str]:
        with self._lock:
            if path != "/v2/enqueue":
                return 404, {"status": "Not Found", "message": "Not Found"}
            if self._rate_limit:
                self._rate_limit -= 1
                return 429, ""
            if self._fail:
                return self._fail.pop(0), "Internal Server Error"
            content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
            try:
                if not content_type.startswith("application/json"):
                    raise ValueError("not JSON")
                event = json.loads(raw.decode("utf-8"))
                if not isinstance(event, dict):
                    raise ValueError("not an object")
            except (UnicodeDecodeError, ValueError):
                return 400, {
                    "status": "Unrecognized object",
                    "message": "Event object format is unrecognized",
                    "errors": ["JSON parse error"],
                }
            errors = self._validate(event)
            if errors:
                return 400, {
                    "status": "invalid event",
                    "message": "Event object is invalid",
                    "errors": errors,
                }
            key = self._apply(event)
            return 202, {"status": "success", "message": "Event processed", "dedup_key": key}

    def _validate(self, event: dict[str, Any]) -> list[str]:
        errors: list[str] = []
        key = event.get("routing_key")
        if not isinstance(key, str) or not key.strip():
            errors.append("'routing_key' is missing or blank")
        elif len(key) != 32:
            errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
        elif self.known_keys is not None and key not in self.known_keys:
            errors.append("Invalid routing key")
        action = event.get("event_action")
        if not action:
            errors.append("'event_action' is missing or blank")
        elif action not in ACTIONS:
            errors.append(
                "'event_action' is invalid (must be one of the following: "
                "'trigger', 'acknowledge' or 'resolve')"
            )
        dedup = event.get("dedup_key")
        if dedup is not None and (not isinstance(dedup, str) or len(dedup) > MAX_DEDUP_KEY):
            errors.append("Length of 'dedup_key' is too long (maximum is 255 characters)")
        if action in ("acknowledge", "resolve") and not dedup:
            errors.append("'dedup_key' is missing or blank")
        if action == "trigger":
            errors += _validate_payload(event.get("payload"))
        for i, link in enumerate(event.get("links") or []):
            if not isinstance(link, dict) or not link.get("href"):
                errors.append(f"'links[{i}].href' is missing or blank")
        return errors

    def _apply(self, event: dict[str, Any]) -> str:
        key = str(event.get("dedup_key") or uuid.uuid4().hex)
        routing = str(event["routing_key"])
        incident = next(
            (
                i
                for i in self.incidents
                if i.dedup_key == key and i.routing_key == routing and i.status != "resolved"
            ),
            None,
        )
        action = event["event_action"]
        if incident is None:
            if action != "trigger":
                return key  # PagerDuty accepts an ack or resolve for nothing, and ignores it
            incident = FakeIncident(routing_key=routing, dedup_key=key)
            self.incidents.append(incident)
        incident.events.append(event)
        if action == "trigger":
            incident.summary = event["payload"]["summary"]
            incident.severity = event["payload"]["severity"]
        elif action == "acknowledge":
            incident.status = "acknowledged"
        else:
            incident.status = "resolved"
        return key


def _validate_payload(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or blank"]
    errors: list[str] = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > MAX_SUMMARY:
        errors.append("Length of 'payload.summary' is too long (maximum is 1024 characters)")
    source = payload.get("source")
    if not isinstance(source, str) or not source.strip():
        errors.append("'payload.source' is missing or blank")
    if payload.get("severity") not in SEVERITIES:
        errors.append(
            "'payload.severity' is invalid (must be one of the following: "
            "'critical', 'warning', 'error' or 'info')"
        )
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict | list | str):
        errors.append("'payload.custom_details' is invalid")
    return errors


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}
