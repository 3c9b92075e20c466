"""Alerts as JSON for the store and the outbox, and back."""

from __future__ import annotations

from dataclasses import asdict, replace
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Any

from alerts.notifiers.base import Alert
from monitor.core.objectives import parse_objective


def alert_to_json(alert: Alert) -> dict[str, Any]:
    data = asdict(alert)
    for key in ("started_at", "resolved_at"):
        data[key] = data[key].isoformat() if data[key] else None
    data["ci"] = list(alert.ci) if alert.ci else None
    return data


def alert_from_json(data: dict[str, Any]) -> Alert:
    fields = dict(data)
    fields["started_at"] = datetime.fromisoformat(fields["started_at"])
    fields["resolved_at"] = (
        datetime.fromisoformat(fields["resolved_at"]) if fields.get("resolved_at") else None
    )
    fields["ci"] = tuple(fields["ci"]) if fields.get("ci") else None
    if "threshold" not in fields:
        fields.update(_target(str(fields.get("objective", ""))))
    # Keys the alert's JSON gained after it was built (root-cause lines, evidence links a
    # later stage attached) stay in the stored JSON; the Alert takes the fields it knows.
    known = {f.name for f in dataclass_fields(Alert)}
    return Alert(**{k: v for k, v in fields.items() if k in known})


def _target(objective: str) -> dict[str, Any]:
    """Alerts stored before the parsed objective travelled with them: parse it once here."""
    try:
        parsed = parse_objective(objective)
    except ValueError:
        return {}
    return {"threshold": parsed.threshold, "higher_is_better": parsed.higher_is_better}


def with_resolution(alert: Alert, value: float | None, n: int, at: datetime) -> Alert:
    return replace(alert, value=value, n=n, resolved_at=at)
