"""Severities and their order, in one place: routing, escalation, burn rules and message order
all ask "is this worse than that?", and three private rank tables once answered differently."""

from __future__ import annotations

from typing import Literal

Severity = Literal["page", "ticket", "info"]

SEVERITIES: tuple[Severity, ...] = ("info", "ticket", "page")
"""Least to most severe."""

_RANK: dict[str, int] = {name: i for i, name in enumerate(SEVERITIES)}


def severity_rank(severity: str) -> int:
    """Higher is more severe: info 0, ticket 1, page 2; an unknown name ranks below info (-1),
    so an odd stored value never outranks a real severity."""
    return _RANK.get(severity, -1)


def is_worse(severity: str, than: str) -> bool:
    """True when `severity` should escalate an incident that currently has `than`."""
    return severity_rank(severity) > severity_rank(than)
