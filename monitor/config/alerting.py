"""Config for what happens after a breach: routes, grouping timers, inhibitions, silences.

The shapes follow Prometheus Alertmanager's, so a platform team reads them without a manual.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from monitor.core.durations import parse_duration


def _to_duration(value: Any) -> Any:
    """`15m` and friends; a value already a timedelta passes through. A bare number is
    refused: `schedule: 300` could mean seconds or minutes, and a guess would mislead."""
    if isinstance(value, bool | int | float):
        raise ValueError(f"not a duration: {value!r} (a duration needs a unit: e.g. '{value}s')")
    return parse_duration(value) if isinstance(value, str) else value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s (a zero interval or window cannot work)")
    return value


Duration = Annotated[timedelta, BeforeValidator(_to_duration)]
"""Zero allowed: a `for:` of 0s fires at once, a settle delay of 0s waits for nothing."""
PositiveDuration = Annotated[timedelta, BeforeValidator(_to_duration), AfterValidator(_positive)]
"""Windows, schedules and timers, where zero means a division by zero or a busy loop."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _valid_patterns(value: dict[str, str]) -> dict[str, str]:
    for pattern in value.values():
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
    return value


class Route(_Strict):
    """Labels: model, severity, kind, metric, slo, feature, team, and each SLO's own labels.

    Unset timers and `group_by` are inherited from the parent route.
    """

    match: dict[str, str] = Field(default_factory=dict)
    match_re: dict[str, str] = Field(default_factory=dict)
    receivers: list[str] = Field(default_factory=list)
    continue_: bool = Field(default=False, alias="continue")
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    routes: list[Route] = Field(default_factory=list)

    _check_patterns = field_validator("match_re")(_valid_patterns)


class RoutingConfig(_Strict):
    """The root route: `default` receivers catch whatever no child route matched."""

    default: list[str] = Field(default_factory=list)
    group_by: list[str] = Field(default_factory=lambda: ["model", "kind"])
    group_wait: Duration = timedelta(seconds=30)
    group_interval: Duration = timedelta(minutes=5)
    repeat_interval: Duration = timedelta(hours=4)
    ticket_repeat_interval: PositiveDuration | None = timedelta(days=1)
    """Groups with no page among their firing alerts are reminded at most this often (a
    daily digest by default); `null` sends tickets no reminders at all."""
    routes: list[Route] = Field(default_factory=list)


class InhibitRule(_Strict):
    """While a source incident fires, matching target incidents with equal labels are muted."""

    source_match: dict[str, str] = Field(default_factory=dict)
    source_match_re: dict[str, str] = Field(default_factory=dict)
    target_match: dict[str, str] = Field(default_factory=dict)
    target_match_re: dict[str, str] = Field(default_factory=dict)
    equal: list[str] = Field(default_factory=lambda: ["model"])

    _check_source = field_validator("source_match_re")(_valid_patterns)
    _check_target = field_validator("target_match_re")(_valid_patterns)


def default_inhibit_rules() -> list[InhibitRule]:
    """Stale predictions or a blind monitor make quality and drift numbers meaningless."""
    return [
        InhibitRule(
            source_match_re={"kind": "stale_predictions|monitoring_blind"},
            target_match_re={
                "kind": "quality_drop|estimated_quality_drop|feature_drift|prediction_drift"
                "|missing_values|schema_change|volume_anomaly|stale_labels"
            },
            equal=["model"],
        )
    ]


class SilenceConfig(_Strict):
    """A maintenance window declared in the config."""

    matchers: dict[str, str] = Field(default_factory=dict)
    matchers_re: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime
    ends_at: datetime
    created_by: str = "config"
    comment: str

    _check_patterns = field_validator("matchers_re")(_valid_patterns)
