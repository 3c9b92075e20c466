"""Picks receivers, grouping and timers for an incident by walking the route tree.

As in Alertmanager: children are tried in order; the first that matches wins unless it says
`continue`; a route that matches but has no matching child delivers to its own receivers;
nothing matching at all falls back to the root's `default` receivers. Children inherit unset
`group_by` and timers from their parent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from alerts.matching import matches
from monitor.config.alerting import Route, RoutingConfig


@dataclass(frozen=True)
class Destination:
    receiver: str
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    route_path: str
    """Which route chose it (`0.1` = second child of the first route); part of the group key."""


@dataclass(frozen=True)
class _Settings:
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta

    def child(self, route: Route) -> _Settings:
        return _Settings(
            tuple(route.group_by) if route.group_by is not None else self.group_by,
            route.group_wait if route.group_wait is not None else self.group_wait,
            route.group_interval if route.group_interval is not None else self.group_interval,
            route.repeat_interval if route.repeat_interval is not None else self.repeat_interval,
        )


def _walk(
    labels: dict[str, str], routes: list[Route], settings: _Settings, path: str
) -> list[Destination]:
    found: list[Destination] = []
    for i, route in enumerate(routes):
        if not matches(labels, route.match, route.match_re):
            continue
        here = settings.child(route)
        route_path = f"{path}{i}"
        below = _walk(labels, route.routes, here, f"{route_path}.")
        found += below or [
            Destination(
                r,
                here.group_by,
                here.group_wait,
                here.group_interval,
                here.repeat_interval,
                route_path,
            )
            for r in route.receivers
        ]
        if not route.continue_:
            break
    return found


def destinations(labels: dict[str, str], routing: RoutingConfig) -> list[Destination]:
    """Every (receiver, grouping) an incident with these labels goes to, without repeats."""
    root = _Settings(
        tuple(routing.group_by), routing.group_wait, routing.group_interval, routing.repeat_interval
    )
    found = _walk(labels, routing.routes, root, "")
    if not found:
        found = [
            Destination(
                r,
                root.group_by,
                root.group_wait,
                root.group_interval,
                root.repeat_interval,
                "default",
            )
            for r in routing.default
        ]
    unique: dict[str, Destination] = {}
    for destination in found:
        unique.setdefault(destination.receiver, destination)
    return list(unique.values())


def receivers_for(labels: dict[str, str], routing: RoutingConfig) -> list[str]:
    return [d.receiver for d in destinations(labels, routing)]
