"""Picks receivers for an alert by matching its labels against the configured routes."""

from __future__ import annotations

from monitor.config.models import RoutingConfig


def receivers_for(labels: dict[str, str], routing: RoutingConfig) -> list[str]:
    """Routes are tried in order; the first match wins unless it says `continue`."""
    chosen: list[str] = []
    matched = False
    for route in routing.routes:
        if all(labels.get(key) == value for key, value in route.match.items()):
            matched = True
            chosen += [r for r in route.receivers if r not in chosen]
            if not route.continue_:
                break
    if not matched:
        chosen = list(dict.fromkeys(routing.default))
    return chosen
